"""PostgreSQL backend (psycopg 3): the Store interface on a server, for a province's gateways sharing one database.

The schema is the same migrations as SQLite's (gateway/store/migrate.py: scans, alert_events and quarantine
partitioned by month, scans' key in scan_keys). Several gateway instances may write at once, so what SQLite
got from being the only writer is held by the database here:
- a scan is new to exactly one instance: the key goes into scan_keys with ON CONFLICT DO NOTHING RETURNING
  (a concurrent insert of the same key waits for the other transaction and then sees it), so only that
  instance screens and alerts it; a fever alert's id is the scan's key, so there is one per scan;
- an alert is saved only over an older version of itself (its event counter), and one node alert of a kind is
  open per node (migration 0005's unique index): an instance that loses either race gets a Conflict (a
  StorageFault), the service holds the batch and retries it, and the retry reads what the winner wrote;
- a node's row merges instead of overwriting: stored-scan counts add up, last_seq and last_seen take the
  larger, health the newer message, state and identity the newer sighting; so the fleet does not flap
  between instances that each hear part of a node's messages.
A lost connection (server restart, network) is a StorageFault too: nothing is acknowledged, the connection is
made again on the next try. `synchronous = "normal"` sets synchronous_commit off (a server crash may lose the
last commits, as SQLite's NORMAL on a power cut).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway.errors import StorageFault, StoreError
from gateway.store import migrate
from gateway.store.base import AlertEvent, AlertRow, NodeRow, QuarantineRow, ScanRow
from gateway.store.common import (
    ALERT_COLS,
    NODE_COLS,
    SCAN_COLS,
    SqlReads,
    SqlTransaction,
    cols,
    insert_sql,
    params,
    scan_params,
)

_PARTITION_LOCK = 0x636B71  # pg_advisory_xact_lock: one instance makes a month's partition
_MONTHS_BACK, _MONTHS_AHEAD = 24, 1  # monthly partitions are made for this window; other times: DEFAULT


class Conflict(StorageFault):
    """Another gateway instance wrote the same alert (or node alert of a kind) at the same time: the batch is
    held and tried again, and the retry reads what the other instance wrote."""


def _node_merge() -> str:
    """The node row's upsert that merges what several instances know (see the module docstring). `scans` is
    passed as the number stored in this transaction. Any column not named here follows the newer sighting."""
    newer_seen = "excluded.last_seen >= COALESCE(nodes.last_seen, excluded.last_seen)"
    newer_health = "COALESCE(excluded.health_at, -1) >= COALESCE(nodes.health_at, -1)"
    special = {
        "scans": "nodes.scans + excluded.scans",
        "last_seq": "GREATEST(nodes.last_seq, excluded.last_seq)",
        "last_seen": "GREATEST(nodes.last_seen, excluded.last_seen)",
    }
    health = {"health_at", "uptime_ms", "heap_free", "rssi", "outbox_depth", "outbox_drops", "outbox_errors",
              "sensor_errors", "supply_v", "task_restarts"}  # fmt: skip
    sets = []
    for c in NODE_COLS:
        if c in ("site", "node"):
            continue
        if c in special:
            sets.append(f"{c} = {special[c]}")
        else:
            cond = newer_health if c in health else newer_seen
            sets.append(f"{c} = CASE WHEN {cond} THEN excluded.{c} ELSE nodes.{c} END")
    return insert_sql("nodes", NODE_COLS, f"ON CONFLICT (site, node) DO UPDATE SET {', '.join(sets)}")


def _unnest_sql(table: str, names: Sequence[str], types: Sequence[str], suffix: str = "") -> str:
    """A batch insert with one array parameter per column: one statement text whatever the batch size (the
    driver parses and the server plans it once)."""
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    return f"INSERT INTO {table} ({cols(names)}) SELECT * FROM unnest({arrays}) {suffix}".rstrip()


_INSERT_KEYS = _unnest_sql("scan_keys", ("site", "node", "seq", "scanned_at"), ("text", "text", "bigint", "bigint"),
                           "ON CONFLICT DO NOTHING RETURNING site, node, seq")  # fmt: skip
_UPSERT_NODE = _node_merge()
_SAVE_ALERT = insert_sql(
    "alerts",
    ALERT_COLS,
    "ON CONFLICT (alert_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ALERT_COLS if c != "alert_id")
    + " WHERE alerts.events < excluded.events RETURNING alert_id",
)
_INSERT_CLASH = insert_sql(
    "scan_clashes", SCAN_COLS, "ON CONFLICT (site, node, seq, boot, uptime_ms, unit) DO NOTHING RETURNING seq"
)


def month_of(ms: int) -> int:
    """Months since year 0 (UTC) of a Unix ms time."""
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return d.year * 12 + d.month - 1


def month_start(month: int) -> int:
    """Unix ms of the first instant of `month` (as month_of counts)."""
    return int(datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def partition_name(table: str, month: int) -> str:
    return f"{table}_p{month // 12:04d}{month % 12 + 1:02d}"


_SQLSTATE_FAULTS = {
    "53100": ("the PostgreSQL server's disk is full", "free space on the server's data volume"),
    "53200": ("the PostgreSQL server is out of memory", "check the server (its log, memory settings)"),
    "53300": ("the PostgreSQL server has no free connection slot", "raise max_connections or use fewer clients"),
    "25006": ("the database is read-only (a standby?)", "point --db at the primary, or make it writable"),
    "42501": ("the database user may not write these tables", "GRANT the gateway's user INSERT and UPDATE"),
    "40001": ("a serialization conflict with another writer", "nothing: retried"),
    "40P01": ("a deadlock with another writer", "nothing: retried"),
}


class PostgresTransaction(SqlTransaction):
    mark = "%s"

    def __init__(self, conn: psycopg.Connection[Any], parts: _Partitions, scans_sql: str) -> None:
        self._conn, self._parts, self._scans_sql = conn, parts, scans_sql
        self._stored: dict[tuple[str, str], int] = {}  # scans stored in this transaction per node (save_node)

    def _execute(self, sql: str, args: Sequence[Any]) -> psycopg.Cursor[Any]:
        return self._conn.execute(sql, args or None)

    def insert_scans(self, rows: list[ScanRow]) -> list[bool]:
        if not rows:
            return []
        self._parts.ensure(self._conn, "scans", (r.scanned_at for r in rows))
        first: dict[tuple[str, str, int], int] = {}
        for i, r in enumerate(rows):
            first.setdefault((r.site, r.node, r.seq), i)
        keys = [rows[i] for i in first.values()]
        columns = [[r.site for r in keys], [r.node for r in keys], [r.seq for r in keys], [r.scanned_at for r in keys]]
        inserted = {(s, n, q) for s, n, q in self._run(_INSERT_KEYS, columns).fetchall()}
        new = [(r.site, r.node, r.seq) in inserted and first[(r.site, r.node, r.seq)] == i for i, r in enumerate(rows)]
        fresh = [r for r, n in zip(rows, new, strict=True) if n]
        if fresh:
            values = [scan_params(r) for r in fresh]
            self._run(self._scans_sql, [list(col) for col in zip(*values, strict=True)])
        for r in fresh:
            self._stored[(r.site, r.node)] = self._stored.get((r.site, r.node), 0) + 1
        return new

    def insert_clash(self, row: ScanRow) -> bool:
        return self._run(_INSERT_CLASH, scan_params(row)).fetchone() is not None

    def insert_quarantine(self, row: QuarantineRow) -> None:
        self._parts.ensure(self._conn, "quarantine", (row.received_at,))
        super().insert_quarantine(row)

    def save_node(self, row: NodeRow) -> None:
        values = list(params(row, NODE_COLS))
        values[NODE_COLS.index("scans")] = self._stored.get((row.site, row.node), 0)
        self._run(_UPSERT_NODE, values)

    def case_scan(self, site: str, code: int, since: int) -> tuple[str, int] | None:
        sql = (
            "SELECT node, seq FROM scans WHERE site = %s AND code = %s AND retest_code IS NULL AND received_at >= %s"
            " ORDER BY received_at DESC, seq DESC LIMIT 1"
        )
        row = self._run(sql, (site, code, since)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def save_alert(self, alert: AlertRow, event: AlertEvent) -> None:
        if self._run(_SAVE_ALERT, params(alert, ALERT_COLS)).fetchone() is None:
            raise Conflict(f"alert {alert.alert_id} was changed by another gateway instance at the same time"
                           " (its event counter moved on): retrying, on what that instance wrote")  # fmt: skip
        self._insert_event(event)

    def _insert_event(self, event: AlertEvent) -> None:
        self._parts.ensure(self._conn, "alert_events", (event.at,))
        super()._insert_event(event)

    def mark_published(self, events: list[tuple[str, int]], at: int) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(
                "UPDATE alert_events SET published_at = %s WHERE alert_id = %s AND n = %s",
                [(at, alert_id, n) for alert_id, n in events],
            )


class _Partitions:
    """Which monthly partitions exist (cached per process); makes the missing ones within the window."""

    def __init__(self) -> None:
        self.known: set[tuple[str, int]] = set()

    def ensure(self, conn: psycopg.Connection[Any], table: str, times: Iterable[int], now: int | None = None) -> None:
        current = month_of(now if now is not None else int(datetime.now(UTC).timestamp() * 1000))
        months = {month_of(t) for t in times} - {m for tb, m in self.known if tb == table}
        for month in sorted(months):
            if current - _MONTHS_BACK <= month <= current + _MONTHS_AHEAD:
                self._make(conn, table, month)
            self.known.add((table, month))  # outside the window: the DEFAULT partition takes it

    def _make(self, conn: psycopg.Connection[Any], table: str, month: int) -> None:
        name, lo, hi = partition_name(table, month), month_start(month), month_start(month + 1)
        try:
            with conn.transaction():  # a savepoint inside the caller's transaction
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
                conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM ({lo}) TO ({hi})")
        except psycopg.errors.CheckViolation:
            pass  # the DEFAULT partition already holds rows of that month: they (and the month) stay there


class PostgresStore(SqlReads):
    """The Store interface (gateway/store/base.py) on a PostgreSQL database."""

    mark = "%s"

    def __init__(self, url: str, synchronous: str = "full", create: bool = True) -> None:
        self.url = url
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._parts = _Partitions()
        try:
            self._conn = self._connect()
            if not create and not self._has_schema():
                raise StoreError(f"no gateway database at {self._where()}: start the gateway once, or pass the right"
                                 " --db")  # fmt: skip
            migrate.apply_postgres(self._conn)
            self._premake()
            self._scans_sql = _unnest_sql("scans", SCAN_COLS, self._types("scans", SCAN_COLS))
        except psycopg.Error as e:
            raise _error(self._where(), "opening the database", e) from e

    def _where(self) -> str:
        with contextlib.suppress(Exception):
            info = psycopg.conninfo.conninfo_to_dict(self.url)
            return f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        return "PostgreSQL"

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        if self._synchronous != "full":
            conn.execute("SET synchronous_commit = off")
        return conn

    def _types(self, table: str, cols: Sequence[str]) -> list[str]:
        found = dict(
            self._conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            ).fetchall()
        )
        return [found[c] for c in cols]

    def _has_schema(self) -> bool:
        found = self._conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        return bool(found and found[0])

    def _premake(self, now: int | None = None) -> None:
        """This month's and the next month's partitions, outside any batch (so a batch seldom makes one)."""
        now = now if now is not None else int(datetime.now(UTC).timestamp() * 1000)
        ahead = month_start(month_of(now) + 1)
        for table in migrate.PARTITIONED:
            with self._conn.transaction():
                self._parts.ensure(self._conn, table, (now, ahead), now)

    def _ready(self) -> psycopg.Connection[Any]:
        """The connection, made again after a lost one (a server restart): the retry after a fault."""
        if self._conn.closed or self._conn.broken:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._connect()
            self._premake()
        return self._conn

    def check_writable(self) -> None:
        with self._lock:
            try:
                with self._ready().transaction() as tx:
                    self._conn.execute("INSERT INTO schema_version VALUES (-1, 'write check', 0)")
                    raise psycopg.Rollback(tx)
            except psycopg.Error as e:
                fault = _error(self._where(), "checking that the database can be written", e)
                if e.sqlstate in ("25006", "42501"):
                    raise fault from e
                # Anything else (the server down) may pass: the service backs off and retries on its own.

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        with self._lock:
            try:
                conn = self._ready()
                now = int(datetime.now(UTC).timestamp() * 1000)
                if ("alert_events", month_of(now) + 1) not in self._parts.known:
                    self._premake(now)
                with conn.transaction():
                    yield PostgresTransaction(conn, self._parts, self._scans_sql)
            except psycopg.Error as e:
                raise _error(self._where(), "writing", e) from e

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._ready().execute(sql, args or None).fetchall()
            except psycopg.Error as e:
                raise _error(self._where(), "reading", e) from e

    def drop_older_than(self, cutoff: int) -> dict[str, int]:
        """Retention (gateway/retention.py): every whole month before the month of `cutoff` goes, as partitions
        dropped; rows of those months in the DEFAULT partitions and the unpartitioned tables are deleted. The
        events of alerts still open are kept (moved to the DEFAULT partition before their month is dropped).
        Returns what went, by table."""
        with self._lock:
            try:
                conn = self._ready()
                with conn.transaction():
                    return _drop_months(conn, month_start(month_of(cutoff)))
            except psycopg.Error as e:
                raise _error(self._where(), "dropping old months", e) from e

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _drop_months(conn: psycopg.Connection[Any], before: int) -> dict[str, int]:
    gone: dict[str, int] = {}
    keep_open = "alert_id IN (SELECT alert_id FROM alerts WHERE state <> 'resolved')"
    for table, col in migrate.PARTITIONED.items():
        listed = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass AND c.relname ~ %s ORDER BY c.relname",
            (table, f"^{table}_p[0-9]{{6}}$"),
        ).fetchall()
        dropped = 0
        for (name,) in listed:
            month = int(name[-6:-2]) * 12 + int(name[-2:]) - 1
            if month_start(month + 1) > before:
                continue
            conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
            if table == "alert_events":  # an open alert keeps its whole history: moved to the DEFAULT partition
                conn.execute(f"INSERT INTO alert_events SELECT * FROM {name} WHERE {keep_open}")
            conn.execute(f"DROP TABLE {name}")
            dropped += 1
        gone[f"{table} partitions"] = dropped
        spare = f" AND NOT {keep_open}" if table == "alert_events" else ""
        gone[f"{table}_default rows"] = conn.execute(
            f"DELETE FROM {table}_default WHERE {col} < %s{spare}", (before,)).rowcount  # fmt: skip
    gone["scan_keys rows"] = conn.execute("DELETE FROM scan_keys WHERE scanned_at < %s", (before,)).rowcount
    gone["scan_clashes rows"] = conn.execute("DELETE FROM scan_clashes WHERE scanned_at < %s", (before,)).rowcount
    old = "SELECT alert_id FROM alerts WHERE state = 'resolved' AND resolved_at < %s"
    conn.execute(f"DELETE FROM alert_events WHERE alert_id IN ({old})", (before,))
    gone["alerts rows"] = conn.execute(f"DELETE FROM alerts WHERE alert_id IN ({old})", (before,)).rowcount
    return gone


def _error(where: str, doing: str, e: psycopg.Error) -> StoreError:
    """A StorageFault (held and retried by the service) for what is outside the gateway or a race between
    instances; any other error is the gateway's own (schema, a bug): a StoreError."""
    state = e.sqlstate or ""
    if isinstance(e, psycopg.errors.UniqueViolation) and "alerts_one_open" in str(e):
        return Conflict(f"{where}: another gateway instance raised the same node alert at the same time while"
                        f" {doing}: retrying, on what it wrote")  # fmt: skip
    if state in _SQLSTATE_FAULTS:
        cause, fix = _SQLSTATE_FAULTS[state]
        return StorageFault(f"{where}: {cause} while {doing} ({e}): {fix}")
    if isinstance(e, psycopg.OperationalError) or state.startswith(("08", "57P")):
        return StorageFault(f"{where} cannot be reached while {doing} ({str(e).strip()}): check that the server is"
                            " running and reachable; the gateway connects again by itself")  # fmt: skip
    return StoreError(f"{where}: {doing} failed: {e}")
