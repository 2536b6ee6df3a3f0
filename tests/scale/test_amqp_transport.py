"""The cluster path's pieces without a broker: the broker URL chooses the transport, the member list is read and
checked at the door, MQTT topics and AMQP routing keys map both ways as RabbitMQ's MQTT plugin maps them."""

from __future__ import annotations

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
        ("amqps://10.0.0.1:5671/", "must look like mqtt://host:port"),
    ],
)
def test_a_bad_member_list_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        config.load(overrides={"mqtt.broker": url})


def test_addresses_default_to_the_amqp_port() -> None:
    assert addresses("amqp://a:1,b/") == [("a", 1), ("b", 5672)]


def test_topics_and_routing_keys_map_as_the_mqtt_plugin_does() -> None:
    assert routing_key("checkpoint/v1/+/+/scan") == "checkpoint.v1.*.*.scan"
    assert routing_key("checkpoint/v1/ferry/n1/receipt") == "checkpoint.v1.ferry.n1.receipt"
    assert topic_of("checkpoint.v1.ferry.n1.scan") == "checkpoint/v1/ferry/n1/scan"
