"""SQLite backend: one file, WAL, synchronous=FULL by default.

Why FULL: the gateway's receipt lets a node delete its only other copy of a scan, so a commit must survive a
power cut, not just a process crash. NORMAL in WAL mode survives SIGKILL but may lose the last commits on a
power loss. With batches of up to 200 rows the fsync per commit costs little (docs/benchmarks.md).

One writer (the ingest thread) holds the connection; CLI commands open their own connections and read
alongside it (WAL readers do not block the writer).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.errors import StorageFault, StoreError
from gateway.store import migrate
from gateway.store.base import AlertEvent, AlertRow, NodeRow, ScanRow
from gateway.store.common import (
    ALERT_COLS,
    NODE_COLS,
    SCAN_COLS,
    SqlReads,
    SqlTransaction,
    insert_sql,
    params,
    scan_params,
    upsert_sql,
)

_INSERT_SCAN = insert_sql("scans", SCAN_COLS, "ON CONFLICT (site, node, seq) DO NOTHING")
_INSERT_CLASH = insert_sql("scan_clashes", SCAN_COLS, "ON CONFLICT (site, node, seq, boot, uptime_ms, unit) DO NOTHING")
_UPSERT_NODE = upsert_sql("nodes", NODE_COLS, ("site", "node"))
_UPSERT_ALERT = upsert_sql("alerts", ALERT_COLS, ("alert_id",))


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


class SqliteTransaction(SqlTransaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _execute(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

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
        self._conn.executemany(_INSERT_SCAN, [scan_params(r) for r, n in zip(rows, new, strict=True) if n])
        return new

    def insert_clash(self, row: ScanRow) -> bool:
        return bool(self._conn.execute(_INSERT_CLASH, scan_params(row)).rowcount == 1)

    def save_node(self, row: NodeRow) -> None:
        self._conn.execute(_UPSERT_NODE, params(row, NODE_COLS))

    def case_scan(self, site: str, code: int, since: int) -> tuple[str, int] | None:
        sql = (
            "SELECT node, seq FROM scans WHERE site = ? AND code = ? AND retest_code IS NULL AND received_at >= ?"
            " ORDER BY received_at DESC, seq DESC LIMIT 1"
        )
        row = self._conn.execute(sql, (site, code, since)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def save_alert(self, alert: AlertRow, event: AlertEvent) -> None:
        self._conn.execute(_UPSERT_ALERT, params(alert, ALERT_COLS))
        self._insert_event(event)

    def mark_published(self, events: list[tuple[str, int]], at: int) -> None:
        self._conn.executemany(
            "UPDATE alert_events SET published_at = ? WHERE alert_id = ? AND n = ?",
            [(at, alert_id, n) for alert_id, n in events],
        )


class SqliteStore(SqlReads):
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

    def _fetch(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as e:
            raise _error(self.path, "reading", e) from e

    def close(self) -> None:
        self._conn.close()
