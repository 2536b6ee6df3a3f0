"""The contract test's last two node messages, each built by the node's real uplink, read by the gateway's parser.

tests/firmware/test_contract_node.py builds health from the node's own figures and a dict of the uplink's that
the test writes; here the uplink writes it (uplink.Uplink over a real outbox that dropped records), so the
uplink's names (outbox_depth, outbox_drops, rssi, uplink) are the ones checked: the issue's bug was in exactly
that dict (`outbox_dropped`), and message.encode would leave an unknown name out, not fail. And status with
every optional field set the way the node sets them: a refused config, a refused forged receipt (auth_refused,
auth_error, through the real Downlink and auth.Guard) and a sensor the node will not screen with.
"""

from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path
from typing import Any

import firmware
from gateway import protocol
from sim.clock import ManualClock
from testkit.node import scan_payload

contract = firmware.module("contract")
downlink_mod = firmware.module("downlink")
health_mod = firmware.module("health")
outbox_mod = firmware.module("outbox")
receipts_mod = firmware.module("receipts")
record = firmware.module("record")
session_mod = firmware.module("session")
uplink_mod = firmware.module("uplink")
PREFIX = contract.PREFIX
SITE, NODE = "bridge-1", "lane-1"
KEY = "5e" * 32


class Wifi:
    """The board's Wi-Fi as the uplink asks it (board.py): up, with a signal."""

    def isconnected(self) -> bool:
        return True

    def rssi(self) -> int:
        return -61


def identity(**more: Any) -> dict[str, Any]:
    return {"site": SITE, "node": NODE, "fw": "0.1.0", "boot": 4, "config_id": "cfg-7", **more}


def full_outbox(root: Path) -> Any:
    """An outbox of two 256-byte segments filled past its size: the oldest segment's records are dropped."""
    box = outbox_mod.Outbox(str(root / "outbox"), segment_bytes=256, max_bytes=512)
    box.open()
    scan = {k: v for k, v in scan_payload(SITE, NODE, 0).items() if k not in ("v", "site", "node", "seq")}
    while box.dropped == 0 or box.depth < 2:
        box.append(record.pack(scan))
    return box


def at_gateway(kind: str, payload: bytes) -> Any:
    return protocol.parse(PREFIX, f"{PREFIX}/{SITE}/{NODE}/{kind}", payload)


def test_the_uplinks_health_arrives_whole_with_the_outboxs_drops(tmp_path: Path) -> None:
    clock = ManualClock()
    box = full_outbox(tmp_path)
    node = health_mod.Health(clock)
    node.scans = box.next_seq
    cfg = {"broker": {"host": "broker", "port": 1883}, "prefix": PREFIX, "health_interval_s": 60}
    figures = lambda: node.figures({"pec": 2}, 3.71, 0, 81_000)  # noqa: E731  # the node's part, as node.py
    up = uplink_mod.Uplink(cfg, identity(), box, clock, Wifi(), lambda m: (True, None), print, figures)
    payload = up._health_payload()
    assert up.counts["errors"] == 0  # nothing was left out
    sent = json.loads(payload)
    assert set(sent) == set(contract.names(contract.HEALTH))
    got = at_gateway("health", payload)
    assert isinstance(got, protocol.Health), got
    assert (got.outbox_drops, got.outbox_depth, got.rssi) == (box.dropped, box.depth, -61)
    assert got.outbox_drops > 0 and got.uplink == up.counts and got.sensor_errors == 2
    for name, value in sent.items():
        if name not in ("v", "sensor_errors"):
            assert getattr(got, name) == value, name


def test_status_with_every_field_the_node_sets_arrives_whole(tmp_path: Path) -> None:
    broker = {"host": "broker", "port": 1883, "hmac_key": KEY}
    session = session_mod.Session(broker, PREFIX, identity(sensor_error="sensor_repower_needed: iir"), ManualClock())
    box = outbox_mod.Outbox(str(tmp_path / "outbox"))
    box.open()
    receipts = receipts_mod.Receipts(box, ManualClock(), 120_000, {"receipted": 0, "resends": 0})
    down = downlink_mod.Downlink(session.topic(""), receipts, session, lambda m: (False, "calibration: bad"),
                                 print, asyncio.Event())  # fmt: skip
    down.on_message(session.topic("receipt"), b'{"v":1,"seqs":[0],"ctr":1,"sig":"' + b"0" * 64 + b'"}', False)
    down.on_message(session.topic("config"), b'{"v":1,"id":"cfg-8"}', False)  # unsigned: refused too
    assert session.auth_refused == 2
    session.config_error = "calibration: bad"  # as a refused, authentic config leaves it
    session.client = types.SimpleNamespace(error=firmware.module("mqttread").CLOSED)  # the broker ended it twice:
    assert [session.retry_ms(1000, 60_000) for _ in range(2)] == [1000, 2000]  # taken over, each waits longer
    payload = session.status()
    sent = json.loads(payload)
    assert set(sent) == set(contract.names(contract.STATUS))  # every status field the contract has
    got = at_gateway("status", payload)
    assert isinstance(got, protocol.Status), got
    for name, value in sent.items():
        if name != "v":
            assert getattr(got, name) == value, name
    assert got.auth_refused == 2 and got.auth_error.startswith("config: ") and got.sensor_error
    assert got.taken_over == 2
