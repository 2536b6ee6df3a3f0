"""Alert rules and lifecycle. Pure: each function takes values and returns the alert's next row and event.

Kinds: fever (an elevated authoritative verdict), node_offline (status offline or silence), sensor_fault
(repeated sensor faults on one node), identity_clash (two units under one node name: a scan's (site, node, seq)
stored with another origin), clock_skew (a node's wall clock off by more than alerts.clock_skew_s),
population_drift (a node's population level away from its site's other nodes: gateway/drift.py),
reference_overdue and reference_drift (a node's reference check late, or its correction moved: gateway/reference.py),
forged_command (a node refused commands sent to it for their signature or counter: someone forged or replayed a
receipt, verdict or config; it stays until a person closes it, CLOSED_BY_PEOPLE), and one
site-level kind, post_offline (every node of a site that is not retired is offline: the post's link or power,
not one unit). A site-level alert is keyed as a node alert whose node is WHOLE_POST, "*" (which no node name can
be: contract.is_identifier allows [a-z0-9-]): (kind, site, "*"), so the store's one open alert per (kind, site,
node) and the alerts topic serve it unchanged; its detail names the nodes (`post_offline_detail`).

States, as on the alerts topic: raised, acknowledged, resolved, escalated; seen as ThingsBoard's two axes
(`status`): active or cleared (resolved) x unacknowledged or acknowledged (acknowledged_at set). Every change is
an AlertEvent (time, who, why, from where), published on `{prefix}/alerts/{site}` and kept in alert_events: the
alert's history and the audit trail.

Fever dedup: a retest (a scan whose retest_of names the seq of a scan that raised, or last updated, a fever
alert on the same node) updates that alert instead of raising a new one: elevated again -> reason
retest_confirmed (confirmed_at set); normal, indeterminate or invalid -> an event with the retest's reading,
state unchanged. An infrared retest never resolves a fever: a clinical thermometer decides (docs/screening.md),
so only a medic resolves one (`resolve_by`), with an outcome. A medic's actions: acknowledge, recheck (method
and reading), escalate, resolve_by; each raises Refused when the alert's state does not allow it.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.protocol import PROTOCOL_VERSION
from gateway.store.base import AlertEvent, AlertRow, ScanRow, Transaction

FEVER = "fever"
NODE_OFFLINE = "node_offline"
SENSOR_FAULT = "sensor_fault"
IDENTITY_CLASH = "identity_clash"
CLOCK_SKEW = "clock_skew"
POST_OFFLINE = "post_offline"  # every node of a site offline: the post's link, not one unit (issue 13 item 5)
POPULATION_DRIFT = "population_drift"  # a node's level away from its site's (issue 15 item 4; gateway/drift.py)
REFERENCE_OVERDUE = "reference_overdue"  # a node's reference check is older than a shift (gateway/reference.py)
REFERENCE_DRIFT = "reference_drift"  # a node's correction moved beyond 0.3 C between two checks (issue 15 item 3)
FORGED_COMMAND = "forged_command"  # a node refused a forged or replayed command (its status: auth_refused)
WHOLE_POST = "*"  # the node of a site-level alert (post_offline): all of them
KINDS = (FEVER, NODE_OFFLINE, SENSOR_FAULT, IDENTITY_CLASH, CLOCK_SKEW, POST_OFFLINE, POPULATION_DRIFT,
         REFERENCE_OVERDUE, REFERENCE_DRIFT, FORGED_COMMAND)  # fmt: skip
RAISED = "raised"
ACKNOWLEDGED = "acknowledged"
ESCALATED = "escalated"
RESOLVED = "resolved"
ACTOR = "gateway"
OUTCOMES = ("cleared", "referred", "monitored", "turned_back")  # cleared to travel, fever clinic, home obs.
HANDLED = "handled"  # the outcome of a node alert that only a person can close (CLOSED_BY_PEOPLE), with a note
# nothing the node sends shows these are over: a clash renamed, cleared or retired; who forged a command found
CLOSED_BY_PEOPLE = (IDENTITY_CLASH, FORGED_COMMAND)
METHODS = ("oral", "axillary", "tympanic", "rectal")  # clinical thermometers
READING_C = (34.0, 43.0)  # a clinical reading outside this is a typing error


class Refused(ValueError):
    """A person's action that the alert's state (or the values given) does not allow."""


@dataclass(frozen=True, slots=True)
class Change:
    alert: AlertRow
    event: AlertEvent


def _change(
    alert: AlertRow,
    state: str,
    reason: str,
    now: int,
    seq: int | None,
    t_core: float | None,
    actor: str = ACTOR,
    **medic: Any,
) -> Change:
    was = alert.state
    alert = dataclasses.replace(alert, state=state, reason=reason, updated_at=now, events=alert.events + 1)
    if state != RESOLVED:
        alert.resolved_at = None
    elif was != RESOLVED:  # an event on an alert already resolved keeps the time it was resolved
        alert.resolved_at = now
    event = AlertEvent(alert.alert_id, alert.events, state, reason, now, actor, seq, t_core, **medic)
    return Change(alert, event)


def status(alert: AlertRow) -> tuple[bool, bool]:
    """ThingsBoard's alarm status: (active, acknowledged)."""
    return alert.state != RESOLVED, alert.acknowledged_at is not None


def raise_fever(scan: ScanRow, now: int, origin: str = "") -> Change:
    """`origin` tells apart a scan kept beside a stored one with the same (site, node, seq) (an identity
    clash): its alert gets an id of its own, `fever:site:node:seq:origin`."""
    alert = AlertRow(
        alert_id=f"{FEVER}:{scan.site}:{scan.node}:{scan.seq}" + (f":{origin}" if origin else ""),
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
        return _change(alert, alert.state, "retest_confirmed", now, scan.seq, scan.gateway_t_core_c)
    return _change(alert, alert.state, "retest_" + verdict, now, scan.seq, scan.gateway_t_core_c)


def raise_node(
    kind: str, site: str, node: str, reason: str, now: int, seq: int | None = None, detail: str | None = None
) -> Change:
    """A node alert (node_offline, sensor_fault, identity_clash, clock_skew, population_drift, forged_command;
    post_offline with node WHOLE_POST); its id `kind:site:node:opened_ms` carries the opening time (one node,
    many episodes); `detail` is for people (e.g. the two origins of an identity clash)."""
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
        detail=detail,
    )
    return _change(alert, RAISED, reason, now, seq, None)


def save(tx: Transaction, change: Change) -> Change:
    """Store one alert change (the alert and its event) in `tx`: the change as stored, which every caller
    publishes, under a fresh id when its own was taken (_free_id). Every rule saves through here."""
    change = _free_id(tx, change)
    tx.save_alert(change.alert, change.event)
    return change


def _free_id(tx: Transaction, change: Change) -> Change:
    """`change`, or, when it opens a node alert whose id an earlier episode of the node already took, the same
    change under the id with `.2`, `.3`, ... appended. Node alert ids carry the opening time in ms, and a batch
    has one time: a node whose clock goes wrong, right and wrong again inside one batch would raise a second
    clock_skew under the first one's id, whose first event is taken, and the batch would never commit (its scans
    redelivered and refused again). Fever alerts are unique by seq and origin and are passed through."""
    alert = change.alert
    if change.event.n != 1 or alert.kind == FEVER or tx.alert(alert.alert_id) is None:
        return change
    n = 2
    while tx.alert(f"{alert.alert_id}.{n}") is not None:
        n += 1
    fresh = f"{alert.alert_id}.{n}"
    return Change(dataclasses.replace(alert, alert_id=fresh), dataclasses.replace(change.event, alert_id=fresh))


def post_offline_detail(nodes: Sequence[str]) -> str:
    """The detail of a post_offline alert: `all 2 nodes offline: lane-1, lane-2` (read back by `dark_nodes`)."""
    return f"all {len(nodes)} nodes offline: {', '.join(nodes)}"


def dark_nodes(alert: AlertRow) -> list[str]:
    """The nodes a post_offline alert names (its detail, as `post_offline_detail` writes it); [] for another."""
    if alert.kind != POST_OFFLINE or not alert.detail or ": " not in alert.detail:
        return []
    return alert.detail.split(": ", 1)[1].split(", ")


def raise_post_offline(site: str, nodes: Sequence[str], reason: str, now: int) -> Change:
    """Every node of `site` offline (`nodes`: their names, not retired): the site-level alert, node WHOLE_POST;
    `reason` is the last node's (status, silent)."""
    return raise_node(POST_OFFLINE, site, WHOLE_POST, reason, now, detail=post_offline_detail(nodes))


def resolve(alert: AlertRow, reason: str, now: int, seq: int | None = None) -> Change:
    return _change(alert, RESOLVED, reason, now, seq, None)


def _open(alert: AlertRow, what: str) -> None:
    if alert.state == RESOLVED:
        raise Refused(f"{alert.alert_id} is resolved: nothing to {what}")


def acknowledge(alert: AlertRow, actor: str, address: str, now: int) -> Change:
    """A person takes the alert (acknowledged_by); a second acknowledgement is refused."""
    _open(alert, "acknowledge")
    if alert.acknowledged_at is not None:
        raise Refused(f"{alert.alert_id} was already acknowledged by {alert.acknowledged_by}")
    alert = dataclasses.replace(alert, acknowledged_at=now, acknowledged_by=actor)
    return _change(alert, ACKNOWLEDGED, "acknowledged", now, None, None, actor, address=address)


def recheck(alert: AlertRow, actor: str, address: str, method: str, reading_c: float, now: int) -> Change:
    """A clinical re-check (more than one allowed): an event with its method and reading; state unchanged."""
    _open(alert, "re-check")
    if alert.kind != FEVER:
        raise Refused("a clinical re-check is for a fever")
    if method not in METHODS:
        raise Refused(f"method {method!r}: one of {', '.join(METHODS)}")
    if not READING_C[0] <= reading_c <= READING_C[1]:  # NaN fails too
        raise Refused(f"reading {reading_c} C: between {READING_C[0]} and {READING_C[1]}")
    return _change(alert, alert.state, "recheck", now, None, None, actor, method=method, reading_c=reading_c,
                   address=address)  # fmt: skip


def escalate(alert: AlertRow, actor: str, address: str, note: str, now: int) -> Change:
    _open(alert, "escalate")
    if alert.state == ESCALATED:
        raise Refused(f"{alert.alert_id} is already escalated")
    return _change(alert, ESCALATED, "escalated", now, None, None, actor, note=note or None, address=address)


def resolve_by(alert: AlertRow, actor: str, address: str, outcome: str, note: str, rechecks: int, now: int) -> Change:
    """A medic closes a fever with its outcome (the event's reason), after at least one clinical re-check
    (`rechecks`: how many the alert has). Node alerts resolve themselves when the node is back, except those in
    CLOSED_BY_PEOPLE (an identity clash), which a person closes as HANDLED with a note."""
    _open(alert, "resolve")
    if alert.kind in CLOSED_BY_PEOPLE:
        if outcome != HANDLED or not note.strip():
            raise Refused(f"{alert.alert_id}: close a {alert.kind} alert as {HANDLED!r} with a note of what was done")
        return _change(alert, RESOLVED, HANDLED, now, None, None, actor, note=note, address=address)
    if alert.kind != FEVER:
        raise Refused(f"{alert.alert_id}: a {alert.kind} alert resolves itself")
    if outcome not in OUTCOMES:
        raise Refused(f"outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
    if rechecks < 1:
        raise Refused("record a clinical re-check first: a thermometer decides, not the infrared scan")
    return _change(alert, RESOLVED, outcome, now, None, None, actor, note=note or None, address=address)


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
        "detail": alert.detail,
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
