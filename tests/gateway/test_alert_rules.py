"""The alert rules (gateway/alerts.py) as plain functions: no broker, no store, no threads.

What a medic would see: which alert a scan raises, how a retest changes it, its times and its event numbers,
and the exact payload on the alerts topic (docs/protocol.md, alerts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import alerts
from gateway.store.base import AlertRow, ScanRow

T0 = 1_767_254_400_000  # 2026-01-01 08:00 UTC, Unix ms


def scan(seq: int, verdict: str = "elevated", t_core: float | None = 37.9, **kw: Any) -> ScanRow:
    """A stored scan of bridge/n3 whose authoritative (gateway) verdict is `verdict`."""
    row = ScanRow(
        site="bridge",
        node="n3",
        seq=seq,
        boot=7,
        ts=None,
        uptime_ms=5_400_000 + seq,
        mode="forehead",
        t_site_c=35.3,
        t_amb_c=21.4,
        t_core_c=37.7,  # the node's own estimate: never the alert's
        verdict=verdict,
        flags=(),
        samples=14,
        duration_ms=950,
        retest_of=None,
        fw="0.1.0",
        cal="fda-forehead-1",
        gateway_t_core_c=t_core,
        gateway_verdict=verdict,
        gateway_flags=(),
        gateway_cal="fda-forehead-1",
        received_at=T0,
        scanned_at=T0,
    )
    for name, value in kw.items():
        setattr(row, name, value)
    return row


def test_an_elevated_scan_raises_a_fever_alert_named_after_it() -> None:
    change = alerts.raise_fever(scan(1842, t_core=37.9), T0)
    a, e = change.alert, change.event
    assert a.alert_id == "fever:bridge:n3:1842"
    assert (a.kind, a.state, a.reason) == ("fever", "raised", "elevated")
    assert (a.site, a.node, a.seq, a.last_seq) == ("bridge", "n3", 1842, 1842)
    assert (a.t_site_c, a.t_core_c) == (35.3, 37.9)  # the gateway's estimate, not the node's 37.7
    assert (a.opened_at, a.updated_at, a.resolved_at, a.confirmed_at) == (T0, T0, None, None)
    assert a.events == 1
    assert (e.alert_id, e.n, e.state, e.reason, e.at, e.actor, e.seq, e.t_core_c) == (
        a.alert_id,
        1,
        "raised",
        "elevated",
        T0,
        "gateway",
        1842,
        37.9,
    )


def test_an_elevated_retest_confirms_the_fever_once() -> None:
    raised = alerts.raise_fever(scan(3, t_core=37.9), T0).alert
    first = alerts.retest(raised, scan(4, t_core=38.2, retest_of=3, t_site_c=35.6), T0 + 60_000)
    a = first.alert
    assert (a.alert_id, a.state, a.reason) == (raised.alert_id, "raised", "retest_confirmed")
    assert (a.seq, a.last_seq) == (3, 4)  # still the traveller's first scan; the retest is linked
    assert (a.t_site_c, a.t_core_c) == (35.6, 38.2)  # the confirmed reading
    assert (a.confirmed_at, a.updated_at, a.opened_at) == (T0 + 60_000, T0 + 60_000, T0)
    assert (first.event.n, first.event.seq) == (2, 4)

    again = alerts.retest(a, scan(5, t_core=38.0, retest_of=4), T0 + 120_000).alert
    assert again.confirmed_at == T0 + 60_000  # confirmed when the first retest said so
    assert (again.last_seq, again.events, again.updated_at) == (5, 3, T0 + 120_000)


def test_a_normal_retest_is_an_event_with_its_reading_and_never_resolves() -> None:
    # Issue 12: an infrared retest that reads normal used to resolve the fever (retest_normal); a clinical
    # thermometer decides (docs/screening.md), so the retest is only an event on the alert.
    raised = alerts.raise_fever(scan(3, t_core=37.9), T0).alert
    change = alerts.retest(raised, scan(4, "normal", t_core=36.9, retest_of=3), T0 + 90_000)
    a = change.alert
    assert (a.state, a.reason, a.resolved_at, a.confirmed_at) == ("raised", "retest_normal", None, None)
    assert a.t_core_c == 37.9  # what raised it; the retest's reading is on its event
    assert (change.event.state, change.event.t_core_c, change.event.seq) == ("raised", 36.9, 4)
    assert alerts.status(a) == (True, False)  # active, unacknowledged


def test_an_unusable_retest_is_an_event_that_leaves_the_state_alone() -> None:
    raised = alerts.raise_fever(scan(3), T0).alert
    for n, verdict in enumerate(("indeterminate", "invalid"), start=2):
        change = alerts.retest(raised, scan(3 + n, verdict, t_core=None, retest_of=3), T0 + n)
        assert (change.alert.state, change.alert.reason) == ("raised", "retest_" + verdict)
        assert (change.alert.t_core_c, change.alert.confirmed_at, change.alert.resolved_at) == (37.9, None, None)
        assert (change.event.state, change.event.n) == ("raised", 2)


def _resolved_by_medic(raised: AlertRow, at: int) -> AlertRow:
    checked = alerts.recheck(raised, "medic:li", "127.0.0.1", "oral", 36.6, at).alert
    return alerts.resolve_by(checked, "medic:li", "127.0.0.1", "cleared", "", 1, at).alert


def test_a_retest_after_a_medic_resolved_is_an_event_and_does_not_reopen() -> None:
    raised = alerts.raise_fever(scan(3), T0).alert
    resolved = _resolved_by_medic(raised, T0 + 1)
    late = alerts.retest(resolved, scan(5, retest_of=3), T0 + 2).alert
    assert (late.state, late.reason, late.resolved_at) == ("resolved", "retest_confirmed", T0 + 1)
    assert (late.confirmed_at, late.events) == (T0 + 2, 4)


def test_a_retest_keeps_a_medics_acknowledgement() -> None:
    raised = alerts.raise_fever(scan(3), T0).alert
    acked = AlertRow(**{**_fields(raised), "state": "acknowledged", "acknowledged_at": T0 + 5, "acknowledged_by": "m"})
    a = alerts.retest(acked, scan(4, retest_of=3), T0 + 10).alert
    assert (a.state, a.reason, a.acknowledged_at, a.acknowledged_by) == (
        "acknowledged",
        "retest_confirmed",
        T0 + 5,
        "m",
    )


def test_an_event_on_a_resolved_alert_keeps_the_time_it_was_resolved() -> None:
    raised = alerts.raise_fever(scan(3), T0).alert
    resolved = _resolved_by_medic(raised, T0 + 1_000)
    late = alerts.retest(resolved, scan(5, "indeterminate", t_core=None, retest_of=3), T0 + 9_000).alert
    assert (late.state, late.reason, late.events) == ("resolved", "retest_indeterminate", 4)
    assert (late.resolved_at, late.updated_at) == (T0 + 1_000, T0 + 9_000)


def test_the_rules_never_change_the_alert_they_are_given() -> None:
    raised = alerts.raise_fever(scan(3), T0).alert
    before = _fields(raised)
    alerts.retest(raised, scan(4, retest_of=3), T0 + 1)
    alerts.retest(raised, scan(5, "normal", retest_of=3), T0 + 2)
    alerts.resolve(raised, "back_online", T0 + 3)
    assert _fields(raised) == before


def test_node_alerts_carry_their_opening_time_so_each_episode_is_its_own_alert() -> None:
    first = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n3", "silent", T0)
    a = first.alert
    assert a.alert_id == f"node_offline:bridge:n3:{T0}"
    assert (a.kind, a.state, a.reason, a.seq, a.last_seq, a.t_core_c) == (
        "node_offline",
        "raised",
        "silent",
        None,
        None,
        None,
    )
    assert (first.event.n, first.event.at, first.event.seq) == (1, T0, None)
    again = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n3", "status", T0 + 60_000).alert
    assert again.alert_id != a.alert_id

    fault = alerts.raise_node(alerts.SENSOR_FAULT, "bridge", "n3", "repeated_sensor_faults", T0, seq=77).alert
    assert (fault.alert_id, fault.seq, fault.last_seq) == (f"sensor_fault:bridge:n3:{T0}", 77, 77)


def test_resolve_closes_an_alert_with_its_reason_and_time() -> None:
    raised = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n3", "status", T0).alert
    change = alerts.resolve(raised, "back_online", T0 + 30_000)
    a = change.alert
    assert (a.state, a.reason, a.resolved_at, a.updated_at, a.opened_at) == (
        "resolved",
        "back_online",
        T0 + 30_000,
        T0 + 30_000,
        T0,
    )
    assert (change.event.n, change.event.state, change.event.reason, change.event.actor) == (
        2,
        "resolved",
        "back_online",
        "gateway",
    )
    cleared = alerts.resolve(alerts.raise_node(alerts.SENSOR_FAULT, "b", "n", "x", T0).alert, "valid_scans", T0, 9)
    assert (cleared.event.seq, cleared.alert.seq) == (9, None)


def test_event_payload_is_what_medics_clients_receive() -> None:
    raised = alerts.raise_fever(scan(1842, t_core=37.9), T0).alert
    change = alerts.retest(raised, scan(1845, t_core=38.1, retest_of=1842, t_site_c=35.5), T0 + 121_000)
    payload = alerts.event_payload(change.alert, change.event)
    assert payload == {
        "v": 1,
        "alert_id": "fever:bridge:n3:1842",
        "event": 2,
        "kind": "fever",
        "state": "raised",
        "reason": "retest_confirmed",
        "site": "bridge",
        "node": "n3",
        "seq": 1842,
        "last_seq": 1845,
        "t_site_c": 35.5,
        "t_core_c": 38.1,
        "opened_at": T0,
        "updated_at": T0 + 121_000,
        "confirmed_at": T0 + 121_000,
        "at": T0 + 121_000,
        "by": "gateway",
        "detail": None,
    }
    assert json.loads(json.dumps(payload)) == payload  # plain JSON, nothing the wire cannot carry


def _fields(alert: AlertRow) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in AlertRow.__dataclass_fields__}


def test_an_identity_clash_is_closed_by_a_person_with_a_note_and_nothing_else() -> None:
    """Nothing a node sends shows that a clash is over (the spare renamed, the old unit retired): a person closes
    it as handled, saying what was done; other node alerts and the fever outcomes are refused for it."""
    clash = alerts.raise_node(alerts.IDENTITY_CLASH, "bridge", "n3", "two_units", T0).alert
    for outcome, note in (("handled", ""), ("handled", "   "), ("referred", "renamed the spare")):
        with pytest.raises(alerts.Refused, match="as 'handled' with a note"):
            alerts.resolve_by(clash, "li.wei", "10.0.0.9", outcome, note, 0, T0 + 1)
    done = alerts.resolve_by(clash, "li.wei", "10.0.0.9", "handled", "spare renamed n3b", 0, T0 + 60_000)
    assert (done.alert.state, done.event.reason, done.event.actor) == ("resolved", "handled", "li.wei")
    offline = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n3", "silent", T0).alert
    with pytest.raises(alerts.Refused, match="resolves itself"):
        alerts.resolve_by(offline, "li.wei", "10.0.0.9", "handled", "looked at it", 0, T0 + 1)
