"""A stand-in for the gateway's receipts, for firmware tests: a paho client that receipts what it receives.

It subscribes to one node's scan topic (QoS 1), keeps every payload in arrival order, and answers each scan
with `{"v": 1, "seqs": [seq]}` on the node's receipt topic, as the real gateway does after its commit. Set
`receipting = False` to withhold receipts (the node must then keep and resend its records).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class ReceiptingGateway:
    def __init__(self, port: int, site: str, node: str, prefix: str = "checkpoint/v1") -> None:
        self.base = f"{prefix}/{site}/{node}"
        self.receipting = True
        self.scans: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.status: list[dict[str, Any]] = []
        self.health: list[dict[str, Any]] = []
        self._arrived: queue.Queue[int] = queue.Queue()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._health_seen = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"stub-gw-{site}-{node}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._port = port

    def start(self, timeout: float = 10.0) -> ReceiptingGateway:
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("stub gateway: no SUBACK")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe([(self.base + "/scan", 1), (self.base + "/status", 1), (self.base + "/health", 0)])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind == "status":
            self.status.append(body)
            return
        if kind == "health":
            with self._health_seen:
                self.health.append(body)
                self._health_seen.notify_all()
            return
        with self._lock:
            self.scans.append(body)
            self.raw.append(bytes(msg.payload))
        if self.receipting:
            client.publish(self.base + "/receipt", json.dumps({"v": 1, "seqs": [body["seq"]]}), qos=1)
        self._arrived.put(body["seq"])

    def unique_seqs(self) -> list[int]:
        """Seqs in order of first arrival."""
        seen: set[int] = set()
        out: list[int] = []
        with self._lock:
            for s in self.scans:
                if s["seq"] not in seen:
                    seen.add(s["seq"])
                    out.append(s["seq"])
        return out

    def wait_for_seqs(self, count: int, timeout: float) -> list[int]:
        """Block until `count` distinct seqs have arrived (or raise TimeoutError)."""
        deadline = time.monotonic() + timeout
        while len(self.unique_seqs()) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stub gateway: {len(self.unique_seqs())} of {count} scans arrived")
            try:
                self._arrived.get(timeout=left)
            except queue.Empty:
                continue
        return self.unique_seqs()

    def next_health(self, timeout: float) -> dict[str, Any]:
        """The next health message published from now on."""
        with self._health_seen:
            seen = len(self.health)
            if not self._health_seen.wait_for(lambda: len(self.health) > seen, timeout):
                raise TimeoutError("stub gateway: no health message")
            return self.health[-1]

    def publish(self, kind: str, body: dict[str, Any], retain: bool = False) -> None:
        """Send the node a gateway message (config, verdict) on its topic."""
        self._client.publish(f"{self.base}/{kind}", json.dumps(body), qos=1, retain=retain).wait_for_publish(5)
