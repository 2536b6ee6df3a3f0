"""The gateway's service loop on an in-memory transport (no broker): commit, then publish, then acknowledge;
alert events marked published only on the broker's acknowledgement; a clean stop drains; the silence check on
an injected clock. The store is the real SQLite one, built by the real migrations in tmp_path."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_mod
from gateway.errors import StoreError
from gateway.service import Gateway
from gateway.store import Store, open_store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport, Sent

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
SCAN_TOPIC = "checkpoint/v1/bridge/n1/scan"


class Running:
    """`Gateway.run` on a thread; `stop()` ends it cleanly, and a test reads what made it fail in `error`."""

    def __init__(self, gateway: Gateway, transport: MemoryTransport) -> None:
        self.gateway, self.transport = gateway, transport
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.gateway.run(self.stop_event)
        except BaseException as e:  # handed to the test
            self.error = e

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        if self.thread.is_alive():
            raise TimeoutError("the service loop did not stop within 10 s")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gateway.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{db_path}")
    yield s
    s.close()


def config(**overrides: Any) -> config_mod.Config:
    """Defaults, with `section__key=value` overrides."""
    return config_mod.load(None, environ={}, overrides={k.replace("__", "."): v for k, v in overrides.items()})


@pytest.fixture
def start(store: Store) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(transport: MemoryTransport | None = None, clock: FakeClock | None = None, **overrides: Any) -> Running:
        transport, clock = transport or MemoryTransport(), clock or FakeClock()
        gateway = Gateway(config(**overrides), store, transport, clock, clock.monotonic)
        started.append(Running(gateway, transport))
        if not gateway.ready.wait(10):
            raise TimeoutError(f"the service loop did not start: {started[-1].error!r}")
        return started[-1]

    yield run
    for r in started:
        r.stop()


def stored_seqs(db_path: Path) -> list[int]:
    """The seqs committed to the database, read on a connection of its own."""
    reader = open_store(f"sqlite:///{db_path}", create=False)
    try:
        return sorted(r.seq for r in reader.scans(None, None, None))
    finally:
        reader.close()


def scan(seq: int, **fields: Any) -> dict[str, Any]:
    return scan_payload("bridge", "n1", seq, **fields)


def test_a_batch_is_committed_before_it_is_acknowledged(start, db_path) -> None:
    transport = MemoryTransport()
    committed_at_ack: list[list[int]] = []
    transport.on_acknowledge = lambda batch: committed_at_ack.append(stored_seqs(db_path))
    start(transport)
    msgs = [transport.deliver(SCAN_TOPIC, scan(seq)) for seq in (1, 2, 3)]
    transport.wait_acked(msgs)
    assert committed_at_ack[-1] == [1, 2, 3]
    assert all(committed_at_ack)  # no acknowledgement ever went out ahead of its commit


def test_a_store_failure_acknowledges_nothing(start, db_path) -> None:
    running = start()
    with sqlite3.connect(db_path) as disk:  # from now on the database refuses every new scan
        disk.execute("CREATE TRIGGER refuse BEFORE INSERT ON scans BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    running.transport.deliver(SCAN_TOPIC, scan(1))
    running.thread.join(10)
    assert isinstance(running.error, StoreError)  # the service stops: the broker keeps the message
    assert running.transport.acked() == set()
    assert running.transport.published("/receipt") == []
    assert running.transport.stopped


def test_receipts_are_published_before_the_acknowledgement(start) -> None:
    transport = start().transport
    msgs = [transport.deliver(SCAN_TOPIC, scan(seq)) for seq in (1, 2)]
    transport.wait_acked(msgs)
    wire = list(transport.wire)
    receipts = [i for i, s in enumerate(wire) if s.kind == "publish" and s.out and s.out.topic.endswith("/receipt")]
    acks = [i for i, s in enumerate(wire) if s.kind == "ack"]
    assert {seq for i in receipts for seq in wire[i].body()["seqs"]} == {1, 2}
    assert max(receipts) < min(acks)


def _fever_event(s: Sent) -> bool:
    return s.kind == "publish" and s.out is not None and s.out.event is not None and s.body()["kind"] == "fever"


def test_alert_events_are_marked_published_only_when_the_broker_acknowledges_them(start, store) -> None:
    transport = MemoryTransport(broker_acks=False)
    start(transport)
    transport.wait_acked([transport.deliver(SCAN_TOPIC, scan(1, **FEVER))])
    sent = transport.wait_for(_fever_event)
    transport.wait_acked([transport.deliver(SCAN_TOPIC, scan(2))])  # a later transaction: still not marked
    assert [e.n for _, e in store.unpublished_events()] == [1]

    transport.confirm([sent.id])
    transport.wait_acked([transport.deliver(SCAN_TOPIC, scan(3))])  # marked in the next transaction
    assert store.unpublished_events() == []


def test_unacknowledged_alert_events_are_published_again_at_start(start, store) -> None:
    first = start(MemoryTransport(broker_acks=False))
    first.transport.wait_acked([first.transport.deliver(SCAN_TOPIC, scan(1, **FEVER))])
    alert_id = first.transport.wait_for(_fever_event).body()["alert_id"]
    first.stop()  # the broker never acknowledged the alert event

    again = start().transport
    assert again.wire[0].kind == "publish" and _fever_event(again.wire[0])
    assert (again.wire[0].body()["alert_id"], again.wire[0].body()["event"]) == (alert_id, 1)
    again.wait_acked([again.deliver(SCAN_TOPIC, scan(2))])
    assert store.unpublished_events() == []


def test_a_clean_stop_stores_and_acknowledges_what_already_arrived(store, db_path) -> None:
    transport = MemoryTransport()
    msgs = [transport.deliver(SCAN_TOPIC, scan(seq)) for seq in range(1, 6)]
    stop = threading.Event()
    stop.set()  # the stop comes with five messages still in the inbox
    clock = FakeClock()
    Gateway(config(ingest__max_batch=2), store, transport, clock, clock.monotonic).run(stop)
    assert stored_seqs(db_path) == [1, 2, 3, 4, 5]
    assert transport.acked() == {m.mid for m in msgs}
    assert [len(s.mids) for s in transport.wire if s.kind == "ack"] == [2, 2, 1]
    assert transport.stopped


def test_the_silence_check_raises_node_offline_on_the_clock(start) -> None:
    clock = FakeClock()
    transport = start(clock=clock, alerts__offline_after_s=30, alerts__check_interval_s=1.0).transport
    transport.wait_acked([transport.deliver(SCAN_TOPIC, scan(1))])
    clock.advance(29_000)
    transport.wait_acked([transport.deliver("checkpoint/v1/bridge/n2/scan", scan_payload("bridge", "n2", 1))])
    assert transport.published("/alerts/") == []  # 29 s of silence: not yet

    clock.advance(2_000)  # n1 past offline_after_s without a word; n2 spoke 2 s ago
    raised = transport.wait_for(lambda s: s.kind == "publish" and s.out is not None and "/alerts/" in s.out.topic)
    body = raised.body()
    assert (body["kind"], body["node"], body["reason"], body["opened_at"]) == ("node_offline", "n1", "silent", clock())
