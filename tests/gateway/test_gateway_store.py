"""The store on both backends (SQLite and PostgreSQL, `any_db` in tests/conftest.py): the same migrations on a
fresh database, insert-or-ignore by natural key, a failed transaction, retention; and on PostgreSQL what several
gateway instances sharing the database rely on: each scan new to exactly one, node rows merged, alert races
refused as a Conflict (retried by the service)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway import alerts, cli
from gateway.errors import StorageFault, StoreError, UnsupportedDatabase
from gateway.store import NodeRow, QuarantineRow, ScanRow, migrate, open_store
from gateway.store.migrate import available
from gateway.store.postgres import Conflict, month_of, partition_name
from testkit.postgres import Cluster

DAY_MS = 86_400_000
NOW = int(time.time() * 1000)


def scan(seq: int, site: str = "bridge", node: str = "n1", at: int = 5, verdict: str = "normal") -> ScanRow:
    return ScanRow(site, node, seq, 1, None, 1000 + seq, "forehead", 34.0, 24.0, 36.5, "normal", (), 10, 900, None,
                   "fw", "cal", 36.4, verdict, ("cold_ambient",), "cal", at, at)  # fmt: skip


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the database behind the store's back, with the backend's own driver."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return conn.execute(sql).fetchall()
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_fresh_database_is_built_by_the_migrations_once(any_db: str) -> None:
    open_store(any_db).close()
    open_store(any_db).close()  # a second start applies nothing
    versions = query(any_db, "SELECT version, name FROM schema_version ORDER BY version")
    assert versions == [(v, name) for v, name, _ in available()]
    if any_db.startswith("sqlite"):
        assert query(any_db, "PRAGMA journal_mode")[0][0] == "wal"
    else:  # the time-based tables partitioned by month, this month's partition made at start
        kinds = dict(query(any_db, "SELECT relname, relkind::text FROM pg_class WHERE relname IN"
                                   " ('scans', 'alert_events', 'quarantine', 'scan_keys', 'alerts')"))  # fmt: skip
        assert kinds == {"scans": "p", "alert_events": "p", "quarantine": "p", "scan_keys": "r", "alerts": "r"}
        made = {r[0] for r in query(any_db, "SELECT relname FROM pg_class WHERE relkind = 'r'")}
        assert {partition_name(t, month_of(NOW)) for t in ("scans", "alert_events", "quarantine")} <= made


def test_insert_or_ignore_reports_which_rows_are_new(any_db: str) -> None:
    store = open_store(any_db)
    with store.transaction() as tx:
        assert tx.insert_scans([scan(s) for s in (1, 2, 2)]) == [True, True, False]
        assert tx.insert_scans([scan(1), scan(3)]) == [False, True]
        assert tx.insert_scans([scan(1, node="n2")]) == [True]  # the key is (site, node, seq)
    with store.transaction() as tx:  # a resend filed under another time (another month) is still the same scan
        assert tx.insert_scans([scan(1, at=NOW)]) == [False]
    rows = list(store.scans(None, None, None))
    assert [(r.node, r.seq) for r in rows] == [("n1", 1), ("n1", 2), ("n1", 3), ("n2", 1)]
    assert rows[0].gateway_flags == ("cold_ambient",) and rows[0].flags == ()
    assert rows[0] == scan(1)
    store.close()


def test_a_failed_transaction_stores_nothing(any_db: str) -> None:
    store = open_store(any_db)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert_scans([scan(1)])
        raise RuntimeError("crash mid-batch")
    assert list(store.scans(None, None, None)) == []
    with store.transaction() as tx:  # and the key was not kept either
        assert tx.insert_scans([scan(1)]) == [True]
    store.close()


def test_database_urls_name_what_is_wrong(tmp_path: Path, postgres: Cluster) -> None:
    with pytest.raises(UnsupportedDatabase, match="unknown database URL"):
        open_store("mysql://localhost/x")
    with pytest.raises(StoreError, match="no database at"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    with pytest.raises(StoreError, match="no gateway database at PostgreSQL"):
        open_store(postgres.database(), create=False)  # exists, but no gateway ever started on it
    with pytest.raises(StorageFault, match="cannot be reached"):
        open_store(f"postgresql://postgres@127.0.0.1:{postgres.port + 1 if postgres.port < 65535 else 1}/x")


def test_retention_forgets_old_months_and_keeps_open_alerts(any_db: str) -> None:
    old, recent = NOW - 200 * DAY_MS, NOW - 1 * DAY_MS
    store = open_store(any_db)
    with store.transaction() as tx:
        tx.insert_scans([scan(1, at=old, verdict="elevated"), scan(2, at=recent)])
        tx.insert_quarantine(QuarantineRow(old, "t", "bad_json", 3, b"old"))
        tx.insert_quarantine(QuarantineRow(recent, "t", "bad_json", 3, b"new"))
        fever = alerts.raise_fever(scan(1, at=old), old)
        tx.save_alert(fever.alert, fever.event)
        done = alerts.resolve(fever.alert, "cleared", old + 1000)
        tx.save_alert(done.alert, done.event)
        offline = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n9", "silent", old)  # still open
        tx.save_alert(offline.alert, offline.event)
    store.close()
    assert cli.main(["retention", "--db", any_db, "--older-than", "30"]) == 0
    store = open_store(any_db)
    assert [r.seq for r in store.scans(None, None, None)] == [2]
    assert [q.payload for q in store.quarantine(None, None, None)] == [b"new"]
    assert [a.alert_id for a in store.alerts(None, None, None)] == [offline.alert.alert_id]
    assert [e.n for e in store.alert_events(offline.alert.alert_id)] == [1]  # an open alert keeps its history
    assert [a.alert_id for a, _ in store.alert_states(0)] == [offline.alert.alert_id]
    with store.transaction() as tx:  # the forgotten scan's key is forgotten too
        assert tx.insert_scans([scan(1, at=recent)]) == [True]
    store.close()
    if any_db.startswith("postgresql"):
        tables = {r[0] for r in query(any_db, "SELECT relname FROM pg_class WHERE relkind = 'r'")}
        assert partition_name("scans", month_of(old)) not in tables  # dropped whole, not deleted row by row
        assert partition_name("scans", month_of(recent)) in tables


def test_a_time_outside_the_monthly_partitions_is_kept(postgres: Cluster) -> None:
    store = open_store(postgres.database())
    far = [0, NOW + 400 * DAY_MS]  # 1970 (a node clock never set, trusted) and next year
    with store.transaction() as tx:
        assert tx.insert_scans([scan(1, at=far[0]), scan(2, at=far[1])]) == [True, True]
    assert [r.scanned_at for r in store.scans(None, None, None)] == far
    assert query(store.url, "SELECT COUNT(*) FROM scans_default") == [(2,)]
    store.close()


# --- several gateway instances on one PostgreSQL database -------------------------------------------------


def _waiting_on_a_lock(url: str) -> bool:
    rows = query(url, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    return bool(rows[0][0])


def test_a_scan_is_new_to_exactly_one_of_two_instances(postgres: Cluster) -> None:
    url = postgres.database()
    a, b = open_store(url), open_store(url)
    got: dict[str, list[bool]] = {}

    def second() -> None:
        with b.transaction() as tx:
            got["b"] = tx.insert_scans([scan(1), scan(2), scan(3)])

    with a.transaction() as tx:
        got["a"] = tx.insert_scans([scan(2), scan(3), scan(4)])
        t = threading.Thread(target=second)
        t.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(url):  # b's insert waits for a's uncommitted keys
            assert time.monotonic() < deadline, "the second instance never waited for the first"
    t.join(10)
    assert got == {"a": [True, True, True], "b": [True, False, False]}
    assert [r.seq for r in a.scans(None, None, None)] == [1, 2, 3, 4]
    a.close()
    b.close()


def test_node_rows_merge_across_instances(postgres: Cluster) -> None:
    url = postgres.database()
    a, b = open_store(url), open_store(url)
    with a.transaction() as tx:  # a stores two scans of n1 and saw it at 2000
        tx.insert_scans([scan(1), scan(2)])
        tx.save_node(NodeRow("bridge", "n1", "online", "traffic", 1000, 2000, "fw", 1, scans=2, last_seq=2,
                             heap_free=50_000, health_at=1500))  # fmt: skip
    with b.transaction() as tx:  # b, which heard n1 earlier and only once, writes its older view
        tx.insert_scans([scan(3)])
        tx.save_node(NodeRow("bridge", "n1", "offline", "silent", 1800, 1200, "fw", 1, scans=1, last_seq=3,
                             heap_free=10_000, health_at=1100))  # fmt: skip
    (row,) = a.nodes()
    assert (row.scans, row.last_seq, row.last_seen) == (3, 3, 2000)  # counts add up, newest wins
    assert (row.state, row.state_since, row.heap_free) == ("online", 1000, 50_000)  # no flap to offline
    a.close()
    b.close()


def test_alert_races_between_instances_are_conflicts_retried(postgres: Cluster) -> None:
    url = postgres.database()
    a, b = open_store(url), open_store(url)
    # Both see no open node_offline alert; a raises one first: b's raise is refused, not a second alert.
    with pytest.raises(Conflict, match="same node alert"), b.transaction() as tx_b:
        assert tx_b.open_alert(alerts.NODE_OFFLINE, "bridge", "n1") is None
        with a.transaction() as tx_a:
            first = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n1", "silent", 1000)
            tx_a.save_alert(first.alert, first.event)
        mine = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n1", "silent", 1001)
        tx_b.save_alert(mine.alert, mine.event)
    # Both read the open alert at event 1; a resolves it first: b's change of the same version is refused.
    with pytest.raises(Conflict, match="event counter"), b.transaction() as tx_b:
        seen = tx_b.open_alert(alerts.NODE_OFFLINE, "bridge", "n1")
        assert seen is not None and seen.events == 1
        with a.transaction() as tx_a:
            done = alerts.resolve(seen, "back_online", 2000)
            tx_a.save_alert(done.alert, done.event)
        late = alerts.resolve(seen, "back_online", 2001)
        tx_b.save_alert(late.alert, late.event)
    assert [(x.alert_id, x.events) for x in a.alerts(None, None, None)] == [(first.alert.alert_id, 2)]
    assert [e.n for e in a.alert_events(first.alert.alert_id)] == [1, 2]
    a.close()
    b.close()


def _migrate_to(url: str, last: int, then: str) -> None:
    """Apply the shipped migrations up to version `last` only, then run `then`, with the backend's own driver."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            assert migrate.apply(conn) == last
            conn.execute(then)
        finally:
            conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            assert migrate.apply_postgres(pg) == last
            pg.execute(then)


def test_a_clash_is_kept_by_its_unit_and_clashes_kept_before_units_stay(any_db: str, monkeypatch) -> None:
    """Issue 10 kind 1: two units may make one seq at one boot and uptime; the clashes table is keyed by the
    unit too (migration 0016, which makes the table again: the clashes kept before it stay, with unit 0)."""
    shipped = available()
    [units_at] = [v for v, name, _ in shipped if name.endswith("_scan_unit.sql")]
    monkeypatch.setattr(migrate, "available", lambda: shipped[: units_at - 1])
    cols = "site, node, seq, boot, uptime_ms, mode, verdict, flags, samples, duration_ms, fw, cal, gateway_verdict,"
    _migrate_to(any_db, units_at - 1, f"INSERT INTO scan_clashes ({cols} gateway_flags, gateway_cal, received_at,"
                " scanned_at) VALUES ('bridge', 'n1', 1, 1, 1001, 'forehead', 'normal', '[]', 10, 900, 'fw', 'cal',"
                " 'normal', '[]', 'cal', 5, 5)")  # fmt: skip
    monkeypatch.undo()
    store = open_store(any_db)
    [before] = list(store.clashes(None, None, None))
    assert (before.seq, before.boot, before.uptime_ms, before.unit) == (1, 1, 1001, 0)
    with store.transaction() as tx:
        assert tx.insert_clash(dataclasses.replace(before, unit=0x9E3779B9))  # the same seq, boot and uptime
        assert not tx.insert_clash(dataclasses.replace(before, unit=0x9E3779B9))  # its resend
        assert not tx.insert_clash(before)
        assert tx.insert_scans([dataclasses.replace(scan(1), unit=0x1234ABCD)]) == [True]
        assert tx.scan_origin("bridge", "n1", 1) == (1, 1001, 0x1234ABCD)
    assert sorted(r.unit for r in store.clashes(None, None, None)) == [0, 0x9E3779B9]
    store.close()
