"""The outbox is written in the event's own transaction by every writer: the gateway's batch (a scan through
the service loop), the console's actions (update_alert), and nothing is left behind by a transaction that
rolls back. Retests and clinical re-checks notify nobody."""

from __future__ import annotations

import pytest

from gateway import alerts
from gateway.store import Store, open_store
from testkit.gateway import FakeClock
from testkit.notify import act, deliveries, notifier, raise_fever, scan_row, settings
from testkit.receivers import Webhook
from testkit.service import ServiceLoop

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}


def _notifications(store: Store) -> list[str]:
    with store.transaction() as tx:
        return [n.notification_id for n in tx.outbox().unrouted(100)]


def test_the_gateways_batch_writes_the_notification_with_the_event(store: Store) -> None:
    loop = ServiceLoop(store).start()
    try:
        loop.scan("n1", seq=5, **FEVER)
        loop.scan("n1", seq=6, retest_of=5, **FEVER)  # a retest: an event, no notification
    finally:
        loop.stop()
    (fever,) = loop.events("fever")[:1]
    assert _notifications(store) == [f"{fever['alert_id']}#1"]
    assert [e.reason for e in store.alert_events(fever["alert_id"])] == ["elevated", "retest_confirmed"]


def test_the_consoles_actions_notify_and_a_recheck_does_not(store: Store, clock: FakeClock) -> None:
    alert = raise_fever(store, clock, seq=1)
    act(store, alert.alert_id, lambda a: alerts.acknowledge(a, "medic:wang", "10.0.0.5", clock()))
    act(store, alert.alert_id, lambda a: alerts.recheck(a, "medic:wang", "10.0.0.5", "oral", 38.4, clock()))
    act(store, alert.alert_id, lambda a: alerts.resolve_by(a, "medic:wang", "10.0.0.5", "referred", "", 1, clock()))
    assert _notifications(store) == [f"{alert.alert_id}#{n}" for n in (1, 2, 4)]


def test_an_event_rolled_back_leaves_no_notification(store: Store, clock: FakeClock) -> None:
    change = alerts.raise_fever(scan_row(9, at=clock()), clock())
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.save_alert(change.alert, change.event)
        raise RuntimeError("the batch failed after the event was written")
    assert store.alert(change.alert.alert_id) is None
    assert _notifications(store) == []


def test_the_outbox_runs_on_each_backend(any_db: str) -> None:
    """Every statement of the outbox (enqueue, reminder, route, pending, record) on SQLite and PostgreSQL."""
    store = open_store(any_db)
    clock = FakeClock()
    try:
        with Webhook() as webhook:
            section = settings({"receivers": {"m": {"url": webhook.url(), "locale": "en"}},
                                "routes": [{"receivers": ["m"]}]})  # fmt: skip
            n = notifier(store, section, clock)
            alert = raise_fever(store, clock, seq=1)
            clock.advance(10 * 60_000)
            n.step()  # the event and reminder 1
            act(store, alert.alert_id, lambda a: alerts.acknowledge(a, "medic:wang", "10.0.0.5", clock()))
            n.step()
            assert [p.body["message"].rsplit("Ref: ", 1)[1] for p in webhook.posts] == [
                f"{alert.alert_id}#1",
                f"{alert.alert_id}#r1",
            ]
        assert [(d[0].rsplit("#", 1)[1], d[2]) for d in deliveries(store)] == [("1", "sent"), ("r1", "sent")]
    finally:
        store.close()
