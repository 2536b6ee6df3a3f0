"""The notification outbox: its rows and its SQL, for any backend (SQLite `?`, PostgreSQL `%s`).

Three tables (migration 0006): `notifications` (one per alert event that must notify, or per reminder of an
unacknowledged alert; its id is stable: `alert_id#n` for event n, `alert_id#rK` for the K-th reminder),
`deliveries` (one per notification and receiver: pending, sent, or cancelled) and `delivery_attempts` (every
try: time, result, the error text with secrets redacted).

The store writes the notification row in the transaction that saves the event (`Outbox.enqueue`, called by
the backend's save_alert and update_alert), so every writer of alert events (the gateway's batch, the
console's actions, the notifier's escalation) fills the outbox, and an event is never committed without it.
The notifier routes each notification to its receivers' deliveries in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.store.base import AlertEvent, AlertRow, columns

PENDING, SENT, CANCELLED = "pending", "sent", "cancelled"
SILENT_REASONS = ("recheck",)  # events that change nothing a person elsewhere must hear (nor retest_*)
_EVENT_COLS = columns(AlertEvent)


def must_notify(event: AlertEvent) -> bool:
    """An event that changes the alert's state (raised, acknowledged, escalated, resolved) notifies; a retest or
    a clinical re-check (the state unchanged, the medic is on it) does not."""
    return event.reason not in SILENT_REASONS and not event.reason.startswith("retest_")


def event_id(alert_id: str, n: int) -> str:
    return f"{alert_id}#{n}"


def reminder_id(alert_id: str, k: int) -> str:
    return f"{alert_id}#r{k}"


@dataclass(frozen=True, slots=True)
class Unrouted:
    notification_id: str
    alert_id: str
    n: int
    reminder: int
    created_at: int


@dataclass(frozen=True, slots=True)
class Delivery:
    notification_id: str
    receiver: str
    alert_id: str
    n: int
    reminder: int
    created_at: int
    due_at: int
    attempts: int


Execute = Callable[[str, Sequence[Any]], Any]  # a DB-API execute returning a cursor (sqlite3, psycopg)


class Outbox:
    """The outbox's statements on one transaction's `execute`; `mark` is the backend's placeholder."""

    def __init__(self, execute: Execute, mark: str = "?") -> None:
        self._execute, self._mark = execute, mark

    def _run(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._execute(sql.replace("?", self._mark), args)

    def enqueue(self, event: AlertEvent) -> None:
        """In the event's transaction: the notification of an event that must notify."""
        if must_notify(event):
            self._insert(event_id(event.alert_id, event.n), event.alert_id, event.n, 0, event.at)

    def add_reminder(self, alert: AlertRow, k: int, now: int) -> bool:
        """The K-th reminder of an unacknowledged alert (once: a second call is ignored); True when new. Older
        reminders still pending are cancelled: a receiver back from an outage hears the alert once, not K times."""
        if not self._insert(reminder_id(alert.alert_id, k), alert.alert_id, alert.events, k, now):
            return False
        self._run(
            f"UPDATE deliveries SET state = '{CANCELLED}', done_at = ? WHERE state = '{PENDING}' AND notification_id"
            " IN (SELECT notification_id FROM notifications WHERE alert_id = ? AND reminder > 0 AND reminder < ?)",
            (now, alert.alert_id, k),
        )
        return True

    def _insert(self, notification_id: str, alert_id: str, n: int, reminder: int, at: int) -> bool:
        sql = (
            "INSERT INTO notifications (notification_id, alert_id, n, reminder, created_at, routed_at)"
            " VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (notification_id) DO NOTHING"
        )
        return bool(self._run(sql, (notification_id, alert_id, n, reminder, at)).rowcount == 1)

    def unrouted(self, limit: int) -> list[Unrouted]:
        sql = (
            "SELECT notification_id, alert_id, n, reminder, created_at FROM notifications WHERE routed_at IS NULL"
            " ORDER BY created_at, notification_id LIMIT ?"
        )
        return [Unrouted(*r) for r in self._run(sql, (limit,)).fetchall()]

    def route(self, note: Unrouted, receivers: Sequence[str], now: int) -> None:
        """Fan a notification out to its receivers' deliveries, due now, ordered by the event's time."""
        sql = (
            "INSERT INTO deliveries (notification_id, receiver, created_at, due_at, attempts, state, done_at)"
            f" VALUES (?, ?, ?, ?, 0, '{PENDING}', NULL) ON CONFLICT (notification_id, receiver) DO NOTHING"
        )
        for name in receivers:
            self._run(sql, (note.notification_id, name, note.created_at, now))
        self._run("UPDATE notifications SET routed_at = ? WHERE notification_id = ?", (now, note.notification_id))

    def event(self, alert_id: str, n: int) -> AlertEvent | None:
        sql = f"SELECT {', '.join(_EVENT_COLS)} FROM alert_events WHERE alert_id = ? AND n = ?"
        found = self._run(sql, (alert_id, n)).fetchone()
        return AlertEvent(*found) if found else None

    def waiting(self) -> list[str]:
        """Receivers with pending deliveries."""
        sql = f"SELECT DISTINCT receiver FROM deliveries WHERE state = '{PENDING}' ORDER BY receiver"
        return [r[0] for r in self._run(sql).fetchall()]

    def pending(self, receiver: str, limit: int) -> list[Delivery]:
        """A receiver's pending deliveries, oldest event first (the order it hears them in)."""
        sql = (
            "SELECT d.notification_id, d.receiver, n.alert_id, n.n, n.reminder, d.created_at, d.due_at, d.attempts"
            " FROM deliveries d JOIN notifications n ON n.notification_id = d.notification_id"
            f" WHERE d.state = '{PENDING}' AND d.receiver = ? ORDER BY d.created_at, d.notification_id LIMIT ?"
        )
        return [Delivery(*r) for r in self._run(sql, (receiver, limit)).fetchall()]

    def count_pending(self, receiver: str) -> int:
        sql = f"SELECT COUNT(*) FROM deliveries WHERE state = '{PENDING}' AND receiver = ?"
        return int(self._run(sql, (receiver,)).fetchone()[0])

    def record(self, d: Delivery, at: int, result: str, error: str | None, retry_at: int | None = None) -> None:
        """One attempt: sent or cancelled closes the delivery; failed keeps it pending until `retry_at`."""
        attempt = d.attempts + 1
        self._run(
            "INSERT INTO delivery_attempts (notification_id, receiver, attempt, at, result, error)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (notification_id, receiver, attempt) DO NOTHING",
            (d.notification_id, d.receiver, attempt, at, result, error),
        )
        if retry_at is None:
            state = SENT if result == SENT else CANCELLED
            sql = (
                "UPDATE deliveries SET attempts = ?, state = ?, done_at = ? WHERE notification_id = ? AND receiver = ?"
            )
            self._run(sql, (attempt, state, at, d.notification_id, d.receiver))
        else:
            sql = "UPDATE deliveries SET attempts = ?, due_at = ? WHERE notification_id = ? AND receiver = ?"
            self._run(sql, (attempt, retry_at, d.notification_id, d.receiver))

    def unacknowledged(self) -> list[tuple[str, str, str]]:
        """(alert_id, kind, site) of every open alert nobody has acknowledged: reminders and escalation."""
        sql = (
            "SELECT alert_id, kind, site FROM alerts WHERE state <> 'resolved' AND acknowledged_at IS NULL"
            " ORDER BY opened_at, alert_id"
        )
        return [(r[0], r[1], r[2]) for r in self._run(sql).fetchall()]

    def attempts(self, notification_id: str | None = None) -> list[tuple[Any, ...]]:
        """(notification_id, receiver, attempt, at, result, error) of every attempt, oldest first."""
        where, args = ("WHERE notification_id = ?", (notification_id,)) if notification_id else ("", ())
        sql = (
            f"SELECT notification_id, receiver, attempt, at, result, error FROM delivery_attempts {where}"
            " ORDER BY at, notification_id, receiver, attempt"
        )
        return [tuple(r) for r in self._run(sql, args).fetchall()]

    def deliveries(self) -> list[tuple[Any, ...]]:
        """(notification_id, receiver, state, attempts, created_at, done_at) of every delivery."""
        sql = (
            "SELECT notification_id, receiver, state, attempts, created_at, done_at FROM deliveries"
            " ORDER BY created_at, notification_id, receiver"
        )
        return [tuple(r) for r in self._run(sql).fetchall()]
