"""The gateway for tests: the real service in this process (injectable clock), a stand-in that only receipts
(for firmware tests), and the gateway's CLI as a child process. The real service as a child process that can be
SIGKILLed is sim.process.GatewayProcess (the simulator runs it too); nodes are in testkit/node.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import firmware
from gateway import config as config_mod
from gateway import mqtt as gateway_mqtt
from gateway.service import Gateway
from gateway.store import Store, open_store

REPO = Path(__file__).resolve().parents[1]
contract: Any = firmware.module("contract")  # untyped MicroPython module


def make_config(
    port: int, db_url: str, instance: str = "gw-test", overrides: dict[str, Any] | None = None
) -> config_mod.Config:
    """The config a test runs with: this broker and database, defaults elsewhere; keys as "section.key"."""
    values = {"mqtt.broker": f"mqtt://127.0.0.1:{port}", "store.db": db_url, "gateway.instance": instance}
    values.update(overrides or {})
    return config_mod.load(None, environ={}, overrides=values)


class FakeClock:
    """Wall-clock milliseconds (call it) and a monotonic side (`monotonic()`) that only move when the test moves
    them: `advance` is time passing (both move), `step` is the wall clock being set (NTP, a person): only the
    wall clock moves, either way."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        self.now = start_ms
        self.mono = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self.now

    def monotonic(self) -> int:
        with self._lock:
            return self.mono

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError(f"time does not pass backwards ({ms} ms): use step() to set the wall clock back")
        with self._lock:
            self.now += ms
            self.mono += ms

    def step(self, ms: int) -> None:
        with self._lock:
            self.now += ms


class InProcessGateway:
    """The real gateway service on a thread of this process; `stop()` re-raises what made it fail."""

    def __init__(self, cfg: config_mod.Config, clock: Callable[[], int] | None = None) -> None:
        self.store: Store = open_store(cfg.store.db)
        transport = gateway_mqtt.transport(cfg)
        if isinstance(clock, FakeClock):
            self.gateway = Gateway(cfg, self.store, transport, clock, clock.monotonic)
        elif clock is not None:
            self.gateway = Gateway(cfg, self.store, transport, clock)
        else:
            self.gateway = Gateway(cfg, self.store, transport)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.gateway.run(self.stop_event)
        except BaseException as e:  # surfaced by stop(): a test must see the gateway's own failure
            self.error = e

    def start(self) -> InProcessGateway:
        self.thread.start()
        if not self.gateway.ready.wait(10):
            raise TimeoutError("the gateway did not subscribe within 10 s")
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        self.store.close()
        if self.error is not None:
            raise self.error


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` in a child process (the console script's code path)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=REPO, timeout=60, env=env
    )


class ReceiptingGateway:
    """The gateway's side of the protocol for one node, and nothing else: a paho client that records what the
    node publishes and receipts each scan with `{"v": 1, "seqs": [seq]}`, as the real gateway does after its
    commit. Set `receipting = False` to withhold every receipt, or name seqs in `withhold_once` to withhold
    only their first delivery (the node must then keep and resend them). `scans` are the decoded payloads,
    `raw` the same payloads byte for byte; `subscribed` is set at each SUBACK (clear it before a broker restart
    to wait for the resubscription)."""

    def __init__(
        self, port: int, site: str, node: str, prefix: str = contract.PREFIX, withhold_once: tuple[int, ...] = ()
    ) -> None:
        self.base = f"{prefix}/{site}/{node}"
        self.port = port
        self.receipting = True
        self.withhold = set(withhold_once)
        self.scans: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.status: list[dict[str, Any]] = []  # each with "retained": whether the broker delivered it retained
        self.health: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"stub-gw-{site}-{node}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 1)  # a broker back is seen within a second

    def start(self, timeout: float = 10.0) -> ReceiptingGateway:
        self._client.connect("127.0.0.1", self.port)
        self._client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            raise TimeoutError("receipting gateway: no SUBACK")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe([(self.base + "/scan", 1), (self.base + "/status", 1), (self.base + "/health", 0)])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        kind = msg.topic.rsplit("/", 1)[-1]
        with self._changed:
            if kind == "status":
                self.status.append({**body, "retained": bool(msg.retain)})
            elif kind == "health":
                self.health.append(body)
            else:
                self._scan(client, body, bytes(msg.payload))
            self._changed.notify_all()

    def _scan(self, client: mqtt.Client, body: dict[str, Any], raw: bytes) -> None:
        self.scans.append(body)
        self.raw.append(raw)
        seq = body["seq"]
        if seq in self.withhold:
            self.withhold.discard(seq)
        elif self.receipting:
            client.publish(self.base + "/receipt", json.dumps({"v": 1, "seqs": [seq]}), qos=1)

    def wait(self, done: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Block until `done()` (checked after each message) or `timeout`; whether it is done."""
        with self._changed:
            return self._changed.wait_for(done, timeout)

    def unique_seqs(self) -> list[int]:
        """Seqs in order of first arrival."""
        with self._changed:
            return list(dict.fromkeys(s["seq"] for s in self.scans))

    def first_deliveries(self) -> list[tuple[int, bytes]]:
        """(seq, payload) of each seq's first delivery, in order of arrival."""
        first: dict[int, bytes] = {}
        with self._changed:
            for scan, raw in zip(self.scans, self.raw, strict=True):
                first.setdefault(scan["seq"], raw)
        return list(first.items())

    def deliveries(self, seq: int) -> int:
        with self._changed:
            return sum(1 for s in self.scans if s["seq"] == seq)

    def wait_for_seqs(self, count: int, timeout: float) -> list[int]:
        """Block until `count` distinct seqs have arrived (or raise TimeoutError)."""
        if not self.wait(lambda: len(self.unique_seqs()) >= count, timeout):
            raise TimeoutError(f"receipting gateway: {len(self.unique_seqs())} of {count} scans arrived")
        return self.unique_seqs()

    def next_health(self, timeout: float) -> dict[str, Any]:
        """The next health message published from now on."""
        with self._changed:
            seen = len(self.health)
            if not self._changed.wait_for(lambda: len(self.health) > seen, timeout):
                raise TimeoutError("receipting gateway: no health message")
            return self.health[-1]

    def publish(self, kind: str, body: dict[str, Any] | bytes, retain: bool = False) -> None:
        """Send the node a gateway message (config, verdict) on its topic; bytes go as they are (garbage, or
        b"" with `retain` to clear a retained message)."""
        payload = body if isinstance(body, bytes) else json.dumps(body)
        self._client.publish(f"{self.base}/{kind}", payload, qos=1, retain=retain).wait_for_publish(5)
