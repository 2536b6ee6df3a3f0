"""The paho side of the gateway (gateway/mqtt.py): the client factory's errors, and the transport on a real
broker (its own network thread: acknowledgements after the publishes queued before them, reconnection)."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from gateway import config as config_mod
from gateway import mqtt
from gateway.errors import ConfigError
from gateway.ingest import Incoming, Outgoing
from sim.broker import Broker
from testkit.gateway import run_cli
from testkit.node import NodePublisher, scan_payload


def test_a_missing_ca_file_is_an_error_naming_the_file(tmp_path) -> None:
    ca = tmp_path / "no-such-ca.pem"
    cfg = config_mod.load(
        None, environ={}, overrides={"mqtt.broker": "mqtts://broker.example:8883", "mqtt.ca_file": str(ca)}
    )
    with pytest.raises(ConfigError, match=str(ca)):
        mqtt.client(cfg.mqtt, "gw-test")

    conf = tmp_path / "gateway.toml"
    conf.write_text(f'[mqtt]\nbroker = "mqtts://127.0.0.1:8883"\nca_file = "{ca}"\n')
    for command in (["run"], ["push-config", "--site", "bridge", "--node", "n1", "--id", "c1", "--threshold", "37.5"]):
        out = run_cli(*command, "--config", str(conf), "--db", f"sqlite:///{tmp_path / 'gw.db'}")
        assert out.returncode == 1, out.stderr
        assert f"mqtt.ca_file: no such file {ca}" in out.stderr and "Traceback" not in out.stderr


def test_a_ca_file_that_is_not_a_certificate_is_an_error_naming_it(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    cfg = config_mod.load(
        None, environ={}, overrides={"mqtt.broker": "mqtts://broker.example:8883", "mqtt.ca_file": str(ca)}
    )
    with pytest.raises(ConfigError, match=f"cannot use {ca}"):
        mqtt.client(cfg.mqtt, "gw-test")


def _config(broker: Broker) -> config_mod.Config:
    return config_mod.load(None, environ={}, overrides={"mqtt.broker": broker.url, "gateway.instance": "gw-t"})


@pytest.fixture
def transport(private_broker: Broker) -> Iterator[mqtt.MqttTransport]:
    t = mqtt.transport(_config(private_broker))
    t.start()
    assert t.ready.wait(10)
    yield t
    t.stop()


def _until(inbox: queue.SimpleQueue[Incoming], topic: str) -> list[Incoming]:
    """Messages from the inbox up to and including the first on `topic`."""
    taken = [inbox.get(timeout=20)]
    while taken[-1].topic != topic:
        taken.append(inbox.get(timeout=20))
    return taken


def test_receipts_reach_the_node_and_acknowledged_scans_are_not_redelivered(transport, private_broker) -> None:
    node = NodePublisher(private_broker.port, "bridge", "n1").connect()
    node.send([scan_payload("bridge", "n1", seq) for seq in (1, 2, 3)])
    batch = _until(transport.inbox, "checkpoint/v1/bridge/n1/scan")
    while sum(m.topic.endswith("/scan") for m in batch) < 3:
        batch += _until(transport.inbox, "checkpoint/v1/bridge/n1/scan")
    sent = transport.publish(Outgoing("checkpoint/v1/bridge/n1/receipt", b'{"v":1,"seqs":[1,2,3]}'))
    transport.acknowledge(batch)
    while transport.acknowledged.get(timeout=10) != sent:  # the broker has our receipt (and our online status)
        pass
    assert node.wait_receipts([1, 2, 3])
    node.close()
    transport.stop()  # a clean stop, then the same session again: nothing of n1's is left to redeliver

    again = mqtt.transport(_config(private_broker))
    again.start()
    try:
        assert again.ready.wait(10)
        marker = NodePublisher(private_broker.port, "bridge", "n9").connect()  # behind any redelivery
        marker.send([scan_payload("bridge", "n9", 1)])
        taken = _until(again.inbox, "checkpoint/v1/bridge/n9/scan")
        assert [m for m in taken if m.topic.endswith("n1/scan")] == []
        marker.close()
    finally:
        again.stop()


def test_the_transport_reconnects_after_the_broker_restarts(transport, private_broker) -> None:
    assert transport.gen == 1
    private_broker.stop()
    private_broker.start()
    node = NodePublisher(private_broker.port, "bridge", "n2").connect()  # its online status is retained
    try:
        got = _until(transport.inbox, "checkpoint/v1/bridge/n2/status")  # the transport is back and subscribed
        assert transport.gen == 2 and transport.ready.is_set()
        transport.acknowledge(got)
    finally:
        node.close()
