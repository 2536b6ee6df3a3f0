"""End to end: `checkpoint-sim run` with every fault kind, real Mosquitto, real gateway, real firmware.

The simulator's summary is computed from the gateway's own export (`checkpoint-gateway export`) against what
the nodes recorded and who the travellers were (sim/summary.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run_sim(*args: str, timeout: float = 300) -> tuple[dict[str, Any], str]:
    out = subprocess.run(
        [sys.executable, "-m", "sim", "run", "--json", *args],
        capture_output=True, text=True, cwd=REPO, timeout=timeout,
    )  # fmt: skip
    assert out.returncode == 0, f"checkpoint-sim run failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    workdir = tmp_path_factory.mktemp("sim-faults")
    summary, progress = run_sim("--scenario", str(HERE / "faults.toml"), "--workdir", str(workdir))
    return summary, progress, workdir


def test_every_fault_kind_was_applied(faulty: tuple[dict[str, Any], str, Path]) -> None:
    summary, progress, _ = faulty
    kinds = {f["kind"] for f in summary["faults"]}
    assert kinds == {
        "wifi_drop", "broker_restart", "gateway_restart", "sensor_error_flag", "sensor_bus_noise",
        "power_cut", "garbage", "identity_clash", "disk_full", "clock_jump", "ntp_bad_reply", "receipt_loss",
        "dns_slow",
    }  # fmt: skip
    assert "fault: gateway_restart" in progress and "fault: broker_restart" in progress


def test_nothing_lost_nothing_stored_twice_nothing_invented(faulty: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = faulty
    assert summary["scans_made"] > 50
    assert summary["lost"] == 0
    assert summary["seq_reused"] == 0
    assert summary["duplicates"] == 0
    assert summary["invented"] == 0
    assert summary["scans_stored"] == summary["scans_made"]


def test_gateway_counts_equal_ground_truth(faulty: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, workdir = faulty
    assert summary["verdicts_gateway"] == summary["verdicts_node"]
    assert summary["verdict_mismatches"] == 0
    truth = [json.loads(line) for line in (workdir / "truth.jsonl").read_text().splitlines()]
    febrile_scanned = sum(1 for t in truth if t["febrile"] and t["seq"] is not None)
    assert febrile_scanned == summary["febrile_scanned"] > 0
    assert summary["febrile_flagged"] + summary["false_alarms"] <= summary["elevated"]


def test_each_elevated_scan_raised_exactly_one_alert(faulty: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = faulty
    assert summary["elevated"] > 0
    assert summary["alerts"] == summary["elevated"]
    assert summary["alerts_missing"] == 0
    assert summary["alerts_extra"] == 0
    assert summary["latency_p50_ms"] is not None


def test_garbage_was_quarantined_and_service_kept_running(faulty: tuple[dict[str, Any], str, Path]) -> None:
    summary, _, _ = faulty
    assert summary["garbage_sent"] == 5
    assert summary["quarantined"] >= summary["garbage_sent"]


def test_bad_scenario_is_refused_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('duration_s = 10\n[[fault]]\nat_s = 1\nkind = "meteor"\n')
    out = subprocess.run(
        [sys.executable, "-m", "sim", "run", "--scenario", str(bad), "--workdir", str(tmp_path / "w")],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "fault[0].kind" in out.stderr and "meteor" in out.stderr


def test_a_replaced_unit_and_a_full_disk_lose_nothing(faulty: tuple[dict[str, Any], str, Path]) -> None:
    """identity_clash: room-1's spare starts at seq 0 again, its scans collide with the stored ones and are kept
    (scan_clashes), screened and alerted; disk_full: the gateway held what it could not store, said so, and
    stored it once space returned. The checks above (lost 0, duplicates 0, every elevated scan alerted) hold."""
    summary, _, workdir = faulty
    assert summary["clashes"] > 0
    logs = "".join(p.read_text() for p in sorted(workdir.glob("gateway-*.log")))
    assert "is full (SQLITE_FULL)" in logs and "storing again after" in logs
    assert "Traceback" not in logs
    assert summary["lost"] == 0 and summary["alerts_missing"] == 0


def test_a_spare_at_the_first_units_boot_and_uptime_loses_nothing_on_virtual_time(tmp_path: Path) -> None:
    """Issue 10 kind 1: on virtual time the identity_clash spare (boot 1 again, a fresh flash) makes room-1 seq 1
    at 8,260 ms of uptime, as the unit it replaced did. Before each scan carried its unit, the gateway took it for
    a resend, receipted and dropped it: lost 1. About 35 s."""
    summary, _ = run_sim("--scenario", str(HERE / "faults.toml"), "--virtual-time", "--workdir", str(tmp_path))
    assert summary["clock"] == "virtual" and summary["clashes"] > 0
    assert summary["lost"] == 0 and summary["duplicates"] == 0 and summary["invented"] == 0
    assert summary["scans_stored"] == summary["scans_made"] and summary["alerts_missing"] == 0


def firmware_log(workdir: Path) -> str:
    return (workdir / "firmware.log").read_text()


def test_the_nodes_time_survives_a_jumping_and_a_lying_ntp_server(faulty: tuple[dict[str, Any], str, Path]) -> None:
    """clock_jump (bridge-2's NTP server at 2101) and ntp_bad_reply (room-2's: kiss-o'-death): both refused by
    the node, whose scans all carry a time on the simulated day (2026-01-15), none in 2036 or 2101."""
    summary, _, workdir = faulty
    log = firmware_log(workdir)
    assert "ntp: refused: stratum 0 (kiss-o'-death)" in log
    assert "ntp: refused: time 41339808" in log or "ntp: refused: a step of" in log
    scans = stored_scans(summary)
    day0 = 1_768_464_000_000  # sim.host.board.DEFAULT_UNIX_MS
    assert scans and all(day0 <= s["ts"] < day0 + 86_400_000 for s in scans if s["ts"] is not None)
    assert summary["lost"] == 0 and summary["duplicates"] == 0


def test_lost_receipts_are_refilled(faulty: tuple[dict[str, Any], str, Path]) -> None:
    """receipt_loss on room-1: every other receipt lost for 30 s; each unreceipted scan is resent after its own
    timeout and every one is stored once."""
    summary, _, workdir = faulty
    assert "uplink: no receipt for 120 s: resending seqs" in firmware_log(workdir)
    assert summary["lost"] == 0 and summary["duplicates"] == 0 and summary["scans_stored"] == summary["scans_made"]


def test_a_slow_dns_server_neither_stops_scanning_nor_the_uplink(faulty: tuple[dict[str, Any], str, Path]) -> None:
    """dns_slow on bridge-2 with a Wi-Fi blip: the node's resolver gives up after 2 s and connects to the
    broker's last address; it kept scanning meanwhile (its travellers got verdicts) and lost nothing."""
    summary, _, workdir = faulty
    assert "dns: broker.checkpoint.sim not resolved" in firmware_log(workdir)
    assert "using the last address" in firmware_log(workdir)
    assert summary["lost"] == 0


def stored_scans(summary: dict[str, Any]) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "export", "--what", "scans", "--format", "jsonl", "--db", summary["db"]],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
