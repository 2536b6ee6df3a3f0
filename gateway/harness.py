"""Harness for tests, benchmarks and the simulator: a gateway in this process (injectable clock) or as a real
`python -m gateway run` process (for SIGKILL), an MQTT watcher for what the gateway publishes, the CLI as a
child process. Nodes are in gateway/testing.py.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import config as config_mod
from gateway.service import Gateway
from gateway.store import Store, open_store

REPO = Path(__file__).resolve().parents[1]


def make_config(
    port: int, db_url: str, instance: str = "gw-test", overrides: dict[str, Any] | None = None
) -> config_mod.Config:
    """The config a test runs with: this broker and database, defaults elsewhere; keys as "section.key"."""
    values = {"mqtt.broker": f"mqtt://127.0.0.1:{port}", "store.db": db_url, "gateway.instance": instance}
    values.update(overrides or {})
    return config_mod.load(None, environ={}, overrides=values)


class FakeClock:
    """Wall-clock milliseconds that only move when the test moves them."""

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        self.now = start_ms
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self.now

    def advance(self, ms: int) -> None:
        with self._lock:
            self.now += ms


class InProcessGateway:
    def __init__(self, cfg: config_mod.Config, clock: Callable[[], int] | None = None) -> None:
        self.store: Store = open_store(cfg.store.db)
        self.gateway = Gateway(cfg, self.store, clock) if clock else Gateway(cfg, self.store)
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


class Watcher:
    """Collects every message on a topic filter (JSON payloads), from the broker's point of view."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{os.getpid()}-{id(self)}")
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, json.loads(m.payload)))
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        if not subscribed.wait(5):
            raise TimeoutError("watcher: no SUBACK")

    def wait_for(self, match: Callable[[str, Any], bool], timeout: float = 10.0) -> tuple[str, Any]:
        """The next message that matches (earlier ones stay in `seen`)."""
        while True:
            try:
                topic, body = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching message within {timeout} s; saw {self.seen}") from None
            self.seen.append((topic, body))
            if match(topic, body):
                return topic, body

    def drain(self) -> list[tuple[str, Any]]:
        while True:
            try:
                self.seen.append(self.messages.get_nowait())
            except queue.Empty:
                return self.seen

    def close(self) -> None:
        self.client.disconnect()  # first: it wakes the network thread, so loop_stop does not wait for select
        self.client.loop_stop()


class GatewayProcess:
    """`python -m gateway run` as a child process: a real service that can be SIGKILLed."""

    def __init__(self, port: int, db_url: str, workdir: Path, instance: str = "gw-proc") -> None:
        self.port, self.db_url, self.workdir, self.instance = port, db_url, workdir, instance
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self, timeout: float = 15.0) -> None:
        self.starts += 1
        log = open(self.workdir / f"gateway-{self.starts}.log", "w")  # noqa: SIM115 - closed with the process
        cmd = [sys.executable, "-m", "gateway", "run", "--broker", f"mqtt://127.0.0.1:{self.port}",
               "--db", self.db_url, "--instance", self.instance]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO)
        watcher = Watcher(self.port, f"checkpoint/v1/gateway/{self.instance}/status")
        try:
            pid = self.proc.pid
            watcher.wait_for(lambda t, b: b.get("state") == "online" and b.get("pid") == pid, timeout)
        finally:
            watcher.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` in a child process (the console script's code path)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )
