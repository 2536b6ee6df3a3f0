"""The drift monitor (issue 15, item 4) on a real store: the study's canthus readings dealt to four nodes of
one site in the order they were measured, stored as scans; the product's bound is the lab's measurement.
`check_site` raises the node alert and resolves it when the node is back inside; the service does not call it
yet (docs/screening.md, "Drift monitor"), so these tests call it on the store, not through MQTT."""

from __future__ import annotations

import pytest

from gateway import drift
from gateway.store import open_store
from gateway.store.base import ScanRow
from lab import drift as lab_drift
from lab.dataset import CANTHUS, Subject, readings

T0 = 1_767_225_600_000


def scan(i: int, t_site: float, at: int = T0, first_seq: int = 1) -> ScanRow:
    """The i-th traveller's scan, dealt to lane-(i % 4) of bridge."""
    return ScanRow("bridge", f"lane-{i % 4}", first_seq + i // 4, 1, None, i, "canthus", t_site, 22.0, 37.0,
                   "normal", (), 14, 900, None, "0.1.0", "c", 37.0, "normal", (), "c", at + i, at + i)  # fmt: skip


def dealt(subjects: list[Subject]) -> list[float]:
    order = sorted(subjects, key=lambda s: (s.date.split("-"), s.time))
    data, _ = readings(order, CANTHUS, 1)
    return [r.t_site for r in data]


def stored_levels(any_db: str, subjects: list[Subject], shift: dict[int, float]) -> dict[str, float | None]:
    rows = [scan(i, v + shift.get(i % 4, 0.0)) for i, v in enumerate(dealt(subjects))]
    store = open_store(any_db)
    try:
        with store.transaction() as tx:
            tx.insert_scans(rows)
        scans = sorted(store.scans(None, None, "bridge"), key=lambda s: s.scanned_at)
    finally:
        store.close()
    return drift.site_levels(scans)["bridge"]


def test_the_products_bound_is_the_labs_measurement(subjects: list[Subject]) -> None:
    data, _ = readings(subjects, CANTHUS, 1)
    measured = drift.BOUND_SDS * lab_drift.level_sd([r.t_site for r in data])
    assert abs(drift.BOUND_C - measured) < 0.01  # the constant is the lab's figure, rounded


def test_honest_nodes_are_not_named(any_db: str, subjects: list[Subject]) -> None:
    assert drift.drifting(stored_levels(any_db, subjects, {})) == {}


def test_a_node_reading_0_5_c_high_is_named(any_db: str, subjects: list[Subject]) -> None:
    found = drift.drifting(stored_levels(any_db, subjects, {3: 0.5}))
    assert list(found) == ["lane-3"] and found["lane-3"] == pytest.approx(0.5, abs=drift.BOUND_C)


def test_a_node_reading_0_5_c_high_raises_a_drift_alert_resolved_when_back_inside(
    any_db: str, subjects: list[Subject]
) -> None:
    values = dealt(subjects)
    t1 = T0 + 86_400_000
    store = open_store(any_db)
    try:
        with store.transaction() as tx:
            tx.insert_scans([scan(i, v + (0.5 if i % 4 == 3 else 0.0)) for i, v in enumerate(values)])
        raised = drift.check_site(store, "bridge", T0, T0 + 1)
        assert [(c.alert.kind, c.alert.node, c.alert.state) for c in raised] == [(drift.DRIFT, "lane-3", "raised")]
        assert raised[0].alert.detail is not None and raised[0].alert.detail.startswith("level +0.")
        assert drift.check_site(store, "bridge", T0, T0 + 2) == []  # still beyond: the open alert stands
        with store.transaction() as tx:  # the unit serviced: the next day's readings are honest
            tx.insert_scans([scan(i, v, at=t1, first_seq=1000) for i, v in enumerate(values)])
        back = drift.check_site(store, "bridge", t1, t1 + 1)
        assert [(c.alert.node, c.alert.state, c.alert.reason) for c in back] == [("lane-3", "resolved", "back_inside")]
        assert [a.state for a in store.alerts(None, None, "bridge")] == ["resolved"]
    finally:
        store.close()


def test_an_honest_site_raises_no_drift_alert(any_db: str, subjects: list[Subject]) -> None:
    store = open_store(any_db)
    try:
        with store.transaction() as tx:
            tx.insert_scans([scan(i, v) for i, v in enumerate(dealt(subjects))])
        assert drift.check_site(store, "bridge", T0, T0 + 1) == []
        assert store.alerts(None, None, "bridge") == []
    finally:
        store.close()
