"""The CLI never shows a user a traceback (issue 12 item 9): `export | head` ends quietly, `export --out` into a
missing folder or onto a folder names the fix; `alerts --kind` filters. Each through the CLI as a child process
on a database built by the real migrations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import alerts
from gateway.store import open_store
from gateway.store.base import ScanRow
from testkit.gateway import REPO, run_cli

T0 = 1_796_078_756_290
SCANS = 5_000  # about 2 MB of JSON lines: far more than a pipe holds


def scan(seq: int, verdict: str = "normal") -> ScanRow:
    t_core = 38.6 if verdict == "elevated" else 36.6
    return ScanRow("bridge", "n1", seq, 1, T0 + seq, 1000 + seq, "forehead", 35.9, 22.0, t_core, verdict, (), 12,
                   900, None, "0.1.0", "cal", t_core, verdict, (), "cal", T0 + seq, T0 + seq)  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = open_store(url)
    rows = [scan(seq) for seq in range(SCANS)] + [scan(SCANS, "elevated")]
    fever = alerts.raise_fever(rows[-1], T0 + SCANS)
    offline = alerts.raise_node(alerts.NODE_OFFLINE, "bridge", "n2", "last_will", T0)
    with store.transaction() as tx:
        tx.insert_scans(rows)
        tx.save_alert(fever.alert, fever.event)
        tx.save_alert(offline.alert, offline.event)
    store.close()
    return url


def test_export_into_a_pipe_closed_early_ends_without_a_traceback(db: str) -> None:
    """`checkpoint-gateway export | head -n 1`: the reader closes the pipe after one line."""
    cmd = [sys.executable, "-m", "gateway", "export", "--db", db]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert first["seq"] == 0
    assert err == ""  # no BrokenPipeError, no "Exception ignored" at exit


def test_export_out_into_a_missing_folder_or_onto_a_folder_names_the_fix(db: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "scans.csv"
    out = run_cli("export", "--db", db, "--format", "csv", "--out", str(missing))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"there is no folder {missing.parent} (create it first: mkdir -p {missing.parent})" in out.stderr

    out = run_cli("export", "--db", db, "--format", "csv", "--out", str(tmp_path))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"--out {tmp_path} is a folder: name a file in it" in out.stderr

    good = tmp_path / "scans.csv"
    out = run_cli("export", "--db", db, "--format", "csv", "--out", str(good))
    assert out.returncode == 0, out.stderr
    assert len(good.read_text().splitlines()) == SCANS + 2  # header + every scan


def test_alerts_kind_shows_only_that_kind(db: str) -> None:
    fevers = run_cli("alerts", "--db", db, "--kind", "fever", "--format", "json")
    assert fevers.returncode == 0, fevers.stderr
    assert [json.loads(line)["kind"] for line in fevers.stdout.splitlines()] == ["fever"]
    offline = run_cli("alerts", "--db", db, "--kind", "node_offline", "--format", "json")
    assert [(a["kind"], a["node"]) for a in map(json.loads, offline.stdout.splitlines())] == [("node_offline", "n2")]
    every = run_cli("alerts", "--db", db, "--format", "json")
    assert sorted(json.loads(line)["kind"] for line in every.stdout.splitlines()) == ["fever", "node_offline"]
    wrong = run_cli("alerts", "--db", db, "--kind", "fevers")
    assert wrong.returncode == 2 and "invalid choice: 'fevers'" in wrong.stderr and "Traceback" not in wrong.stderr
