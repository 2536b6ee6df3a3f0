"""The contract (firmware/contract.py) holds both sides of the wire together.

The health count of dropped scans was published by the node as `outbox_dropped` and read by the gateway as
`outbox_drops`, so 7 drops arrived as None: each side was tested against its own fake. Here each message is
built by the real code of the side that sends it and read by the real code of the side that receives it, and
every field must arrive with its value. The parts that need a running node are in
tests/firmware/test_contract_node.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any

import pytest

import firmware
from gateway import protocol
from gateway.fleet import HEALTH_KEPT
from gateway.store.base import NodeRow, ScanRow
from testkit.micropython import micropython_command

contract = firmware.module("contract")
record = firmware.module("record")
HEADER = ("v", "site", "node")
PREFIX = contract.PREFIX


def sample(field: tuple[Any, ...]) -> Any:
    """A valid value for one field of a contract table, not its default."""
    name, kind, a, b, _ = field
    return {
        "int": lambda: a if a == b else min(a + 7, b),
        "num": lambda: round(min((a + b) / 2 + 0.25, b), 2),
        "text": lambda: "x" * min(3, b) if name not in ("site", "node") else "bridge-1",
        "enum": lambda: a[-1],
        "flags": lambda: [contract.FLAGS[0], contract.FLAGS[-1]],
        "seqs": lambda: [3, 5],
        "count": lambda: 4,
        "obj": lambda: {"published": 2},
    }[kind]()


@pytest.mark.parametrize(
    "kind,cls", [("scan", protocol.Scan), ("status", protocol.Status), ("health", protocol.Health)]
)
def test_the_gateway_reads_every_field_of_every_node_message(kind: str, cls: type[Any]) -> None:
    table = contract.MESSAGES[kind]
    names = [f[0] for f in table if f[0] not in HEADER]
    assert [f.name for f in dataclasses.fields(cls)] == ["site", "node", *names]  # same names, same order
    body = {f[0]: sample(f) for f in table}
    body.update(site="bridge-1", node="lane-1")
    if kind == "scan":
        body.update(seq=9, retest_of=4)
    got = protocol.parse(PREFIX, f"{PREFIX}/bridge-1/lane-1/{kind}", json.dumps(body).encode())
    assert isinstance(got, cls), got
    for name in names:
        want = body[name]
        assert getattr(got, name) == (tuple(want) if isinstance(want, list) else want), name


SCANS = [
    dict(ts=1_767_225_600_123, t_site_c=35.42, t_amb_c=21.96, t_core_c=37.61, verdict="elevated",
         flags=["above_baseline"], retest_of=None),
    dict(ts=None, t_site_c=33.01, t_amb_c=-6.25, t_core_c=None, verdict="indeterminate",
         flags=["cold_ambient", "cold_skin"], retest_of=2),
    dict(ts=946_684_800_000, t_site_c=None, t_amb_c=None, t_core_c=None, verdict="invalid",
         flags=["sensor_fault", "low_supply"], retest_of=None),
    dict(ts=4_102_444_800_000, t_site_c=34.0, t_amb_c=22.0, t_core_c=36.5, verdict="normal", flags=[],
         retest_of=0),
]  # fmt: skip


@pytest.mark.parametrize("fields", SCANS)
@pytest.mark.parametrize("mode", contract.MODES)
def test_a_scan_packed_by_the_node_arrives_whole_at_the_gateway(fields: dict[str, Any], mode: str) -> None:
    scan = dict(fields, boot=3, uptime_ms=120_000, mode=mode, samples=31, duration_ms=640, fw="0.1.0",
                cal="fda-flir-g1-1")  # fmt: skip
    payload = record.to_payload(7, record.pack(scan), "bridge-1", "lane-1")
    assert len(payload) <= contract.MAX_PAYLOAD
    got = protocol.parse(PREFIX, f"{PREFIX}/bridge-1/lane-1/scan", payload)
    assert isinstance(got, protocol.Scan), got
    assert (got.site, got.node, got.seq) == ("bridge-1", "lane-1", 7)
    for name, value in scan.items():
        assert getattr(got, name) == (tuple(value) if isinstance(value, list) else value), name
    assert protocol.scan_to_dict(got) == json.loads(payload)  # and back, byte for byte in meaning


def leb128(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_flag_bits_follow_the_contract_and_every_flag_survives_the_record() -> None:
    for i, flag in enumerate(contract.FLAGS):
        scan = dict(SCANS[0], flags=[flag], boot=1, uptime_ms=1, mode="forehead", samples=1, duration_ms=1,
                    fw="f", cal="c")  # fmt: skip
        b = record.pack(scan)
        bits = leb128(1 << i)
        assert b[2 : 2 + len(bits)] == bits  # the flags varint starts at byte 2: bit i is FLAGS[i]
        assert record.unpack(b)["flags"] == [flag]
        assert contract.is_flag(flag)


@pytest.mark.parametrize("kind", ["receipt", "verdict", "config"])
def test_contract_tables_refuse_what_the_node_must_not_act_on(kind: str) -> None:
    table = contract.MESSAGES[kind]
    good = {f[0]: sample(f) for f in table}
    assert contract.check(good, table) is None
    for f in table:
        if f[4] == contract.OPT:
            continue
        assert contract.check({k: v for k, v in good.items() if k != f[0]}, table) == "missing_field:" + f[0]
        assert contract.check(dict(good, **{f[0]: True}), table) == "wrong_type:" + f[0]


def test_the_origin_of_a_scan_is_the_same_number_on_micropython_and_cpython() -> None:
    """A receipt or verdict names each scan's origin (contract.origin): computed by the gateway under CPython and
    by the node under MicroPython, it must be the same number, or a unit frees and shows nothing of its own."""
    pairs = [(0, 0), (7, 1_602_591), (4_294_967_295, 2**40), (contract.INT64, contract.INT64)]
    program = "import sys; sys.path.insert(0, %r); import contract; print([contract.origin(b, u) for b, u in %r])"
    out = subprocess.run([*micropython_command(), "-c", program % (str(firmware.DIR), pairs)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == str([contract.origin(b, u) for b, u in pairs])
    assert all(0 <= contract.origin(b, u) <= contract.ORIGIN_MAX for b, u in pairs)
    assert len({contract.origin(b, u) for b, u in pairs}) == len(pairs)


@pytest.mark.parametrize(
    "name,ok",
    [("bridge-1", True), ("a", True), ("-a", False), ("A1", False), ("a" * 33, False), ("alerts", False),
     ("gateway", False), ("a/b", False), ("", False), (None, False), ("a_b", False)],
)  # fmt: skip
def test_one_identifier_rule_on_both_sides(name: Any, ok: bool) -> None:
    assert contract.is_identifier(name) is ok
    assert protocol.is_identifier(name) is ok


def test_topics_are_laid_out_once() -> None:
    topics = protocol.Topics(PREFIX)
    for kind in contract.UPLINK + contract.DOWNLINK:
        assert topics.node("s", "n", kind) == contract.topic(PREFIX, "s", "n", kind) == f"{PREFIX}/s/n/{kind}"
    assert topics.alerts("s") == f"{PREFIX}/{contract.ALERTS}/s"
    assert protocol.parse(PREFIX, f"{PREFIX}/alerts/n/status", b'{"v":1,"state":"online"}') == protocol.Rejection(
        "bad_identifier"
    )


def test_flag_bits_are_never_reordered() -> None:
    """Outboxes on flash hold these bits: a new flag is appended, never inserted (contract.FLAGS)."""
    assert contract.FLAGS[:10] == (
        "cold_ambient", "hot_ambient", "not_skin", "unstable", "not_settled", "sensor_fault", "low_supply",
        "cold_skin", "below_baseline", "above_baseline",
    )  # fmt: skip


def test_the_stores_rows_take_their_names_from_the_contract() -> None:
    """A scan row starts with the scan message's fields (without v), in order; a node row keeps every health
    name the fleet view keeps, and those are the contract's health names."""
    scan_row = [f.name for f in dataclasses.fields(ScanRow)]
    scan_names = [f[0] for f in contract.SCAN if f[0] != "v"]
    assert scan_names[:2] == ["site", "node"] and scan_names[-1] == "cal"
    assert scan_row[: len(scan_names)] == scan_names
    health_names = {f[0] for f in contract.HEALTH}
    assert set(HEALTH_KEPT) <= health_names, set(HEALTH_KEPT) - health_names
    node_row = {f.name for f in dataclasses.fields(NodeRow)}
    assert set(HEALTH_KEPT) <= node_row, set(HEALTH_KEPT) - node_row
