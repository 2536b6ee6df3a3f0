"""`checkpoint-sim run`: posts full of nodes running the real firmware, a real broker and gateway, faults, truth.

checkpoint-sim run [--scenario FILE] [--sites N] [--nodes-per-site N] [--rate R] [--duration S] [--speed X] ...

The simulation owns a Mosquitto (project config, loopback, persistence so a broker restart keeps sessions)
unless `--broker` names one, and always runs its own gateway (`python -m gateway run`) on a SQLite file, so it
can kill and restart both on schedule. With `--cluster N` it runs the cluster path instead (issue 16,
docs/scale.md): a RabbitMQ cluster of N members of its own (sim/rabbitmq.py), the gateway consuming the work
queue over AMQP, and the nodes spread over the members (node i starts on member i mod N and has every member
in `broker.hosts`); `broker_restart` then SIGKILLs member 0 and starts it again. Every node runs firmware/
under CPython on simulated hardware (sim/post.py). At the end the lanes close, the nodes drain their outboxes
(every scan receipted), the gateway stops, and what it stored is read back through `checkpoint-gateway export`
and compared with what the nodes recorded and who the travellers really were. The summary is printed for a
person, and with `--json` also as one JSON object on the last line of stdout.

A unit replaced by an `identity_clash` fault is a second unit under the node's name: the summary counts it as
node `NAME~2` (its scans stored under seqs the first unit never reached, and those kept in the gateway's
scan_clashes, with their fever alerts), so "lost", "duplicates" and "alerts missing" stay exact.

Time: by default every node's clock runs `speed` times real time. With `--virtual-time` (scenario `clock =
"virtual"`) the run goes on a virtual-time event loop (sim/vloop.py): nodes, chips, lanes, faults and the
progress all read its time, which moves only when nothing is left to do, as fast as the machine goes (speed
unused); the simulator holds it still while it waits for a real process (a broker or gateway start, the
medic's database round), so one seed gives one run (docs/simulator.md, "Virtual time").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import firmware
from gateway import export
from gateway.ingest import origin_id
from gateway.store import open_store
from sim.broker import Broker, BrokerError
from sim.clock import VirtualClock
from sim.host.udp import LoopHub
from sim.medic import Medic
from sim.post import RecordedScan, SimNode, Uplink, install_task_tracking
from sim.process import REPO, GatewayProcess
from sim.rabbitmq import RabbitCluster, RabbitError
from sim.scenario import NET_FAULTS, Fault, Scenario, ScenarioError, Site, load
from sim.summary import Key, summarise
from sim.travellers import Traveller
from sim.vloop import VirtualTimeLoop, hold_until
from sim.watch import Watcher

contract: Any = firmware.module("contract")  # untyped MicroPython module
T = TypeVar("T")
DRAIN_TIMEOUT_S = 120.0  # real seconds to wait for every node's outbox to be receipted at the end
ANSWERS_S = 5.0  # virtual time: real seconds a swap waits, time held, for the answers on their way
PROGRESS_EVERY_S = 5.0
DISK_MB = 64  # the tmpfs that holds the gateway's database when the scenario has a disk_full fault
DISK_LEFT = 24 * 1024  # bytes left free by disk_full
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
    cluster: int = 0  # members of a RabbitMQ cluster of the simulation's own (0: Mosquitto)
    rabbit: RabbitCluster | None = None  # or a running cluster to use (the tests'): not stopped at the end
    progress: IO[str] = field(default_factory=lambda: sys.stderr)


def _day(scans: list[dict[str, Any]]) -> str | None:
    """The (UTC) day the scans were made on, for `checkpoint-gateway report --day`."""
    if not scans:
        return None
    first = min(int(s["scanned_at"]) for s in scans)
    return datetime.fromtimestamp(first / 1000, UTC).strftime("%Y-%m-%d")


class Simulation:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.s = options.scenario
        self.recorded: list[RecordedScan] = []
        self.alert_seen_at: dict[Key, float] = {}  # when each fever alert arrived (time.monotonic())
        self.nodes: dict[str, SimNode] = {}
        self.faults_applied: list[dict[str, Any]] = []
        self.garbage_sent = 0
        self.broker: Broker | None = None
        self.cluster: RabbitCluster | None = None
        self.gateway: GatewayProcess | None = None
        self.port = 0
        self.db_url = ""
        self.rng = random.Random(self.s.seed)
        self.units: dict[str, int] = {}  # node -> its current unit (1, then 2 after an identity_clash)
        self.recorded_units: list[int] = []  # the unit of each recorded scan
        self.disk: Path | None = None  # the tmpfs mounted for disk_full
        self.medic: dict[str, Any] = {}  # what the simulated medic did (sim/medic.py)
        self.loop: VirtualTimeLoop | None = None  # with virtual time, made with the nodes (else asyncio's)

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
        if self.o.rabbit is not None:
            self.cluster = self.o.rabbit
            self.port = self.cluster.mqtt_ports[0]
        elif self.o.cluster:
            self._start_cluster()
        elif self.o.broker_url is None:
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
        if any(f.kind == "disk_full" for f in self.s.faults):
            self.db_url = f"sqlite:///{self._mount_disk(wd / 'gateway-disk') / 'gateway.db'}"
        self.gateway = GatewayProcess(self.port, self.db_url, wd, instance="sim-gateway", cluster=self.cluster)
        self.gateway.start(30.0)

    def _start_cluster(self) -> None:
        if self.o.broker_url is not None:
            raise ScenarioError("--cluster starts a RabbitMQ cluster of its own: drop --broker")
        if not 1 <= self.o.cluster <= 5:
            raise ScenarioError(f"--cluster {self.o.cluster}: 1 to 5 members")
        self._say(f"starting a RabbitMQ cluster of {self.o.cluster} members (about 20 s on two cores)")
        self.cluster = RabbitCluster(self.o.cluster)
        try:
            self.cluster.start()
        except RabbitError:
            self.cluster.close()
            raise
        self.port = self.cluster.mqtt_ports[0]
        self._say(f"cluster up in {self.cluster.startup_s:.1f} s: MQTT ports {self.cluster.mqtt_ports}, "
                  f"data and logs in {self.cluster.root}")  # fmt: skip

    @property
    def auth(self) -> tuple[str, str] | None:
        """The MQTT account nodes and watchers use: the cluster's `node` (Mosquitto here takes anyone)."""
        return None if self.cluster is None else ("node", self.cluster.node_password)

    def _sub_auth(self) -> str:
        """mosquitto_sub's account options on the cluster: the password from a file only this user reads."""
        if self.auth is None:
            return ""
        secret = self.o.workdir / "cluster-node-password"
        secret.touch(mode=0o600)
        secret.write_text(self.auth[1])
        return f' -u node -P "$(cat {secret})"'

    def uplink(self, i: int) -> Uplink:
        """Node i's broker: Mosquitto's port, or every member, starting with member i mod N."""
        if self.cluster is None:
            return Uplink(self.port)
        ports = self.cluster.mqtt_ports
        members = tuple(ports[(i + k) % len(ports)] for k in range(len(ports)))
        return Uplink(members[0], members, self.auth)

    def _mount_disk(self, where: Path) -> Path:
        """A tmpfs of its own for the gateway's database, so disk_full can fill it (needs root)."""
        if self.o.db_url is not None:
            raise ScenarioError("disk_full puts the gateway's database on a disk of its own: drop --db")
        if os.geteuid() != 0:
            raise ScenarioError("disk_full needs root (it mounts a tmpfs for the gateway's database): drop it")
        where.mkdir(parents=True, exist_ok=True)
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(where)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ScenarioError(f"disk_full: cannot mount a tmpfs at {where}: {done.stderr.strip()}")
        self.disk = where
        return where

    def _unmount_disk(self) -> None:
        """Unmount the disk_full tmpfs, keeping the database: copied beside it (the gateway has stopped)."""
        if self.disk is None:
            return
        kept = self.o.workdir / "gateway.db"
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(self.disk / "gateway.db", kept)
            self.db_url = f"sqlite:///{kept}"
        subprocess.run(["umount", "-l", str(self.disk)], capture_output=True)
        self.disk = None

    def _on_scan(self, r: RecordedScan) -> None:
        self.recorded.append(r)
        self.recorded_units.append(self.units.get(r.node, 1))

    def _on_alert(self, topic: str, body: Any, arrived: float) -> None:
        raised = isinstance(body, dict) and body.get("kind") == "fever" and body.get("state") == "raised"
        if raised and isinstance(body.get("seq"), int):
            self.alert_seen_at.setdefault((body["site"], body["node"], body["seq"]), arrived)

    @property
    def pace(self) -> float:
        """Simulated seconds per second of the event loop's time."""
        return 1.0 if self.s.clock == "virtual" else self.s.speed

    def _make_nodes(self) -> None:
        if self.s.clock == "virtual":
            self.loop = VirtualTimeLoop()
        for i, (site_name, name) in enumerate(self.s.node_names()):
            site = next(s for s in self.s.sites if s.name == site_name)
            root = self.o.workdir / "nodes" / name
            seed = self.s.seed * 1000 + i
            if self.loop is None:
                self.nodes[name] = SimNode(self.s, site, name, self.uplink(i), root, self._on_scan, seed)
                continue
            clock, hub = VirtualClock(self.loop.now_ns), LoopHub(self.loop)
            self.nodes[name] = SimNode(self.s, site, name, self.uplink(i), root, self._on_scan, seed, clock, hub)

    def _held(self) -> contextlib.AbstractContextManager[None]:
        """Virtual time stands still inside (a real process or thread is waited for); nothing on a scaled clock."""
        return self.loop.held() if self.loop is not None else contextlib.nullcontext()

    # --- faults
    async def _fault(self, f: Fault, clock_s: Any) -> None:
        while f.at_s - clock_s() > 1e-6:
            await asyncio.sleep(min(0.2, (f.at_s - clock_s()) / self.pace))
        self.faults_applied.append({"at_s": round(clock_s(), 1), "kind": f.kind, "node": f.node})
        self._say(f"fault: {f.kind}{' on ' + f.node if f.node else ''} for {f.duration_s:g} s")
        real = f.duration_s / self.pace  # the loop's seconds
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
            await self._real(self._publish_garbage, node)
        elif f.kind == "identity_clash" and node:
            await self._replace_unit(node)
        elif f.kind in NET_FAULTS and node:
            await self._net_fault(node, f.kind, real)
        else:
            await self._shared_fault(f.kind, real)

    async def _net_fault(self, node: SimNode, kind: str, real: float) -> None:
        """A fault on a node's network for `real` seconds; dns_slow with a Wi-Fi blip (3 s of node time), so the
        node must resolve the broker's name again while its DNS server is slow."""
        node.net_fault(kind, True)
        if kind == "dns_slow":
            node.wifi(False)
            await asyncio.sleep(3 / self.pace)
            node.wifi(True)
        await asyncio.sleep(real)
        node.net_fault(kind, False)

    async def _shared_fault(self, kind: str, real: float) -> None:
        """A fault on the broker, the gateway or the gateway's disk, for `real` seconds."""
        if kind == "disk_full" and self.disk is not None:
            filler = await self._real(fill_disk, self.disk, DISK_LEFT)
            await asyncio.sleep(real)
            filler.unlink()
        elif kind == "broker_restart" and self.broker is not None:
            await self._real(self.broker.stop)
            await asyncio.sleep(real)
            await self._real(self.broker.start)
        elif kind == "broker_restart" and self.cluster is not None:
            await self._real(self.cluster.kill, 0)  # a crash of the member the first nodes are on
            await asyncio.sleep(real)
            await self._real(self.cluster.start_member, 0)
        elif kind == "gateway_restart" and self.gateway is not None:
            await self._real(self.gateway.kill)
            await asyncio.sleep(real)
            await self._real(self.gateway.start, 30.0)

    async def _real(self, work: Callable[..., T], *args: Any) -> T:
        """Real work on a thread (a process stopped or started, a disk filled), virtual time held meanwhile."""
        with self._held():
            return await asyncio.to_thread(work, *args)

    async def _replace_unit(self, node: SimNode) -> None:
        """A spare unit under the node's name: the old one goes once its outbox is empty (nothing of it lost),
        the spare boots from an empty flash: boot counter and seqs from the start again. With virtual time the
        receipts on their way are awaited with time held, so the swap comes at the fault's moment in every run."""
        if self.loop is not None:
            await hold_until(self.loop, lambda: not node.depth, ANSWERS_S)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while node.depth and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # waiting for the old unit's receipts, not for time
        if node.depth:
            self._say(f"identity_clash: {node.name} still awaits {node.depth} receipts: the swap is skipped")
            return
        node.power_cut(torn=False)
        shutil.rmtree(node.root, ignore_errors=True)
        self.units[node.name] = self.units.get(node.name, 1) + 1
        node.power_on()

    def _publish_garbage(self, node: SimNode) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-garbage-{node.name}")
        if self.auth is not None:
            c.username_pw_set(*self.auth)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        try:
            topic = contract.topic(contract.PREFIX, node.site.name, node.name, "scan")
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
            made = sum(1 for r in self.recorded if r.seq is not None)
            pending = sum(n.depth for n in self.nodes.values())
            travellers = sum(n.travellers for n in self.nodes.values())
            elevated = sum(1 for r in self.recorded if r.verdict == "elevated")
            up = sum(1 for n in self.nodes.values() if n.connected)
            self._say(
                f"t={clock_s():5.0f}/{self.s.duration_s:g} s  travellers {travellers}  scans {made}  "
                f"awaiting receipt {pending}  elevated {elevated}  nodes online {up}/{len(self.nodes)}"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), PROGRESS_EVERY_S)

    # --- the run
    async def _simulate(self) -> None:
        loop = asyncio.get_running_loop()
        install_task_tracking(loop)
        for node in self.nodes.values():
            node.power_on()
        t0 = loop.time()  # time.monotonic() on asyncio's own loop, virtual on a VirtualTimeLoop

        def clock_s() -> float:
            return (loop.time() - t0) * self.pace

        done = asyncio.Event()
        progress = asyncio.create_task(self._progress(clock_s, done))
        faults = [asyncio.create_task(self._fault(f, clock_s)) for f in self.s.faults]
        lanes = [asyncio.create_task(n.lane(self.s.rate_per_min, self.s.duration_s)) for n in self.nodes.values()]
        await asyncio.gather(*lanes)
        remaining = max(0.0, self.s.duration_s - clock_s()) / self.pace
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
        self.medic = await self._real(self._medic_round)
        done.set()
        await progress
        for node in self.nodes.values():
            await node.stop()

    def _pace_text(self) -> str:
        return f"at x{self.s.speed:g}" if self.loop is None else "on virtual time, as fast as it goes"

    def _run_loop(self) -> None:
        """The nodes' run: on asyncio's own loop, or on the virtual-time one (the runner closes either)."""
        loop = self.loop
        if loop is None:
            asyncio.run(self._simulate())
            return
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            runner.run(self._simulate())

    def _write_truth(self) -> None:
        """Ground truth, one line per scan the nodes recorded: the traveller behind it and their real core."""
        with open(self.o.workdir / "truth.jsonl", "w") as f:
            for r in self.recorded:
                t = r.traveller
                row = {
                    **{k: getattr(r, k) for k in ("site", "node", "seq", "verdict", "t_site_c", "flags")},
                    "traveller": None if t is None else t.id,
                    "visit": r.visit,
                    "code": r.code,
                    "retest_code": r.retest_code,
                    "outside_conditions": r.outside,
                    "core_c": None if t is None else round(t.core_c, 2),
                    "febrile": None if t is None else t.febrile,
                }
                f.write(json.dumps(row) + "\n")

    def _medic_round(self) -> dict[str, Any]:
        """The simulated medic re-checks every open fever alert with a thermometer (sim/medic.py)."""
        travellers: dict[tuple[str, str, int], Traveller] = {}
        for r in self.recorded:
            if r.seq is not None and r.traveller is not None:
                travellers.setdefault((r.site, r.node, r.seq), r.traveller)
        store = open_store(self.db_url, create=False)
        try:
            tally = Medic(self.s.seed).round(store, travellers, int(time.time() * 1000))
        finally:
            store.close()
        self._say(f"medic: {tally['rechecked']} fever alerts re-checked by thermometer, {tally['referred']} referred")
        return tally

    def _stored(self, what: str) -> list[dict[str, Any]]:
        cmd = [sys.executable, "-m", "gateway", "export", "--what", what, "--format", "jsonl", "--db", self.db_url]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"checkpoint-gateway export --what {what} failed: {out.stderr.strip()}")
        return export.read(what, "jsonl", StringIO(out.stdout))

    def _summary(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What the gateway stored, read back and compared with what was made; and the stored scans."""
        self._unmount_disk()
        scans = self._stored("scans")
        alerts = self._stored("alerts")
        quarantine = self._stored("quarantine")
        clashes = self._stored("clashes")
        recorded, rows, alerts = by_unit(self.recorded, self.recorded_units, scans, clashes, alerts)
        summary = summarise(recorded, rows, alerts, quarantine, self.alert_seen_at)
        summary["clashes"] = len(clashes)
        summary["medic"] = self.medic
        return summary, scans

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            self._unmount_disk()

    def _run(self) -> dict[str, Any]:
        started = time.monotonic()
        self._start_services()
        alerts = f"{contract.PREFIX}/{contract.ALERTS}/+"
        watcher = Watcher(self.port, alerts, on_message=self._on_alert, auth=self.auth)
        log = open(self.o.workdir / "firmware.log", "w")  # noqa: SIM115 - closed below
        try:
            self._make_nodes()
            where = f"broker 127.0.0.1:{self.port}"
            if self.cluster is not None:
                where = f"RabbitMQ cluster, MQTT on 127.0.0.1 ports {self.cluster.mqtt_ports}, gateway over AMQP"
            self._say(
                f"{len(self.nodes)} nodes at {len(self.s.sites)} sites, {where}, "
                f"gateway db {self.db_url}, {self.s.duration_s:g} s simulated {self._pace_text()}"
            )
            self._say(f"node logs: {self.o.workdir / 'firmware.log'}; gateway logs: {self.o.workdir}/gateway-*.log")
            every = f"{contract.PREFIX}/{contract.ALERTS}/#"
            self._say(f"watch alerts live: mosquitto_sub -p {self.port}{self._sub_auth()} -t '{every}' -v")
            with contextlib.redirect_stdout(log):
                self._run_loop()
        finally:
            log.close()
            watcher.close()
            if self.gateway is not None and self.gateway.running:
                self.gateway.terminate()
            if self.broker is not None:
                self.broker.close()
            if self.cluster is not None and self.o.rabbit is None:
                self.cluster.close()
        self._write_truth()
        summary, scans = self._summary()
        summary.update(
            travellers=sum(n.travellers for n in self.nodes.values()),
            febrile=sum(n.febrile for n in self.nodes.values()),
            day=_day(scans),
            nodes=len(self.nodes),
            garbage_sent=self.garbage_sent,
            faults=self.faults_applied,
            clock=self.s.clock,
            real_s=round(time.monotonic() - started, 1),
            db=self.db_url,
        )
        summary["scans_per_s"] = round(summary["scans_made"] / max(summary["real_s"], 1e-9), 1)
        return summary


def fill_disk(disk: Path, leave: int) -> Path:
    """Fill the filesystem at `disk` with one file, then free `leave` bytes of it; returns the file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush into the full disk at close
        try:
            while True:
                f.write(b"\0" * 65_536)
                f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        f.truncate(max(0, f.tell() - leave))
    return filler


def by_unit(
    recorded: list[RecordedScan],
    units: list[int],
    scans: list[dict[str, Any]],
    clashes: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
) -> tuple[list[RecordedScan], list[dict[str, Any]], list[dict[str, Any]]]:
    """A replaced node's second unit as node `NAME~2` (see the module doc): its recorded scans, its stored rows
    (in scans above the first unit's last seq, and every one kept in scan_clashes) and its fever alerts."""
    last: dict[tuple[str, str], int] = {}  # the first unit's highest seq, per node
    for r, u in zip(recorded, units, strict=True):
        if u == 1 and r.seq is not None:
            last[(r.site, r.node)] = max(last.get((r.site, r.node), -1), r.seq)
    replaced = {r.node for r, u in zip(recorded, units, strict=True) if u > 1}

    def unit_of(site: str, node: str, seq: int, clash: bool) -> str:
        if node in replaced and (clash or seq > last.get((site, node), -1)):
            return f"{node}~2"
        return node

    made = [replace(r, node=f"{r.node}~{u}") if u > 1 else r for r, u in zip(recorded, units, strict=True)]
    rows = [dict(s, node=unit_of(s["site"], s["node"], int(s["seq"]), False)) for s in scans]
    rows += [dict(s, node=unit_of(s["site"], s["node"], int(s["seq"]), True)) for s in clashes]
    ids = [(s["site"], s["node"], s["seq"], origin_id(s["boot"], s["uptime_ms"], s.get("unit"))) for s in clashes]
    clash_ids = {f"fever:{site}:{node}:{seq}:{origin}" for site, node, seq, origin in ids}
    out = []
    for a in alerts:
        if a["kind"] == "fever" and a["seq"] is not None:
            a = dict(a, node=unit_of(a["site"], a["node"], int(a["seq"]), a["alert_id"] in clash_ids))
        out.append(a)
    return made, rows, out


# --- the command line
HUMAN_KEYS = (
    ("travellers", "travellers arrived"),
    ("scans_made", "scans made by nodes"),
    ("scans_stored", "scans stored by the gateway"),
    ("lost", "lost (must be 0)"),
    ("duplicates", "stored twice (must be 0)"),
    ("febrile", "febrile travellers (ground truth)"),
    ("febrile_flagged", "febrile and flagged elevated"),
    ("false_alarms", "elevated but not febrile"),
    ("indeterminate", "indeterminate (retest)"),
    ("invalid", "invalid (sensor fault)"),
    ("definitive_share", "leave with a verdict (retests included)"),
    ("normal_outside_conditions", "normal outside the calibration (must be 0)"),
    ("retests", "retests"),
    ("never_retested", "leave indeterminate (never retested)"),
    ("febrile_called_normal", "febrile, called normal"),
    ("sensitivity", "sensitivity (definitive travellers)"),
    ("specificity", "specificity (definitive travellers)"),
    ("alerts", "fever alerts"),
    ("latency_p50_ms", "scan to alert p50, ms"),
    ("latency_p99_ms", "scan to alert p99, ms"),
    ("quarantined", "messages quarantined"),
    ("clashes", "scans kept beside another unit's (identity clash)"),
    ("scans_per_s", "scans per real second"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", type=Path, help="scenario TOML (sites, nodes, faults); see sim/scenario.py")
    p.add_argument("--broker", help="use this broker (mqtt://127.0.0.1:PORT) instead of starting one")
    cluster = "the cluster path: a RabbitMQ cluster of N members of its own (3), the gateway on AMQP"
    p.add_argument("--cluster", type=int, default=0, metavar="N", help=cluster)
    p.add_argument("--db", help="the gateway's database (default sqlite:///WORKDIR/gateway.db)")
    p.add_argument("--workdir", type=Path, default=Path("var/sim"), help="where nodes, logs and the db live")
    p.add_argument("--sites", type=int, help="number of sites (replaces the scenario's sites)")
    p.add_argument("--nodes-per-site", type=int, help="nodes per site (with --sites)")
    p.add_argument("--rate", type=float, help="travellers per minute per node")
    p.add_argument("--fever-prevalence", type=float, help="share of febrile travellers (0-1)")
    p.add_argument("--ambient", type=float, help="ambient C at every site (with --sites)")
    p.add_argument("--mode", choices=contract.MODES, help="measurement mode (with --sites)")
    p.add_argument("--duration", type=float, help="simulated seconds")
    p.add_argument("--speed", type=float, help="simulated seconds per real second")
    virtual = 'virtual time: as fast as it goes, one seed one run (scenario clock = "virtual"; speed unused)'
    p.add_argument("--virtual-time", action="store_const", const="virtual", dest="clock", help=virtual)
    p.add_argument("--seed", type=int, help="seed for travellers, noise and faults")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line at the end")
    p.set_defaults(func=main)


def scenario_from(args: argparse.Namespace) -> Scenario:
    scenario = load(args.scenario) if args.scenario else Scenario()
    if args.sites is not None or args.nodes_per_site is not None:
        n_sites = args.sites if args.sites is not None else len(scenario.sites)
        per = args.nodes_per_site if args.nodes_per_site is not None else 2
        if not 1 <= n_sites <= 100 or not 1 <= per <= 1000:
            raise ScenarioError("--sites must be 1-100 and --nodes-per-site 1-1000")
        if scenario.faults:
            raise ScenarioError("--sites/--nodes-per-site replace the scenario's nodes: its faults name nodes")
        template = scenario.sites[0]
        sites = tuple(replace(template, name=f"post-{i + 1}", nodes=per) for i in range(n_sites))
        scenario = replace(scenario, sites=sites)
    if args.ambient is not None or args.mode is not None:
        scenario = replace(scenario, sites=tuple(_site_override(s, args) for s in scenario.sites))
    return scenario.with_options(
        duration_s=args.duration,
        speed=args.speed,
        clock=args.clock,
        seed=args.seed,
        rate_per_min=args.rate,
        fever_prevalence=args.fever_prevalence,
    )


def _site_override(site: Site, args: argparse.Namespace) -> Site:
    return replace(
        site,
        ambient_c=site.ambient_c if args.ambient is None else args.ambient,
        mode=site.mode if args.mode is None else args.mode,
    )


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    width = max(len(label) for _, label in HUMAN_KEYS)
    for key, label in HUMAN_KEYS:
        print(f"  {label:<{width}}  {summary.get(key)}")
    for site, figures in summary.get("by_site", {}).items():
        print(
            f"  at {site}: definitive_share {figures['definitive_share']}, normal_outside_conditions"
            f" {figures['normal_outside_conditions']}, retests {figures['retests']}, never_retested"
            f" {figures['never_retested']}, sensitivity {figures['sensitivity']}, specificity {figures['specificity']}"
        )
    medic = summary.get("medic") or {}
    if medic:
        print(
            f"  medic (thermometer re-check of each fever alert): {medic['rechecked']} re-checked,"
            f" {medic['referred']} referred, {medic['cleared']} cleared"
            f" (febrile cleared {medic['febrile_cleared']}, oral under 37.5 C referred {medic['healthy_referred']})"
        )
    print(f"  gateway database: {summary['db']}")
    print(f"  the day's tallies: checkpoint-gateway report --db {summary['db']} --day {summary['day']}")
    print(f"  fever alerts:      checkpoint-gateway alerts --db {summary['db']}")
    if as_json:
        print(json.dumps(summary, separators=(",", ":")))


def main(args: argparse.Namespace) -> int:
    """`checkpoint-sim run`: 0 when nothing was lost or stored twice, 1 otherwise, 2 for a bad scenario."""
    try:
        scenario = scenario_from(args)
        sim = Simulation(Options(scenario, Path(args.workdir), args.broker, args.db, args.cluster))
        summary = sim.run()
    except (ScenarioError, BrokerError, RabbitError) as e:
        print(f"checkpoint-sim run: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("checkpoint-sim run: interrupted; broker, gateway and nodes stopped", file=sys.stderr)
        return 130
    print_summary(summary, args.json)
    return 0 if summary["lost"] == 0 and summary["duplicates"] == 0 else 1
