"""A broker in memory for the gateway's service loop (gateway/transport.py), so unit tests need no Mosquitto.

The test delivers messages as a node would (`deliver`), sees everything the service published and
acknowledged in the order it did so (`wire`), waits for a step with `wait_for` (no sleeps), and decides when
the broker acknowledges a publish (`broker_acks=True` at once; else `confirm`).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.ingest import Incoming, Outgoing


@dataclass(frozen=True)
class Sent:
    """One step on the wire from the gateway: a publish (`out`, `id`) or a PUBACK of a batch (`mids`)."""

    kind: str  # "publish" or "ack"
    out: Outgoing | None = None
    id: int = 0
    mids: tuple[int, ...] = ()

    def body(self) -> Any:
        return json.loads(self.out.payload) if self.out is not None else None


class MemoryTransport:
    def __init__(self, broker_acks: bool = True) -> None:
        self.inbox: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self.acknowledged: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.broker_acks = broker_acks
        self.wire: list[Sent] = []
        self.started = self.stopped = False
        self.on_acknowledge: Callable[[Sequence[Incoming]], None] | None = None  # runs before the ack is sent
        self._changed = threading.Condition()  # re-entrant: the helpers below lock it too
        self._next_mid = 0
        self._next_id = 0

    def deliver(self, topic: str, payload: bytes | dict[str, Any], qos: int = 1) -> Incoming:
        """A message from a node, as the broker hands it over (a fresh message id on connection 1)."""
        self._next_mid += 1
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        msg = Incoming(topic, raw, self._next_mid, qos, gen=1)
        self.inbox.put(msg)
        return msg

    def start(self) -> None:
        self.started = True
        self.ready.set()

    def publish(self, out: Outgoing) -> int:
        self._next_id += 1
        self._record(Sent("publish", out=out, id=self._next_id))
        if self.broker_acks:
            self.acknowledged.put(self._next_id)
        return self._next_id

    def confirm(self, ids: Sequence[int]) -> None:
        """The broker acknowledges these publishes now."""
        for i in ids:
            self.acknowledged.put(i)

    def acknowledge(self, batch: Sequence[Incoming]) -> None:
        if self.on_acknowledge is not None:
            self.on_acknowledge(batch)
        self._record(Sent("ack", mids=tuple(m.mid for m in batch if m.qos > 0)))

    def stop(self) -> None:
        self.ready.clear()
        self.stopped = True
        with self._changed:
            self._changed.notify_all()

    def describe(self) -> str:
        return "an in-memory broker"

    def _record(self, sent: Sent) -> None:
        with self._changed:
            self.wire.append(sent)
            self._changed.notify_all()

    def published(self, topic_part: str = "") -> list[Sent]:
        """The publishes so far whose topic contains `topic_part`."""
        with self._changed:
            return [s for s in self.wire if s.kind == "publish" and s.out is not None and topic_part in s.out.topic]

    def acked(self) -> set[int]:
        with self._changed:
            return {mid for s in self.wire if s.kind == "ack" for mid in s.mids}

    def wait_for(self, match: Callable[[Sent], bool], timeout: float = 10.0) -> Sent:
        """The first step on the wire (so far or to come) that matches."""
        with self._changed:
            found = self._changed.wait_for(lambda: next((s for s in self.wire if match(s)), None), timeout)
        if found is None:
            raise AssertionError(f"nothing matching on the wire within {timeout} s; saw {self.wire}")
        return found

    def wait_acked(self, msgs: Sequence[Incoming], timeout: float = 10.0) -> None:
        want = {m.mid for m in msgs}
        with self._changed:
            if not self._changed.wait_for(lambda: want <= self.acked(), timeout):
                raise AssertionError(f"messages {sorted(want)} not acknowledged within {timeout} s; saw {self.wire}")
