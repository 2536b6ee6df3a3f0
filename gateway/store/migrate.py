"""Schema migrations: numbered .sql files in gateway/store/migrations/, applied once each, in order, at start.

`schema_version` records what is applied. Each file runs in its own transaction together with its
schema_version row, so a crash mid-migration leaves the previous version intact.

The files are written once, in the SQL that SQLite and PostgreSQL share (natural keys, BIGINT Unix ms, TEXT,
DOUBLE PRECISION, BYTEA, ON CONFLICT). On PostgreSQL `translate` makes the one difference: the time-based
tables (PARTITIONED: scans, alert_events, quarantine) are created partitioned by month on their time column,
whose primary key must then include that column, each with a DEFAULT partition for times outside the monthly
ones (gateway/store/postgres.py makes those as needed). `scans` keeps its (site, node, seq) key in the
unpartitioned `scan_keys` (with scanned_at, for retention): the insert-or-ignore that keeps every scan once,
across partitions and across gateway instances. Every other statement runs as written on both.
"""

from __future__ import annotations

import re
import sqlite3
import time
from importlib import resources
from typing import TYPE_CHECKING

from gateway.errors import StoreError

if TYPE_CHECKING:
    import psycopg

_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql\Z")
PARTITIONED = {"scans": "scanned_at", "alert_events": "at", "quarantine": "received_at"}
SCAN_KEYS = (
    "CREATE TABLE scan_keys (site TEXT NOT NULL, node TEXT NOT NULL, seq BIGINT NOT NULL,"
    " scanned_at BIGINT NOT NULL, PRIMARY KEY (site, node, seq))",
    "CREATE INDEX scan_keys_scanned_at ON scan_keys (scanned_at)",
)
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at BIGINT NOT NULL)"
)
_LOCK_KEY = 0x636B70  # pg_advisory_xact_lock: one gateway migrates at a time


def available() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped, in order."""
    found = []
    for entry in resources.files("gateway.store.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    if [v for v, _, _ in found] != list(range(1, len(found) + 1)):
        raise StoreError("migrations must be numbered 0001, 0002, ... without gaps")
    return found


def _pending(current: int) -> list[tuple[int, str, str]]:
    shipped = available()
    if current > len(shipped):
        raise StoreError(
            f"the database is at schema version {current}, newer than this gateway's {len(shipped)}: upgrade"
        )
    return shipped[current:]


def apply(conn: sqlite3.Connection) -> int:
    """Bring the SQLite database to the newest schema; returns the version it is at."""
    conn.execute(_VERSION_TABLE)
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    for version, name, sql in _pending(current):
        try:
            conn.execute("BEGIN IMMEDIATE")  # another process may be migrating: take the write lock, re-check
            done = conn.execute("SELECT COUNT(*) FROM schema_version WHERE version = ?", (version,)).fetchone()
            if not done[0]:
                for statement in statements(sql, "sqlite"):
                    conn.execute(statement)
                stamp = int(time.time() * 1000)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, name, stamp))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"migration {name} failed: {e}") from e
        current = version
    return int(current)


def apply_postgres(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bring the PostgreSQL database to the newest schema (autocommit connection); returns its version.
    Several gateways starting at once: an advisory lock lets one migrate, the others re-check after it."""
    import psycopg

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_VERSION_TABLE)
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    current = int(row[0]) if row else 0  # type: ignore[call-overload]
    for version, name, sql in _pending(current):
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                done = conn.execute("SELECT COUNT(*) FROM schema_version WHERE version = %s", (version,)).fetchone()
                if done is None or not done[0]:
                    for statement in statements(sql, "postgresql"):
                        conn.execute(statement)
                    stamp = int(time.time() * 1000)
                    conn.execute("INSERT INTO schema_version VALUES (%s, %s, %s)", (version, name, stamp))
        except psycopg.Error as e:
            raise StoreError(f"migration {name} failed on PostgreSQL: {e}") from e
        current = version
    return current


def statements(sql: str, dialect: str) -> list[str]:
    """The statements of a migration file for `dialect` ("sqlite" or "postgresql"): comments dropped, no
    semicolons inside literals in our migrations."""
    out: list[str] = []
    for chunk in sql.split(";"):
        code = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if code:
            out += translate(code) if dialect == "postgresql" else [code]
    return out


_CREATE = re.compile(r"CREATE TABLE (\w+) \(", re.IGNORECASE)
_PKEY = re.compile(r"PRIMARY KEY \(([^)]*)\)", re.IGNORECASE)


def translate(statement: str) -> list[str]:
    """PostgreSQL's statements for one of ours: a time-based table created partitioned (see the docstring)."""
    m = _CREATE.match(statement)
    if m is None or m.group(1).lower() not in PARTITIONED:
        return [statement]
    table = m.group(1).lower()
    col = PARTITIONED[table]
    body = _PKEY.sub(lambda k: f"PRIMARY KEY ({k.group(1)}, {col})", statement)
    out = [f"{body} PARTITION BY RANGE ({col})", f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT"]
    return out + list(SCAN_KEYS) if table == "scans" else out
