"""Watch MQTT topics from the broker's point of view: every message on a filter, JSON-decoded, as it arrives.

The simulator watches the gateway's status (is it online?) and its alerts (when each fever alert arrived);
tests and benchmarks watch whatever the gateway publishes with the same class.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

Match = Callable[[str, Any], bool]


class Watcher:
    """Collects every message on `topic` (a filter). Payloads that are not JSON are counted in `undecodable`
    and skipped. `on_message(topic, body, arrived)` (time.monotonic()) runs on paho's network thread."""

    def __init__(
        self,
        port: int,
        topic: str,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        on_message: Callable[[str, Any, float], None] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        """`auth`: (username, password) for a broker that wants them (a RabbitMQ cluster's members)."""
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        self.undecodable = 0
        self._on_message = on_message
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{os.getpid()}-{id(self)}")
        self.client.on_message = lambda c, u, m: self._arrived(m.topic, bytes(m.payload))
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)  # again after a broker restart
        self.client.on_subscribe = lambda *a: subscribed.set()
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.connect(host, port)
        self.client.loop_start()
        if not subscribed.wait(timeout):
            self.close()
            raise TimeoutError(f"watcher: no SUBACK for {topic} from {host}:{port} within {timeout} s")

    def _arrived(self, topic: str, payload: bytes) -> None:
        arrived = time.monotonic()
        try:
            body = json.loads(payload)
        except ValueError:
            self.undecodable += 1
            return
        if self._on_message is not None:
            self._on_message(topic, body, arrived)
        self.messages.put((topic, body))

    def wait_for(self, match: Match, timeout: float = 10.0) -> tuple[str, Any]:
        """The next message that matches (earlier ones stay in `seen`); TimeoutError if none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                topic, body = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no matching message within {timeout} s; saw {self.seen}") from None
            self.seen.append((topic, body))
            if match(topic, body):
                return topic, body

    def drain(self) -> list[tuple[str, Any]]:
        """Everything seen so far, including what arrived since the last wait."""
        while True:
            try:
                self.seen.append(self.messages.get_nowait())
            except queue.Empty:
                return self.seen

    def close(self) -> None:
        self.client.disconnect()  # first: it wakes the network thread, so loop_stop does not wait for select
        self.client.loop_stop()
