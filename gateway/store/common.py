"""What the SQLite and PostgreSQL backends say alike: row mapping, SQL text, and the statements and reads that are
the same on both.

SQL here is written with `?` placeholders; a backend names its own (`mark`: `?` for sqlite3, `%s` for psycopg)
and the text is translated as it runs (as gateway/notify/outbox.py does). What differs stays in the backend's
file: how a batch of scans is inserted, partitions, the node upsert and alert races on PostgreSQL, error mapping.
"""

from __future__ import annotations

import json
import operator
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from gateway.notify.outbox import Outbox
from gateway.quarantine import UNKNOWN_IDENTITY
from gateway.store.base import (
    AlertEvent,
    AlertRow,
    AuditRow,
    FollowupRow,
    MaintenanceRow,
    NodeConfigRow,
    NodeRow,
    QuarantineRow,
    QuarantineSource,
    ReferenceRow,
    ScanRow,
    SessionRow,
    SiteReport,
    SiteRow,
    UserRow,
    columns,
)

SCAN_COLS = columns(ScanRow)
ALERT_COLS = columns(AlertRow)
EVENT_COLS = columns(AlertEvent)
NODE_COLS = columns(NodeRow)
QUARANTINE_COLS = columns(QuarantineRow)
SOURCE_COLS = columns(QuarantineSource)
SITE_COLS = columns(SiteRow)
USER_COLS = columns(UserRow)
SESSION_COLS = columns(SessionRow)
FOLLOWUP_COLS = columns(FollowupRow)
AUDIT_COLS = columns(AuditRow)
NODE_CONFIG_COLS = columns(NodeConfigRow)
MAINTENANCE_COLS = columns(MaintenanceRow)
REFERENCE_COLS = columns(ReferenceRow)
_OUTCOMES = ("cleared", "referred", "monitored", "turned_back")  # gateway/alerts.py OUTCOMES
_VERDICTS = ("normal", "elevated", "indeterminate", "invalid")
_TALLIED = "site, retest_of, gateway_verdict, scanned_at"  # a report counts clashing scans too: each is a traveller
_FLAGS_AT = (SCAN_COLS.index("flags"), SCAN_COLS.index("gateway_flags"))
_SCAN_VALUES = operator.attrgetter(*SCAN_COLS)  # one C call for the 30 columns of each stored scan


def cols(names: Sequence[str]) -> str:
    return ", ".join(names)


def insert_sql(table: str, names: Sequence[str], conflict: str = "") -> str:
    marks = ", ".join("?" for _ in names)
    return f"INSERT INTO {table} ({cols(names)}) VALUES ({marks}) {conflict}".rstrip()


def upsert_sql(table: str, names: Sequence[str], key: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in key)
    return insert_sql(table, names, f"ON CONFLICT ({cols(key)}) DO UPDATE SET {updates}")


_INSERT_EVENT = insert_sql("alert_events", EVENT_COLS)
_INSERT_QUARANTINE = insert_sql("quarantine", QUARANTINE_COLS)
_UPSERT_SITE = upsert_sql("sites", SITE_COLS, ("site",))
_UPSERT_USER = upsert_sql("users", USER_COLS, ("username",))
_INSERT_SESSION = insert_sql("sessions", SESSION_COLS)
_UPSERT_FOLLOWUP = upsert_sql("followups", FOLLOWUP_COLS, ("alert_id",))
_INSERT_AUDIT = insert_sql("audit", AUDIT_COLS)
_UPSERT_NODE_CONFIG = upsert_sql("node_configs", NODE_CONFIG_COLS, ("site", "node"))
_INSERT_REFERENCE = insert_sql("reference_checks", REFERENCE_COLS)
_UPSERT_MAINTENANCE = upsert_sql("maintenance", MAINTENANCE_COLS, ("site", "node", "starts_at"))
_COUNT_QUARANTINE = (
    "INSERT INTO quarantine_sources (source, first_at, last_at, last_reason, kept, dropped, identity_row)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET last_at = excluded.last_at,"
    " last_reason = excluded.last_reason, kept = quarantine_sources.kept + excluded.kept,"
    " dropped = quarantine_sources.dropped + excluded.dropped,"
    " identity_row = CASE WHEN excluded.identity_row = 1 THEN 1 ELSE quarantine_sources.identity_row END"
)
_RAISE_COUNTER = (
    "INSERT INTO downlink_counters (name, ceiling) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET ceiling ="
    " CASE WHEN excluded.ceiling > downlink_counters.ceiling THEN excluded.ceiling ELSE downlink_counters.ceiling END"
)
_UPDATE_ALERT = (
    f"UPDATE alerts SET {', '.join(f'{c} = ?' for c in ALERT_COLS if c != 'alert_id')}"
    " WHERE alert_id = ? AND events = ?"
)


def params(row: object, names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(getattr(row, c) for c in names)


def scan_params(row: ScanRow) -> list[Any]:
    """A scan's column values, its flag tuples as JSON text."""
    values = list(_SCAN_VALUES(row))
    for i in _FLAGS_AT:
        values[i] = json.dumps(list(values[i])) if values[i] else "[]"
    return values


def scan_row(values: Sequence[Any]) -> ScanRow:
    row = ScanRow(**dict(zip(SCAN_COLS, values, strict=True)))  # by name: the retest codes are keyword-only
    row.flags = tuple(json.loads(row.flags))  # type: ignore[arg-type]
    row.gateway_flags = tuple(json.loads(row.gateway_flags))  # type: ignore[arg-type]
    return row


def where(since: int | None, until: int | None, site: str | None, time_col: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in ((f"{time_col} >= ?", since), (f"{time_col} < ?", until), ("site = ?", site)):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class SqlTransaction(ABC):
    """The Transaction statements both backends run alike (base.Transaction)."""

    mark = "?"

    @abstractmethod
    def _execute(self, sql: str, args: Sequence[Any]) -> Any:
        """The backend's execute (placeholders already its own), returning a cursor."""

    def _run(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._execute(sql.replace("?", self.mark), args)

    def _insert_event(self, event: AlertEvent) -> None:
        self._run(_INSERT_EVENT, params(event, EVENT_COLS))
        self.outbox().enqueue(event)  # its notification, in the event's transaction

    def outbox(self) -> Outbox:
        return Outbox(self._execute, self.mark)

    def stored_scan(self, site: str, node: str, seq: int) -> ScanRow | None:
        sql = f"SELECT {cols(SCAN_COLS)} FROM scans WHERE site = ? AND node = ? AND seq = ?"
        found = self._run(sql, (site, node, seq)).fetchone()
        return scan_row(found) if found else None

    def scan_origin(self, site: str, node: str, seq: int) -> tuple[int, int, int] | None:
        sql = "SELECT boot, uptime_ms, unit FROM scans WHERE site = ? AND node = ? AND seq = ?"
        found = self._run(sql, (site, node, seq)).fetchone()
        return (int(found[0]), int(found[1]), int(found[2])) if found else None

    def insert_quarantine(self, row: QuarantineRow) -> None:
        self._run(_INSERT_QUARANTINE, params(row, QUARANTINE_COLS))

    def count_quarantine(self, source: str, reason: str, kept: bool, at: int) -> None:
        identity_row = int(kept and reason == UNKNOWN_IDENTITY)
        self._run(_COUNT_QUARANTINE, (source, at, at, reason, int(kept), int(not kept), identity_row))

    def raise_counter(self, name: str, ceiling: int) -> None:
        self._run(_RAISE_COUNTER, (name, ceiling))

    def _alert(self, where: str, args: Sequence[Any]) -> AlertRow | None:
        sql = f"SELECT {cols(ALERT_COLS)} FROM alerts WHERE {where} ORDER BY opened_at DESC LIMIT 1"
        found = self._run(sql, args).fetchone()
        return AlertRow(*found) if found else None

    def fever_alert_for(self, site: str, node: str, seq: int) -> AlertRow | None:
        where = "kind = 'fever' AND site = ? AND node = ? AND (seq = ? OR last_seq = ?)"
        return self._alert(where, (site, node, seq, seq))

    def node_config(self, site: str, node: str) -> NodeConfigRow | None:
        sql = f"SELECT {cols(NODE_CONFIG_COLS)} FROM node_configs WHERE site = ? AND node = ?"
        found = self._run(sql, (site, node)).fetchone()
        return NodeConfigRow(*found) if found else None

    def save_node_config(self, row: NodeConfigRow) -> None:
        self._run(_UPSERT_NODE_CONFIG, params(row, NODE_CONFIG_COLS))

    def maintenance_at(self, site: str, node: str, at: int) -> MaintenanceRow | None:
        sql = (f"SELECT {cols(MAINTENANCE_COLS)} FROM maintenance WHERE site = ? AND (node = ? OR node = '*')"
               " AND starts_at <= ? AND ends_at > ? ORDER BY ends_at DESC LIMIT 1")  # fmt: skip
        found = self._run(sql, (site, node, at, at)).fetchone()
        return MaintenanceRow(*found) if found else None

    def maintenance_ended(self, after: int, until: int) -> list[MaintenanceRow]:
        sql = f"SELECT {cols(MAINTENANCE_COLS)} FROM maintenance WHERE ends_at > ? AND ends_at <= ? ORDER BY ends_at"
        return [MaintenanceRow(*r) for r in self._run(sql, (after, until)).fetchall()]

    def save_maintenance(self, row: MaintenanceRow) -> None:
        self._run(_UPSERT_MAINTENANCE, params(row, MAINTENANCE_COLS))

    def save_reference(self, row: ReferenceRow) -> None:
        self._run(_INSERT_REFERENCE, params(row, REFERENCE_COLS))

    def open_alert(self, kind: str, site: str, node: str) -> AlertRow | None:
        return self._alert("kind = ? AND site = ? AND node = ? AND state <> 'resolved'", (kind, site, node))

    def alert(self, alert_id: str) -> AlertRow | None:
        return self._alert("alert_id = ?", (alert_id,))

    def update_alert(self, alert: AlertRow, event: AlertEvent, seen_events: int) -> bool:
        values = [getattr(alert, c) for c in ALERT_COLS if c != "alert_id"]
        if self._run(_UPDATE_ALERT, (*values, alert.alert_id, seen_events)).rowcount != 1:
            return False
        self._insert_event(event)
        return True

    def save_site(self, row: SiteRow) -> None:
        self._run(_UPSERT_SITE, params(row, SITE_COLS))

    def save_user(self, row: UserRow) -> None:
        self._run(_UPSERT_USER, params(row, USER_COLS))

    def save_session(self, row: SessionRow) -> None:
        self._run(_INSERT_SESSION, params(row, SESSION_COLS))

    def delete_sessions(self, username: str | None = None, session_id: str | None = None) -> None:
        if username is not None:
            self._run("DELETE FROM sessions WHERE username = ?", (username,))
        if session_id is not None:
            self._run("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def record_login_failure(self, username: str, address: str, at: int) -> None:
        self._run("INSERT INTO login_failures VALUES (?, ?, ?)", (username, address, at))

    def forget_login_failures(self, before: int) -> None:
        self._run("DELETE FROM login_failures WHERE at < ?", (before,))

    def save_followup(self, row: FollowupRow) -> None:
        self._run(_UPSERT_FOLLOWUP, params(row, FOLLOWUP_COLS))

    def forget_followups(self, before: int) -> int:
        return int(self._run("DELETE FROM followups WHERE recorded_at < ?", (before,)).rowcount)

    def record_audit(self, row: AuditRow) -> None:
        self._run(_INSERT_AUDIT, params(row, AUDIT_COLS))

    def forget_audit(self, before: int) -> int:
        return int(self._run("DELETE FROM audit WHERE at < ?", (before,)).rowcount)


class SqlReads(ABC):
    """The Store's reads, the same on both backends (base.Store)."""

    mark = "?"

    @abstractmethod
    def _fetch(self, sql: str, args: Sequence[Any]) -> Iterable[Sequence[Any]]:
        """The rows of a query (placeholders already the backend's), its errors mapped to StoreError."""

    def _select(self, sql: str, args: Sequence[Any] = ()) -> Iterable[Sequence[Any]]:
        return self._fetch(sql.replace("?", self.mark), args)

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Sequence[Any] | None:
        return next(iter(self._select(sql, args)), None)

    def nodes(self, site: str | None = None) -> list[NodeRow]:
        clause, args = where(None, None, site, "")
        sql = f"SELECT {cols(NODE_COLS)} FROM nodes{clause} ORDER BY site, node"
        return [NodeRow(*r) for r in self._select(sql, args)]

    def _with_events(self, join_where: str, args: Sequence[Any] = ()) -> list[tuple[AlertRow, AlertEvent]]:
        both = ", ".join([f"a.{c}" for c in ALERT_COLS] + [f"e.{c}" for c in EVENT_COLS])
        k = len(ALERT_COLS)
        return [(AlertRow(*r[:k]), AlertEvent(*r[k:])) for r in self._select(f"SELECT {both} {join_where}", args)]

    def unpublished_events(self) -> list[tuple[AlertRow, AlertEvent]]:
        return self._with_events("FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id"
                                 " WHERE e.published_at IS NULL ORDER BY e.at, e.alert_id, e.n")  # fmt: skip

    def alert_states(self, resolved_since: int) -> list[tuple[AlertRow, AlertEvent]]:
        return self._with_events(
            "FROM alerts a JOIN alert_events e ON e.alert_id = a.alert_id AND e.n = a.events"
            " WHERE a.state <> 'resolved' OR a.resolved_at >= ? ORDER BY a.opened_at, a.alert_id",
            (resolved_since,),
        )

    def events_since(self, at: int) -> list[tuple[AlertRow, AlertEvent]]:
        return self._with_events("FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id"
                                 " WHERE e.at >= ? ORDER BY e.at, e.alert_id, e.n", (at,))  # fmt: skip

    def scans(self, since: int | None, until: int | None, site: str | None) -> Iterator[ScanRow]:
        clause, args = where(since, until, site, "scanned_at")
        sql = f"SELECT {cols(SCAN_COLS)} FROM scans{clause} ORDER BY site, node, seq"
        return (scan_row(r) for r in self._select(sql, args))

    def clashes(self, since: int | None, until: int | None, site: str | None) -> Iterator[ScanRow]:
        clause, args = where(since, until, site, "scanned_at")
        sql = f"SELECT {cols(SCAN_COLS)} FROM scan_clashes{clause} ORDER BY site, node, seq, received_at"
        return (scan_row(r) for r in self._select(sql, args))

    def alerts(self, since: int | None, until: int | None, site: str | None, open_only: bool = False) -> list[AlertRow]:
        clause, args = where(since, until, site, "opened_at")
        if open_only:
            clause += (" AND" if clause else " WHERE") + " state <> 'resolved'"
        sql = f"SELECT {cols(ALERT_COLS)} FROM alerts{clause} ORDER BY opened_at, alert_id"
        return [AlertRow(*r) for r in self._select(sql, args)]

    def alert_events(self, alert_id: str) -> list[AlertEvent]:
        sql = f"SELECT {cols(EVENT_COLS)} FROM alert_events WHERE alert_id = ? ORDER BY n"
        return [AlertEvent(*r) for r in self._select(sql, (alert_id,))]

    def quarantine(self, since: int | None, until: int | None, site: str | None) -> Iterator[QuarantineRow]:
        clause, args = where(since, until, site, "received_at")
        sql = f"SELECT {cols(QUARANTINE_COLS)} FROM quarantine{clause} ORDER BY received_at"
        return (QuarantineRow(*r) for r in self._select(sql, args))

    def quarantine_sources(self) -> list[QuarantineSource]:
        sql = f"SELECT {cols(SOURCE_COLS)} FROM quarantine_sources ORDER BY source"
        return [QuarantineSource(*r) for r in self._select(sql)]

    def counter(self, name: str) -> int:
        found = self._one("SELECT ceiling FROM downlink_counters WHERE name = ?", (name,))
        return int(found[0]) if found else 0

    def report(self, start: int, end: int) -> list[SiteReport]:
        first = "retest_of IS NULL"
        counts = ", ".join(f"SUM(CASE WHEN {first} AND gateway_verdict = '{v}' THEN 1 ELSE 0 END)" for v in _VERDICTS)
        sql = (
            f"SELECT site, SUM(CASE WHEN {first} THEN 1 ELSE 0 END), SUM(CASE WHEN {first} THEN 0 ELSE 1 END),"
            f" {counts} FROM (SELECT {_TALLIED} FROM scans UNION ALL SELECT {_TALLIED} FROM scan_clashes) t"
            " WHERE scanned_at >= ? AND scanned_at < ? GROUP BY site ORDER BY site"
        )
        out = {}
        for site, *tally in self._select(sql, (start, end)):
            screened, retests, normal, elevated, indeterminate, invalid = map(int, tally)
            out[site] = SiteReport(site, screened, retests, normal, elevated, 0, indeterminate, invalid)
        online = "SELECT site, SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END) FROM nodes GROUP BY site"
        for site, n in self._select(online):
            out.setdefault(site, SiteReport(site)).nodes_up = int(n)
        outcomes = ", ".join(
            f"SUM(CASE WHEN a.state = 'resolved' AND a.reason = '{o}' THEN 1 ELSE 0 END)" for o in _OUTCOMES
        )
        tallies = (
            "SELECT a.site, SUM(CASE WHEN a.confirmed_at IS NOT NULL THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.alert_id"
            f" AND e.method IS NOT NULL) THEN 1 ELSE 0 END), {outcomes}"
            " FROM alerts a JOIN scans s ON s.site = a.site AND s.node = a.node AND s.seq = a.seq"
            " WHERE a.kind = 'fever' AND s.scanned_at >= ? AND s.scanned_at < ? GROUP BY a.site"
        )
        for site, confirmed, checked, cleared, referred, monitored, turned_back in self._select(tallies, (start, end)):
            r = out.setdefault(site, SiteReport(site))
            r.confirmed, r.rechecked = int(confirmed), int(checked)
            r.cleared, r.referred, r.monitored, r.turned_back = map(int, (cleared, referred, monitored, turned_back))
        return [out[site] for site in sorted(out)]

    def alert(self, alert_id: str) -> AlertRow | None:
        found = self._one(f"SELECT {cols(ALERT_COLS)} FROM alerts WHERE alert_id = ?", (alert_id,))
        return AlertRow(*found) if found else None

    def sites(self) -> list[SiteRow]:
        return [SiteRow(*r) for r in self._select(f"SELECT {cols(SITE_COLS)} FROM sites ORDER BY site")]

    def maintenance(self, ending_after: int) -> list[MaintenanceRow]:
        sql = f"SELECT {cols(MAINTENANCE_COLS)} FROM maintenance WHERE ends_at > ? ORDER BY site, node, starts_at"
        return [MaintenanceRow(*r) for r in self._select(sql, (ending_after,))]

    def references(self, site: str | None = None, node: str | None = None) -> list[ReferenceRow]:
        clause = " WHERE site = ?" + (" AND node = ?" if node is not None else "") if site is not None else ""
        args = [a for a in (site, node) if a is not None] if site is not None else []
        sql = f"SELECT {cols(REFERENCE_COLS)} FROM reference_checks{clause} ORDER BY site, node, checked_at"
        return [ReferenceRow(*r) for r in self._select(sql, args)]

    def users(self) -> list[UserRow]:
        return [UserRow(*r) for r in self._select(f"SELECT {cols(USER_COLS)} FROM users ORDER BY username")]

    def user(self, username: str) -> UserRow | None:
        found = self._one(f"SELECT {cols(USER_COLS)} FROM users WHERE username = ?", (username,))
        return UserRow(*found) if found else None

    def session(self, session_id: str, now: int) -> SessionRow | None:
        sql = f"SELECT {cols(SESSION_COLS)} FROM sessions WHERE session_id = ? AND expires_at > ?"
        found = self._one(sql, (session_id, now))
        return SessionRow(*found) if found else None

    def login_failures(self, username: str, address: str, since: int) -> tuple[int, int]:
        sql = (
            "SELECT SUM(CASE WHEN username = ? THEN 1 ELSE 0 END), SUM(CASE WHEN address = ? THEN 1 ELSE 0 END)"
            " FROM login_failures WHERE at >= ?"
        )
        found = self._one(sql, (username, address, since))
        by_user, by_address = found if found else (0, 0)
        return int(by_user or 0), int(by_address or 0)

    def followup(self, alert_id: str) -> FollowupRow | None:
        found = self._one(f"SELECT {cols(FOLLOWUP_COLS)} FROM followups WHERE alert_id = ?", (alert_id,))
        return FollowupRow(*found) if found else None

    def audit(self, since: int | None, until: int | None) -> list[AuditRow]:
        clause, args = where(since, until, None, "at")
        sql = f"SELECT {cols(AUDIT_COLS)} FROM audit{clause} ORDER BY at, action, actor"
        return [AuditRow(*r) for r in self._select(sql, args)]
