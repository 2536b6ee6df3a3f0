"""A pushed config reaches a node that comes online on any member of a broker cluster (issue 16): push-config
keeps it in the gateway's database, and a gateway on the cluster path (amqp://) sends it again, QoS 1, to a node
whose status says another config id; not to one that runs it, and not on Mosquitto, whose retained copy does.
The service loop on an in-memory transport, a real SQLite store; push-config through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, open_store
from gateway.store.base import NodeConfigRow
from testkit.gateway import run_cli
from testkit.service import ServiceLoop

PUSHED = {"v": 1, "id": "c2", "threshold_c": 37.4}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    with s.transaction() as tx:
        tx.save_node_config(NodeConfigRow("bridge", "n1", "c2", json.dumps(PUSHED), 1))
    yield s
    s.close()


def _status(config_id: str) -> dict[str, object]:
    return {"v": 1, "state": "online", "fw": "1.0", "boot": 3, "config_id": config_id}


def test_a_node_online_without_its_pushed_config_gets_it_again_on_a_cluster(store: Store) -> None:
    loop = ServiceLoop(store, mqtt__broker="amqp://127.0.0.1:5672/").start()
    try:
        loop.send("n1", "status", _status("c1"))  # came up on a member that never had the retained config
        sent = loop.transport.published("/bridge/n1/config")
        assert [(json.loads(s.out.payload), s.out.qos, s.out.retain) for s in sent if s.out] == [(PUSHED, 1, False)]
        loop.send("n1", "status", _status("c2"))  # it applied it: nothing more
        loop.send("n2", "status", _status("c1"))  # nothing was ever pushed to n2
        assert len(loop.transport.published("/config")) == 1
    finally:
        loop.stop()


def test_on_mosquitto_the_retained_config_is_enough(store: Store) -> None:
    loop = ServiceLoop(store).start()
    try:
        loop.send("n1", "status", _status("c1"))
        assert loop.transport.published("/config") == []
    finally:
        loop.stop()


def test_push_config_keeps_the_push_in_the_gateways_database(tmp_path: Path, private_broker) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    open_store(db).close()  # the gateway's database exists (push-config never creates one)
    done = run_cli("push-config", "--broker", f"mqtt://127.0.0.1:{private_broker.port}", "--db", db,
                   "--site", "bridge", "--node", "n1", "--id", "c9", "--threshold", "37.6")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "kept as bridge/n1's config" in done.stdout
    kept = open_store(db, create=False)
    try:
        with kept.transaction() as tx:
            row = tx.node_config("bridge", "n1")
    finally:
        kept.close()
    assert row is not None and row.config_id == "c9" and json.loads(row.body)["threshold_c"] == 37.6

    nowhere = run_cli("push-config", "--broker", f"mqtt://127.0.0.1:{private_broker.port}",
                      "--db", f"sqlite:///{tmp_path / 'missing.db'}", "--site", "bridge", "--node", "n1",
                      "--id", "c10")  # fmt: skip
    assert nowhere.returncode == 0, nowhere.stderr  # the push itself goes: Mosquitto's retained copy is enough
    assert "not kept in" in nowhere.stderr and "Traceback" not in nowhere.stderr
    assert not (tmp_path / "missing.db").exists()
