"""Notification latency: from a node's publish of an elevated scan to the notification at a webhook (issue 13),
at 500 scans/s of background load (another process, four nodes). Goal: p99 under 1 s.

As deployed: the gateway (`checkpoint-gateway run`) and the notifier (`checkpoint-gateway notify`, its own
process, reading the same SQLite database) with one receiver, a local webhook (Apprise's json:// POST to a
stdlib HTTP server on 127.0.0.1), English short form. Baseline in the same run, same load: the fever alert on the
MQTT alerts topic (what a subscriber to the topic gets). The notifier is measured at its default poll interval
(1.0 s), at deploy/gateway.example.toml's 0.5 s and at 0.1 s: its pass every poll interval is most of the delay,
so each probe waits a random part of a second (seeded) first, as a fever comes at any point of the cycle.
Run: .venv/bin/python bench/bench_notify.py [--samples 60]
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gw_common import child, percentile

from sim.broker import DEFAULT_CONFIG, Broker
from sim.process import GatewayProcess
from testkit.node import scan_payload

REPO = Path(__file__).resolve().parents[1]
FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
PROBE = re.compile(r"\bprobe(\d+)-(\d+)\b")  # the node's name in the message: probe<round>-<sample>


class Webhook:
    """Apprise json:// POSTs on 127.0.0.1: (round, sample) of the probe node named, and the arrival time."""

    def __init__(self) -> None:
        self.arrivals: queue.Queue[tuple[int, int, float]] = queue.Queue()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                found = PROBE.search(raw.decode("utf-8", "replace"))
                if found:
                    owner.arrivals.put((int(found.group(1)), int(found.group(2)), time.perf_counter()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/bench"


def notifier(db_url: str, hook: Webhook, poll_s: float, workdir: Path) -> subprocess.Popen[str]:
    conf = workdir / f"notify-{poll_s}.toml"
    conf.write_text(
        f'[store]\ndb = "{db_url}"\n\n[notify]\npoll_interval_s = {poll_s}\n\n'
        f'[notify.receivers.bench]\nurl = "{hook.url}"\nlocale = "en"\nform = "short"\n\n'
        '[[notify.routes]]\nkinds = ["fever"]\nstates = ["raised"]\nreceivers = ["bench"]\n'
    )
    log = open(workdir / f"notify-{poll_s}.log", "w")  # noqa: SIM115 - as long as the process
    cmd = [sys.executable, "-m", "gateway", "notify", "--config", str(conf)]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)


def measure(port: int, hook: Webhook, rnd: int, samples: int) -> tuple[list[float], list[float]]:
    """(alert on MQTT ms, notification at the webhook ms) per elevated scan, one probe node per scan."""
    alerts: queue.Queue[tuple[str, float]] = queue.Queue()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-notify-{rnd}")
    c.on_message = lambda cl, u, m: alerts.put((json.loads(m.payload).get("node", ""), time.perf_counter()))
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe("checkpoint/v1/alerts/hot", 1)
    subscribed.wait(10)
    on_mqtt, on_hook = [], []
    phase = random.Random(rnd)  # fixed seed: a fever comes at any point of the notifier's poll cycle
    for i in range(samples):
        time.sleep(phase.uniform(0.0, 1.0))  # spacing the probes over the cycle, not synchronising
        node = f"probe{rnd}-{i}"
        t0 = time.perf_counter()
        c.publish(f"checkpoint/v1/hot/{node}/scan", json.dumps(scan_payload("hot", node, 0, **FEVER)), qos=1)
        while True:
            name, t = alerts.get(timeout=30)
            if name == node:
                on_mqtt.append((t - t0) * 1000)
                break
        while True:
            r, s, t = hook.arrivals.get(timeout=60)
            if (r, s) == (rnd, i):
                on_hook.append((t - t0) * 1000)
                break
    c.disconnect()
    c.loop_stop()
    return on_mqtt, on_hook


def rounds(
    port: int, db_url: str, hook: Webhook, workdir: Path, polls: tuple[float, ...], samples: int
) -> dict[float, tuple[list[float], list[float]]]:
    """One notifier process per poll interval, in turn, each measured with `samples` fevers."""
    figures = {}
    for rnd, poll in enumerate(polls):
        proc = notifier(db_url, hook, poll, workdir)
        try:
            figures[poll] = measure(port, hook, rnd, samples)
        finally:
            proc.terminate()
            proc.wait(15)
        print(f"  notifier poll {poll} s: {samples} samples done", file=sys.stderr, flush=True)
    return figures


def show(figures: dict[float, tuple[list[float], list[float]]], rate: float, samples: int) -> None:
    print(f"notification latency at {rate:,.0f} scans/s background (asked), {samples} fevers per setting:")
    for poll, (on_mqtt, on_hook) in figures.items():
        m50, m99 = percentile(on_mqtt, 50), percentile(on_mqtt, 99)
        h50, h99 = percentile(on_hook, 50), percentile(on_hook, 99)
        print(f"  notifier poll {poll} s:")
        print(f"    publish -> alert on MQTT (baseline): p50 {m50:.1f} ms, p99 {m99:.1f} ms")
        print(f"    publish -> webhook delivery:         p50 {h50:.0f} ms, p99 {h99:.0f} ms (goal p99 < 1000 ms)")
        print(f"    ratio webhook / MQTT alert:          p50 {h50 / m50:.0f}x, p99 {h99 / m99:.0f}x")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--rate", type=float, default=500.0)
    args = p.parse_args()
    polls = (1.0, 0.5, 0.1)
    seconds = len(polls) * (args.samples * 1.5 + 10) + 10
    tmp_dir = tempfile.TemporaryDirectory(prefix="bench-notify-")
    conf = Path(tmp_dir.name) / "broker.conf"
    conf.write_text(DEFAULT_CONFIG.read_text() + "set_tcp_nodelay true\n")
    hook = Webhook()
    with tmp_dir as tmp, Broker(config=conf) as broker:
        db_url = f"sqlite:///{Path(tmp) / 'notify.db'}"
        gateway = GatewayProcess(broker.port, db_url, Path(tmp), instance="gw-notify")
        gateway.start()
        load = child("publish", "--port", str(broker.port), "--site", "load", "--nodes", "4",
                     "--rate", str(args.rate), "--seconds", str(seconds))  # fmt: skip
        try:
            time.sleep(2)  # let the background load reach its rate before probing
            figures = rounds(broker.port, db_url, hook, Path(tmp), polls, args.samples)
            load.terminate()
        finally:
            gateway.terminate()
            hook.server.shutdown()
    show(figures, args.rate, args.samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
