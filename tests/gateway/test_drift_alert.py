"""The drift monitor (issue 15, item 4) on a real store: the study's canthus readings dealt to four nodes of
one site in the order they were measured, stored as scans; the product's bound is the lab's measurement.
(The node alert it will raise is not wired yet: see docs/screening.md, "Drift monitor".)"""

from __future__ import annotations

import pytest

from gateway import drift
from gateway.store import open_store
from gateway.store.base import ScanRow
from lab import drift as lab_drift
from lab.dataset import CANTHUS, Subject, readings

T0 = 1_767_225_600_000


def scan(i: int, t_site: float) -> ScanRow:
    """The i-th traveller's scan, dealt to lane-(i % 4) of bridge."""
    return ScanRow("bridge", f"lane-{i % 4}", i // 4 + 1, 1, None, i, "canthus", t_site, 22.0, 37.0, "normal", (),
                   14, 900, None, "0.1.0", "c", 37.0, "normal", (), "c", T0 + i, T0 + i)  # fmt: skip


def stored_levels(any_db: str, subjects: list[Subject], shift: dict[int, float]) -> dict[str, float | None]:
    order = sorted(subjects, key=lambda s: (s.date.split("-"), s.time))
    data, _ = readings(order, CANTHUS, 1)
    rows = [scan(i, r.t_site + shift.get(i % 4, 0.0)) for i, r in enumerate(data)]
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
