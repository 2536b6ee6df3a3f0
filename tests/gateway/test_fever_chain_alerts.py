"""Issue 10, kind 8: a medic's client that connects later still gets every open alert.

Before the fix a fever raised while the medic's client was offline, with the broker killed a few seconds later
(before it saved anything), was gone for good: the gateway had counted the broker's PUBACK as delivered and
never published it again. Right: every open alert has a retained state on `{prefix}/alerts/{site}/{alert_id}`,
published again on every connection of the gateway to the broker, cleared (zero-length retained) when the
alert is resolved; delivery is at least once with a stable id (alert_id + event). A clean stop right after an
alert no longer publishes it twice.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.store import Store
from sim.broker import Broker
from sim.watch import Watcher
from testkit.node import scan_payload
from testkit.service import ServiceLoop, is_event

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
STATES = "checkpoint/v1/alerts/bridge/+"


class Medic:
    """A client that subscribes to the alert states and collects what the broker hands it, retained or live.
    `sync()` returns once everything the broker had for it at that moment has arrived (a marker message
    published on the same connection comes back after them)."""

    def __init__(self, port: int) -> None:
        self.got: dict[str, bytes] = {}  # topic -> last payload
        self._cond = threading.Condition()
        self._markers = 0
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"medic-{id(self)}")
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(STATES, 1), ("test/medic-marker", 1)])
        if not subscribed.wait(10):
            raise TimeoutError("medic: no SUBACK")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            if msg.topic == "test/medic-marker":
                self._markers += 1
            else:
                self.got[msg.topic] = bytes(msg.payload)
            self._cond.notify_all()

    def sync(self) -> dict[str, Any]:
        """The open alerts it holds now: alert_id -> state payload (a cleared state is no alert)."""
        with self._cond:
            want = self._markers + 1
        self.client.publish("test/medic-marker", b"x", qos=1)
        with self._cond:
            if not self._cond.wait_for(lambda: self._markers >= want, 10):
                raise TimeoutError("medic: the marker did not come back")
            return {t.rsplit("/", 1)[-1]: json.loads(p) for t, p in self.got.items() if p}

    def wait_for(self, alert_id: str, timeout: float = 20.0) -> dict[str, Any]:
        topic = STATES.replace("+", alert_id)
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self.got.get(topic)), timeout):
                raise TimeoutError(f"medic: no state for {alert_id} within {timeout} s; got {list(self.got)}")
            return dict(json.loads(self.got[topic]))

    def wait_kind(self, kind: str, timeout: float = 20.0) -> list[str]:
        """The ids of the open alerts of `kind` it holds, once there is one."""
        with self._cond:
            self._cond.wait_for(lambda: any(f'"kind":"{kind}"'.encode() in p for p in self.got.values()), timeout)
        return [a for a, body in self.sync().items() if body["kind"] == kind]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_an_alert_raised_before_a_broker_crash_reaches_a_medic_who_connects_later(
    start_gateway, nodes, private_broker: Broker, db_url: str
) -> None:
    gw = start_gateway()
    stream = Watcher(private_broker.port, "checkpoint/v1/alerts/bridge")
    node = nodes("bridge", "n1")
    node.send_seqs([7], **FEVER)
    _, raised = stream.wait_for(lambda t, b: b["kind"] == "fever")  # on the event stream: the broker has it
    stream.close()
    alert_id = raised["alert_id"]

    private_broker.kill()  # before any save: the broker forgets every session and retained message
    private_broker.start()
    medic = Medic(private_broker.port)  # the medic's client connects only now
    try:
        state = medic.wait_for(alert_id)
        assert (state["alert_id"], state["event"], state["state"], state["seq"]) == (alert_id, 1, "raised", 7)
        assert state == raised  # the same event, the same id: a client that saw it already drops the repeat
    finally:
        medic.close()
    assert gw.store.alert(alert_id) is not None


def test_a_resolved_alert_leaves_no_retained_state(start_gateway, nodes, private_broker: Broker) -> None:
    start_gateway()
    node = nodes("bridge", "n2")
    node.send_seqs([1], **FEVER)
    medic = Medic(private_broker.port)
    try:
        fever_id = "fever:bridge:n2:1"
        medic.wait_for(fever_id)
        node.close()  # a clean offline status: node_offline is raised
        [offline] = medic.wait_kind("node_offline")
        node = nodes("bridge", "n2")  # back online: node_offline resolved, its retained state cleared
        node.send_seqs([2])
        assert node.wait_receipts([2], timeout=15)
        later = Medic(private_broker.port)  # a client connecting now sees only what is open
        try:
            assert set(later.sync()) == {fever_id}
        finally:
            later.close()
        assert offline not in medic.sync()
    finally:
        medic.close()


def test_a_clean_stop_right_after_an_alert_does_not_publish_it_again(store: Store) -> None:
    first = ServiceLoop(store).start()
    first.send("n1", "scan", scan_payload("bridge", "n1", 1, **FEVER))
    first.stop()  # the broker acknowledged the event; the stop comes before the next transaction
    assert store.unpublished_events() == []

    again = ServiceLoop(store).start()
    again.send("n1", "scan", scan_payload("bridge", "n1", 2))
    again.stop()
    assert [s for s in again.transport.wire if is_event(s)] == []
    states = again.transport.published("/alerts/bridge/")  # the retained state, published on connecting
    assert [(s.out.retain, s.body()["alert_id"]) for s in states if s.out] == [(True, "fever:bridge:n1:1")]
