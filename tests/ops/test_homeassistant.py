"""Home Assistant MQTT discovery (gateway/homeassistant.py): the payloads carry the keys Home Assistant's MQTT
discovery documents as required, on its topic layout; nodes appear when the gateway first hears them and
disappear (empty retained configs) when retired; no person's temperature reaches Home Assistant.

Home Assistant's documented rules (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery and the
sensor / binary_sensor pages): the discovery topic is `<discovery_prefix>/<component>/[<node_id>/]<object_id>
/config`, node_id and object_id of [a-zA-Z0-9_-]; `state_topic` is required for sensor and binary_sensor; an
entity is tied to a device only with a `unique_id`, and `device` needs `identifiers` or `connections`; an empty
retained payload on the config topic removes the entity.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from gateway import config as config_mod
from gateway.homeassistant import Announcer, Discovery
from gateway.ingest import Outgoing
from gateway.protocol import Topics
from gateway.service import Gateway
from gateway.store import open_store
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport

TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$")
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}}
DEVICE_CLASSES = {"binary_sensor": {"connectivity"}, "sensor": set()}  # none of a sensor's is a temperature
PERSONAL = ("t_core", "t_site", "t_amb", "temperature", "verdict", "reading")


def _discovery() -> Discovery:
    cfg = config_mod.load(None, environ={}, overrides={"homeassistant.enabled": True})
    return Discovery(cfg.homeassistant, Topics(cfg.mqtt.topic_prefix), cfg.gateway.instance)


def _check(topic: str, payload: dict[str, Any]) -> None:
    m = TOPIC.match(topic)
    assert m is not None, topic
    component = m.group(1)
    assert REQUIRED[component] <= set(payload), (topic, REQUIRED[component] - set(payload))
    assert payload["unique_id"] and payload["device"]["identifiers"], topic
    assert payload.get("device_class") in DEVICE_CLASSES[component] | {None}, topic
    text = json.dumps(payload)
    assert not any(word in text for word in PERSONAL), topic
    for a in payload.get("availability", []):
        assert {"topic", "payload_available", "payload_not_available"} <= set(a)


def test_the_payloads_carry_the_documented_keys_on_the_documented_topics() -> None:
    d = _discovery()
    node, site = d.node("bridge-1", "lane-1", "1.4.0"), d.site("bridge-1")
    assert len(node) == 4 and len(site) == 1
    for topic, payload in {**node, **site}.items():
        _check(topic, payload)
    connectivity = node["homeassistant/binary_sensor/checkpoint_bridge-1_lane-1/connectivity/config"]
    # From the node's own retained status and its last will: online/offline on checkpoint/v1/<site>/<node>/status.
    assert connectivity["state_topic"] == "checkpoint/v1/bridge-1/lane-1/status"
    assert (connectivity["payload_on"], connectivity["payload_off"]) == ("online", "offline")
    assert len({p["unique_id"] for p in {**node, **site}.values()}) == 5


def _row(site: str, node: str) -> Any:
    from gateway.store.base import NodeRow

    return NodeRow(site, node, "online", fw="1.4.0")


def _configs(out: list[Outgoing]) -> dict[str, bytes]:
    return {o.topic: o.payload for o in out if o.topic.endswith("/config") and o.retain}


def test_nodes_appear_once_and_retired_ones_disappear(tmp_path: Path) -> None:
    clock = FakeClock()
    nodes = [_row("bridge-1", "lane-1"), _row("bridge-1", "lane-2"), _row("market", "lane-1")]
    first = Announcer(_discovery(), [], "UTC", clock, clock.monotonic)
    shown = _configs(first.announce(nodes, set()))
    assert len(shown) == 3 * 4 + 2  # four entities per node, one per site
    assert all(json.loads(p) for p in shown.values())
    assert first.announce(nodes, set()) == []  # announced once
    first.reconnected()
    assert _configs(first.announce(nodes, set())) == shown  # again after a reconnection (the broker may forget)
    # The next start: bridge-1/lane-2 retired in the registry: its four configs cleared, empty and retained.
    later = Announcer(_discovery(), [("bridge-1", "lane-2")], "UTC", clock, clock.monotonic)
    out = _configs(later.announce(nodes, later.retired))
    cleared = {t for t, p in out.items() if p == b""}
    assert cleared == {t for t in shown if "checkpoint_bridge-1_lane-2/" in t} and len(cleared) == 4
    assert {t for t, p in out.items() if p} == {t for t in shown if "checkpoint_bridge-1_lane-2/" not in t}
    assert later.announce(nodes, later.retired) == []


def test_the_gateway_announces_its_nodes_and_publishes_counts(tmp_path: Path) -> None:
    overrides = {"store.db": f"sqlite:///{tmp_path / 'g.db'}", "homeassistant.enabled": True,
                 "alerts.check_interval_s": 0.1}  # fmt: skip
    cfg = config_mod.load(None, environ={}, overrides=overrides)
    store, transport, stop, clock = open_store(cfg.store.db), MemoryTransport(), threading.Event(), FakeClock()
    gw = Gateway(cfg, store, transport, clock, clock.monotonic)
    thread = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    thread.start()
    try:
        sent = [transport.deliver("checkpoint/v1/bridge-1/lane-1/status", {"v": 1, "state": "online"})]
        sent += [transport.deliver("checkpoint/v1/bridge-1/lane-1/scan", scan_payload("bridge-1", "lane-1", s,
                 **({"t_site_c": 36.4} if s == 2 else {}))) for s in range(3)]  # fmt: skip
        transport.wait_acked(sent)
        clock.advance(60_000)  # the loop checks silence (and announces) on its monotonic clock
        state = transport.wait_for(
            lambda s: s.out is not None and s.out.topic.endswith("homeassistant/bridge-1/lane-1")
        )
        site = transport.wait_for(lambda s: s.out is not None and s.out.topic.endswith("homeassistant/bridge-1"))
    finally:
        stop.set()
        thread.join(10)
        store.close()
    configs = {s.out.topic: json.loads(s.out.payload) for s in transport.published("homeassistant/") if s.out}
    configs = {t: p for t, p in configs.items() if t.startswith("homeassistant/")}  # not the state topics
    assert sum(1 for t in configs if "checkpoint_bridge-1_lane-1/" in t) == 4
    for topic, payload in configs.items():
        _check(topic, payload)
    assert state.body() == {"scans_today": 3} and site.body() == {"open_fevers": 1}
    assert state.out is not None and state.out.retain
