"""`checkpoint-gateway backup --to FILE` while the gateway ingests, then `backup --restore FILE`: the restored
database holds exactly the scans committed when the backup was taken (whole batches, a prefix of what one node
sent in order), rows identical to the live database's."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway import cli
from gateway import config as config_mod
from gateway.service import Gateway
from gateway.store import open_store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport

SCANS = 3000


def _scans(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute("SELECT site, node, seq, t_site_c, gateway_verdict FROM scans ORDER BY seq"))
    finally:
        conn.close()


def test_a_backup_taken_while_the_gateway_ingests_restores_what_was_committed(tmp_path: Path) -> None:
    db, copy, restored = tmp_path / "live.db", tmp_path / "backup.db", tmp_path / "restored.db"
    cfg = config_mod.load(None, environ={}, overrides={"store.db": f"sqlite:///{db}", "ingest.max_batch": 50})
    store, transport, stop, clock = open_store(cfg.store.db), MemoryTransport(), threading.Event(), FakeClock()
    gw = Gateway(cfg, store, transport, clock, clock.monotonic)
    thread = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    thread.start()
    assert gw.ready.wait(10)
    sent: list[Any] = []
    feeding = threading.Event()

    def feed() -> None:  # a node sending scans in seq order for as long as the test lets it
        while (not feeding.is_set() and len(sent) < 10 * SCANS) or len(sent) < 2 * SCANS:
            sent.append(
                transport.deliver("checkpoint/v1/bridge/lane-1/scan", scan_payload("bridge", "lane-1", len(sent)))
            )

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    transport.wait_for(lambda s: s.kind == "ack")  # ingesting
    before = len(_scans(db))
    assert cli.main(["backup", "--db", f"sqlite:///{db}", "--to", str(copy)]) == 0
    after = len(_scans(db))
    feeding.set()
    feeder.join(30)
    transport.wait_acked(sent, timeout=60)
    stop.set()
    thread.join(10)
    store.close()
    taken = _scans(copy)
    assert 0 < before <= len(taken) <= after  # the database as it was at one commit during the backup
    assert [r[2] for r in taken] == list(range(len(taken)))  # whole batches: the committed prefix, nothing torn
    live = _scans(db)
    assert (
        len(live) == len(sent) > len(taken) and taken == live[: len(taken)]
    )  # the same rows as the live ones  # the same rows as the live database
    assert cli.main(["backup", "--db", f"sqlite:///{restored}", "--restore", str(copy)]) == 0
    assert _scans(restored) == taken
    again = open_store(f"sqlite:///{restored}", create=False)  # a gateway opens it: the schema is current
    again.close()


def test_backup_refuses_postgresql_and_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["backup", "--db", "postgresql://gw@127.0.0.1:5432/checkpoint", "--to", "x.db"]) == 1
    assert "pg_dump" in capsys.readouterr().err
    assert cli.main(["backup", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--to", str(tmp_path / "b.db")]) == 1
    assert "no database" in capsys.readouterr().err
