"""SQLite backend: one file, WAL, synchronous=FULL by default.

Why FULL: the gateway's receipt lets a node delete its only other copy of a scan, so a commit must survive a
power cut, not just a process crash. NORMAL in WAL mode survives SIGKILL but may lose the last commits on a
power loss. With batches of up to 200 rows the fsync per commit costs little (docs/benchmarks.md).

One writer (the ingest thread) holds the connection; CLI commands open their own connections and read
alongside it (WAL readers do not block the writer).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.errors import StorageFault, StoreError
from gateway.notify.outbox import Outbox
from gateway.quarantine import UNKNOWN_IDENTITY
from gateway.store import migrate
from gateway.store.base import (
    AlertEvent,
    AlertRow,
    NodeRow,
    QuarantineRow,
    QuarantineSource,
    ScanRow,
    SessionRow,
    SiteReport,
    SiteRow,
    UserRow,
    columns,
)

_SCAN_COLS = columns(ScanRow)
_ALERT_COLS = columns(AlertRow)
_EVENT_COLS = columns(AlertEvent)
_NODE_COLS = columns(NodeRow)
_QUARANTINE_COLS = columns(QuarantineRow)
_SOURCE_COLS = columns(QuarantineSource)
_SITE_COLS = columns(SiteRow)
_USER_COLS = columns(UserRow)
_SESSION_COLS = columns(SessionRow)
_OUTCOMES = ("cleared", "referred", "monitored", "turned_back")  # gateway/alerts.py OUTCOMES


def _insert_sql(table: str, cols: Sequence[str], conflict: str = "") -> str:
    marks = ", ".join("?" for _ in cols)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) {conflict}".rstrip()


def _upsert_sql(table: str, cols: Sequence[str], key: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    return _insert_sql(table, cols, f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


_INSERT_SCAN = _insert_sql("scans", _SCAN_COLS, "ON CONFLICT (site, node, seq) DO NOTHING")
_INSERT_CLASH = _insert_sql("scan_clashes", _SCAN_COLS, "ON CONFLICT (site, node, seq, boot, uptime_ms) DO NOTHING")
_INSERT_QUARANTINE = _insert_sql("quarantine", _QUARANTINE_COLS)
_UPSERT_NODE = _upsert_sql("nodes", _NODE_COLS, ("site", "node"))
_UPSERT_ALERT = _upsert_sql("alerts", _ALERT_COLS, ("alert_id",))
_INSERT_EVENT = _insert_sql("alert_events", _EVENT_COLS)
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
_UPSERT_SITE = _upsert_sql("sites", _SITE_COLS, ("site",))
_UPSERT_USER = _upsert_sql("users", _USER_COLS, ("username",))
_INSERT_SESSION = _insert_sql("sessions", _SESSION_COLS)
_UPDATE_ALERT = (
    f"UPDATE alerts SET {', '.join(f'{c} = ?' for c in _ALERT_COLS if c != 'alert_id')}"
    " WHERE alert_id = ? AND events = ?"
)


_TALLIED = "site, retest_of, gateway_verdict, scanned_at"  # a report counts clashing scans too: each is a traveller
_FLAGS_AT = (_SCAN_COLS.index("flags"), _SCAN_COLS.index("gateway_flags"))


def _flags_text(flags: tuple[str, ...]) -> str:
    return json.dumps(list(flags)) if flags else "[]"


def _scan_params(row: ScanRow) -> list[Any]:
    values = [getattr(row, c) for c in _SCAN_COLS]
    for i in _FLAGS_AT:
        values[i] = _flags_text(values[i])
    return values


def _scan_row(values: Sequence[Any]) -> ScanRow:
    row = ScanRow(*values)
    row.flags = tuple(json.loads(row.flags))  # type: ignore[arg-type]
    row.gateway_flags = tuple(json.loads(row.gateway_flags))  # type: ignore[arg-type]
    return row


# SQLite's primary result codes (https://www.sqlite.org/rescode.html) for faults outside the gateway, with what
# an operator does about each. Any other error is the gateway's own (schema, a bug): retrying will not help.
_FAULTS = {
    13: (
        "the filesystem holding {path} is full (SQLITE_FULL)",
        "free space on that filesystem (or move the database elsewhere with --db)",
    ),
    10: ("an I/O error on {path} (SQLITE_IOERR)", "check the disk and the filesystem (dmesg, df, mount)"),
    8: (
        "{path} is read-only (SQLITE_READONLY)",
        "make the file and its directory writable by the gateway's user (the -wal and -shm files live beside it),"
        " or remount the filesystem read-write",
    ),
    14: ("{path} cannot be opened (SQLITE_CANTOPEN)", "check that its directory exists and is writable"),
    5: ("{path} is locked by another process (SQLITE_BUSY)", "stop the other writer (one gateway per database)"),
    6: ("{path} is locked (SQLITE_LOCKED)", "stop the other writer (one gateway per database)"),
}


_NEVER_WRITABLE = (8, 14, 3)  # READONLY, CANTOPEN, PERM: a fix is needed before the gateway can store anything


def _error(path: Path, doing: str, e: sqlite3.Error) -> StoreError:
    """A StorageFault naming the cause and the fix for a fault outside the gateway, else a StoreError."""
    code = getattr(e, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else -1
    fault = _FAULTS.get(primary)
    if fault is None:
        return StoreError(f"{path}: {doing} failed: {e}")
    cause, fix = fault
    if primary in _NEVER_WRITABLE:
        cause, fix = _unwritable(path) or (cause, fix)
    return StorageFault(f"{cause.format(path=path)} while {doing}: {fix}")


def _unwritable(path: Path) -> tuple[str, str] | None:
    """Why `path` cannot be written, when the filesystem or the permissions say so (SQLite in WAL mode reports
    a read-only filesystem as CANTOPEN: it cannot make the -shm file)."""
    where = path if path.exists() else path.parent
    try:
        if os.statvfs(where).f_flag & os.ST_RDONLY:
            return ("{path} is on a read-only filesystem (SQLITE_READONLY)",
                    "remount the filesystem read-write, or move the database with --db")  # fmt: skip
    except OSError:
        return None
    for p in (path, path.parent):
        if p.exists() and not os.access(p, os.W_OK):
            return (f"{{path}} is read-only: {p} is not writable (SQLITE_READONLY)",
                    "make the file and its directory writable by the gateway's user (the -wal and -shm files live"
                    " beside it)")  # fmt: skip
    return None


def _params(row: object, cols: Sequence[str]) -> tuple[Any, ...]:
    return tuple(getattr(row, c) for c in cols)


def _where(since: int | None, until: int | None, site: str | None, time_col: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if since is not None:
        clauses.append(f"{time_col} >= ?")
        args.append(since)
    if until is not None:
        clauses.append(f"{time_col} < ?")
        args.append(until)
    if site is not None:
        clauses.append("site = ?")
        args.append(site)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert_scans(self, rows: list[ScanRow]) -> list[bool]:
        # One SELECT per node for what is already stored, then one executemany: a tenth of the statements of
        # row-by-row inserts. ON CONFLICT DO NOTHING stays as the guarantee.
        by_node: dict[tuple[str, str], list[int]] = {}
        for r in rows:
            by_node.setdefault((r.site, r.node), []).append(r.seq)
        seen: set[tuple[str, str, int]] = set()
        for (site, node), seqs in by_node.items():
            for chunk in range(0, len(seqs), 500):
                part = seqs[chunk : chunk + 500]
                marks = ", ".join("?" * len(part))
                sql = f"SELECT seq FROM scans WHERE site = ? AND node = ? AND seq IN ({marks})"
                seen.update((site, node, s) for (s,) in self._conn.execute(sql, (site, node, *part)))
        new = []
        for r in rows:
            key = (r.site, r.node, r.seq)
            new.append(key not in seen)
            seen.add(key)
        self._conn.executemany(_INSERT_SCAN, [_scan_params(r) for r, n in zip(rows, new, strict=True) if n])
        return new

    def insert_clash(self, row: ScanRow) -> bool:
        return bool(self._conn.execute(_INSERT_CLASH, _scan_params(row)).rowcount == 1)

    def stored_scan(self, site: str, node: str, seq: int) -> ScanRow | None:
        sql = f"SELECT {', '.join(_SCAN_COLS)} FROM scans WHERE site = ? AND node = ? AND seq = ?"
        found = self._conn.execute(sql, (site, node, seq)).fetchone()
        return _scan_row(found) if found else None

    def insert_quarantine(self, row: QuarantineRow) -> None:
        self._conn.execute(_INSERT_QUARANTINE, _params(row, _QUARANTINE_COLS))

    def count_quarantine(self, source: str, reason: str, kept: bool, at: int) -> None:
        identity_row = int(kept and reason == UNKNOWN_IDENTITY)
        self._conn.execute(_COUNT_QUARANTINE, (source, at, at, reason, int(kept), int(not kept), identity_row))

    def raise_counter(self, name: str, ceiling: int) -> None:
        self._conn.execute(_RAISE_COUNTER, (name, ceiling))

    def save_node(self, row: NodeRow) -> None:
        self._conn.execute(_UPSERT_NODE, _params(row, _NODE_COLS))

    def _alert(self, where: str, args: Sequence[Any]) -> AlertRow | None:
        sql = f"SELECT {', '.join(_ALERT_COLS)} FROM alerts WHERE {where} ORDER BY opened_at DESC LIMIT 1"
        found = self._conn.execute(sql, args).fetchone()
        return AlertRow(*found) if found else None

    def scan_origin(self, site: str, node: str, seq: int) -> tuple[int, int] | None:
        sql = "SELECT boot, uptime_ms FROM scans WHERE site = ? AND node = ? AND seq = ?"
        found = self._conn.execute(sql, (site, node, seq)).fetchone()
        return (int(found[0]), int(found[1])) if found else None

    def fever_alert_for(self, site: str, node: str, seq: int) -> AlertRow | None:
        where = "kind = 'fever' AND site = ? AND node = ? AND (seq = ? OR last_seq = ?)"
        return self._alert(where, (site, node, seq, seq))

    def open_alert(self, kind: str, site: str, node: str) -> AlertRow | None:
        return self._alert("kind = ? AND site = ? AND node = ? AND state <> 'resolved'", (kind, site, node))

    def save_alert(self, alert: AlertRow, event: AlertEvent) -> None:
        self._conn.execute(_UPSERT_ALERT, _params(alert, _ALERT_COLS))
        self._conn.execute(_INSERT_EVENT, _params(event, _EVENT_COLS))
        self.outbox().enqueue(event)  # its notification, in the event's transaction

    def mark_published(self, events: list[tuple[str, int]], at: int) -> None:
        self._conn.executemany(
            "UPDATE alert_events SET published_at = ? WHERE alert_id = ? AND n = ?",
            [(at, alert_id, n) for alert_id, n in events],
        )

    def alert(self, alert_id: str) -> AlertRow | None:
        return self._alert("alert_id = ?", (alert_id,))

    def update_alert(self, alert: AlertRow, event: AlertEvent, seen_events: int) -> bool:
        values = [getattr(alert, c) for c in _ALERT_COLS if c != "alert_id"]
        if self._conn.execute(_UPDATE_ALERT, (*values, alert.alert_id, seen_events)).rowcount != 1:
            return False
        self._conn.execute(_INSERT_EVENT, _params(event, _EVENT_COLS))
        self.outbox().enqueue(event)
        return True

    def outbox(self) -> Outbox:
        return Outbox(self._conn.execute, "?")

    def save_site(self, row: SiteRow) -> None:
        self._conn.execute(_UPSERT_SITE, _params(row, _SITE_COLS))

    def save_user(self, row: UserRow) -> None:
        self._conn.execute(_UPSERT_USER, _params(row, _USER_COLS))

    def save_session(self, row: SessionRow) -> None:
        self._conn.execute(_INSERT_SESSION, _params(row, _SESSION_COLS))

    def delete_sessions(self, username: str | None = None, session_id: str | None = None) -> None:
        if username is not None:
            self._conn.execute("DELETE FROM sessions WHERE username = ?", (username,))
        if session_id is not None:
            self._conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def record_login_failure(self, username: str, address: str, at: int) -> None:
        self._conn.execute("INSERT INTO login_failures VALUES (?, ?, ?)", (username, address, at))

    def forget_login_failures(self, before: int) -> None:
        self._conn.execute("DELETE FROM login_failures WHERE at < ?", (before,))


class SqliteStore:
    """The Store interface (gateway/store/base.py) on one SQLite file."""

    def __init__(self, path: Path, synchronous: str = "full", create: bool = True) -> None:
        self.url = f"sqlite:///{path}"
        self.path = path
        if not create and not path.exists():
            raise StoreError(f"no database at {path}: start the gateway once, or pass the right --db")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            migrate.apply(self._conn)
        except sqlite3.Error as e:
            raise _error(path, "opening the database", e) from e
        except OSError as e:
            raise StoreError(f"cannot open the database {path}: {e}") from e

    def check_writable(self) -> None:
        """A write in a transaction, rolled back: a read-only file (or directory, or filesystem) is found at
        start, not on the first scan. Raises StorageFault naming the fix."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT INTO schema_version VALUES (-1, 'write check', 0)")
        except sqlite3.Error as e:
            self._rollback()
            if getattr(e, "sqlite_errorcode", 0) & 0xFF in _NEVER_WRITABLE:
                raise _error(self.path, "checking that the database can be written", e) from e
            # Anything else (a full disk, a lock) may pass: the service backs off and retries on its own.
        self._rollback()

    def _rollback(self) -> None:
        """Roll back what is open. SQLite has already rolled back by itself after some errors (SQLITE_FULL,
        IOERR): a ROLLBACK then would fail with "no transaction is active" and hide the real error."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # then SQLite rolls back when the next transaction begins
                self._conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self._rollback()
            raise _error(self.path, "starting a transaction", e) from e
        try:
            yield SqliteTransaction(self._conn)
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise _error(self.path, "writing", e) from e
        except BaseException:
            self._rollback()
            raise

    def _select(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as e:
            raise _error(self.path, "reading", e) from e

    def nodes(self, site: str | None = None) -> list[NodeRow]:
        where, args = _where(None, None, site, "")
        sql = f"SELECT {', '.join(_NODE_COLS)} FROM nodes{where} ORDER BY site, node"
        return [NodeRow(*r) for r in self._select(sql, args)]

    def unpublished_events(self) -> list[tuple[AlertRow, AlertEvent]]:
        cols = ", ".join([f"a.{c}" for c in _ALERT_COLS] + [f"e.{c}" for c in _EVENT_COLS])
        sql = (
            f"SELECT {cols} FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id"
            " WHERE e.published_at IS NULL ORDER BY e.at, e.alert_id, e.n"
        )
        k = len(_ALERT_COLS)
        return [(AlertRow(*r[:k]), AlertEvent(*r[k:])) for r in self._select(sql)]

    def scans(self, since: int | None, until: int | None, site: str | None) -> Iterator[ScanRow]:
        where, args = _where(since, until, site, "scanned_at")
        sql = f"SELECT {', '.join(_SCAN_COLS)} FROM scans{where} ORDER BY site, node, seq"
        return (_scan_row(r) for r in self._select(sql, args))

    def clashes(self, since: int | None, until: int | None, site: str | None) -> Iterator[ScanRow]:
        where, args = _where(since, until, site, "scanned_at")
        sql = f"SELECT {', '.join(_SCAN_COLS)} FROM scan_clashes{where} ORDER BY site, node, seq, received_at"
        return (_scan_row(r) for r in self._select(sql, args))

    def alert_states(self, resolved_since: int) -> list[tuple[AlertRow, AlertEvent]]:
        cols = ", ".join([f"a.{c}" for c in _ALERT_COLS] + [f"e.{c}" for c in _EVENT_COLS])
        sql = (
            f"SELECT {cols} FROM alerts a JOIN alert_events e ON e.alert_id = a.alert_id AND e.n = a.events"
            " WHERE a.state <> 'resolved' OR a.resolved_at >= ? ORDER BY a.opened_at, a.alert_id"
        )
        k = len(_ALERT_COLS)
        return [(AlertRow(*r[:k]), AlertEvent(*r[k:])) for r in self._select(sql, (resolved_since,))]

    def alerts(self, since: int | None, until: int | None, site: str | None, open_only: bool = False) -> list[AlertRow]:
        where, args = _where(since, until, site, "opened_at")
        if open_only:
            where += (" AND" if where else " WHERE") + " state <> 'resolved'"
        sql = f"SELECT {', '.join(_ALERT_COLS)} FROM alerts{where} ORDER BY opened_at, alert_id"
        return [AlertRow(*r) for r in self._select(sql, args)]

    def alert_events(self, alert_id: str) -> list[AlertEvent]:
        sql = f"SELECT {', '.join(_EVENT_COLS)} FROM alert_events WHERE alert_id = ? ORDER BY n"
        return [AlertEvent(*r) for r in self._select(sql, (alert_id,))]

    def quarantine(self, since: int | None, until: int | None, site: str | None) -> Iterator[QuarantineRow]:
        where, args = _where(since, until, site, "received_at")
        sql = f"SELECT {', '.join(_QUARANTINE_COLS)} FROM quarantine{where} ORDER BY received_at"
        return (QuarantineRow(*r) for r in self._select(sql, args))

    def quarantine_sources(self) -> list[QuarantineSource]:
        sql = f"SELECT {', '.join(_SOURCE_COLS)} FROM quarantine_sources ORDER BY source"
        return [QuarantineSource(*r) for r in self._select(sql)]

    def counter(self, name: str) -> int:
        found = list(self._select("SELECT ceiling FROM downlink_counters WHERE name = ?", (name,)))
        return int(found[0][0]) if found else 0

    def report(self, start: int, end: int) -> list[SiteReport]:
        first = "retest_of IS NULL"
        counts = ", ".join(
            f"SUM(CASE WHEN {first} AND gateway_verdict = '{v}' THEN 1 ELSE 0 END)"
            for v in ("normal", "elevated", "indeterminate", "invalid")
        )
        sql = (
            f"SELECT site, SUM(CASE WHEN {first} THEN 1 ELSE 0 END),"
            f" SUM(CASE WHEN {first} THEN 0 ELSE 1 END),"
            f" {counts} FROM (SELECT {_TALLIED} FROM scans UNION ALL SELECT {_TALLIED} FROM scan_clashes)"
            " WHERE scanned_at >= ? AND scanned_at < ?"
            " GROUP BY site ORDER BY site"
        )
        out = {}
        for site, screened, retests, normal, elevated, indeterminate, invalid in self._select(sql, (start, end)):
            out[site] = SiteReport(site, screened, retests, normal, elevated, 0, indeterminate, invalid)
        online = "SELECT site, SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END) FROM nodes GROUP BY site"
        for site, n in self._select(online):
            out.setdefault(site, SiteReport(site)).nodes_up = int(n)
        fevers = (
            "FROM alerts a JOIN scans s ON s.site = a.site AND s.node = a.node AND s.seq = a.seq"
            " WHERE a.kind = 'fever' AND s.scanned_at >= ? AND s.scanned_at < ?"
        )
        outcomes = ", ".join(
            f"SUM(CASE WHEN a.state = 'resolved' AND a.reason = '{o}' THEN 1 ELSE 0 END)" for o in _OUTCOMES
        )
        rechecked = "SUM(CASE WHEN EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.alert_id"
        rechecked += " AND e.method IS NOT NULL) THEN 1 ELSE 0 END)"
        tallies = (
            f"SELECT a.site, SUM(CASE WHEN a.confirmed_at IS NOT NULL THEN 1 ELSE 0 END), {rechecked}, {outcomes}"
            f" {fevers} GROUP BY a.site"
        )
        for site, confirmed, checked, cleared, referred, monitored, turned_back in self._select(tallies, (start, end)):
            r = out.setdefault(site, SiteReport(site))
            r.confirmed, r.rechecked = int(confirmed), int(checked)
            r.cleared, r.referred, r.monitored, r.turned_back = (
                int(cleared),
                int(referred),
                int(monitored),
                int(turned_back),
            )
        return [out[site] for site in sorted(out)]

    def alert(self, alert_id: str) -> AlertRow | None:
        sql = f"SELECT {', '.join(_ALERT_COLS)} FROM alerts WHERE alert_id = ?"
        found = self._select(sql, (alert_id,)).fetchone()
        return AlertRow(*found) if found else None

    def events_since(self, at: int) -> list[tuple[AlertRow, AlertEvent]]:
        cols = ", ".join([f"a.{c}" for c in _ALERT_COLS] + [f"e.{c}" for c in _EVENT_COLS])
        sql = (
            f"SELECT {cols} FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id"
            " WHERE e.at >= ? ORDER BY e.at, e.alert_id, e.n"
        )
        k = len(_ALERT_COLS)
        return [(AlertRow(*r[:k]), AlertEvent(*r[k:])) for r in self._select(sql, (at,))]

    def sites(self) -> list[SiteRow]:
        return [SiteRow(*r) for r in self._select(f"SELECT {', '.join(_SITE_COLS)} FROM sites ORDER BY site")]

    def users(self) -> list[UserRow]:
        return [UserRow(*r) for r in self._select(f"SELECT {', '.join(_USER_COLS)} FROM users ORDER BY username")]

    def user(self, username: str) -> UserRow | None:
        sql = f"SELECT {', '.join(_USER_COLS)} FROM users WHERE username = ?"
        found = self._select(sql, (username,)).fetchone()
        return UserRow(*found) if found else None

    def session(self, session_id: str, now: int) -> SessionRow | None:
        sql = f"SELECT {', '.join(_SESSION_COLS)} FROM sessions WHERE session_id = ? AND expires_at > ?"
        found = self._select(sql, (session_id, now)).fetchone()
        return SessionRow(*found) if found else None

    def login_failures(self, username: str, address: str, since: int) -> tuple[int, int]:
        sql = (
            "SELECT SUM(CASE WHEN username = ? THEN 1 ELSE 0 END), SUM(CASE WHEN address = ? THEN 1 ELSE 0 END)"
            " FROM login_failures WHERE at >= ?"
        )
        by_user, by_address = self._select(sql, (username, address, since)).fetchone()
        return int(by_user or 0), int(by_address or 0)

    def close(self) -> None:
        self._conn.close()
