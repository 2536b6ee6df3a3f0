"""The gateway's service loop on a thread with an in-memory broker (testkit/transport.py), a real SQLite store
and a FakeClock: for tests that move time (wall steps, monotonic time passing) and drive messages one by one."""

from __future__ import annotations

import threading
from typing import Any

from gateway import config as config_mod
from gateway.service import Gateway
from gateway.store import Store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport, Sent


def is_event(s: Sent) -> bool:
    """An alert event on the wire (not a receipt, verdict or retained alert state)."""
    return s.kind == "publish" and s.out is not None and s.out.event is not None


class ServiceLoop:
    """`Gateway.run` on a thread; `stop()` ends it. Config: defaults, offline after 30 s checked every second,
    then `overrides` as section__key=value."""

    def __init__(
        self, store: Store, clock: FakeClock | None = None, transport: MemoryTransport | None = None, **overrides: Any
    ) -> None:
        values: dict[str, Any] = {"alerts.offline_after_s": 30, "alerts.check_interval_s": 1.0}
        values.update({k.replace("__", "."): v for k, v in overrides.items()})
        cfg = config_mod.load(None, environ={}, overrides=values)
        self.transport = transport or MemoryTransport()
        self.clock = clock or FakeClock()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.gateway = Gateway(cfg, store, self.transport, self.clock, self.clock.monotonic)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._seq = 0

    def _run(self) -> None:
        try:
            self.gateway.run(self.stop_event)
        except BaseException as e:  # handed to the test
            self.error = e

    def start(self) -> ServiceLoop:
        self.thread.start()
        if not self.gateway.ready.wait(10):
            raise TimeoutError(f"the service loop did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        if self.thread.is_alive():
            raise TimeoutError("the service loop did not stop within 10 s")

    def send(self, node: str, kind: str, body: dict[str, Any], site: str = "bridge") -> None:
        """A message from `node`, processed and acknowledged before this returns."""
        self.transport.wait_acked([self.transport.deliver(f"checkpoint/v1/{site}/{node}/{kind}", body)])

    def scan(self, node: str, seq: int | None = None, **fields: Any) -> None:
        """A scan from `node` (the next seq of this loop unless given), stored and acknowledged."""
        if seq is None:
            self._seq += 1
            seq = self._seq
        self.send(node, "scan", scan_payload("bridge", node, seq, **fields))

    def checked(self) -> None:
        """Returns once a silence check has run on the clock as it is now: the loop checks after each batch, so
        after two batches from the probe node the check that follows the first has run."""
        self.scan("probe")
        self.scan("probe")

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The alert events of this kind published so far, in order."""
        return [s.body() for s in self.transport.published("/alerts/") if is_event(s) and s.body()["kind"] == kind]
