"""A person's action on an alert (acknowledge, re-check, resolve, escalate), the same for the page and the JSON
API: only a medic of the alert's site acts; the change is written only if nobody else changed the alert since it
was read (optimistic concurrency on its event counter, so it holds across console processes and databases).
A resolve with an outcome that needs follow-up may carry personal details (gateway/followup.py), saved in the
same transaction apart from the event."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gateway import alerts, followup
from gateway.store.base import AlertRow, Store
from gateway.web import views
from gateway.web.auth import Visitor

ACTIONS = ("acknowledge", "recheck", "resolve", "escalate")


@dataclass(frozen=True)
class Done:
    """What became of an action: `word` "" when done, else not_found (404), forbidden (403), refused, taken
    (another medic holds it) or conflict (someone changed it meanwhile) (409); `alert` as it is now."""

    word: str
    alert: AlertRow | None = None
    detail: str = ""

    @property
    def status(self) -> int:
        return {"": 200, "not_found": 404, "forbidden": 403}.get(self.word, 409)


def perform(
    store: Store, v: Visitor, alert_id: str, action: str, form: dict[str, Any], address: str, now: int,
    seen_events: int | None = None,
) -> Done:  # fmt: skip
    """Do `action`; `seen_events` (the counter the client last saw, optional) refuses it if the alert moved on."""
    with store.transaction() as tx:
        alert = tx.alert(alert_id)
        if alert is None or not v.sees(alert.site):  # another site's alert is not found, not forbidden
            return Done("not_found")
        if not v.acts_on(alert.site):
            return Done("forbidden", alert)
        if action == "acknowledge" and alert.acknowledged_at is not None:
            return Done("taken", alert)
        if seen_events is not None and seen_events != alert.events:
            return Done("conflict", alert)
        try:
            details = followup.parse(form, str(form.get("outcome", ""))) if action == "resolve" else None
            change = _change(action, alert, v, address, form, now, views.rechecks(store.alert_events(alert_id)))
        except alerts.Refused as e:
            return Done("refused", alert, str(e))
        if not tx.update_alert(change.alert, change.event, seen_events=alert.events):
            moved = store.alert(alert_id)
            taken = action == "acknowledge" and moved is not None and moved.acknowledged_at is not None
            return Done("taken" if taken else "conflict", moved)
        if details:  # personal details: their own table, never on the event (coordinators, exports, topics)
            followup.record(tx, alert_id, details, v.actor, address, now)
    return Done("", change.alert)


def _change(
    action: str, alert: AlertRow, v: Visitor, address: str, form: dict[str, Any], now: int, rechecks: int
) -> alerts.Change:
    note = str(form.get("note") or "").strip()[:500]
    if action == "acknowledge":
        return alerts.acknowledge(alert, v.actor, address, now)
    if action == "escalate":
        return alerts.escalate(alert, v.actor, address, note, now)
    if action == "resolve":
        return alerts.resolve_by(alert, v.actor, address, str(form.get("outcome", "")), note, rechecks, now)
    if action == "recheck":
        try:
            reading = float(str(form.get("reading_c", "")).replace(",", "."))
        except ValueError:
            reading = math.nan
        return alerts.recheck(alert, v.actor, address, str(form.get("method", "")), reading, now)
    raise alerts.Refused(f"no action {action!r}: one of {', '.join(ACTIONS)}")
