"""Protocol v1 validation (pure): every class of bad input gets its reason; good messages parse."""

from __future__ import annotations

import json

import pytest

from gateway.protocol import MAX_PAYLOAD_BYTES, Health, Rejection, Scan, Status, parse, scan_to_dict
from testkit.node import scan_payload

P = "checkpoint/v1"
TOPIC = f"{P}/bridge/n1/scan"


def scan_bytes(**fields: object) -> bytes:
    body = scan_payload("bridge", "n1", 5)
    body.update(fields)
    return json.dumps(body).encode()


def without(field: str) -> bytes:
    body = scan_payload("bridge", "n1", 5)
    del body[field]
    return json.dumps(body).encode()


def test_valid_scan_parses_to_the_same_fields() -> None:
    parsed = parse(P, TOPIC, scan_bytes(flags=["cold_ambient"], retest_of=4, unknown_future_field=1))
    assert isinstance(parsed, Scan)
    assert scan_to_dict(parsed) == scan_payload("bridge", "n1", 5, flags=["cold_ambient"], retest_of=4)


def test_sensor_fault_scan_without_temperatures_is_valid() -> None:
    body = scan_bytes(t_site_c=None, t_amb_c=None, t_core_c=None, verdict="invalid", flags=["sensor_fault"], ts=None)
    parsed = parse(P, TOPIC, body)
    assert isinstance(parsed, Scan) and parsed.t_site_c is None and parsed.ts is None


CASES = [
    ("not_utf8", TOPIC, b'{"v":1,"site":"\xff\xfe"}'),
    ("not_json", TOPIC, b'{"v":1,'),
    ("not_object", TOPIC, b"[1, 2, 3]"),
    ("not_object", TOPIC, b'"scan"'),
    ("oversize", TOPIC, scan_bytes(pad="x" * MAX_PAYLOAD_BYTES)),
    ("missing_field:v", TOPIC, without("v")),
    ("bad_version", TOPIC, scan_bytes(v=2)),
    ("bad_version", TOPIC, scan_bytes(v="1")),
    ("missing_field:seq", TOPIC, without("seq")),
    ("missing_field:t_amb_c", TOPIC, without("t_amb_c")),
    ("missing_field:flags", TOPIC, without("flags")),
    ("wrong_type:seq", TOPIC, scan_bytes(seq="5")),
    ("wrong_type:seq", TOPIC, scan_bytes(seq=5.0)),
    ("wrong_type:seq", TOPIC, scan_bytes(seq=True)),
    ("wrong_type:t_site_c", TOPIC, scan_bytes(t_site_c="36.5")),
    ("wrong_type:flags", TOPIC, scan_bytes(flags="unstable")),
    ("wrong_type:site", TOPIC, scan_bytes(site=7)),
    ("not_finite:t_site_c", TOPIC, scan_bytes().replace(b'"t_site_c": 34.0', b'"t_site_c": NaN')),
    ("not_finite:t_amb_c", TOPIC, scan_bytes().replace(b'"t_amb_c": 24.0', b'"t_amb_c": -Infinity')),
    ("not_finite:t_core_c", TOPIC, scan_bytes().replace(b'"t_core_c": 36.5', b'"t_core_c": 1e999')),
    ("out_of_range:t_site_c", TOPIC, scan_bytes(t_site_c=1037.55)),  # 0xFFFF: the broken-bus reading
    ("out_of_range:t_amb_c", TOPIC, scan_bytes(t_amb_c=-60.0)),
    ("out_of_range:seq", TOPIC, scan_bytes(seq=-1)),
    ("out_of_range:ts", TOPIC, scan_bytes(ts=-1)),
    ("out_of_range:mode", TOPIC, scan_bytes(mode="wrist")),
    ("out_of_range:verdict", TOPIC, scan_bytes(verdict="fever")),
    ("out_of_range:retest_of", TOPIC, scan_bytes(retest_of=5)),
    ("out_of_range:flags", TOPIC, scan_bytes(flags=["Not A Flag"])),
    ("out_of_range:fw", TOPIC, scan_bytes(fw="")),
    ("identity_mismatch", TOPIC, scan_bytes(node="n2")),
    ("identity_mismatch", TOPIC, scan_bytes(site="river")),
    ("bad_identifier", TOPIC, scan_bytes(node="N1")),
    ("bad_identifier", f"{P}/Bridge/n1/scan", scan_bytes()),
    ("bad_identifier", f"{P}/alerts/n1/scan", scan_bytes(site="alerts")),
    ("bad_identifier", f"{P}/bridge/{'n' * 33}/scan", scan_bytes()),
    ("bad_topic", f"{P}/bridge/n1/extra/scan", scan_bytes()),
    ("bad_topic", f"{P}/bridge/n1/temperature", scan_bytes()),
    ("bad_topic", "other/v1/bridge/n1/scan", scan_bytes()),
    ("out_of_range:state", f"{P}/bridge/n1/status", b'{"v":1,"state":"sleeping"}'),
    ("missing_field:state", f"{P}/bridge/n1/status", b'{"v":1}'),
    ("wrong_type:rssi", f"{P}/bridge/n1/health", b'{"v":1,"rssi":"-60"}'),
    ("out_of_range:outbox_depth", f"{P}/bridge/n1/health", b'{"v":1,"outbox_depth":-1}'),
]


@pytest.mark.parametrize(("reason", "topic", "payload"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_rejected_with_its_reason(reason: str, topic: str, payload: bytes) -> None:
    result = parse(P, topic, payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_rejection_names_the_seq_of_this_nodes_scan_so_the_receipt_can_say_so() -> None:
    result = parse(P, TOPIC, scan_bytes(t_site_c=1037.55))
    assert isinstance(result, Rejection) and (result.site, result.node, result.seq) == ("bridge", "n1", 5)
    other = parse(P, TOPIC, scan_bytes(node="n2"))
    assert isinstance(other, Rejection) and other.seq is None  # not this node's: never free another's seq


def test_status_will_and_health() -> None:
    assert parse(P, f"{P}/bridge/n1/status", b'{"v":1,"state":"offline"}') == Status("bridge", "n1", "offline")
    online = parse(P, f"{P}/bridge/n1/status", b'{"v":1,"state":"online","fw":"1.0","boot":3,"config_id":"c7"}')
    assert online == Status("bridge", "n1", "online", "1.0", 3, "c7")
    health = parse(
        P, f"{P}/bridge/n1/health", b'{"v":1,"heap_free":51234,"rssi":-67,"sensor_errors":{"pec":2,"flag":1}}'
    )
    assert isinstance(health, Health) and health.sensor_errors == 3 and health.rssi == -67


def test_messages_the_gateway_ignores() -> None:
    assert parse(P, f"{P}/gateway/gw-1/status", b'{"v":1,"state":"online"}') is None  # its own status
    assert parse(P, f"{P}/bridge/n1/status", b"") is None  # a retained status being cleared
