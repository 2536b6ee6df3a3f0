"""Two gateway processes on one PostgreSQL database and one Mosquitto, sharing the stream ($share/ingest/...):
one is SIGKILLed under load. Nothing is lost (the nodes resend what has no receipt, the other instance takes
it), nothing is stored twice, each fever is alerted once, and the node rows count every stored scan once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg

from sim.broker import Broker
from sim.process import GatewayProcess
from testkit.node import NodePublisher, scan_payload
from testkit.postgres import Cluster

NODES = 4
PER_NODE = 1_500
FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}


def febrile(seq: int) -> bool:
    return seq % 10 == 7


def test_sigkill_of_one_of_two_instances_loses_nothing_and_alerts_each_fever_once(
    private_broker: Broker, postgres: Cluster, tmp_path: Path
) -> None:
    url = postgres.database()
    gateways = []
    for name in ("gw-a", "gw-b"):
        (tmp_path / name).mkdir()
        gateways.append(GatewayProcess(private_broker.port, url, tmp_path / name, name, share_group="ingest"))
    for g in gateways:
        g.start()
    publishers = [NodePublisher(private_broker.port, "bridge", f"n{i}").connect() for i in range(NODES)]

    def publish(node: NodePublisher) -> None:
        for start in range(0, PER_NODE, 100):
            node.send(
                scan_payload("bridge", node.node, s, **(FEVER if febrile(s) else {})) for s in range(start, start + 100)
            )

    threads = [threading.Thread(target=publish, args=(p,)) for p in publishers]
    try:
        for t in threads:
            t.start()
        total = NODES * PER_NODE
        stored_at_kill = _wait_until_stored(url, total // 4)
        gateways[1].kill()  # under load: mid-batch, mid-commit or mid-ack
        for t in threads:
            t.join(60)
        for p in publishers:
            assert p.wait_receipts(range(PER_NODE), timeout=90, resend_after=2.0), f"{p.node}: receipts missing"
        code, out = gateways[0].terminate()
        assert code == 0, out
    finally:
        for p in publishers:
            p.close()
        for g in gateways:
            if g.running:
                g.kill()

    assert stored_at_kill < total, "the kill came after everything was stored"
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT node, seq FROM scans ORDER BY node, seq").fetchall()
        fevers = conn.execute("SELECT alert_id, events FROM alerts WHERE kind = 'fever' ORDER BY alert_id").fetchall()
        events = conn.execute("SELECT COUNT(*) FROM alert_events e JOIN alerts a USING (alert_id)"
                              " WHERE a.kind = 'fever'").fetchone()  # fmt: skip
        nodes = conn.execute("SELECT node, scans, last_seq, state FROM nodes ORDER BY node").fetchall()
    assert len(rows) == total  # 0 lost, 0 stored twice
    assert rows == sorted((f"n{i}", s) for i in range(NODES) for s in range(PER_NODE))
    expected = sorted(f"fever:bridge:n{i}:{s}" for i in range(NODES) for s in range(PER_NODE) if febrile(s))
    assert [a for a, _ in fevers] == expected and all(n == 1 for _, n in fevers)  # each fever alerted once
    assert events == (len(expected),)
    assert nodes == [(f"n{i}", PER_NODE, PER_NODE - 1, "online") for i in range(NODES)]
    print(f"stored at the kill: {stored_at_kill} of {total}; resent by nodes: {sum(p.resends for p in publishers)}")


def _wait_until_stored(url: str, n: int, timeout: float = 60.0) -> int:
    """Poll the scan count until it reaches n (the kill comes while scans flow)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT COUNT(*) FROM scans").fetchone()
            count = int(row[0]) if row else 0
            if count >= n:
                return count
            time.sleep(0.01)  # polling a condition, not synchronising
    raise AssertionError(f"fewer than {n} scans stored within {timeout} s")


def test_a_node_heard_by_another_instance_is_not_silent() -> None:
    """Each instance hears only its share of a node's messages: the store's newer last_seen counts as heard."""
    from gateway.fleet import Fleet
    from gateway.store import NodeRow

    fleet = Fleet([NodeRow("bridge", "n1", "online", "traffic", 0, 0)], started_at=0)  # wall = mono here
    heard_by_b = [NodeRow("bridge", "n1", "online", "traffic", 0, 150_000)]
    fleet.heard_elsewhere(heard_by_b, now=200_000, mono=200_000)
    assert fleet.silent(now=200_000, mono=200_000, offline_after_ms=180_000) == []
    (gone,) = fleet.silent(now=331_000, mono=331_000, offline_after_ms=180_000)  # nobody heard it since 150 s
    assert (gone.after, gone.reason) == ("offline", "silent")
