"""Attack 3 of issue 11, on deploy/mosquitto/production.conf with the passwd and ACL written by `checkpoint-gateway
provision`, every client over TLS: a node publishing under another site, a node's retained message on the
alerts topics, a medic publishing a scan, a node taking another node's or the gateway's client id. Each fails.

"Nothing arrived" is shown without waiting: every forbidden publish is acknowledged by the broker (PUBACK)
before a marker is published on an allowed topic; one broker thread handles both in order, so a forbidden
message that got through would arrive before the marker."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from testkit.production import Deployment, provisioned

P = "checkpoint/v1"
SCAN = b'{"v":1}'


class Client:
    def __init__(self, d: Deployment, user: str, password: str, client_id: str = "", clean: bool = True) -> None:
        self.got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.gone = threading.Event()
        self._up: queue.Queue[int] = queue.Queue()
        self._sub = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                             protocol=mqtt.MQTTv311)  # fmt: skip
        self.c.username_pw_set(user, password)
        self.c.tls_set(ca_certs=str(d.ca.crt))
        self.c.on_connect = lambda c, u, f, rc, p: self._up.put(rc.value)
        self.c.on_disconnect = lambda *a: self.gone.set()
        self.c.on_message = lambda c, u, m: self.got.put(m)
        self.c.on_subscribe = lambda *a: self._sub.set()
        self.c.connect("127.0.0.1", d.tls_port)
        self.c.loop_start()
        assert self._up.get(timeout=10) == 0, f"{user} refused"

    def subscribe(self, topic: str) -> None:
        self._sub.clear()
        self.c.subscribe(topic, qos=1)
        assert self._sub.wait(10)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def topics(self, until: str) -> list[str]:
        """The topics received up to and including `until`."""
        out = []
        while not out or out[-1] != until:
            out.append(self.got.get(timeout=10).topic)
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = provisioned(tmp_path_factory.mktemp("prod"), ["bridge-1/lane-1", "bridge-1/lane-2", "river/lane-1"])
    d.set_password("medic", "medic-pass")
    with d.broker():
        yield d


def node(d: Deployment, site: str, name: str, client_id: str = "") -> Client:
    return Client(d, f"{site}.{name}", d.node_password(site, name), client_id)


def gateway(d: Deployment, client_id: str = "gateway-1", clean: bool = True) -> Client:
    g = Client(d, "gateway", d.gateway_password(), client_id, clean)
    g.subscribe(f"{P}/#")
    return g


def test_a_node_publishes_only_its_own_site_and_node_topics(deployment: Deployment) -> None:
    gw = gateway(deployment)
    n = node(deployment, "bridge-1", "lane-1")
    for t in ("river/lane-1/scan", "bridge-1/lane-2/scan", "alerts/lane-1/status", "gateway/gateway-1/status",
              "bridge-1/lane-1/receipt", "bridge-1/lane-1/config"):  # fmt: skip
        n.publish(f"{P}/{t}", SCAN, retain=True)
    n.publish(f"{P}/bridge-1/lane-1/scan", SCAN)
    assert gw.topics(until=f"{P}/bridge-1/lane-1/scan") == [f"{P}/bridge-1/lane-1/scan"]
    n.close()
    gw.close()


def test_no_retained_message_from_a_node_reaches_a_medic(deployment: Deployment) -> None:
    n = node(deployment, "bridge-1", "lane-2")
    n.publish(f"{P}/alerts/lane-2/status", b'{"v":1,"state":"offline"}', retain=True)
    medic = Client(deployment, "medic", "medic-pass")
    medic.subscribe(f"{P}/alerts/#")  # a new medic gets every retained alert: none of the node's
    gw = Client(deployment, "gateway", deployment.gateway_password(), "gateway-1")
    gw.publish(f"{P}/alerts/bridge-1", b'{"v":1,"marker":true}')
    assert medic.topics(until=f"{P}/alerts/bridge-1") == [f"{P}/alerts/bridge-1"]
    for c in (n, medic, gw):
        c.close()


def test_a_medic_publishes_nothing_on_node_topics(deployment: Deployment) -> None:
    gw = gateway(deployment)
    medic = Client(deployment, "medic", "medic-pass")
    for t in ("bridge-1/lane-1/scan", "bridge-1/lane-1/status", "bridge-1/lane-1/receipt", "alerts/bridge-1"):
        medic.publish(f"{P}/{t}", SCAN)
    n = node(deployment, "bridge-1", "lane-1")
    n.publish(f"{P}/bridge-1/lane-1/health", SCAN)
    assert gw.topics(until=f"{P}/bridge-1/lane-1/health") == [f"{P}/bridge-1/lane-1/health"]
    for c in (gw, medic, n):
        c.close()


def test_a_node_cannot_take_another_nodes_or_the_gateways_client_id(deployment: Deployment) -> None:
    gw = gateway(deployment, "gateway", clean=False)  # the gateway's id under use_username_as_clientid
    victim = node(deployment, "river", "lane-1", client_id="river.lane-1")
    thief = node(deployment, "bridge-1", "lane-2", client_id="river.lane-1")  # the victim's id
    thief2 = node(deployment, "bridge-1", "lane-1", client_id="gateway")  # the gateway's id, persistent session
    victim.publish(f"{P}/river/lane-1/scan", SCAN)  # both are still connected and served
    assert gw.topics(until=f"{P}/river/lane-1/scan") == [f"{P}/river/lane-1/scan"]  # no will: no offline status
    assert not victim.gone.is_set() and not gw.gone.is_set()
    for c in (thief, thief2, victim, gw):
        c.close()
