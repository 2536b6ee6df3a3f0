"""Issue 11 items 4 and 5 at the gateway, with the issue's own inputs, on the real service loop and SQLite store
(testkit/service.py: an in-memory broker, so the flood reaches the gateway whatever the broker would refuse: an
ACL mistake, a compromised broker). The node registry holds one node, bridge-1/lane-1, which keeps scanning
through each flood; its scans must all be stored and receipted.

- 1,000 topics with a 60 KB site level (the issue: 74 MB of database): now at most PER_SOURCE quarantine rows
  of at most TOPIC_HEAD_BYTES + PAYLOAD_HEAD_BYTES each, the rest counted in quarantine_sources;
- online/offline under 2,000 invented sites (the issue: 2,000 node_offline alerts in 13 s): no node row, no
  alert, no receipt for any of them; each identity quarantined once at most, ALL_SOURCES rows a window at most.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import quarantine
from gateway.signing import NodeEntry, Registry, new_key
from gateway.store import Store, open_store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.service import ServiceLoop

P = "checkpoint/v1"
SITE, NODE = "bridge-1", "lane-1"
# quarantine rows: topic head + "...(+N bytes)" + payload head + the row's other columns and SQLite's overhead
ROW_BOUND = quarantine.TOPIC_HEAD_BYTES + 24 + quarantine.PAYLOAD_HEAD_BYTES + 120


def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.json"
    Registry({(SITE, NODE): NodeEntry(SITE, NODE, new_key(), f"{SITE}.{NODE}", 0)}).save(path)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gw.db"


@pytest.fixture
def loop(tmp_path: Path, db: Path) -> Iterator[ServiceLoop]:
    store = open_store(f"sqlite:///{db}")
    running = ServiceLoop(store, FakeClock(), gateway__registry=str(registry_file(tmp_path))).start()
    yield running
    running.stop()
    store.close()


def db_bytes(db: Path) -> int:
    """The database's size with its WAL checkpointed into it (a connection of the test's own)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ((pages,),), ((page_size,),) = conn.execute("PRAGMA page_count"), conn.execute("PRAGMA page_size")
        return int(pages) * int(page_size)
    finally:
        conn.close()


def valid_scans(loop: ServiceLoop, seqs: range) -> None:
    for seq in seqs:
        loop.transport.deliver(f"{P}/{SITE}/{NODE}/scan", scan_payload(SITE, NODE, seq))


def receipted(loop: ServiceLoop) -> set[int]:
    return {seq for s in loop.transport.published(f"{SITE}/{NODE}/receipt") for seq in s.body()["seqs"]}


def rows(store: Store) -> list[Any]:
    return list(store.quarantine(None, None, None))


def test_a_thousand_topics_with_a_60_kb_site_level_grow_the_database_by_a_bounded_head(
    loop: ServiceLoop, db: Path
) -> None:
    valid_scans(loop, range(10))
    loop.send(NODE, "scan", scan_payload(SITE, NODE, 10), site=SITE)
    store = loop.gateway.store
    before = db_bytes(db)
    flood = []
    for i in range(1000):
        site_level = (f"{i:04d}" + "x" * 60_000)[:60_000]
        flood.append(loop.transport.deliver(f"{P}/{site_level}/{NODE}/scan", scan_payload("bridge-1", NODE, i)))
        if i % 100 == 0:
            valid_scans(loop, range(11 + i // 100, 12 + i // 100))
    loop.transport.wait_acked(flood)
    loop.send(NODE, "scan", scan_payload(SITE, NODE, 100), site=SITE)
    kept = rows(store)
    assert len(kept) == quarantine.PER_SOURCE and {r.reason for r in kept} == {"bad_topic"}
    assert all(len(r.topic.encode()) <= quarantine.TOPIC_HEAD_BYTES + 24 for r in kept)
    assert all(len(r.payload) <= quarantine.PAYLOAD_HEAD_BYTES for r in kept)
    (counted,) = store.quarantine_sources()
    assert (counted.source, counted.kept, counted.dropped) == (P, quarantine.PER_SOURCE, 1000 - quarantine.PER_SOURCE)
    assert loop.gateway.writer is not None and loop.gateway.writer.limits.dropped == 1000 - quarantine.PER_SOURCE
    assert receipted(loop) == {*range(21), 100}  # every valid scan stored and receipted meanwhile
    assert len(list(store.scans(None, None, SITE))) == 22
    loop.stop()
    store.close()
    growth = db_bytes(db) - before
    print(f"database growth for 1,000 topics with a 60 KB site level: {growth} bytes")
    # the bound: the rows kept, a counter row and the 12 valid scans (about 1 KB each), in 4 KB pages
    assert growth <= 4096 * (1 + (quarantine.PER_SOURCE * ROW_BOUND + 12 * 1024) // 4096 + 2)


def status(state: str) -> dict[str, Any]:
    return {"v": 1, "state": state, "fw": "0.1.0", "boot": 1}


def test_two_thousand_invented_sites_create_no_node_and_no_alert(loop: ServiceLoop) -> None:
    flood = []
    for i in range(2000):
        site = f"fake-{i}"
        flood.append(loop.transport.deliver(f"{P}/{site}/{NODE}/status", status("online")))
        flood.append(loop.transport.deliver(f"{P}/{site}/{NODE}/status", status("offline")))
        if i % 200 == 0:
            valid_scans(loop, range(i // 200, i // 200 + 1))
    loop.transport.wait_acked(flood)
    loop.clock.advance(quarantine.WINDOW_MS)  # past offline_after_s (30 s here) and into a new quarantine window
    loop.send(NODE, "scan", scan_payload(SITE, NODE, 50), site=SITE)
    loop.send(NODE, "scan", scan_payload(SITE, NODE, 51), site=SITE)  # the silence check after the first has run
    store = loop.gateway.store
    assert [(n.site, n.node) for n in store.nodes()] == [(SITE, NODE)]
    assert store.alerts(None, None, None) == []
    assert not [s for s in loop.transport.published() if "/fake-" in (s.out.topic if s.out else "")]
    assert receipted(loop) == {*range(10), 50, 51}
    kept = rows(store)
    assert len(kept) == quarantine.ALL_SOURCES and {r.reason for r in kept} == {quarantine.UNKNOWN_IDENTITY}
    assert len({(r.site, r.node) for r in kept}) == quarantine.ALL_SOURCES  # once per identity
    sources = store.quarantine_sources()
    assert len(sources) == quarantine.MAX_SOURCES + 1 and sources[0].source == quarantine.OVERFLOW
    assert sum(s.kept + s.dropped for s in sources) == 4000
    assert sum(s.dropped for s in sources) == 4000 - quarantine.ALL_SOURCES

    # A window later: an identity that has its row only counts; one that had none gets its one row.
    first = kept[0]
    loop.send(NODE, "status", status("offline"), site=str(first.site))
    loop.send(NODE, "status", status("offline"), site="fake-999")
    again = rows(store)
    assert len(again) == quarantine.ALL_SOURCES + 1 and again[-1].site == "fake-999"
    assert store.alerts(None, None, None) == [] and len(store.nodes()) == 1


def test_a_retired_node_is_an_unknown_identity(tmp_path: Path) -> None:
    path = registry_file(tmp_path)
    reg = Registry.load(path)
    reg.retire(SITE, NODE, 1)
    reg.save(path)
    store = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    loop = ServiceLoop(store, FakeClock(), gateway__registry=str(path)).start()
    try:
        loop.send(NODE, "scan", scan_payload(SITE, NODE, 1, t_core_c=39.4, verdict="elevated"), site=SITE)
        loop.send(NODE, "scan", scan_payload(SITE, NODE, 2), site=SITE)
        assert store.nodes() == [] and store.alerts(None, None, None) == [] and not receipted(loop)
        assert [r.reason for r in rows(store)] == ["unknown_identity"]  # once: the second only counted
        (counted,) = store.quarantine_sources()
        assert (counted.source, counted.kept, counted.dropped, counted.identity_row) == (f"{SITE}/{NODE}", 1, 1, 1)
        assert rows(store)[0].payload.startswith(b'{"v": 1, "site": "bridge-1", "node": "lane-1", "seq": 1,')
    finally:
        loop.stop()
        store.close()


def test_without_a_registry_every_node_is_admitted(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    loop = ServiceLoop(store, FakeClock()).start()
    try:
        loop.send("lane-7", "scan", scan_payload("anywhere", "lane-7", 1), site="anywhere")
        assert [(n.site, n.node) for n in store.nodes()] == [("anywhere", "lane-7")] and rows(store) == []
    finally:
        loop.stop()
        store.close()


def test_the_counters_on_both_backends(any_db: str) -> None:
    """quarantine_sources adds up and keeps an identity's row mark; downlink_counters only rises."""
    store = open_store(any_db)
    try:
        with store.transaction() as tx:
            tx.count_quarantine("x/y", quarantine.UNKNOWN_IDENTITY, True, 5)
            tx.count_quarantine("x/y", quarantine.UNKNOWN_IDENTITY, False, 7)
            tx.count_quarantine("x/y", "not_json", False, 9)
            tx.raise_counter("gateway-1", 100)
            tx.raise_counter("gateway-1", 50)
        (s,) = store.quarantine_sources()
        assert (s.source, s.first_at, s.last_at, s.last_reason, s.kept, s.dropped, s.identity_row) == (
            "x/y",
            5,
            9,
            "not_json",
            1,
            2,
            1,
        )
        limiter = quarantine.Limiter.stored(store.quarantine_sources(), lambda: 0)
        assert limiter.admit("x/y", quarantine.UNKNOWN_IDENTITY) == ("x/y", False)  # its one row is stored
        assert store.counter("gateway-1") == 100 and store.counter("gateway-2") == 0
    finally:
        store.close()
