"""Alert rules and lifecycle. Pure: each function takes values and returns the alert's next row and event.

Kinds: fever (an elevated authoritative verdict), node_offline (status offline or silence), sensor_fault
(repeated sensor faults on one node). States: raised, acknowledged, resolved, escalated (the last two kinds of
change come from medics and escalation rules in a later issue; the store already keeps them). Every change is
an AlertEvent (time, who, why), published on `{prefix}/alerts/{site}` and kept in alert_events.

Fever dedup: a retest (a scan whose retest_of names the seq of a scan that raised, or last updated, a fever
alert on the same node) updates that alert instead of raising a new one: elevated again -> reason
retest_confirmed (confirmed_at set), normal -> resolved with reason retest_normal, indeterminate or invalid ->
an event saying so, state unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

from gateway.protocol import PROTOCOL_VERSION
from gateway.store.base import AlertEvent, AlertRow, ScanRow

FEVER = "fever"
NODE_OFFLINE = "node_offline"
SENSOR_FAULT = "sensor_fault"
RAISED = "raised"
RESOLVED = "resolved"
ACTOR = "gateway"


@dataclass(frozen=True, slots=True)
class Change:
    alert: AlertRow
    event: AlertEvent


def _change(alert: AlertRow, state: str, reason: str, now: int, seq: int | None, t_core: float | None) -> Change:
    was = alert.state
    alert = dataclasses.replace(alert, state=state, reason=reason, updated_at=now, events=alert.events + 1)
    if state != RESOLVED:
        alert.resolved_at = None
    elif was != RESOLVED:  # an event on an alert already resolved keeps the time it was resolved
        alert.resolved_at = now
    return Change(alert, AlertEvent(alert.alert_id, alert.events, state, reason, now, ACTOR, seq, t_core))


def raise_fever(scan: ScanRow, now: int) -> Change:
    alert = AlertRow(
        alert_id=f"{FEVER}:{scan.site}:{scan.node}:{scan.seq}",
        kind=FEVER,
        state=RAISED,
        reason="elevated",
        site=scan.site,
        node=scan.node,
        seq=scan.seq,
        last_seq=scan.seq,
        t_site_c=scan.t_site_c,
        t_core_c=scan.gateway_t_core_c,
        opened_at=now,
        updated_at=now,
    )
    return _change(alert, RAISED, "elevated", now, scan.seq, scan.gateway_t_core_c)


def retest(alert: AlertRow, scan: ScanRow, now: int) -> Change:
    """A retest of the traveller behind `alert` (see the module docstring)."""
    alert = dataclasses.replace(alert, last_seq=scan.seq)
    verdict = scan.gateway_verdict
    if verdict == "elevated":
        alert.t_site_c, alert.t_core_c = scan.t_site_c, scan.gateway_t_core_c
        if alert.confirmed_at is None:
            alert.confirmed_at = now
        state = RAISED if alert.state == RESOLVED else alert.state
        return _change(alert, state, "retest_confirmed", now, scan.seq, scan.gateway_t_core_c)
    if verdict == "normal":
        return _change(alert, RESOLVED, "retest_normal", now, scan.seq, scan.gateway_t_core_c)
    return _change(alert, alert.state, "retest_" + verdict, now, scan.seq, scan.gateway_t_core_c)


def raise_node(kind: str, site: str, node: str, reason: str, now: int, seq: int | None = None) -> Change:
    """A node_offline or sensor_fault alert; its id carries the opening time (one node, many episodes)."""
    alert = AlertRow(
        alert_id=f"{kind}:{site}:{node}:{now}",
        kind=kind,
        state=RAISED,
        reason=reason,
        site=site,
        node=node,
        seq=seq,
        last_seq=seq,
        t_site_c=None,
        t_core_c=None,
        opened_at=now,
        updated_at=now,
    )
    return _change(alert, RAISED, reason, now, seq, None)


def resolve(alert: AlertRow, reason: str, now: int, seq: int | None = None) -> Change:
    return _change(alert, RESOLVED, reason, now, seq, None)


def event_payload(alert: AlertRow, event: AlertEvent) -> dict[str, Any]:
    """What medics' clients receive on the alerts topic for one event."""
    return {
        "v": PROTOCOL_VERSION,
        "alert_id": alert.alert_id,
        "event": event.n,
        "kind": alert.kind,
        "state": event.state,
        "reason": event.reason,
        "site": alert.site,
        "node": alert.node,
        "seq": alert.seq,
        "last_seq": alert.last_seq,
        "t_site_c": alert.t_site_c,
        "t_core_c": alert.t_core_c,
        "opened_at": alert.opened_at,
        "updated_at": alert.updated_at,
        "confirmed_at": alert.confirmed_at,
        "at": event.at,
        "by": event.actor,
    }


class SensorFaultTracker:
    """Sensor faults per node: `count` within `window_ms` -> "raise"; `clear_after` valid scans -> "clear".

    In memory: after a restart the window starts empty (the open alert itself is in the store).
    """

    def __init__(self, count: int, window_ms: int, clear_after: int) -> None:
        self._count, self._window_ms, self._clear_after = count, window_ms, clear_after
        self._faults: dict[tuple[str, str], deque[int]] = {}
        self._valid_run: dict[tuple[str, str], int] = {}

    def on_scan(self, site: str, node: str, faulty: bool, now: int) -> str | None:
        key = (site, node)
        if not faulty:
            run = self._valid_run.get(key, 0) + 1
            self._valid_run[key] = run
            if run == self._clear_after:
                self._faults.pop(key, None)
                return "clear"
            return None
        self._valid_run[key] = 0
        times = self._faults.setdefault(key, deque())
        times.append(now)
        while times and now - times[0] > self._window_ms:
            times.popleft()
        return "raise" if len(times) >= self._count else None
