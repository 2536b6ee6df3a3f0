"""Sustained ingest: the gateway (QoS 1 in, SQLite commit, receipts, PUBACK after commit) against a bare paho
subscriber that only counts. Same broker, same publisher process, same run. Goal: ratio >= 0.8.

Rate = scans / (time the last one was done - time the publisher started). "Done" is: counted by the bare
subscriber; for the gateway, its receipt back at the publisher (so the row was committed and acknowledged).
Run: .venv/bin/python bench/bench_ingest.py [--n 20000] [--conf local|production-like]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gw_common import child, result

from sim.broker import DEFAULT_CONFIG, Broker
from sim.process import GatewayProcess


def bare_rate(port: int, n: int, nodes: int) -> float:
    counter = child("count", "--port", str(port), "--topic", "checkpoint/v1/bare/+/scan", "--n", str(n))
    assert counter.stdout is not None
    counter.stdout.readline()  # {"ready": true}: subscribed
    pub = result(child("publish", "--port", str(port), "--site", "bare", "--nodes", str(nodes), "--n", str(n)))
    got = result(counter)
    if not got["ok"]:
        raise RuntimeError(f"bare subscriber counted {got['count']} of {n}")
    return n / (got["t_done"] - pub["t_start"])


def gateway_rate(port: int, n: int, nodes: int, workdir: Path) -> float:
    gateway = GatewayProcess(port, f"sqlite:///{workdir / 'bench.db'}", workdir, instance="gw-bench")
    gateway.start()
    try:
        args = [
            "publish",
            "--port",
            str(port),
            "--site",
            "gw",
            "--nodes",
            str(nodes),
            "--n",
            str(n),
            "--receipts",
        ]
        pub = result(child(*args))
    finally:
        gateway.terminate()
    if not pub["ok"]:
        raise RuntimeError("the gateway did not receipt every scan")
    return n / (pub["t_receipts"] - pub["t_start"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=15_000)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for r in range(args.rounds):
            workdir = Path(tmp) / f"round-{r}"
            workdir.mkdir()
            # The project's broker config (deploy/mosquitto/local.conf: in-flight window 1000, as in production:
            # the gateway's batch size is bounded by how many unacknowledged messages the broker lets it have).
            # A fresh broker per round: the gateway's session is persistent and its subscription
            # (checkpoint/v1/+/+/scan) also matches the bare site, so on a shared broker the next round's bare
            # scans were queued for it and it stored them during its own timed run (twice the work).
            with Broker(config=DEFAULT_CONFIG, workdir=workdir / "broker") as broker:
                bare = bare_rate(broker.port, args.n, args.nodes)
                gw = gateway_rate(broker.port, args.n, args.nodes, workdir)
            print(f"ingest round {r + 1}: {args.n} QoS 1 scans from {args.nodes} nodes: "
                  f"bare subscriber {bare:,.0f}/s, gateway (committed + acked) {gw:,.0f}/s, "
                  f"ratio {gw / bare:.2f} (goal >= 0.8)", flush=True)  # fmt: skip
            ratios.append(gw / bare)
    print(f"ingest: median ratio over {args.rounds} rounds {statistics.median(ratios):.2f} (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
