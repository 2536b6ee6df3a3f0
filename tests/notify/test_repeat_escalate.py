"""Reminders and escalation on an injected clock: a fever nobody acknowledges is sent again every repeat_min to
its receivers and escalated after escalate_min (an `escalated` event, heard by the duty doctor too);
acknowledgement stops both; node alerts stay quiet; a site may set its own timing."""

from __future__ import annotations

from gateway import alerts
from gateway.store import Store
from testkit.gateway import FakeClock
from testkit.notify import SITE, act, deliveries, notifier, raise_fever, settings
from testkit.receivers import Webhook

MIN = 60_000


def _section(medics: Webhook, doctor: Webhook, **extra: object) -> dict[str, object]:
    return {
        "receivers": {"medics": {"url": medics.url(), "locale": "en"}, "doctor": {"url": doctor.url(), "locale": "en"}},
        "routes": [
            {"kinds": ["fever"], "states": ["escalated"], "receivers": ["medics", "doctor"]},
            {"receivers": ["medics"]},
        ],
        "timing": {"fever": {"repeat_min": 10, "escalate_min": 30}},
        **extra,
    }


def _run_minutes(n: object, clock: FakeClock, minutes: int) -> None:
    for _ in range(minutes):
        clock.advance(MIN)
        n.step()  # type: ignore[attr-defined]


def test_an_unacknowledged_fever_is_repeated_then_escalated_until_acknowledged(store: Store, clock: FakeClock) -> None:
    with Webhook() as medics, Webhook() as doctor:
        n = notifier(store, settings(_section(medics, doctor)), clock)
        alert = raise_fever(store, clock, seq=7)
        n.step()
        _run_minutes(n, clock, 29)
        medics.wait_for(lambda: len(medics.posts) == 3)
        heads = [p.body["title"] for p in medics.posts]
        assert heads[0].startswith("[Fever]") and "Reminder 1" in heads[1] and "Reminder 2" in heads[2]
        assert doctor.posts == []
        assert store.alert(alert.alert_id).state == alerts.RAISED  # type: ignore[union-attr]

        _run_minutes(n, clock, 1)  # 30 min: escalated, and reminder 3
        doctor.wait_for(lambda: len(doctor.posts) == 2)
        assert "ESCALATED" in doctor.posts[0].body["title"]
        assert "not acknowledged within 30 min: escalated" in doctor.posts[0].body["message"]
        escalated = store.alert_events(alert.alert_id)[-1]
        assert (escalated.state, escalated.actor) == (alerts.ESCALATED, "notifier")
        assert "Reminder 3" in doctor.posts[1].body["title"]  # after escalation reminders go to both
        medics.wait_for(lambda: len(medics.posts) == 5)

        act(store, alert.alert_id, lambda a: alerts.acknowledge(a, "medic:li", "10.0.0.9", clock()))
        _run_minutes(n, clock, 60)
        assert len(medics.posts) == 5 and len(doctor.posts) == 2  # the acknowledgement routes nowhere here
        assert {p.body["message"].rsplit("#", 1)[-1] for p in medics.posts} >= {"1", "r1", "r2", "r3"}


def test_a_reminder_due_while_the_receiver_was_down_is_sent_once_and_not_after_acknowledgement(
    store: Store, clock: FakeClock
) -> None:
    medics, doctor = Webhook(), Webhook()  # both down
    n = notifier(store, settings(_section(medics, doctor, retry_first_s=600, retry_max_s=600)), clock)
    alert = raise_fever(store, clock, seq=8)
    _run_minutes(n, clock, 25)  # reminders 1 and 2 pile up behind the failing first message
    act(store, alert.alert_id, lambda a: alerts.acknowledge(a, "medic:li", "10.0.0.9", clock()))
    with medics:
        _run_minutes(n, clock, 10)
        medics.wait_for(lambda: len(medics.posts) == 1)
    states = {d[0].rsplit("#", 1)[1]: d[2] for d in deliveries(store)}
    assert states == {"1": "sent", "r1": "cancelled", "r2": "cancelled"}


def test_node_alerts_are_quiet_by_default_and_a_site_sets_its_own_fever_timing(store: Store, clock: FakeClock) -> None:
    with Webhook() as medics, Webhook() as doctor:
        extra = {"sites": {SITE: {"timing": {"fever": {"repeat_min": 5}}}}}
        n = notifier(store, settings(_section(medics, doctor, **extra)), clock)
        change = alerts.raise_node(alerts.NODE_OFFLINE, SITE, "n2", "silent", clock())
        with store.transaction() as tx:
            tx.save_alert(change.alert, change.event)
        raise_fever(store, clock, seq=9)
        n.step()
        _run_minutes(n, clock, 12)
        medics.wait_for(lambda: len(medics.posts) == 4)
        titles = [p.body["title"] for p in medics.posts]
        assert sum("Node offline" in t for t in titles) == 1  # raised once, never repeated
        assert sum("Reminder" in t for t in titles) == 2  # the site's 5 minutes, not the kind's 10
        assert settings(_section(medics, doctor, **extra)).timing_for(SITE, "fever").escalate_min == 30
