"""Issue 10, kind 9: durations use a monotonic clock, the wall clock only for what is shown and stored.

The gateway's service loop on an in-memory broker (testkit/transport.py) with a FakeClock whose wall side can
be stepped (NTP, a person setting the clock) while its monotonic side only moves as time passes. Before the
fix a +1 h step raised 5 of 5 false node_offline alerts and a -1 h step hid a silent node for an hour.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_mod
from gateway.service import Gateway
from gateway.store import Store, open_store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport, Sent

HOUR = 3_600_000
NODES = [f"n{i}" for i in range(1, 6)]
INVALID = {"t_site_c": None, "t_amb_c": None, "t_core_c": None, "verdict": "invalid", "flags": ["sensor_fault"]}


class Loop:
    """The service loop on a thread with an in-memory broker and a fake clock; stopped by the fixture."""

    def __init__(self, store: Store, clock: FakeClock, **overrides: Any) -> None:
        values = {"alerts.offline_after_s": 30, "alerts.check_interval_s": 1.0}
        values.update({k.replace("__", "."): v for k, v in overrides.items()})
        cfg = config_mod.load(None, environ={}, overrides=values)
        self.transport, self.clock, self.stop_event = MemoryTransport(), clock, threading.Event()
        self.gateway = Gateway(cfg, store, self.transport, clock, clock.monotonic)
        self.thread = threading.Thread(target=self.gateway.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        assert self.gateway.ready.wait(10)
        self._seq = 0

    def scan(self, node: str, **fields: Any) -> None:
        """A scan from `node`, stored and acknowledged before this returns."""
        self._seq += 1
        msg = self.transport.deliver(
            f"checkpoint/v1/bridge/{node}/scan", scan_payload("bridge", node, self._seq, **fields)
        )
        self.transport.wait_acked([msg])

    def checked(self) -> None:
        """Returns once a silence check has run on the clock as it is now: the loop checks after each batch, so
        after two batches from the probe node the check that follows the first has run."""
        self.scan("probe")
        self.scan("probe")

    def alerts(self, kind: str) -> list[dict[str, Any]]:
        return [s.body() for s in self.transport.published("/alerts/bridge") if _event(s) and s.body()["kind"] == kind]


def _event(s: Sent) -> bool:
    return s.out is not None and s.out.event is not None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield s
    s.close()


@pytest.fixture
def loop(store: Store) -> Iterator[Loop]:
    running = Loop(store, FakeClock())
    yield running
    running.stop_event.set()
    running.thread.join(10)


def test_a_wall_clock_step_forward_raises_no_false_offline(loop: Loop) -> None:
    for node in NODES:
        loop.scan(node)
    loop.clock.step(HOUR)  # NTP corrects the gateway's clock by an hour; no time passed
    loop.clock.advance(2_000)
    loop.checked()
    assert loop.alerts("node_offline") == []


def test_a_wall_clock_step_back_does_not_hide_a_silent_node(loop: Loop) -> None:
    for node in NODES:
        loop.scan(node)
    loop.clock.step(-HOUR)
    loop.clock.advance(31_000)  # 31 s of real silence, past offline_after_s = 30
    loop.checked()
    offline = loop.alerts("node_offline")
    assert sorted(a["node"] for a in offline) == NODES
    assert {a["opened_at"] for a in offline} == {loop.clock()}  # shown in wall time, as it is now


def test_the_sensor_fault_window_is_measured_on_the_monotonic_clock(loop: Loop) -> None:
    """Three sensor faults within 300 s raise sensor_fault, whatever the wall clock does in between."""
    loop.scan("n1", **INVALID)
    loop.scan("n1", **INVALID)
    loop.clock.step(HOUR)  # before the fix the window saw an hour pass and forgot the first two faults
    loop.clock.advance(10_000)
    loop.scan("n1", **INVALID)
    [fault] = loop.alerts("sensor_fault")
    assert (fault["node"], fault["reason"]) == ("n1", "repeated_sensor_faults")
