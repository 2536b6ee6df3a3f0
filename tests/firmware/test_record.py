"""firmware/record.py: the binary scan record the outbox stores, and the protocol-v1 JSON built from it."""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware import module as firmware_module
from testkit.micropython import micropython_command

ROOT = Path(__file__).resolve().parents[2]
record = firmware_module("record")

MICROPYTHON = micropython_command("112k")

# docs/protocol.md, scan topic (contract.SCAN): every field, in this order.
PROTOCOL_FIELDS = [
    "v",
    "site",
    "node",
    "seq",
    "boot",
    "ts",
    "uptime_ms",
    "mode",
    "t_site_c",
    "t_amb_c",
    "t_core_c",
    "verdict",
    "flags",
    "samples",
    "duration_ms",
    "retest_of",
    "code",
    "retest_code",
    "wait_s",
    "ref_gain",
    "ref_offset_c",
    "fw",
    "cal",
]


def typical(**over: Any) -> dict[str, Any]:
    scan = {
        "boot": 12,
        "ts": 1767225600123,
        "uptime_ms": 86_400_000,
        "mode": "forehead",
        "t_site_c": 35.87,
        "t_amb_c": 21.31,
        "t_core_c": 36.74,
        "verdict": "normal",
        "flags": [],
        "samples": 14,
        "duration_ms": 910,
        "retest_of": None,
        "code": None,
        "retest_code": None,
        "wait_s": None,
        "ref_gain": None,
        "ref_offset_c": None,
        "unit": None,
        "fw": "0.1.0",
        "cal": "placeholder-0",
    }
    scan.update(over)
    return scan


def random_scans(n: int, seed: int = 20260101) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        fault = rng.random() < 0.1
        t = None if fault else round(rng.uniform(-40, 120), 2)
        out.append(
            typical(
                boot=rng.randrange(0, 70000),
                ts=rng.choice([None, rng.randrange(0, 2**42)]),
                uptime_ms=rng.randrange(0, 2**40),
                mode=rng.choice(record.MODES),
                t_site_c=t,
                t_amb_c=None if fault else round(rng.uniform(-30, 50), 2),
                t_core_c=None if fault or rng.random() < 0.2 else round(rng.uniform(-10, 45), 2),
                verdict=rng.choice(record.VERDICTS),
                flags=rng.sample(record.FLAGS, rng.randrange(0, 4)),
                samples=rng.randrange(0, 5000),
                duration_ms=rng.randrange(0, 100000),
                retest_of=rng.choice([None, rng.randrange(0, 2**32)]),
                code=rng.choice([None, rng.randrange(0, 1000)]),
                retest_code=rng.choice([None, rng.randrange(0, 1000)]),
                wait_s=rng.choice([None, rng.randrange(0, 86400)]),
                **rng.choice(
                    [{}, {"ref_gain": round(rng.uniform(0.9, 1.1), 5), "ref_offset_c": round(rng.uniform(-3, 3), 3)}]
                ),
                unit=rng.choice([None, rng.randrange(1, 2**32)]),
                fw="fw-" + str(rng.randrange(100)),
                cal="cal-" + str(rng.randrange(1000)),
            )
        )
    return out


def normalised(scan: dict[str, Any]) -> dict[str, Any]:
    """What unpack gives back: flags in FLAGS order."""
    out = dict(scan)
    out["flags"] = [f for f in record.FLAGS if f in scan["flags"]]
    return out


def test_golden_bytes_follow_the_documented_layout() -> None:
    scan = typical(
        boot=3,
        ts=None,
        uptime_ms=1000,
        mode="canthus",
        t_site_c=36.57,
        t_amb_c=-4.05,
        t_core_c=None,
        verdict="elevated",
        flags=["unstable"],
        samples=12,
        duration_ms=850,
        retest_of=5,
        fw="1",
        cal="c",
    )
    # layout 4; head: canthus | elevated<<1 | t_site | t_amb | retest_of; flags bit 3; boot 3; uptime 1000;
    # t_site 3657 -> zigzag 7314; t_amb -405 -> zigzag 809; samples 12; duration 850; retest 5; "1"; "c";
    # code 407 + 1 = 408; retest_code null; wait_s 600 + 1 = 601; a reference correction follows (1): gain
    # 1.03 -> 103000 -> zigzag 206000; offset -0.4 C -> -400 -> zigzag 799; unit 0xdeadbeef.
    scan.update(code=407, wait_s=600, ref_gain=1.03, ref_offset_c=-0.4, unit=0xDEADBEEF)
    want = bytes.fromhex("04 b3 08 03 e807 9239 a906 0c d206 05 0131 0163 9803 00 d904 01 b0c90c 9f06 effdb6f50d")
    assert record.pack(scan) == want
    assert record.unpack(want) == normalised(scan)
    payload = json.loads(record.to_payload(9, want, "s", "n"))
    assert (payload["ref_gain"], payload["ref_offset_c"], payload["unit"]) == (1.03, -0.4, 0xDEADBEEF)
    assert b'"ref_gain":1.03000,"ref_offset_c":-0.400,"unit":3735928559,' in record.to_payload(9, want, "s", "n")


def test_a_layout_3_record_already_on_flash_is_still_read() -> None:
    """Records written before units (layout 3) stay readable: they have none, and their payload names none (the
    gateway treats them as before: origin by boot and uptime_ms)."""
    old = bytes.fromhex("03 b3 08 03 e807 9239 a906 0c d206 05 0131 0163 9803 00 d904 01 b0c90c 9f06")
    got = record.unpack(old)
    assert (got["ref_gain"], got["unit"]) == (1.03, None)
    assert "unit" not in json.loads(record.to_payload(9, old, "s", "n"))


def test_a_unit_outside_32_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        record.pack(typical(unit=2**32))


def test_a_layout_2_record_already_on_flash_is_still_read() -> None:
    """Records written before reference corrections (layout 2) stay readable: their correction is null."""
    old = bytes.fromhex("02 b3 08 03 e807 9239 a906 0c d206 05 0131 0163 9803 00 d904")
    got = record.unpack(old)
    assert (got["code"], got["wait_s"], got["ref_gain"], got["ref_offset_c"]) == (407, 600, None, None)
    assert "ref_gain" not in json.loads(record.to_payload(9, old, "s", "n"))


def test_a_correction_travels_whole_or_not_at_all() -> None:
    with pytest.raises(ValueError, match="together"):
        record.pack(typical(ref_gain=1.03))


def test_a_layout_1_record_already_on_flash_is_still_read() -> None:
    """Records written before retest codes (layout 1) stay readable until receipted: their codes are null."""
    old = bytes.fromhex("01 b3 08 03 e807 9239 a906 0c d206 05 0131 0163")
    got = record.unpack(old)
    assert (got["code"], got["retest_code"], got["wait_s"], got["retest_of"]) == (None, None, None, 5)
    assert "code" not in json.loads(record.to_payload(9, old, "s", "n"))  # optional: absent when null


def test_round_trip_of_varied_scans() -> None:
    for scan in random_scans(2000):
        assert record.unpack(record.pack(scan)) == normalised(scan)


def test_payload_is_protocol_v1_with_every_field() -> None:
    b = record.pack(typical(flags=["low_supply", "cold_ambient"], retest_of=41))
    payload = record.to_payload(42, b, "bridge-1", "n1")
    msg = json.loads(payload)
    optional = ("code", "retest_code", "wait_s", "ref_gain", "ref_offset_c")
    assert list(msg) == [f for f in PROTOCOL_FIELDS if f not in optional]  # null: absent
    with_codes = json.loads(record.to_payload(42, record.pack(typical(code=7, retest_code=7, wait_s=600)), "b", "n"))
    assert (
        list(with_codes) == [f for f in PROTOCOL_FIELDS if not f.startswith("ref_")]
        and with_codes["code"] == 7
        and with_codes["wait_s"] == 600
    )
    assert msg["v"] == 1 and msg["site"] == "bridge-1" and msg["node"] == "n1" and msg["seq"] == 42
    assert (msg["t_site_c"], msg["t_amb_c"], msg["t_core_c"]) == (35.87, 21.31, 36.74)
    assert msg["flags"] == ["cold_ambient", "low_supply"] and msg["retest_of"] == 41
    assert msg["ts"] == 1767225600123 and msg["cal"] == "placeholder-0"


def test_failed_sensor_scan_carries_nulls_not_numbers() -> None:
    scan = typical(ts=None, t_site_c=None, t_amb_c=None, t_core_c=None, verdict="invalid", flags=["sensor_fault"])
    msg = json.loads(record.to_payload(0, record.pack(scan), "s", "n"))
    assert msg["ts"] is None and msg["t_site_c"] is None and msg["t_amb_c"] is None and msg["t_core_c"] is None
    assert msg["verdict"] == "invalid" and msg["flags"] == ["sensor_fault"]


@pytest.mark.parametrize("centi", [0, 1, -1, 5, -5, 99, -99, 100, -100, 3657, -405, 38219, -7001])
def test_payload_writes_exact_two_decimals(centi: int) -> None:
    b = record.pack(typical(t_site_c=centi / 100))
    text = record.to_payload(0, b, "s", "n").decode()
    written = text.split('"t_site_c":')[1].split(",")[0]
    assert written == "%.2f" % (centi / 100)


def test_temperatures_survive_single_precision_floats() -> None:
    """The ESP32 port computes in 32-bit floats: every 0.01 C step from -70 to 382.19 C (the MLX90614's
    range) packs to the same value after a round trip through a float32."""
    for centi in range(-7000, 38220):
        f32 = struct.unpack("<f", struct.pack("<f", centi / 100))[0]
        assert record.unpack(record.pack(typical(t_site_c=f32)))["t_site_c"] == centi / 100


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("flags", ["fever"]),
        ("flags", "unstable"),
        ("mode", "ear"),
        ("verdict", "fine"),
        ("boot", -1),
        ("samples", True),
        ("uptime_ms", 1.5),
        ("t_site_c", math.nan),
        ("t_amb_c", math.inf),
        ("t_core_c", "37"),
        ("fw", 'a"b'),
        ("cal", "x" * 256),
        ("cal", "é"),
        ("ts", -5),
    ],
)
def test_bad_field_is_a_value_error_naming_it(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        record.pack(typical(**{field: value}))


def test_missing_or_unknown_field_is_a_value_error() -> None:
    scan = typical()
    del scan["retest_of"]
    with pytest.raises(ValueError, match="missing field retest_of"):
        record.pack(scan)
    with pytest.raises(ValueError, match="unknown field"):
        record.pack(typical(operator="bob"))
    assert record.pack(typical(seq=9, site="x")) == record.pack(typical())  # filled in by to_payload


def test_malformed_bytes_are_value_errors() -> None:
    b = record.pack(typical(retest_of=3))
    for n in range(len(b)):
        with pytest.raises(ValueError):
            record.unpack(b[:n])
    with pytest.raises(ValueError, match="trailing"):
        record.unpack(b + b"\x00")
    with pytest.raises(ValueError, match="layout"):
        record.unpack(b"\x05" + b[1:])


def test_typical_record_size() -> None:
    sizes = [len(record.pack(s)) for s in (typical(), typical(flags=["cold_ambient"], verdict="indeterminate"))]
    worst_day = len(record.pack(typical(uptime_ms=2**40, boot=2**20, retest_of=2**31, samples=300)))
    print(
        f"\nrecord size: typical {sizes} bytes, large counters {worst_day} bytes, "
        f"JSON payload {len(record.to_payload(123456, record.pack(typical()), 'bridge-1', 'n1'))} bytes"
    )
    assert max(sizes) <= 50 and worst_day < 70


def test_micropython_writes_the_same_bytes_and_payloads(tmp_path: Path) -> None:
    scans = [*random_scans(300, seed=7), typical()]
    src = tmp_path / "scans.jsonl"
    src.write_text("".join(json.dumps(s) + "\n" for s in scans))
    prog = [str(ROOT / "tests/firmware/mp/net_record_codec.py"), str(ROOT / "firmware"), str(src)]
    mp = subprocess.run(MICROPYTHON + prog, capture_output=True, text=True, timeout=60)
    cp = subprocess.run([sys.executable, *prog], capture_output=True, text=True, timeout=60)
    assert mp.returncode == 0, mp.stderr
    assert mp.stdout == cp.stdout
    lines = mp.stdout.splitlines()
    assert len(lines) == len(scans)
    for i, line in enumerate(lines):
        hexb, payload = line.split(" ", 1)
        assert record.unpack(bytes.fromhex(hexb)) == normalised(scans[i])
        assert json.loads(payload)["seq"] == i
