"""The field loop (issue 15, item 5) on real stores (SQLite and PostgreSQL): fever alerts raised by stored
scans, medics' clinical re-checks recorded as alert events, and `checkpoint-gateway report`'s figures against
a hand computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import alerts, field
from gateway.store import open_store
from gateway.store.base import ScanRow
from testkit.gateway import run_cli

T0 = 1_767_225_600_000 + 2 * 3_600_000  # 2026-01-01T02:00Z: that day in UTC and in UTC+8


def scan(node: str, seq: int, verdict: str, t_core: float) -> ScanRow:
    return ScanRow(
        site=node.split("/")[0], node=node.split("/")[1], seq=seq, boot=1, ts=None, uptime_ms=1000 + seq,
        mode="canthus", t_site_c=35.6, t_amb_c=22.0, t_core_c=t_core, verdict=verdict, flags=(), samples=14,
        duration_ms=950, retest_of=None, fw="0.1.0", cal="c", gateway_t_core_c=t_core, gateway_verdict=verdict,
        gateway_flags=(), gateway_cal="c", received_at=T0 + seq, scanned_at=T0 + seq,
    )  # fmt: skip


# (node, seq, IR estimate, clinical readings in order: the last one counts)
CASES = [
    ("bridge/lane-1", 1, 37.6, [37.9]),  # fever caught: IR - clinical = -0.3
    ("bridge/lane-1", 2, 37.5, [36.5, 37.1]),  # false alarm (37.1 < 37.3): +0.4
    ("bridge/lane-1", 3, 37.4, [37.2]),  # false alarm: +0.2
    ("bridge/lane-2", 4, 37.7, [37.3]),  # fever caught at the line exactly: +0.4
    ("port/gate-1", 5, 37.7, [36.9]),  # false alarm: +0.8
]


@pytest.fixture
def db(any_db: str) -> str:
    store = open_store(any_db)
    try:
        for i, (node, seq, t_core, readings) in enumerate(CASES):
            row = scan(node, seq, "elevated", t_core)
            raised = alerts.raise_fever(row, T0 + seq)
            with store.transaction() as tx:
                tx.insert_scans([row])
                tx.save_alert(raised.alert, raised.event)
            a = raised.alert
            for k, reading in enumerate(readings):
                change = alerts.recheck(a, "medic:li", "127.0.0.1", "oral", reading, T0 + 60_000 * (i + 1) + k)
                with store.transaction() as tx:
                    assert tx.update_alert(change.alert, change.event, a.events)
                a = change.alert
        with store.transaction() as tx:
            tx.insert_scans([scan("bridge/lane-2", 9, "normal", 36.8)])  # scanned, never re-checked
    finally:
        store.close()
    return any_db


def test_the_reports_field_loop_matches_a_hand_computation(db: str) -> None:
    out = run_cli("report", "--day", "2026-01-01", "--format", "json", "--db", db)
    assert out.returncode == 0, out.stderr
    loop = json.loads(out.stdout)["field_loop"]
    assert loop["fever_c"] == 37.3
    lane1 = loop["nodes"]["bridge/lane-1"]
    # IR - clinical: -0.3, +0.4, +0.2 -> mean 0.1; SD sqrt((0.16 + 0.09 + 0.01) / 2) = 0.3606
    assert lane1["n"] == 3 and lane1["bias_c"] == pytest.approx(0.1)
    assert lane1["sd_c"] == pytest.approx(0.36056, abs=1e-4)
    assert (lane1["elevated"], lane1["false_alarm_share"], lane1["ppv"]) == (
        3,
        pytest.approx(2 / 3),
        pytest.approx(1 / 3),
    )
    assert loop["nodes"]["bridge/lane-2"] | {"bias_c": 0} == {
        "n": 1, "bias_c": 0, "sd_c": None, "elevated": 1, "false_alarm_share": 0.0, "ppv": 1.0
    }  # fmt: skip
    bridge = loop["sites"]["bridge"]
    # -0.3, +0.4, +0.2, +0.4 -> mean 0.175; 4 elevated, 2 fevers
    assert (bridge["n"], bridge["bias_c"], bridge["ppv"]) == (4, pytest.approx(0.175), 0.5)
    assert loop["sites"]["port"]["false_alarm_share"] == 1.0 and loop["sites"]["port"]["bias_c"] == pytest.approx(0.8)

    text = run_cli("report", "--day", "2026-01-01", "--db", db)
    assert text.returncode == 0, text.stderr
    assert "field loop: clinical re-checks" in text.stdout
    assert [ln.split()[:2] for ln in text.stdout.splitlines() if ln.strip().startswith("bridge/lane-1")] == [
        ["bridge/lane-1", "3"]
    ]


def test_a_day_without_rechecks_says_so(any_db: str) -> None:
    open_store(any_db).close()
    out = run_cli("report", "--day", "2026-01-01", "--db", any_db)
    assert out.returncode == 0, out.stderr
    assert "no re-checks recorded on this day" in out.stdout
    assert field.summary([])["ppv"] is None


def test_the_rechecks_exported_are_a_data_set_that_evaluate_reads(db: str, tmp_path: Path) -> None:
    out = tmp_path / "rechecks.csv"
    done = run_cli("export", "--what", "rechecks", "--out", str(out), "--db", db)
    assert done.returncode == 0, done.stderr
    assert f"wrote 5 re-checks to {out}" in done.stderr
    ev = run_cli("evaluate", "--dataset", str(out), "--mode", "canthus", "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout.splitlines()[-1])
    assert (result["n"], result["skipped"]) == (5, 0)
