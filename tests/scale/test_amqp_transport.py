"""The cluster path's pieces without a broker: the broker URL chooses the transport, the member list is read and
checked at the door, MQTT topics and AMQP routing keys map both ways as RabbitMQ's MQTT plugin maps them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.amqp import AmqpTransport, addresses, queue_name, routing_key, topic_of
from gateway.errors import ConfigError
from gateway.mqtt import MqttTransport
from gateway.transport import build


def test_the_scheme_chooses_the_transport_and_nothing_connects() -> None:
    cluster = config.load(overrides={"mqtt.broker": "amqp://10.0.0.1:5672,10.0.0.2,10.0.0.3:5673/"})
    t = build(cluster)
    assert isinstance(t, AmqpTransport) and not t.ready.is_set()
    assert t.describe().startswith("amqp://10.0.0.1:5672,10.0.0.2:5672,10.0.0.3:5673/ as 'gateway-1'")
    assert isinstance(build(config.load()), MqttTransport)


def test_the_work_queue_is_named_after_the_share_group() -> None:
    assert queue_name(config.load()) == "checkpoint-ingest"
    assert queue_name(config.load(overrides={"mqtt.share_group": "north"})) == "checkpoint-north"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("amqp://gateway:secret@10.0.0.1:5672/", "must not carry credentials"),
        ("amqp://10.0.0.1:99999/", "must look like amqp://host:port,host:port/"),
        ("amqp://10.0.0.1:5672,,10.0.0.2/", "must look like amqp://host:port,host:port/"),
        ("amqps://10.0.0.1:5671,:5671/", "must look like amqp://host:port,host:port/"),
    ],
)
def test_a_bad_member_list_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        config.load(overrides={"mqtt.broker": url})


def test_addresses_default_to_the_amqp_port() -> None:
    assert addresses("amqp://a:1,b/") == [("a", 1), ("b", 5672)]
    assert addresses("amqps://a:1,b/") == [("a", 1), ("b", 5671)]  # AMQP over TLS


def test_amqps_needs_a_ca_it_can_read_and_a_registry_needs_tls_off_this_machine(tmp_path: Path) -> None:
    tls = {"mqtt.broker": "amqps://10.0.0.1:5671,10.0.0.2:5671/"}
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file"):
        build(config.load(overrides={**tls, "mqtt.ca_file": str(tmp_path / "missing.pem")}))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"cannot use .*junk\.pem as CA certificates for amqps://"):
        build(config.load(overrides={**tls, "mqtt.ca_file": str(tmp_path / "junk.pem")}))
    assert isinstance(build(config.load(overrides=tls)), AmqpTransport)  # the system's CAs
    registry = {"gateway.registry": str(tmp_path / "nodes.json")}
    with pytest.raises(ConfigError, match=r"is plain AMQP with a node registry.*use amqps://"):
        config.load(overrides={**registry, "mqtt.broker": "amqp://10.0.0.1:5672,10.0.0.2:5672/"})
    config.load(overrides={**registry, **tls})  # TLS: accepted
    config.load(overrides={**registry, "mqtt.broker": "amqp://127.0.0.1:5672,localhost:5673/"})  # this machine


def test_topics_and_routing_keys_map_as_the_mqtt_plugin_does() -> None:
    assert routing_key("checkpoint/v1/+/+/scan") == "checkpoint.v1.*.*.scan"
    assert routing_key("checkpoint/v1/ferry/n1/receipt") == "checkpoint.v1.ferry.n1.receipt"
    assert topic_of("checkpoint.v1.ferry.n1.scan") == "checkpoint/v1/ferry/n1/scan"
