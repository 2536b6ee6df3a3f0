"""Storage behind one interface (base.Store); `open_store(url)` picks the backend from the URL.

URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (one gateway: gateway/store/sqlite.py), and
`postgresql://user@host:port/dbname` (libpq's URI, any of its parameters; several gateways may share it:
gateway/store/postgres.py).
"""

from __future__ import annotations

from pathlib import Path

from gateway.errors import UnsupportedDatabase
from gateway.store.base import (
    AlertEvent,
    AlertRow,
    NodeRow,
    QuarantineRow,
    ScanRow,
    SiteReport,
    Store,
    Transaction,
)

__all__ = [
    "AlertEvent",
    "AlertRow",
    "NodeRow",
    "QuarantineRow",
    "ScanRow",
    "SiteReport",
    "Store",
    "Transaction",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL, or None for another scheme."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not path or path == ":memory:":
        raise UnsupportedDatabase(f"--db {url}: give a file, e.g. sqlite:///var/checkpoint.db")
    return Path(path)


def open_store(url: str, synchronous: str = "full", create: bool = True) -> Store:
    """Open (and migrate) the store at `url`. `create=False` refuses a database that does not exist yet."""
    path = sqlite_path(url)
    if path is not None:
        from gateway.store.sqlite import SqliteStore

        return SqliteStore(path, synchronous, create)
    scheme = url.split(":", 1)[0]
    if scheme in ("postgresql", "postgres"):
        from gateway.store.postgres import PostgresStore

        return PostgresStore(url, synchronous, create)
    raise UnsupportedDatabase(
        f"--db {url!r}: unknown database URL; use sqlite:///path/to/file.db or postgresql://user@host:port/dbname"
    )
