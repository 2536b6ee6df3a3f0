"""Nothing lost, nothing stored twice: 10,000 scans while the gateway process is SIGKILLed and restarted."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

from sim.process import GatewayProcess
from testkit.node import NodePublisher

NODES = 4
PER_NODE = 2_500
KILLS = 4


def test_sigkill_at_random_moments_loses_no_scan_and_stores_none_twice(private_broker, tmp_path) -> None:
    db = tmp_path / "crash.db"
    gateway = GatewayProcess(private_broker.port, f"sqlite:///{db}", tmp_path)
    gateway.start()
    publishers = [NodePublisher(private_broker.port, "bridge", f"n{i}").connect() for i in range(NODES)]
    rng = random.Random(20260104)
    stored_at_kills: list[int] = []

    def publish(node: NodePublisher) -> None:
        for start in range(0, PER_NODE, 100):  # in bursts, as a busy post would
            node.send_seqs(range(start, start + 100))

    threads = [threading.Thread(target=publish, args=(p,)) for p in publishers]
    for t in threads:
        t.start()
    try:
        for _ in range(KILLS):
            # A random moment (fixed seed): the process may be mid-batch, mid-commit or mid-ack.
            time.sleep(rng.uniform(0.05, 0.5))  # choosing the crash moment, not waiting for a result
            gateway.kill()
            stored_at_kills.append(_count(db))
            gateway.start()
        for t in threads:
            t.join(60)
        for p in publishers:
            assert p.wait_receipts(range(PER_NODE), timeout=60, resend_after=2.0), f"{p.node}: receipts missing"
        code, out = gateway.terminate()
        assert code == 0, out
    finally:
        for p in publishers:
            p.close()

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT node, seq FROM scans ORDER BY node, seq").fetchall()
    assert len(rows) == NODES * PER_NODE
    assert rows == sorted((f"n{i}", s) for i in range(NODES) for s in range(PER_NODE))
    assert gateway.starts == KILLS + 1
    # The kills hit while scans were flowing (not before the first or after the last one was stored).
    print("rows stored at each kill:", stored_at_kills, "resent by nodes:", sum(p.resends for p in publishers))
    assert any(0 < n < NODES * PER_NODE for n in stored_at_kills), stored_at_kills


def _count(db) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])
