"""The cluster path (issue 16 items 3-4): nodes speak MQTT to the members of a three-member RabbitMQ cluster, the
gateway consumes their scans over AMQP from a quorum queue and acknowledges each batch after its commit.

A member is SIGKILLed while scans flow: the nodes on it move to the next member, the gateway (on that member too)
moves and keeps consuming; one gateway of three is SIGKILLed: the others take its unacknowledged share;
PostgreSQL is stopped as in a crash and started again: the gateways hold, then resume. Every
scan stored once (counted in the store: rows, and the node row's own count), none lost. Each test leaves the
session's cluster whole again (the killed member started again: same data, it rejoins)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from testkit.certs import Pki
from testkit.gateway import run_cli
from testkit.node import NodePublisher, scan_payload
from testkit.postgres import Cluster
from testkit.rabbitmq import AmqpGateway, RabbitCluster

SITE = "ferry"
PER_NODE = 600


@pytest.fixture
def whole(rabbitmq: RabbitCluster) -> Iterator[RabbitCluster]:
    """The session's cluster; any member a test killed is started again afterwards, and the gateways' work
    queues are deleted with what they hold: a scan one test left unconsumed never reaches the next test's store."""
    yield rabbitmq
    for i, m in enumerate(rabbitmq.members):
        if not m.running:
            rabbitmq.start_member(i)
    rabbitmq.delete_work_queues()


def _nodes(rmq: RabbitCluster, names: list[str]) -> list[NodePublisher]:
    """Node i on member i (mod 3), moving through the others on failure."""
    auth = ("node", rmq.node_password)
    ports = rmq.mqtt_ports
    nodes = [NodePublisher(ports[i % len(ports)], SITE, n, ports=ports, auth=auth) for i, n in enumerate(names)]
    return [n.connect() for n in nodes]


def _flow(nodes: list[NodePublisher]) -> list[threading.Thread]:
    def publish(node: NodePublisher) -> None:
        for start in range(0, PER_NODE, 50):
            node.send(scan_payload(SITE, node.node, s) for s in range(start, start + 50))

    threads = [threading.Thread(target=publish, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    return threads


def _wait_stored(count: Callable[[], int], n: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (c := count()) >= n:
            return c
        time.sleep(0.01)  # polling a condition, not synchronising
    raise AssertionError(f"fewer than {n} scans stored within {timeout} s")


def _finish(
    rmq: RabbitCluster, nodes: list[NodePublisher], threads: list[threading.Thread],
    gateways: Sequence[AmqpGateway] = (), stored: Callable[[], object] = lambda: "?",
) -> None:  # fmt: skip
    """Every node's scans receipted; else an AssertionError with what tells where the receipts stopped: each
    node's missing seqs, member and moves, what the store holds, every queue's members and leader, the members'
    and the gateways' log lines."""
    for t in threads:
        t.join(60)
    for n in nodes:
        if not n.wait_receipts(range(PER_NODE), timeout=90, resend_after=2.0):
            missing = {m.node: len(set(range(PER_NODE)) - m.receipted - m.rejected) for m in nodes}
            logs = {i: rmq.log_lines(i, "MQTT", "rror", "queue") for i, m in enumerate(rmq.members) if m.running}
            tails = {g.instance: g.log.read_text(errors="replace").splitlines()[-25:] for g in gateways}
            raise AssertionError(f"{n.node}: no receipts after 90 s; missing per node {missing}; on port {n.port},"
                                 f" moves {n.moves}, resent {n.resends}; stored per node {stored()};"
                                 f" queues: {rmq.queues()}; the members' logs: {logs};"
                                 f" the gateways' logs: {tails}")  # fmt: skip


def _per_node(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT node, COUNT(*) FROM scans GROUP BY node").fetchall())


def test_killing_the_member_of_a_node_and_of_the_gateway_loses_nothing(whole: RabbitCluster, tmp_path: Path) -> None:
    rmq = whole
    db = tmp_path / "gw.db"
    gateway = AmqpGateway(rmq, f"sqlite:///{db}", tmp_path, "gw-a", members=[0, 1, 2]).start()  # on member 0
    names = ["m0", "m1", "m2"]
    nodes = _nodes(rmq, names)  # m0 on member 0 with the gateway, m1 on 1, m2 on 2

    def count() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])

    try:
        threads = _flow(nodes)
        at_kill = _wait_stored(count, PER_NODE // 2)
        rmq.kill(0)
        _finish(rmq, nodes, threads, [gateway], lambda: _per_node(db))
        assert gateway.terminate() == 0, gateway.log.read_text()[-2000:]
    finally:
        for n in nodes:
            n.close(clean=False)
        gateway.kill()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT node, seq FROM scans WHERE site = ? ORDER BY node, seq", (SITE,)).fetchall()
        counted = conn.execute("SELECT node, scans FROM nodes WHERE site = ? ORDER BY node", (SITE,)).fetchall()
    total = len(names) * PER_NODE
    assert at_kill < total, "the kill came after everything was stored"
    assert rows == sorted((n, s) for n in names for s in range(PER_NODE))  # 0 lost, 0 stored twice
    assert counted == [(n, PER_NODE) for n in names]
    assert nodes[0].moves >= 1  # the node on the killed member moved
    log = gateway.log.read_text()
    assert "lost the broker member" in log and log.count("consuming from") >= 2  # the gateway moved, consumed again
    print(f"stored at the kill: {at_kill} of {total}; node moves {[n.moves for n in nodes]};"
          f" resent {sum(n.resends for n in nodes)}")  # fmt: skip


@contextlib.contextmanager
def _gateways_on_postgresql(
    rmq: RabbitCluster, url: str, tmp_path: Path, names: list[str], instances: int = 2
) -> Iterator[tuple[list[AmqpGateway], list[NodePublisher], list[threading.Thread], int]]:
    """`instances` gateways on one database (gateway i first on member i), nodes on members 0-2, scans flowing:
    yields once half of a node's worth is stored (with that count); afterwards every scan stored exactly once."""
    members = [0, 1, 2]
    gateways = [
        AmqpGateway(rmq, url, tmp_path, f"gw-{names[0]}-{i}", members=members[i % 3 :] + members[: i % 3]).start()
        for i in range(instances)
    ]
    nodes = _nodes(rmq, names)

    def count() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT COUNT(*) FROM scans").fetchone()
            return int(row[0]) if row else 0

    try:
        threads = _flow(nodes)
        at_kill = _wait_stored(count, PER_NODE // 2)
        yield gateways, nodes, threads, at_kill
    finally:
        for n in nodes:
            n.close(clean=False)
        for g in gateways:
            g.kill()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT node, seq FROM scans ORDER BY node, seq").fetchall()
        counted = conn.execute("SELECT node, scans FROM nodes ORDER BY node").fetchall()
    assert at_kill < len(names) * PER_NODE, "the kill came after everything was stored"
    assert rows == sorted((n, s) for n in names for s in range(PER_NODE))  # 0 lost, 0 stored twice
    assert counted == [(n, PER_NODE) for n in names]
    print(f"stored at the kill: {at_kill} of {len(names) * PER_NODE}; resent {sum(n.resends for n in nodes)}")


def test_killing_one_gateway_of_three_loses_nothing(whole: RabbitCluster, postgres: Cluster, tmp_path: Path) -> None:
    """Three gateways share the work queue on one PostgreSQL; one is SIGKILLed under load: the other two take
    its unacknowledged scans, every scan stored exactly once."""
    with _gateways_on_postgresql(whole, postgres.database(), tmp_path, ["g0", "g1", "g2"], instances=3) as flowing:
        gateways, nodes, threads, _ = flowing
        gateways[1].kill()  # under load: mid-batch, mid-commit or mid-ack
        _finish(whole, nodes, threads, gateways)
        for g in (gateways[0], gateways[2]):
            assert g.terminate() == 0, g.log.read_text()[-2000:]


def test_postgresql_killed_and_restarted_the_gateways_hold_then_resume(
    whole: RabbitCluster, postgres: Cluster, tmp_path: Path
) -> None:
    """PostgreSQL stops as in a crash while scans flow into two gateways: they acknowledge and receipt nothing,
    say why, and resume by themselves once it is back; every scan stored once."""
    with _gateways_on_postgresql(whole, postgres.database(), tmp_path, ["p0", "p1", "p2"]) as flowing:
        gateways, nodes, threads, _ = flowing
        postgres.stop("immediate")
        try:
            for g in gateways:
                _wait_logged(g, "cannot store")
        finally:
            postgres.restart()
        _finish(whole, nodes, threads, gateways)
        for g in gateways:
            _wait_logged(g, "storing again after")
            assert g.terminate() == 0, g.log.read_text()[-2000:]


def _wait_logged(gateway: AmqpGateway, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in gateway.log.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{gateway.instance} did not log {text!r} within {timeout} s; see {gateway.log}")
        time.sleep(0.05)  # polling its log for the line, not a synchronisation by time


def test_a_retained_message_stays_on_the_member_that_took_it(whole: RabbitCluster) -> None:
    """RabbitMQ 3.10's limit that the cluster path is designed around (docs/scale.md): a subscriber on another
    member does not get a retained message; one on the same member does."""
    topic = f"checkpoint/v1/{SITE}/r1/config"
    auth = ("node", whole.node_password)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="retained-publisher")
    publisher.username_pw_set(*auth)
    publisher.connect("127.0.0.1", whole.mqtt_ports[0])
    publisher.loop_start()
    try:
        publisher.publish(topic, b'{"v":1}', qos=1, retain=True).wait_for_publish(10)
        same = _retained(whole.mqtt_ports[0], topic, auth)
        other = _retained(whole.mqtt_ports[1], topic, auth)
        publisher.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # cleared
    finally:
        publisher.disconnect()
        publisher.loop_stop()
    assert (same, other) == ([b'{"v":1}'], [])


def _retained(port: int, topic: str, auth: tuple[str, str]) -> list[bytes]:
    """What a new subscriber on `port` gets for `topic` before a message published after its SUBACK."""
    got: list[bytes] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"retained-{port}")
    c.username_pw_set(*auth)
    c.on_message = lambda client, userdata, msg: done.set() if msg.payload == b"marker" else got.append(msg.payload)
    c.on_subscribe = lambda client, *a: client.publish(topic.rsplit("/", 1)[0] + "/marker", b"marker", qos=1)
    c.connect("127.0.0.1", port)
    c.subscribe([(topic, 1), (topic.rsplit("/", 1)[0] + "/marker", 1)])
    c.loop_start()
    try:
        assert done.wait(10), "the marker did not come back"
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def test_a_pushed_config_reaches_a_node_online_on_another_member(whole: RabbitCluster, tmp_path: Path) -> None:
    """push-config publishes to member 0 (its retained copy stays there) and keeps the push in the gateway's
    database; the node comes up on member 1 with another config id: the gateway sends the push again, and it
    arrives there (the retained copy would not: test_a_retained_message_stays_on_the_member_that_took_it)."""
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    gateway = AmqpGateway(whole, db, tmp_path, "gw-config", members=[0, 1, 2]).start()
    auth = ("node", whole.node_password)
    topic = f"checkpoint/v1/{SITE}/c1/config"
    got: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="config-watcher")  # where the node's session is
    watcher.username_pw_set(*auth)
    watcher.on_message = lambda c, u, m: got.put(bytes(m.payload))
    watcher.on_subscribe = lambda *a: subscribed.set()
    node = None
    try:
        env = dict(os.environ, CHECKPOINT_MQTT_USERNAME=auth[0], CHECKPOINT_MQTT_PASSWORD=auth[1])
        pushed = run_cli("push-config", "--broker", f"mqtt://127.0.0.1:{whole.mqtt_ports[0]}", "--db", db,
                         "--site", SITE, "--node", "c1", "--id", "c7", "--threshold", "37.6", env=env)  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        watcher.connect("127.0.0.1", whole.mqtt_ports[1])  # subscribed after the push, as a node coming up
        watcher.loop_start()
        watcher.subscribe(topic, 1)
        assert subscribed.wait(10)
        node = NodePublisher(whole.mqtt_ports[1], SITE, "c1", auth=auth).connect()  # status: config "test"
        body = json.loads(got.get(timeout=30))
        assert (body["id"], body["threshold_c"]) == ("c7", 37.6)
        assert gateway.terminate() == 0, gateway.log.read_text()[-2000:]
    finally:
        if node is not None:
            node.close(clean=False)
        watcher.disconnect()
        watcher.loop_stop()
        gateway.kill()
    assert "not the pushed 'c7': sending it again" in gateway.log.read_text()


def test_over_amqps_the_gateway_verifies_every_member(whole: RabbitCluster, tmp_path: Path) -> None:
    """amqps://: the gateway consumes through the members' TLS listeners, each certificate verified against
    mqtt.ca_file for the address it dials; with a CA that did not sign them it talks to no member, says why,
    and consumes nothing (a scan waits in the queue for a gateway that can verify the cluster)."""
    db = f"sqlite:///{tmp_path / 'tls.db'}"
    stranger = Pki(tmp_path / "pki").ca("not-the-cluster")
    refused = AmqpGateway(whole, db, tmp_path, "gw-tls-stranger", [0, 1, 2], ca_file=stranger.crt).start(wait=False)
    try:
        _wait_logged(refused, "cannot reach the broker member")
        log = refused.log.read_text()
        assert "CERTIFICATE_VERIFY_FAILED" in log and "consuming from" not in log
    finally:
        refused.kill()
    gateway = AmqpGateway(whole, db, tmp_path, "gw-tls", [1, 2, 0], ca_file=whole.ca.crt).start()
    node = NodePublisher(whole.mqtt_ports[0], SITE, "tls1", auth=("node", whole.node_password)).connect()
    try:
        node.send_seqs(range(5))
        assert node.wait_receipts(range(5), timeout=30)
        assert gateway.terminate() == 0, gateway.log.read_text()[-2000:]
    finally:
        node.close(clean=False)
        gateway.kill()
    with sqlite3.connect(tmp_path / "tls.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM scans WHERE node = 'tls1'").fetchone()[0] == 5
