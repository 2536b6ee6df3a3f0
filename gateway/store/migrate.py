"""Schema migrations: numbered .sql files in gateway/store/migrations/, applied once each, in order, at start.

`schema_version` records what is applied. Each file runs in its own transaction together with its
schema_version row, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import re
import sqlite3
import time
from importlib import resources

from gateway.errors import StoreError

_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql\Z")


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


def apply(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; returns the version it is at."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at BIGINT NOT NULL)"
    )
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    shipped = available()
    if current > len(shipped):
        raise StoreError(
            f"the database is at schema version {current}, newer than this gateway's {len(shipped)}: upgrade"
        )
    for version, name, sql in shipped[current:]:
        try:
            conn.execute("BEGIN IMMEDIATE")  # another process may be migrating: take the write lock, re-check
            done = conn.execute("SELECT COUNT(*) FROM schema_version WHERE version = ?", (version,)).fetchone()
            if not done[0]:
                for statement in _statements(sql):
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


def _statements(sql: str) -> list[str]:
    """The statements of a migration file (no semicolons inside literals in our migrations)."""
    out = []
    for chunk in sql.split(";"):
        code = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--"))
        if code.strip():
            out.append(chunk)
    return out
