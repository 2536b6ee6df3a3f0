"""The SQLite store: migrations from the repo on a fresh file, insert-or-ignore by natural key, WAL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StoreError, UnsupportedDatabase
from gateway.store import ScanRow, open_store
from gateway.store.migrate import available


def scan(seq: int, site: str = "bridge", node: str = "n1") -> ScanRow:
    return ScanRow(site, node, seq, 1, None, 1000, "forehead", 34.0, 24.0, 36.5, "normal", (), 10, 900, None,
                   "fw", "cal", 36.4, "normal", ("cold_ambient",), "cal", 5, 5)  # fmt: skip


def test_fresh_database_is_built_by_the_migrations_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    open_store(url).close()
    open_store(url).close()  # a second start applies nothing
    with sqlite3.connect(tmp_path / "a.db") as conn:
        versions = conn.execute("SELECT version, name FROM schema_version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [(v, name) for v, name, _ in available()]
    assert mode == "wal"


def test_insert_or_ignore_reports_which_rows_are_new(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    with store.transaction() as tx:
        assert tx.insert_scans([scan(s) for s in (1, 2, 2)]) == [True, True, False]
        assert tx.insert_scans([scan(1), scan(3)]) == [False, True]
        assert tx.insert_scans([scan(1, node="n2")]) == [True]  # the key is (site, node, seq)
    rows = list(store.scans(None, None, None))
    assert [(r.node, r.seq) for r in rows] == [("n1", 1), ("n1", 2), ("n1", 3), ("n2", 1)]
    assert rows[0].gateway_flags == ("cold_ambient",) and rows[0].flags == ()
    store.close()


def test_a_failed_transaction_stores_nothing(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_scans([scan(1)])
        raise RuntimeError("crash mid-batch")
    assert list(store.scans(None, None, None)) == []
    store.close()


def test_database_urls_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDatabase, match="PostgreSQL is not yet supported"):
        open_store("postgresql://localhost/checkpoint")
    with pytest.raises(UnsupportedDatabase, match="unknown database URL"):
        open_store("mysql://localhost/x")
    with pytest.raises(StoreError, match="no database at"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
