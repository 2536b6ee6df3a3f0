"""The contract test, both directions, with each side's own code (tests/test_contract.py has the scan record).

Node -> gateway: status online (with a config acknowledgement: config_id, config_error), status offline (the
last will), health, built by the firmware's session.py and health.py, read by the gateway's protocol.parse:
every field arrives with its value (`outbox_dropped` vs `outbox_drops` cannot come back). Gateway -> node: the
receipt and verdict the gateway's service publishes for a fever, and the config push-config builds, handed to
the firmware's Downlink: each is accepted by the node's contract check and acted on (records freed, the verdict
and the config reach the node with every field), both as protocol v1 without a key and signed for a node in the
gateway's registry (the node checks the MAC and counter with its key: firmware/auth.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import firmware
from gateway import config as config_mod
from gateway import protocol, push
from gateway.service import Gateway
from gateway.signing import NodeEntry, Registry
from gateway.store import open_store
from sim.clock import ManualClock
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport

contract = firmware.module("contract")
session_mod = firmware.module("session")
health_mod = firmware.module("health")
downlink_mod = firmware.module("downlink")
receipts_mod = firmware.module("receipts")
outbox_mod = firmware.module("outbox")
record = firmware.module("record")
packet = firmware.module("packet")
PREFIX = contract.PREFIX
SITE, NODE = "bridge-1", "lane-1"
IDENTITY = {"site": SITE, "node": NODE, "fw": "0.1.0", "boot": 4, "config_id": "cfg-7"}
KEY = "5e" * 32


def session(key: str | None = None) -> Any:
    broker = {"host": "broker", "port": 1883, "hmac_key": key}
    return session_mod.Session(broker, PREFIX, dict(IDENTITY), ManualClock())


def registry(tmp_path: Path, key: str | None) -> Registry | None:
    """The gateway's registry holding this node with `key` (None: no registry, protocol v1 unsigned)."""
    if key is None:
        return None
    reg = Registry({(SITE, NODE): NodeEntry(SITE, NODE, key, f"{SITE}.{NODE}", 0)})
    reg.save(tmp_path / "registry.json")
    return reg


def at_gateway(kind: str, payload: bytes) -> Any:
    return protocol.parse(PREFIX, f"{PREFIX}/{SITE}/{NODE}/{kind}", payload)


def arrives_whole(payload: bytes, message: Any) -> None:
    """Every field of the JSON the node sent is on the gateway's message with the same value."""
    sent = json.loads(payload)
    for name, value in sent.items():
        if name == "v":
            continue
        got = getattr(message, name)
        assert got == value or (isinstance(value, dict) and name == "sensor_errors" and got == sum(value.values())), (
            name,
            value,
            got,
        )


def test_status_online_with_a_config_acknowledgement_arrives_whole() -> None:
    s = session()
    s.config_error = "calibration: modes.forehead.threshold_c = 45 is outside 37.0..38.5"
    payload = s.status()
    got = at_gateway("status", payload)
    assert isinstance(got, protocol.Status)
    arrives_whole(payload, got)
    assert (got.state, got.fw, got.boot, got.config_id) == ("online", "0.1.0", 4, "cfg-7")
    assert got.config_error == s.config_error


def test_status_offline_and_the_last_will_arrive_as_offline() -> None:
    s = session()
    will_topic, will = s.will()
    assert will_topic == f"{PREFIX}/{SITE}/{NODE}/status"
    for payload in (s.status(session_mod.OFFLINE), will):
        got = at_gateway("status", payload)
        assert isinstance(got, protocol.Status) and got.state == "offline"


def test_health_arrives_with_every_figure_the_node_sends() -> None:
    """The issue's input: a node reporting 7 drops must not arrive as outbox_drops=None."""
    clock = ManualClock()
    h = health_mod.Health(clock)
    h.scans, h.outbox_errors = 12, 1
    clock.advance(90_000)
    own = {"outbox_depth": 3, "outbox_drops": 7, "rssi": -61, "uplink": {"published": 9, "connects": 2}}
    problems: list[str] = []
    payload = health_mod.payload(lambda: h.figures({"pec": 2, "flag": 1}, 3.71, 1, 81_000), own, problems)
    assert problems == []
    got = at_gateway("health", payload)
    assert isinstance(got, protocol.Health)
    arrives_whole(payload, got)
    assert (got.outbox_drops, got.outbox_depth, got.sensor_errors, got.uptime_ms) == (7, 3, 3, 90_000)
    sent = set(json.loads(payload))
    assert sent == set(contract.names(contract.HEALTH))  # the node sends every health figure the contract has


# --- gateway -> node


class Downlinked:
    """The firmware's Downlink over a real outbox holding seqs 0..n-1, recording what reaches the node."""

    def __init__(self, root: Path, n: int, key: str | None = None, unit: int | None = None) -> None:
        clock = ManualClock()
        self.outbox = outbox_mod.Outbox(str(root / "outbox"))
        self.outbox.open()
        self.counts = {"receipted": 0, "resends": 0}
        receipts = receipts_mod.Receipts(self.outbox, clock, 120_000, self.counts)
        self.verdicts: list[dict[str, Any]] = []
        self.configs: list[dict[str, Any]] = []
        self.session = session(key)
        base = contract.topic(PREFIX, SITE, NODE, "")
        self.downlink = downlink_mod.Downlink(
            base, receipts, self.session, self._config, self.verdicts.append, asyncio.Event()
        )
        for _ in range(n):  # as the node does: the record, then the uplink told (kick: downlink.made)
            scan = dict(node_scan(), unit=unit)
            self.downlink.made(self.outbox.append(record.pack(scan)), scan)

    def _config(self, msg: dict[str, Any]) -> tuple[bool, None]:
        self.configs.append(msg)
        return True, None

    def deliver(self, topic: str, payload: bytes) -> None:
        self.downlink.on_message(topic, payload, False)

    def deliver_retained(self, topic: str, payload: bytes, retained: bool) -> None:
        self.downlink.on_message(topic, payload, retained)  # mqtt.py's on_message


def node_scan() -> dict[str, Any]:
    body = scan_payload(SITE, NODE, 0, t_site_c=38.4, t_amb_c=22.0, t_core_c=39.2, verdict="elevated")
    return {k: v for k, v in body.items() if k not in ("v", "site", "node", "seq")}


@pytest.mark.parametrize("key", [None, KEY], ids=["v1", "signed"])
def test_receipt_and_verdict_from_the_gateway_are_acted_on_by_the_node(tmp_path: Path, key: str | None) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    transport = MemoryTransport()
    environ = (
        {} if registry(tmp_path, key) is None else {"CHECKPOINT_GATEWAY_REGISTRY": str(tmp_path / "registry.json")}
    )
    gateway = Gateway(config_mod.load(None, environ=environ), store, transport, FakeClock())
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert gateway.ready.wait(10)
        for seq in range(3):
            body = dict(scan_payload(SITE, NODE, seq), **node_scan())
            transport.deliver(f"{PREFIX}/{SITE}/{NODE}/scan", json.dumps(body).encode())
        transport.wait_for(lambda s: s.out is not None and s.out.topic.endswith("/verdict") and s.body()["seq"] == 2)
    finally:
        stop.set()
        thread.join(10)
        store.close()
    node = Downlinked(tmp_path, 3, key)
    assert node.outbox.depth == 3
    verdicts = [s.out for s in transport.published("/verdict") if s.out is not None]
    for s in transport.published("/receipt") + transport.published("/verdict"):
        assert s.out is not None
        node.deliver(s.out.topic, s.out.payload)
    assert node.outbox.depth == 0 and node.counts["receipted"] == 3  # every record freed by the real receipts
    origin = contract.origin(node_scan()["boot"], node_scan()["uptime_ms"])
    receipts = [json.loads(s.out.payload) for s in transport.published("/receipt") if s.out is not None]
    assert all(r["origins"] == [origin] * len(r["seqs"]) for r in receipts)  # each seq named with its unit
    assert [v["seq"] for v in node.verdicts] == [0, 1, 2] and node.session.auth_refused == 0
    for msg, out in zip(node.verdicts, verdicts, strict=True):
        sent = json.loads(out.payload)
        assert ("sig" in sent and "ctr" in sent) is (key is not None)
        assert msg == {k: v for k, v in sent.items() if k not in ("ctr", "sig")}  # every field reached the node
        assert msg["verdict"] == "elevated" and msg["alert_id"] and msg["origin"] == origin


def test_the_receipts_of_a_batch_of_thousands_reach_the_node_under_its_packet_limit(tmp_path: Path) -> None:
    """Receipts name each seq's origin: a batch holding 2,500 of one node's scans (ingest.max_batch 10,000; a
    backlog after an outage) made one receipt of 39 KB, over the node's MQTT packet limit (mqtt.py
    max_packet, 8,192 bytes: skipped unread) and its contract's 1,000 seqs: nothing freed, resent for ever. Now
    each receipt, signed, is at most contract.MAX_PAYLOAD bytes; the real gateway's packets are read by the
    node's own MQTT reader and Downlink, and every record is freed."""
    n = 2_500
    store = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    transport = MemoryTransport()
    registry(tmp_path, KEY)
    cfg = config_mod.load(None, environ={"CHECKPOINT_GATEWAY_REGISTRY": str(tmp_path / "registry.json")},
                          overrides={"ingest.max_batch": 10_000})  # fmt: skip
    for seq in range(n):  # all in the inbox before the gateway starts: one batch
        transport.deliver(f"{PREFIX}/{SITE}/{NODE}/scan", dict(scan_payload(SITE, NODE, seq), **node_scan()))
    gateway = Gateway(cfg, store, transport, FakeClock())
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    thread.start()
    try:
        transport.wait_for(lambda s: s.kind == "ack" and len(s.mids) == n, timeout=120)  # one batch of them all
    finally:
        stop.set()
        thread.join(30)
        store.close()
    sent = [s.out for s in transport.published("/receipt") if s.out is not None]
    assert len(sent) > 1 and max(len(out.payload) for out in sent) <= contract.MAX_PAYLOAD
    node = Downlinked(tmp_path, n, KEY)
    client = firmware.module("mqtt").Client(ManualClock(), NODE, "broker", on_message=node.deliver_retained)
    client.send = _no_puback
    wire = b"".join(packet.publish_packet(out.topic, out.payload, qos=1, pid=i + 1) for i, out in enumerate(sent))
    assert max(len(packet.publish_packet(o.topic, o.payload, qos=1, pid=1)) for o in sent) < client.max_packet
    asyncio.run(_read(client, wire))
    assert node.outbox.depth == 0 and node.counts["receipted"] == n and node.session.auth_refused == 0


async def _no_puback(_packet: bytes) -> None:
    return None


async def _read(client: Any, wire: bytes) -> None:
    """The node's MQTT reader (mqttread.py) over these bytes, to their end."""
    reader = asyncio.StreamReader()
    reader.feed_data(wire)
    reader.feed_eof()
    await firmware.module("mqttread").read_loop(client, reader)


def test_a_receipt_or_verdict_for_another_units_scan_under_the_name_is_not_acted_on(tmp_path: Path) -> None:
    """Issue 10 kind 1: two units under one name share the receipt and verdict topics. A receipt frees, and a
    verdict is shown, only for the seq whose origin is this unit's scan; a receipt without origins (an older
    gateway) still frees by seq."""
    node = Downlinked(tmp_path, 4)
    mine = contract.origin(node_scan()["boot"], node_scan()["uptime_ms"])
    other = contract.origin(node_scan()["boot"] + 1, 5_000)
    topic = contract.topic(PREFIX, SITE, NODE, "receipt")
    body = {"v": 1, "seqs": [0, 1, 2], "origins": [other, mine, other], "rejected": [3], "rejected_origins": [other]}
    node.deliver(topic, json.dumps(body).encode())
    assert [seq for seq, _ in node.outbox.pending(10)] == [0, 2, 3]  # only seq 1 was this unit's
    assert node.counts == {"receipted": 1, "resends": 0, "rejected": 0}
    node.deliver(topic, json.dumps({"v": 1, "seqs": [0], "origins": [mine, other]}).encode())  # unpaired: none
    node.deliver(topic, json.dumps({"v": 1, "seqs": [2]}).encode())  # an older gateway: by seq
    assert [seq for seq, _ in node.outbox.pending(10)] == [0, 3]
    verdict = {"v": 1, "verdict": "elevated", "t_core_c": 39.0, "flags": [], "cal": "c", "threshold_c": 37.5,
               "alert_id": None}  # fmt: skip
    for seq, origin in [(0, other), (1, mine), (2, None)]:
        body = dict(verdict, seq=seq) if origin is None else dict(verdict, seq=seq, origin=origin)
        node.deliver(contract.topic(PREFIX, SITE, NODE, "verdict"), json.dumps(body).encode())
    assert [(v["seq"], v.get("origin")) for v in node.verdicts] == [(1, mine), (2, None)]


def test_a_receipt_or_verdict_for_a_spare_with_the_same_boot_and_uptime_is_not_acted_on(tmp_path: Path) -> None:
    """Issue 10 kind 1: a spare unit with a fresh flash boots as boot 1 too, and may make its seq k at the very
    uptime the first unit made its seq k: only the unit (health.unit_id, in every scan) tells the two apart."""
    node = Downlinked(tmp_path, 2, unit=0x1234ABCD)
    boot, up = node_scan()["boot"], node_scan()["uptime_ms"]
    mine, spare, unitless = (contract.origin(boot, up, u) for u in (0x1234ABCD, 0x9E3779B9, None))
    assert len({mine, spare, unitless}) == 3
    topic = contract.topic(PREFIX, SITE, NODE, "receipt")
    node.deliver(topic, json.dumps({"v": 1, "seqs": [0, 1], "origins": [spare, unitless]}).encode())
    assert node.outbox.depth == 2 and node.counts["receipted"] == 0
    node.deliver(topic, json.dumps({"v": 1, "seqs": [0, 1], "origins": [mine, spare]}).encode())
    assert [seq for seq, _ in node.outbox.pending(10)] == [1]
    verdict = {"v": 1, "seq": 1, "verdict": "elevated", "t_core_c": 39.0, "flags": [], "cal": "c",
               "threshold_c": 37.5, "alert_id": None}  # fmt: skip
    for origin in (spare, mine):
        node.deliver(contract.topic(PREFIX, SITE, NODE, "verdict"), json.dumps(dict(verdict, origin=origin)).encode())
    assert [v["origin"] for v in node.verdicts] == [mine]


@pytest.mark.parametrize("key", [None, KEY], ids=["v1", "signed"])
def test_a_config_built_by_push_config_is_accepted_and_applied_by_the_node(tmp_path: Path, key: str | None) -> None:
    args = argparse.Namespace(site=SITE, node=NODE, config_id="cfg-8", mode="forehead", threshold=37.5,
                              calibration=None, wait=0.0, broker=None)  # fmt: skip
    body = push.build(args)
    node = Downlinked(tmp_path, 0, key)
    topic = contract.topic(PREFIX, SITE, NODE, "config")
    node.deliver(topic, push.payload(body, topic, SITE, NODE, registry(tmp_path, key), 1_767_225_600_000))
    assert node.configs == [body]
    assert node.session.config_error is None and node.downlink.status_due and node.session.auth_refused == 0


@pytest.mark.parametrize(
    "kind,payload",
    [("receipt", b'{"v":1,"seqs":[0,"1"]}'), ("receipt", b'{"v":1}'), ("verdict", b'{"v":1,"seq":0}'),
     ("config", b'{"v":1,"id":"c","threshold_c":45}')],
)  # fmt: skip
def test_a_downlink_message_the_contract_refuses_is_not_acted_on(tmp_path: Path, kind: str, payload: bytes) -> None:
    node = Downlinked(tmp_path, 2)
    node.deliver(contract.topic(PREFIX, SITE, NODE, kind), payload)
    assert node.outbox.depth == 2 and node.verdicts == [] and node.configs == []
    if kind == "config":
        assert node.session.config_error == "out_of_range:threshold_c"
