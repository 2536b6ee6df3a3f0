"""PostgreSQL vs SQLite, same run, same machine; and one gateway vs two on PostgreSQL.

1. Store: committed scans/s through the Store interface (insert_scans + the node row, batches of 200, one
   transaction each): SQLite synchronous=FULL on a file vs a local PostgreSQL cluster with fsync on.
2. End to end: QoS 1 scans from a publisher process through Mosquitto into `checkpoint-gateway run`, rate =
   scans / (last receipt back at the publisher - publisher start): one gateway on SQLite, one on PostgreSQL,
   two on PostgreSQL sharing the stream ($share/bench/...).
Rounds alternate the backends, medians are printed. Run: .venv/bin/python bench/bench_postgres.py [--n 12000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gw_common import child, result

from gateway.store import NodeRow, ScanRow, open_store
from sim.broker import DEFAULT_CONFIG, Broker
from sim.process import GatewayProcess
from testkit.postgres import Cluster

BATCH = 200


def store_rate(url: str, n: int) -> float:
    store = open_store(url)
    now = int(time.time() * 1000)
    rows = [ScanRow("bench", f"n{i % 4}", i, 1, now, 1000 + i, "forehead", 34.0, 24.0, 36.5, "normal", (), 12, 900,
                    None, "fw", "cal", 36.4, "normal", (), "cal", now, now) for i in range(n)]  # fmt: skip
    t0 = time.perf_counter()
    for at in range(0, n, BATCH):
        with store.transaction() as tx:
            tx.insert_scans(rows[at : at + BATCH])
            for node in range(4):
                tx.save_node(NodeRow("bench", f"n{node}", "online", "traffic", now, now, "fw", 1, scans=BATCH // 4))
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def gateway_rate(url: str, n: int, instances: int, workdir: Path) -> float:
    with Broker(config=DEFAULT_CONFIG, workdir=workdir / "broker") as broker:
        gateways = []
        for i in range(instances):
            (workdir / f"gw{i}").mkdir()
            share = "bench" if instances > 1 else ""
            gateways.append(GatewayProcess(broker.port, url, workdir / f"gw{i}", f"gw-bench-{i}", share))
        for g in gateways:
            g.start()
        try:
            args = ["publish", "--port", str(broker.port), "--site", "gw", "--nodes", "4", "--n", str(n), "--receipts"]
            pub = result(child(*args))
        finally:
            for g in gateways:
                g.terminate()
    if not pub["ok"]:
        raise RuntimeError("the gateway did not receipt every scan")
    return float(n / (pub["t_receipts"] - pub["t_start"]))


def one_round(pg: Cluster, work: Path, r: int, n: int) -> Iterator[tuple[str, float]]:
    yield "store sqlite", store_rate(f"sqlite:///{work / 's.db'}", n)
    yield "store postgresql", store_rate(pg.database(f"s{r}"), n)
    yield "gateway sqlite x1", gateway_rate(f"sqlite:///{work / 'g.db'}", n, 1, work / "a")
    yield "gateway postgresql x1", gateway_rate(pg.database(f"g{r}"), n, 1, work / "b")
    yield "gateway postgresql x2", gateway_rate(pg.database(f"h{r}"), n, 2, work / "c")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=12_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    got: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp, Cluster(durable=True) as pg:
        for r in range(args.rounds):
            work = Path(tmp) / f"round-{r}"
            work.mkdir()
            for name, rate in one_round(pg, work, r, args.n):
                got.setdefault(name, []).append(rate)
                print(f"round {r + 1}: {name}: {rate:,.0f} committed scans/s", flush=True)
    med = {k: statistics.median(v) for k, v in got.items()}
    for k, v in med.items():
        print(f"median {k}: {v:,.0f} scans/s")
    print(f"ratio store postgresql/sqlite: {med['store postgresql'] / med['store sqlite']:.2f}")
    print(f"ratio gateway postgresql/sqlite: {med['gateway postgresql x1'] / med['gateway sqlite x1']:.2f}")
    print(f"ratio two gateways/one (postgresql): {med['gateway postgresql x2'] / med['gateway postgresql x1']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
