"""The private broker fixture really carries MQTT traffic (a QoS 1 round trip through paho)."""

from __future__ import annotations

import queue
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sim.broker import Broker


def test_broker_carries_qos1_message(private_broker: Broker) -> None:
    got: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-sub")
    sub.on_message = lambda c, u, m: got.put(m.payload)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", private_broker.port)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-pub")
    try:
        sub.subscribe("checkpoint/v1/t/n/scan", qos=1)
        assert subscribed.wait(5), "no SUBACK from the private broker"
        pub.connect("127.0.0.1", private_broker.port)
        pub.loop_start()
        pub.publish("checkpoint/v1/t/n/scan", b"x", qos=1).wait_for_publish(timeout=5)
        assert got.get(timeout=5) == b"x"
    finally:
        pub.loop_stop()
        sub.loop_stop()


def test_broker_restart_keeps_port(private_broker: Broker) -> None:
    port = private_broker.port
    private_broker.stop()
    private_broker.start()
    assert private_broker.port == port
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-restart")
    assert c.connect("127.0.0.1", port) == 0
    c.disconnect()
