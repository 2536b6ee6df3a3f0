"""Alert latency: from a node's publish of an elevated scan to the fever alert on the alerts topic, at 500
scans/s of background load (another process, four nodes). Goal: p99 under 50 ms.

Baseline, same broker, same load, same run: the broker round trip of the same scan (the publishing client
also subscribes to its own scan topic), i.e. what MQTT alone costs; the ratio shows what the gateway adds.
Run: .venv/bin/python bench/bench_alert_latency.py [--samples 200]
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gw_common import child, percentile, result

from sim.broker import DEFAULT_CONFIG, Broker
from sim.process import GatewayProcess
from testkit.node import scan_payload

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}


def measure(port: int, samples: int, interval_s: float) -> tuple[list[float], list[float]]:
    """(broker round trip ms, alert latency ms) per elevated scan."""
    arrivals: queue.Queue[tuple[str, Any, float]] = queue.Queue()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-alert-node")
    c.on_message = lambda cl, u, m: arrivals.put((m.topic, json.loads(m.payload), time.perf_counter()))
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe([("checkpoint/v1/alerts/hot", 1), ("checkpoint/v1/hot/h1/scan", 1)])
    subscribed.wait(10)
    round_trip, alert = [], []
    for seq in range(samples):
        t0 = time.perf_counter()
        c.publish("checkpoint/v1/hot/h1/scan", json.dumps(scan_payload("hot", "h1", seq, **FEVER)), qos=1)
        got = {}
        while len(got) < 2:
            _, body, t = arrivals.get(timeout=10)
            if body.get("seq") == seq:
                got["alert" if "alert_id" in body else "scan"] = (t - t0) * 1000
        round_trip.append(got["scan"])
        alert.append(got["alert"])
        time.sleep(interval_s)  # spacing the probes, not synchronising
    c.disconnect()
    c.loop_stop()
    return round_trip, alert


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument(
        "--no-nodelay",
        dest="nodelay",
        action="store_false",
        help="leave out set_tcp_nodelay (Nagle + delayed ACK add about 40 ms per extra packet)",
    )
    args = p.parse_args()
    interval = 0.1
    seconds = args.samples * interval + 5
    tmp_dir = tempfile.TemporaryDirectory(prefix="bench-alert-")
    conf = Path(tmp_dir.name) / "broker.conf"
    nodelay = "set_tcp_nodelay true\n" if args.nodelay else ""
    conf.write_text(DEFAULT_CONFIG.read_text() + nodelay)
    with tmp_dir as tmp, Broker(config=conf) as broker:
        gateway = GatewayProcess(broker.port, f"sqlite:///{Path(tmp) / 'alert.db'}", Path(tmp), instance="gw-alert")
        gateway.start()
        load = child("publish", "--port", str(broker.port), "--site", "load", "--nodes", "4",
                     "--rate", str(args.rate), "--seconds", str(seconds))  # fmt: skip
        try:
            time.sleep(2)  # let the background load reach its rate before probing
            round_trip, alert = measure(broker.port, args.samples, interval)
            background = result(load)
        finally:
            gateway.terminate()
    achieved = background["sent"] / (background["t_end"] - background["t_start"])
    rt50, rt99 = percentile(round_trip, 50), percentile(round_trip, 99)
    a50, a99 = percentile(alert, 50), percentile(alert, 99)
    label = "set_tcp_nodelay true" if args.nodelay else "Mosquitto default (Nagle on)"
    print(f"alert latency at {achieved:,.0f} scans/s background, {args.samples} elevated scans, broker {label}:")
    print(f"  broker round trip (baseline): p50 {rt50:.1f} ms, p99 {rt99:.1f} ms")
    print(f"  publish -> fever alert:       p50 {a50:.1f} ms, p99 {a99:.1f} ms (goal p99 < 50 ms)")
    print(f"  ratio alert / round trip:     p50 {a50 / rt50:.1f}x, p99 {a99 / rt99:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
