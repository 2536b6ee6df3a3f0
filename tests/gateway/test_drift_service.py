"""The drift monitor in the running gateway (issue 15 item 4): the study's canthus readings dealt to four nodes of
one site in the order they were measured, one node reading 0.5 C high, published over MQTT to the real gateway
(SQLite and PostgreSQL); a minute after the batches commit (the injected clock) the service judges the site and
raises one population_drift alert, for that node, with its notification in the outbox."""

from __future__ import annotations

import pytest

from gateway import alerts, drift
from gateway.store import open_store
from lab.dataset import CANTHUS, Subject, readings
from testkit.gateway import FakeClock

SHIFT = {3: 0.5}  # lane-3 reads 0.5 C high
PER_NODE = 40  # readings published per node: more than drift.WINDOW


@pytest.fixture
def db_url(any_db: str) -> str:
    """The gateway fixtures' database: each test here runs on SQLite and on PostgreSQL."""
    return any_db


def dealt(subjects: list[Subject]) -> list[tuple[int, float]]:
    """(index, canthus reading in C) of the study's subjects in the order they were measured, the last
    4 x PER_NODE of them; index i goes to lane-(i % 4)."""
    order = sorted(subjects, key=lambda s: (s.date.split("-"), s.time))
    data, _ = readings(order, CANTHUS, 1)
    return list(enumerate(r.t_site for r in data))[-4 * PER_NODE :]


def test_a_node_reading_0_5_c_high_raises_one_drift_alert_through_the_service(
    start_gateway, nodes, watch, db_url, subjects
) -> None:
    clock = FakeClock()
    start_gateway(clock)
    topic = watch("checkpoint/v1/alerts/#")
    lanes = [nodes("bridge", f"lane-{k}") for k in range(4)]
    sent: dict[int, list[int]] = {k: [] for k in range(4)}
    for i, t_site in dealt(subjects):
        k, seq = i % 4, i // 4 + 1
        lanes[k].send_seqs([seq], mode="canthus", t_site_c=round(t_site + SHIFT.get(k, 0.0), 2), t_amb_c=22.0,
                           ts=clock())  # fmt: skip
        sent[k].append(seq)
    for k, lane in enumerate(lanes):
        assert lane.wait_receipts(sent[k])
    store = open_store(db_url)
    assert [a for a in store.alerts(None, None, "bridge") if a.kind == alerts.POPULATION_DRIFT] == []  # not yet due

    clock.advance(drift.CHECK_EVERY_MS)  # a minute after the gateway's start: the site is judged
    _, raised = topic.wait_for(lambda t, m: m["kind"] == alerts.POPULATION_DRIFT)
    assert (raised["site"], raised["node"], raised["state"], raised["reason"]) == (
        "bridge",
        "lane-3",
        "raised",
        "beyond_bound",
    )
    [alert] = [a for a in store.alerts(None, None, "bridge") if a.kind == alerts.POPULATION_DRIFT]
    departure = float(alert.detail.split()[1])  # "level +0.52 C from the site's other nodes (bound 0.33 C)"
    assert departure == pytest.approx(0.5, abs=drift.BOUND_C)
    with store.transaction() as tx:
        waiting = [u.alert_id for u in tx.outbox().unrouted(1000)]
    assert waiting.count(alert.alert_id) == 1  # its notification, for the notifier to route and send
    store.close()


def test_a_site_is_judged_at_most_once_a_minute_and_again_after_a_failed_check() -> None:
    schedule = drift.Schedule(drift.CHECK_EVERY_MS, start=1_000)
    schedule.committed(["bridge"])
    assert schedule.due(1_000 + drift.CHECK_EVERY_MS - 1) == []  # not within a minute of the start
    assert schedule.due(1_000 + drift.CHECK_EVERY_MS) == ["bridge"]
    schedule.done("bridge")
    schedule.committed(["bridge", "ferry"])
    assert schedule.due(1_000 + drift.CHECK_EVERY_MS + 1) == ["ferry"]  # bridge was judged a moment ago
    assert schedule.due(1_000 + 2 * drift.CHECK_EVERY_MS) == ["bridge"]  # ferry's check failed: not done ...
    assert schedule.due(1_000 + 2 * drift.CHECK_EVERY_MS + 1) == ["ferry"]  # ... so it is due again a minute on
