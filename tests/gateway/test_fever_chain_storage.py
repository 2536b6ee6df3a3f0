"""Issue 10, kind 5: a full disk or a read-only database loses no scan and acknowledges nothing unstored.

Before the fix, with the database on a filesystem with 24 KiB free and 400 scans each published once, the
gateway quarantined 3 as internal_error, PUBACKed them, then died with a raw traceback (`cannot rollback - no
transaction is active`); after space returned 397 of 400 were stored and one fever was never alerted. A
read-only database started, said "storing", and died on the first write.

Here the database lives on a tmpfs of its own (mounted by the test: it runs as root) that a filler file fills;
the gateway is the real `python -m gateway run` as a child process (sim.process.GatewayProcess) on a private
Mosquitto, and the node publishes each scan once (it never resends during the test).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import open_store
from sim.broker import Broker
from sim.process import GatewayProcess
from testkit.gateway import run_cli
from testkit.node import NodePublisher, scan_payload

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
SCANS = 400


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 8 MiB mounted for this test (a real filesystem that can be filled, or made read-only)."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill the filesystem with one file, then free `leave` bytes of it; returns the file. Unbuffered: a buffered
    file would try its last block again when closed, and fail there."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        block = b"\0" * 65_536
        size = 0
        try:
            while True:
                size += f.write(block) or 0
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        f.truncate(max(0, size - leave))
    return filler


def wait_for_text(path: Path, text: str, timeout: float) -> str:
    """The file's content once it contains `text` (looked at every 50 ms: a log line, not a timing guess)."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {path} within {timeout} s:\n{content}")
        time.sleep(0.05)


def test_a_full_disk_holds_every_scan_until_space_returns(tiny_disk: Path, private_broker: Broker, tmp_path: Path):
    db = tiny_disk / "gateway.db"
    gateway = GatewayProcess(private_broker.port, f"sqlite:///{db}", tmp_path, instance="gw-disk")
    gateway.start()
    node = NodePublisher(private_broker.port, "bridge", "n1").connect()
    try:
        filler = fill(tiny_disk, leave=24 * 1024)
        febrile = set(range(0, SCANS, 10))
        node.send(scan_payload("bridge", "n1", seq, **(FEVER if seq in febrile else {})) for seq in range(SCANS))
        log = tmp_path / "gateway-1.log"
        wait_for_text(log, "cannot store", 60)
        stored_while_full = len(node.receipted)
        assert stored_while_full < SCANS
        filler.unlink()  # space returns
        assert node.wait_receipts(range(SCANS), timeout=90, resend_after=3600)  # never resent: held, not lost
        wait_for_text(log, "storing again after", 30)
    finally:
        node.close()
        code, _ = gateway.terminate()
    assert code == 0
    text = (tmp_path / "gateway-1.log").read_text()
    assert "Traceback" not in text
    assert "is full (SQLITE_FULL)" in text and "free space on that filesystem" in text
    with contextlib.closing(sqlite3.connect(db)) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM scans WHERE site = 'bridge'").fetchone()[0]
        quarantined = conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        fevers = {s for (s,) in conn.execute("SELECT seq FROM alerts WHERE kind = 'fever'")}
    assert (stored, quarantined) == (SCANS, 0)
    assert node.rejected == set()
    assert fevers == febrile  # every fever alerted, the ones held through the fault too


def test_a_read_only_database_is_refused_at_start_with_the_fix(tiny_disk: Path, private_broker: Broker) -> None:
    db = tiny_disk / "gateway.db"
    open_store(f"sqlite:///{db}").close()  # a database with its schema, then its filesystem made read-only
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    assert os.statvfs(tiny_disk).f_flag & os.ST_RDONLY
    out = run_cli("run", "--broker", private_broker.url, "--db", f"sqlite:///{db}", "--instance", "gw-ro")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "read-only" in out.stderr and "remount the filesystem read-write" in out.stderr
    assert "storing" not in out.stdout
