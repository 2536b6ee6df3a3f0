"""The node's NTP and DNS clients (firmware/udp.py) under the real MicroPython interpreter, against real UDP
servers on 127.0.0.1 (sim/host/udp.py) that reply with crafted packets (issue 10 kinds 3 and 7).

Kind 3: only plausible time is taken: a kiss-o'-death (stratum 0, zero transmit timestamp, which read as
2036-02-07 before), an unsynchronised server (leap indicator 3), a server that jumped an hour or to 2101
are refused and counted; a good reply sets the clock; after the first sync the node keeps its own time.
Kind 7: a silent NTP server and a DNS server that takes 5 s never hold the loop: a task that wakes every
20 ms (the scan loop's period) never waits much longer than that, measured on the node's clock.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module
from sim.host.udp import DnsStub, NtpStub, ntp_packet
from testkit.micropython import micropython_command

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = str(ROOT / "tests/firmware/mp/net_time.py")
T = 1_768_464_000_000  # 2026-01-15 08:00 UTC: the good server's time
HOUR = 3_600_000
Y2101 = 4_133_980_800_000  # 2101-01-01
udp = firmware_module("udp")
# How long the loop may wait between two 20 ms wakes while the network misbehaves: a few polls (10 ms) and the
# host's scheduling; a blocking exchange would show its timeout (1.5 s NTP, 2 s DNS, 5 s the slow server).
LOOP_GAP_MS = 200


@pytest.fixture
def stubs() -> Iterator[dict[str, NtpStub | DnsStub]]:
    made: dict[str, NtpStub | DnsStub] = {}
    for kind, at, reply in (
        ("kod", T, "kod"),
        ("unsynced", T, "unsynced"),
        ("good", T, "ok"),
        ("hour", T + HOUR, "ok"),
        ("y2101", Y2101, "ok"),
        ("silent", T, "silent"),
    ):
        stub = NtpStub(lambda at=at: at + int(time.monotonic() * 1000) % 1000)  # type: ignore[misc]
        stub.reply = reply
        made[kind] = stub
    slow = DnsStub()
    slow.delay_s = 5.0
    made["slow_dns"] = slow
    made["dns"] = DnsStub()
    yield made
    for s in made.values():
        s.close()


def run(tmp_path: Path, ntp: list[int], dns: int, names: list[str]) -> list[list[str]]:
    opts = tmp_path / "opts.json"
    opts.write_text(json.dumps({"ntp": ntp, "dns": dns, "names": names}))
    out = subprocess.run(
        [*micropython_command("112k"), PROGRAM, str(FIRMWARE_DIR), str(opts)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [line.split() for line in out.stdout.splitlines() if line.startswith(("ntp ", "dns "))]


def test_only_plausible_ntp_time_sets_the_clock(tmp_path: Path, stubs: dict[str, NtpStub | DnsStub]) -> None:
    order = ["kod", "unsynced", "silent", "good", "hour", "y2101", "kod", "good"]
    lines = run(tmp_path, [stubs[k].port for k in order], stubs["dns"].port, [])
    clock = [None if ln[2] == "None" else int(ln[2]) for ln in lines]
    refused = [int(ln[3]) for ln in lines]
    assert clock[:3] == [None, None, None] and refused[:3] == [1, 2, 3]  # never 2036-02-07 from a KoD
    assert clock[3] is not None and abs(clock[3] - T) < 5000 and refused[3] == 3
    assert refused[4:7] == [4, 5, 6]  # the hour's jump, 2101, a KoD after the first sync: refused
    assert all(c is not None and abs(c - T) < 5000 for c in clock[3:])  # its own running clock kept
    assert max(int(ln[4]) for ln in lines) < LOOP_GAP_MS, lines  # the silent server's 1.5 s never held the loop


def test_a_wrong_first_sync_is_not_kept_for_good(tmp_path: Path, stubs: dict[str, NtpStub | DnsStub]) -> None:
    """The first sync after boot came from a server an hour off: the node follows the right time once three
    replies in a row agree on the step back, and not before (one reply never moves a running clock far)."""
    order = ["hour", "good", "good", "good", "good"]
    lines = run(tmp_path, [stubs[k].port for k in order], stubs["dns"].port, [])
    clock = [None if ln[2] == "None" else int(ln[2]) for ln in lines]
    refused = [int(ln[3]) for ln in lines]
    assert clock[0] is not None and abs(clock[0] - (T + HOUR)) < 5000  # nothing to judge the first one by
    assert refused[1:3] == [1, 2] and all(abs(c - (T + HOUR)) < 5000 for c in clock[1:3] if c is not None)
    assert abs(clock[3] - T) < 5000 and refused[3] == 2  # the third agreeing reply: taken
    assert abs(clock[4] - T) < 5000 and refused[4] == 2


def test_a_slow_dns_server_never_holds_the_loop(tmp_path: Path, stubs: dict[str, NtpStub | DnsStub]) -> None:
    slow = run(tmp_path, [], stubs["slow_dns"].port, ["broker.checkpoint.test", "10.0.0.7"])
    assert slow[0][2].startswith("error:") and int(slow[0][3]) < LOOP_GAP_MS  # gave up after 2 s, loop ran
    assert slow[1][2:3] == ["10.0.0.7"]  # an IP literal needs no server
    fast = run(tmp_path, [], stubs["dns"].port, ["broker.checkpoint.test"])
    assert fast[0][2] == "127.0.0.1" and int(fast[0][3]) < LOOP_GAP_MS


@pytest.mark.parametrize(
    ("kind", "unix_ms", "problem"),
    [
        ("kod", T, "stratum 0 (kiss-o'-death)"),
        ("unsynced", T, "server not synchronised (leap indicator 3)"),
        ("ok", T, None),
        ("ok", Y2101, None),  # era 1 read right: the range check refuses it, not the parser
    ],
)
def test_ntp_reply_checks(kind: str, unix_ms: int, problem: str | None) -> None:
    nonce = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    ms, why = udp.reply_ms(ntp_packet(unix_ms, nonce, kind), nonce)
    assert why == problem and (ms is None if problem else abs(ms - unix_ms) <= 1)
    assert udp.reply_ms(ntp_packet(unix_ms, b"\0" * 8, kind), nonce) == (None, "not an answer to our request")
