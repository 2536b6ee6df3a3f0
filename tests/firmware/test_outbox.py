"""firmware/outbox.py: the durable log a scan lives in until the gateway's receipt names its seq."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module
from testkit.micropython import micropython_command

ROOT = Path(__file__).resolve().parents[2]

outbox = firmware_module("outbox")
record = firmware_module("record")

MICROPYTHON = micropython_command("112k")
POWERCUT = str(ROOT / "tests/firmware/mp/outbox_powercut.py")


def scan(i: int) -> bytes:
    """A typical scan record as the node stores it (synced clock, three temperatures, ids)."""
    return record.pack(
        {
            "boot": 4,
            "ts": 1767225600000 + i * 7000,
            "uptime_ms": 3_600_000 + i * 7000,
            "mode": "forehead",
            "t_site_c": 35.0 + i % 200 / 100,
            "t_amb_c": 18.5 + i % 50 / 10,
            "t_core_c": 36.2 + i % 150 / 100,
            "verdict": "normal",
            "flags": [],
            "samples": 12 + i % 9,
            "duration_ms": 600 + i % 400,
            "retest_of": None,
            "fw": "0.1.0",
            "cal": "placeholder-0",
        }
    )


def disk_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.iterdir())


def fresh(d: Path, **kw: Any) -> outbox.Outbox:
    box = outbox.Outbox(str(d), **kw)
    box.open()
    return box


@pytest.mark.parametrize("interpreter", ["micropython", "cpython"])
def test_power_cut_at_every_byte_of_an_append(tmp_path: Path, interpreter: str) -> None:
    """Cuts at every offset of an append (first record, mid segment, new segment, after all freed), with and
    without garbage after the cut, and torn ack entries: nothing written before is lost, the torn record is
    gone, no published seq is reused, and the log keeps working after recovery (see the program)."""
    exe = MICROPYTHON if interpreter == "micropython" else [sys.executable]
    r = subprocess.run([*exe, POWERCUT, str(FIRMWARE_DIR), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"failures": []' in r.stdout and '"cases": 427' in r.stdout, r.stdout


def test_ten_thousand_typical_scans_fit_in_one_mebibyte(tmp_path: Path) -> None:
    box = fresh(tmp_path / "ob")
    for i in range(10_000):
        assert box.append(scan(i)) == i
    assert box.depth == 10_000 and box.dropped == 0
    used = disk_bytes(tmp_path / "ob")
    more = 0
    while box.dropped == 0:
        box.append(scan(10_000 + more))
        more += 1
    box.close()
    t0 = time.perf_counter()
    again = outbox.Outbox(str(tmp_path / "ob"))
    stats = again.open()
    boot_s = time.perf_counter() - t0
    print(
        f"\noutbox: 10,000 scans use {used} bytes ({used / 10_000:.1f} B/scan, {len(scan(0))} B payload); "
        f"first drop at scan {10_000 + more} (capacity about {10_000 + more - 1} scans in 1 MiB); "
        f"open() of a full log {boot_s * 1000:.0f} ms on this host"
    )
    assert used <= 1024 * 1024
    assert stats["records"] == again.depth > 10_000 and stats["torn"] == 0
    assert stats["dropped"] == again.dropped > 0  # the drop is persisted, not just counted in RAM


def test_full_log_drops_the_oldest_segment_counts_it_and_remembers(tmp_path: Path) -> None:
    box = fresh(tmp_path, segment_bytes=512, max_bytes=2048)
    n = 0
    while box.dropped == 0:
        box.append(scan(n))
        n += 1
    kept = [s for s, _ in box.pending(10_000)]
    assert kept == list(range(n - len(kept), n))  # the newest survive, in order
    assert box.dropped == n - len(kept)  # every lost scan is counted
    assert disk_bytes(tmp_path) <= 2048 + 64  # the segments plus the small meta file
    dropped, next_seq = box.dropped, box.next_seq
    box.close()
    box = fresh(tmp_path, segment_bytes=512, max_bytes=2048)
    assert (box.dropped, box.next_seq, box.depth) == (dropped, next_seq, len(kept))


def test_receipt_frees_records_and_a_boot_remembers_it(tmp_path: Path) -> None:
    box = fresh(tmp_path, segment_bytes=512, max_bytes=4096)
    for i in range(30):
        box.append(scan(i))
    box.free([5, 2, 29, 2, 999])  # out of order, a repeat, and a seq this node never had
    assert box.depth == 27
    box.close()
    box = fresh(tmp_path, segment_bytes=512, max_bytes=4096)
    left = [s for s, _ in box.pending(100)]
    assert left == [s for s in range(30) if s not in (2, 5, 29)]
    assert dict(box.pending(100))[7] == scan(7)  # payloads come back exactly as appended


def test_segment_whose_records_are_all_freed_is_deleted(tmp_path: Path) -> None:
    box = fresh(tmp_path, segment_bytes=512, max_bytes=4096)
    for i in range(30):
        box.append(scan(i))
    first_segment = sorted(p.name for p in tmp_path.glob("*.seg"))[0]
    in_first = [s for s, _ in box.pending(100) if s < 9]
    box.free(in_first)
    if (tmp_path / first_segment).exists():  # it held more than 9 records: free the rest of it
        box.free(list(range(9, 30)))
    assert not (tmp_path / first_segment).exists()
    assert not (tmp_path / first_segment.replace(".seg", ".ack")).exists()


def test_seq_never_reused_after_everything_was_freed(tmp_path: Path) -> None:
    box = fresh(tmp_path)
    for i in range(5):
        box.append(scan(i))
    box.free(list(range(5)))
    box.close()
    assert not list(tmp_path.glob("*.seg"))
    box = fresh(tmp_path)
    assert box.next_seq == 5 and box.append(scan(5)) == 5


def test_pending_pages_after_a_cursor(tmp_path: Path) -> None:
    box = fresh(tmp_path, segment_bytes=512, max_bytes=8192)
    for i in range(40):
        box.append(scan(i))
    box.free([0, 1, 12])
    assert [s for s, _ in box.pending(3)] == [2, 3, 4]
    assert [s for s, _ in box.pending(4, after=10)] == [11, 13, 14, 15]
    assert [s for s, _ in box.pending(4, after=15)] == [16, 17, 18, 19]
    assert box.pending(5, after=39) == []


def test_corruption_inside_a_segment_loses_only_the_damaged_record(tmp_path: Path) -> None:
    box = fresh(tmp_path)
    for i in range(10):
        box.append(scan(i))
    box.close()
    seg = next(tmp_path.glob("*.seg"))
    raw = bytearray(seg.read_bytes())
    raw[len(raw) * 3 // 10] ^= 0xFF  # a flipped bit pattern inside the fourth record or so
    seg.write_bytes(bytes(raw))
    box = outbox.Outbox(str(tmp_path))
    stats = box.open()
    assert stats["torn"] == 1 and stats["records"] == 9
    kept = dict(box.pending(100))
    assert all(kept[s] == scan(s) for s in kept)
    box.close()
    assert outbox.Outbox(str(tmp_path)).open()["torn"] == 0  # repaired on flash, not re-detected each boot


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        outbox.Outbox(str(tmp_path), segment_bytes=1024, max_bytes=1024)
    box = fresh(tmp_path, segment_bytes=512, max_bytes=1024)
    with pytest.raises(ValueError):
        box.append(b"x" * 600)
    assert box.depth == 0 and box.next_seq == 0
    assert not os.listdir(tmp_path) or all(p.stat().st_size == 0 for p in tmp_path.iterdir())
