"""The cluster path: nodes on MQTT spread over a three-member RabbitMQ cluster, gateways consuming over AMQP.

1. Ingest: the queue alone (a consumer that only acknowledges), then N QoS 1 scans from 6 nodes (two on each
   member, in this process) into `checkpoint-gateway run --broker amqp://...`, rate = N / (last receipt back
   at the nodes - first publish): one gateway on SQLite, one on PostgreSQL, two on PostgreSQL sharing the
   quorum queue (the same database, fsync on).
2. Failover: a steady load (--rate scans/s over 3 nodes, one per member) into two gateways on PostgreSQL;
   (a) SIGKILL the member node 0 is connected to (gateway 0's too, the first time), (b) SIGKILL one gateway.
   The gap is the longest pause between two receipts at the affected nodes (node 0 for (a), every node for (b)) from the
   kill on; each kill is repeated --kills times (the member or gateway started again in between).
Run: .venv/bin/python bench/bench_cluster.py [--n 12000] [--kills 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pika
from gw_common import percentile

from testkit.node import NodePublisher, scan_payload
from testkit.postgres import Cluster
from testkit.rabbitmq import AmqpGateway, RabbitCluster


class TimedNode(NodePublisher):
    """A NodePublisher that notes when each receipt arrived (monotonic s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipt_times: list[float] = []

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic.endswith("/receipt"):
            self.receipt_times.append(time.monotonic())
        super()._on_message(client, userdata, msg)


def _nodes(rmq: RabbitCluster, site: str, count: int) -> list[TimedNode]:
    ports, auth = rmq.mqtt_ports, ("node", rmq.node_password)
    nodes = [TimedNode(ports[i % 3], site, f"n{i}", ports=ports, auth=auth) for i in range(count)]
    for n in nodes:
        n.connect()
    return nodes


def bare_rate(rmq: RabbitCluster, n: int) -> float:
    """The queue alone: the same scans into a quorum queue bound as the gateway binds it, drained by a pika
    consumer that only acknowledges (multiple, every 200), no store, no receipts. Rate = n / (last one in - start)."""
    creds = pika.PlainCredentials("gateway", rmq.gateway_password)
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", rmq.members[0].amqp_port, credentials=creds))
    ch = conn.channel()
    ch.queue_declare("checkpoint-bare", durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_bind("checkpoint-bare", "amq.topic", routing_key="checkpoint.v1.bare.*.scan")
    ch.basic_qos(prefetch_count=400)
    nodes = _nodes(rmq, "bare", 6)
    per = n // len(nodes)
    got, t0 = 0, time.monotonic()
    threads = [threading.Thread(target=x.send_seqs, args=(range(per),)) for x in nodes]
    for t in threads:
        t.start()
    for method, _, _ in ch.consume("checkpoint-bare", inactivity_timeout=60):
        if method is None:
            raise RuntimeError(f"the bare queue stopped after {got} of {per * len(nodes)} scans")
        got += 1
        if got % 200 == 0 or got == per * len(nodes):
            ch.basic_ack(method.delivery_tag, multiple=True)
        if got == per * len(nodes):
            break
    rate = got / (time.monotonic() - t0)
    for t in threads:
        t.join()
    ch.cancel()
    ch.queue_delete("checkpoint-bare")
    conn.close()
    for x in nodes:
        x.close()
    return rate


def ingest_rate(rmq: RabbitCluster, url: str, n: int, instances: int, work: Path, site: str) -> float:
    gateways = [AmqpGateway(rmq, url, work, f"{site}-gw{i}", members=[i % 3, (i + 1) % 3, (i + 2) % 3]).start()
                for i in range(instances)]  # fmt: skip
    nodes = _nodes(rmq, site, 6)
    per = n // len(nodes)
    try:
        t0 = time.monotonic()
        threads = [threading.Thread(target=x.send_seqs, args=(range(per),)) for x in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not all(x.wait_receipts(range(per), timeout=180, resend_after=30) for x in nodes):
            raise RuntimeError("the gateways did not receipt every scan")
        return per * len(nodes) / (max(x.receipt_times[-1] for x in nodes) - t0)
    finally:
        for x in nodes:
            x.close()
        for g in gateways:
            g.terminate()


class Load:
    """`rate` scans/s spread over the nodes, in 10 ms ticks, until stopped."""

    def __init__(self, nodes: list[TimedNode], rate: float) -> None:
        self.nodes, self.rate, self.sent = nodes, rate, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        tick, next_tick = 0.01, time.monotonic()
        while not self.stop.is_set():
            for _ in range(max(1, int(self.rate * tick))):
                node = self.nodes[self.sent % len(self.nodes)]
                node.send([scan_payload(node.site, node.node, self.sent // len(self.nodes))])
                self.sent += 1
            next_tick += tick
            self.stop.wait(max(0.0, next_tick - time.monotonic()))  # pacing the load generator


def _gap(times: list[float], since: float, until: float) -> float:
    window = [since] + [t for t in times if since <= t <= until]
    return max((b - a for a, b in itertools.pairwise(window)), default=until - since)


def _kill_once(rmq: RabbitCluster, gateways: list[AmqpGateway], nodes: list[TimedNode], what: str) -> float:
    """Kill the member node 0 is on, or gateway 1; the longest pause in receipts in the 8 s after; restart it."""
    time.sleep(2.0)  # steady flow before the kill (a load pattern, not a synchronisation)
    at = time.monotonic()
    member = rmq.mqtt_ports.index(nodes[0].port)  # where node 0 is now
    if what == "member":
        rmq.kill(member)
    else:
        gateways[1].kill()
    time.sleep(8.0)  # the window in which the gap is measured
    watched = nodes[:1] if what == "member" else nodes
    gap = max(_gap(x.receipt_times, at, time.monotonic()) for x in watched)
    if what == "member":
        rmq.start_member(member)
    else:
        gateways[1].start()
    return gap


def _all_receipted(load: Load) -> None:
    load.stop.set()
    load.thread.join()
    nodes = load.nodes
    for i, x in enumerate(nodes):
        seqs = [s for s in range(load.sent // len(nodes) + 1) if s * len(nodes) + i < load.sent]
        if not x.wait_receipts(seqs, timeout=120, resend_after=3):
            raise RuntimeError(f"{x.node}: receipts missing after the kills")


def failover(rmq: RabbitCluster, url: str, work: Path, kills: int, rate: float) -> dict[str, list[float]]:
    gaps: dict[str, list[float]] = {"member": [], "gateway": []}
    gateways = [AmqpGateway(rmq, url, work, f"fo-gw{i}", members=[i % 3, (i + 1) % 3, (i + 2) % 3]).start()
                for i in range(2)]  # fmt: skip
    nodes = _nodes(rmq, "fo", 3)
    load = Load(nodes, rate)
    load.thread.start()
    try:
        for k in range(kills):
            for what in ("member", "gateway"):
                gaps[what].append(_kill_once(rmq, gateways, nodes, what))
                print(f"kill {k + 1} of a {what}: receipts stopped for {gaps[what][-1] * 1000:,.0f} ms", flush=True)
        _all_receipted(load)
    finally:
        load.stop.set()
        for x in nodes:
            x.close(clean=False)
        for g in gateways:
            g.kill()
    return gaps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=12_000)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--rate", type=float, default=300.0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, Cluster(durable=True) as pg:
        work = Path(tmp)
        t0 = time.monotonic()
        with RabbitCluster() as rmq:
            print(f"cluster of 3 up in {rmq.startup_s:.1f} s (started {time.monotonic() - t0:.1f} s after the bench)")
            rates = {
                "queue alone (no gateway)": bare_rate(rmq, args.n),
                "gateway sqlite x1": ingest_rate(rmq, f"sqlite:///{work / 'a.db'}", args.n, 1, work, "a"),
                "gateway postgresql x1": ingest_rate(rmq, pg.database("b"), args.n, 1, work, "b"),
                "gateway postgresql x2": ingest_rate(rmq, pg.database("c"), args.n, 2, work, "c"),
            }
            for k, v in rates.items():
                print(f"{k}: {v:,.0f} scans/s {'through the queue' if 'alone' in k else 'committed'}")
            x2 = rates["gateway postgresql x2"] / rates["gateway postgresql x1"]
            print(f"ratio two gateways/one (postgresql, cluster): {x2:.2f}")
            gaps = failover(rmq, pg.database("d"), work, args.kills, args.rate)
        for what, values in gaps.items():
            ms = [v * 1000 for v in values]
            print(f"gap after killing a {what}: p50 {statistics.median(ms):,.0f} ms, p99 {percentile(ms, 99):,.0f} ms"
                  f" ({len(ms)} kills; max {max(ms):,.0f} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
