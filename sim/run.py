"""`checkpoint-sim run`: posts full of nodes running the real firmware, a real broker and gateway, faults, truth.

The simulation owns a Mosquitto (project config, loopback, persistence so a broker restart keeps sessions)
unless `--broker` names one, and always runs its own gateway (`python -m gateway run`) on a SQLite file, so it
can kill and restart both on schedule. Every node runs firmware/ under CPython on simulated hardware
(sim/post.py). At the end the lanes close, the nodes drain their outboxes (every scan receipted), the gateway
stops, and what it stored is read back through `checkpoint-gateway export` and compared with what the nodes
recorded and who the travellers really were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import export
from gateway.harness import GatewayProcess
from sim.broker import Broker
from sim.post import Result, SimNode, install_task_tracking
from sim.scenario import Fault, Scenario, ScenarioError
from sim.summary import summarise

REPO = Path(__file__).resolve().parents[1]
DRAIN_TIMEOUT_S = 120.0  # real seconds to wait for every node's outbox to be receipted at the end
PROGRESS_EVERY_S = 5.0
GARBAGE = (
    b"\xff\xfe not utf-8",
    b"{not json",
    b'{"v": 1, "site": "x"}',
    b'{"v": 99}',
    b"[" * 5000,
)


@dataclass
class Options:
    scenario: Scenario
    workdir: Path
    broker_url: str | None = None
    db_url: str | None = None
    progress: IO[str] = field(default_factory=lambda: sys.stderr)


def _day(scans: list[dict[str, Any]]) -> str | None:
    """The (UTC) day the scans were made on, for `checkpoint-gateway report --day`."""
    if not scans:
        return None
    first = min(int(s["scanned_at"]) for s in scans)
    return datetime.fromtimestamp(first / 1000, UTC).strftime("%Y-%m-%d")


class AlertWatcher:
    """Subscribes to the alerts topic: when each fever alert arrived (for latency) and how many."""

    def __init__(self, port: int, prefix: str = "checkpoint/v1") -> None:
        self.raised: dict[tuple[str, str, int], float] = {}
        self.events = 0
        self._q: queue.Queue[bytes] = queue.Queue()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-alerts-{id(self)}")
        self.client.on_message = lambda c, u, m: self._on(bytes(m.payload))
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/alerts/+", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("alert watcher: no SUBACK from the broker within 10 s")

    def _on(self, payload: bytes) -> None:
        now = time.monotonic()
        try:
            body = json.loads(payload)
        except ValueError:
            return
        self.events += 1
        if body.get("kind") == "fever" and body.get("state") == "raised" and isinstance(body.get("seq"), int):
            self.raised.setdefault((body["site"], body["node"], body["seq"]), now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Simulation:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.s = options.scenario
        self.results: list[Result] = []
        self.nodes: dict[str, SimNode] = {}
        self.faults_applied: list[dict[str, Any]] = []
        self.garbage_sent = 0
        self.broker: Broker | None = None
        self.gateway: GatewayProcess | None = None
        self.port = 0
        self.db_url = ""
        self.rng = random.Random(self.s.seed)

    # --- set-up
    def _start_services(self) -> None:
        wd = self.o.workdir
        wd.mkdir(parents=True, exist_ok=True)
        # A simulation starts from new nodes and, unless --db names one, a new database: the summary compares
        # this run's scans with what the gateway stored.
        shutil.rmtree(wd / "nodes", ignore_errors=True)
        if self.o.db_url is None:
            for old in wd.glob("gateway.db*"):
                old.unlink()
        if self.o.broker_url is None:
            self.broker = Broker(workdir=wd / "broker", persistent=True).start()
            self.port = self.broker.port
        else:
            url = urlparse(self.o.broker_url)
            if url.scheme != "mqtt" or url.hostname not in ("127.0.0.1", "localhost") or not url.port:
                raise ScenarioError(f"--broker {self.o.broker_url}: use mqtt://127.0.0.1:PORT (loopback)")
            if any(f.kind == "broker_restart" for f in self.s.faults):
                raise ScenarioError("broker_restart needs the simulator's own broker: drop --broker")
            self.port = url.port
        self.db_url = self.o.db_url or f"sqlite:///{wd / 'gateway.db'}"
        self.gateway = GatewayProcess(self.port, self.db_url, wd, instance="sim-gateway")
        self.gateway.start()

    def _on_result(self, r: Result) -> None:
        self.results.append(r)

    def _make_nodes(self) -> None:
        for i, (site_name, name) in enumerate(self.s.node_names()):
            site = next(s for s in self.s.sites if s.name == site_name)
            root = self.o.workdir / "nodes" / name
            self.nodes[name] = SimNode(self.s, site, name, self.port, root, self._on_result, self.s.seed * 1000 + i)

    # --- faults
    async def _fault(self, f: Fault, clock_s: Any) -> None:
        while clock_s() < f.at_s:
            await asyncio.sleep(min(0.2, (f.at_s - clock_s()) / self.s.speed))
        self.faults_applied.append({"at_s": round(clock_s(), 1), "kind": f.kind, "node": f.node})
        self._say(f"fault: {f.kind}{' on ' + f.node if f.node else ''} for {f.duration_s:g} s")
        real = f.duration_s / self.s.speed
        node = self.nodes.get(f.node or "")
        if f.kind == "wifi_drop" and node:
            node.wifi(False)
            await asyncio.sleep(real)
            node.wifi(True)
        elif f.kind in ("sensor_error_flag", "sensor_bus_noise") and node:
            kind = f.kind.removeprefix("sensor_")
            node.sensor_fault(kind, True)
            await asyncio.sleep(real)
            node.sensor_fault(kind, False)
        elif f.kind == "power_cut" and node:
            node.power_cut(torn=self.rng.random() < 0.5)
            await asyncio.sleep(real)
            node.power_on()
        elif f.kind == "garbage" and node:
            await asyncio.to_thread(self._publish_garbage, node)
        elif f.kind == "broker_restart" and self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
            await asyncio.sleep(real)
            await asyncio.to_thread(self.broker.start)
        elif f.kind == "gateway_restart" and self.gateway is not None:
            await asyncio.to_thread(self.gateway.kill)
            await asyncio.sleep(real)
            await asyncio.to_thread(self.gateway.start, 30.0)

    def _publish_garbage(self, node: SimNode) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-garbage-{node.name}")
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        try:
            topic = f"checkpoint/v1/{node.site.name}/{node.name}/scan"
            for payload in GARBAGE:
                c.publish(topic, payload, qos=1).wait_for_publish(10)
                self.garbage_sent += 1
        finally:
            c.disconnect()
            c.loop_stop()

    # --- progress
    def _say(self, text: str) -> None:
        print(f"[sim] {text}", file=self.o.progress, flush=True)

    async def _progress(self, clock_s: Any, done: asyncio.Event) -> None:
        while not done.is_set():
            made = sum(1 for r in self.results if r.seq is not None)
            pending = sum(n.depth for n in self.nodes.values())
            travellers = sum(n.travellers for n in self.nodes.values())
            elevated = sum(1 for r in self.results if r.verdict == "elevated")
            up = sum(1 for n in self.nodes.values() if n.connected)
            self._say(
                f"t={clock_s():5.0f}/{self.s.duration_s:g} s  travellers {travellers}  scans {made}  "
                f"awaiting receipt {pending}  elevated {elevated}  nodes online {up}/{len(self.nodes)}"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), PROGRESS_EVERY_S)

    # --- the run
    async def _simulate(self) -> None:
        install_task_tracking(asyncio.get_running_loop())
        for node in self.nodes.values():
            node.power_on()
        t0 = time.monotonic()

        def clock_s() -> float:
            return (time.monotonic() - t0) * self.s.speed

        done = asyncio.Event()
        progress = asyncio.create_task(self._progress(clock_s, done))
        faults = [asyncio.create_task(self._fault(f, clock_s)) for f in self.s.faults]
        lanes = [asyncio.create_task(n.lane(self.s.rate_per_min, self.s.duration_s)) for n in self.nodes.values()]
        await asyncio.gather(*lanes)
        remaining = max(0.0, self.s.duration_s - clock_s()) / self.s.speed
        await asyncio.sleep(remaining)
        self._say("lanes closed")
        if not all(f.done() for f in faults):
            self._say("waiting for the faults in progress to end")
        await asyncio.gather(*faults)
        self._say("waiting for every node's outbox to be receipted by the gateway")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while any(n.depth for n in self.nodes.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        left = sum(n.depth for n in self.nodes.values())
        if left:
            self._say(f"warning: {left} scans still awaiting receipt after {DRAIN_TIMEOUT_S:g} s")
        done.set()
        await progress
        for node in self.nodes.values():
            await node.stop()

    def _write_truth(self) -> None:
        """Ground truth, one line per scan the nodes recorded: the traveller behind it and their real core."""
        with open(self.o.workdir / "truth.jsonl", "w") as f:
            for r in self.results:
                t = r.traveller
                row = {
                    **{k: getattr(r, k) for k in ("site", "node", "seq", "verdict", "t_site_c", "flags")},
                    "traveller": None if t is None else t.id,
                    "core_c": None if t is None else round(t.core_c, 2),
                    "febrile": None if t is None else t.febrile,
                }
                f.write(json.dumps(row) + "\n")

    def _stored(self, what: str) -> list[dict[str, Any]]:
        cmd = [sys.executable, "-m", "gateway", "export", "--what", what, "--format", "jsonl", "--db", self.db_url]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"checkpoint-gateway export --what {what} failed: {out.stderr.strip()}")
        return export.read(what, "jsonl", StringIO(out.stdout))

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self._start_services()
        watcher = AlertWatcher(self.port)
        log = open(self.o.workdir / "firmware.log", "w")  # noqa: SIM115 - closed below
        try:
            self._make_nodes()
            self._say(
                f"{len(self.nodes)} nodes at {len(self.s.sites)} sites, broker 127.0.0.1:{self.port}, "
                f"gateway db {self.db_url}, {self.s.duration_s:g} s simulated at x{self.s.speed:g}"
            )
            self._say(f"node logs: {self.o.workdir / 'firmware.log'}; gateway logs: {self.o.workdir}/gateway-*.log")
            self._say(f"watch alerts live: mosquitto_sub -p {self.port} -t 'checkpoint/v1/alerts/#' -v")
            with contextlib.redirect_stdout(log):
                asyncio.run(self._simulate())
        finally:
            log.close()
            watcher.close()
            if self.gateway is not None and self.gateway.proc is not None and self.gateway.proc.poll() is None:
                self.gateway.terminate()
            if self.broker is not None:
                self.broker.close()
        self._write_truth()
        scans = self._stored("scans")
        alerts = self._stored("alerts")
        quarantine = self._stored("quarantine")
        summary = summarise(self.results, scans, alerts, quarantine, watcher.raised)
        summary.update(
            travellers=sum(n.travellers for n in self.nodes.values()),
            febrile=sum(n.febrile for n in self.nodes.values()),
            day=_day(scans),
            nodes=len(self.nodes),
            garbage_sent=self.garbage_sent,
            faults=self.faults_applied,
            real_s=round(time.monotonic() - started, 1),
            db=self.db_url,
        )
        summary["scans_per_s"] = round(summary["scans_made"] / max(summary["real_s"], 1e-9), 1)
        return summary
