"""Shared pieces of the gateway benchmarks: a publisher process playing many nodes, a bare counting subscriber
process, percentiles. Run as a script for the child processes:

    python bench/gw_common.py publish --port P --site S --nodes 4 --n 20000 [--receipts]
    python bench/gw_common.py publish --port P --site S --nodes 4 --rate 500 --seconds 20
    python bench/gw_common.py count --port P --topic 'checkpoint/v1/S/+/scan' --n 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.node import NodePublisher, scan_payload  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(Path(__file__)), *args], stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {out}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _publish(args: argparse.Namespace) -> dict[str, Any]:
    nodes = [NodePublisher(args.port, args.site, f"n{i}").connect() for i in range(args.nodes)]
    per_node = args.n // args.nodes
    # Nodes whose clocks are right, as in the field (NTP): scan s made at uptime 60 s + s ms of a boot that
    # ts places at the right instant, so the gateway judges every clock ok and runs the clock rule on each scan.
    boot = int(time.time() * 1000) - 60_000 - per_node
    stamp = [{"ts": boot + 60_000 + s, "uptime_ms": 60_000 + s} for s in range(per_node)]
    payloads = [[scan_payload(args.site, n.node, s, **stamp[s]) for s in range(per_node)] for n in nodes]
    t_start = time.time()
    if args.rate:  # a steady background load: `rate` scans/s spread over the nodes, in 10 ms ticks
        sent, tick = 0, 0.01
        deadline = time.monotonic() + args.seconds
        next_tick = time.monotonic()
        while time.monotonic() < deadline:
            for _ in range(max(1, int(args.rate * tick))):
                node = nodes[sent % len(nodes)]
                node.send([scan_payload(args.site, node.node, sent // len(nodes))])
                sent += 1
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))  # pacing the load generator
        return {"t_start": t_start, "sent": sent, "t_end": time.time()}
    threads = [threading.Thread(target=n.send, args=(p,)) for n, p in zip(nodes, payloads, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_published = time.time()
    ok = all(n.wait_receipts(range(per_node), timeout=120, resend_after=30) for n in nodes) if args.receipts else True
    t_receipts = time.time()
    for n in nodes:
        n.close()
    return {
        "t_start": t_start,
        "t_published": t_published,
        "t_receipts": t_receipts,
        "ok": ok,
        "n": per_node * args.nodes,
    }


def _count(args: argparse.Namespace) -> dict[str, Any]:
    done = threading.Event()
    count = 0
    t_last = 0.0

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        nonlocal count, t_last
        count += 1
        if count >= args.n:
            t_last = time.time()
            done.set()

    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{args.topic}")
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", args.port)
    c.subscribe(args.topic, qos=1)
    c.loop_start()
    subscribed.wait(10)
    print(json.dumps({"ready": True}), flush=True)
    ok = done.wait(120)
    c.disconnect()
    c.loop_stop()
    return {"t_done": t_last, "count": count, "ok": ok}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["publish", "count"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--site", default="bench")
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--receipts", action="store_true")
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--topic", default="")
    args = p.parse_args()
    out = _publish(args) if args.command == "publish" else _count(args)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
