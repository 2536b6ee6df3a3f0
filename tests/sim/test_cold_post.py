"""Issue 14, the cold post: the simulator's physics, the node's truth about its conditions, retests, and the same
run for the same seed.

- A vehicle lane (occupants settled to a heated cabin, scanned 2-5 s after the window opens, the scanner in a
  heated housing at 20 C) is screened about as well as rested travellers indoors: sensitivity within 0.05 of the
  indoor operating point (the model, 20,000 travellers per arm, through the shipped screening).
- A scanner left out in the cold gives no verdict at all: every scan is indeterminate with the scanner's reason
  (cold_ambient, or sensor_unsettled while it cools) and the advice "warm the scanner", never "normal".
- Two runs with one seed on virtual time (`checkpoint-sim run --virtual-time`, sim/vloop.py) give the same
  summary and the same stored scans, bit for bit: every field the node makes (seq, temperatures, verdict, flags,
  codes, ts, uptime, samples, duration), only the gateway's own reception times aside.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from firmware import module as firmware_module
from sim.travellers import Population, site_temperature

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
screening = firmware_module("screening")
CAL = firmware_module("calibration").CALIBRATION
# Real time in the summary: the run's real seconds and rate, and scan -> alert latency as the alert watcher saw
# it on the real broker; and where the database is.
REAL = ("latency_p50_ms", "latency_p99_ms", "real_s", "scans_per_s", "db")
# The gateway's own wall clock, not the node's: when it received the scan, and the node clock's error it
# derives from that (received_at - uptime against ts).
GATEWAY_CLOCK = ("received_at", "clock_skew_ms")


def operating_point(mode: str, sensor_c: float, vehicle: bool, n: int = 20000) -> tuple[float, float, float]:
    """(sensitivity, specificity, indeterminate share) of the shipped calibration over simulated travellers."""
    cabin = (21.5, 1.2) if vehicle else None
    pop = Population(5, 0.5, cold_ambient_c=(-9.0, -3.0), cabin_c=cabin, window_s=(2.0, 5.0))
    rng = random.Random(5)
    counts = {(f, v): 0 for f in (True, False) for v in ("normal", "elevated", "indeterminate")}
    for t in pop.take(n):
        site = round(site_temperature(t, mode, 21.0, None, rng), 2)
        counts[(t.febrile, screening.assess(CAL, mode, site, sensor_c)[1])] += 1
    tp, fn = counts[(True, "elevated")], counts[(True, "normal")]
    tn, fp = counts[(False, "normal")], counts[(False, "elevated")]
    undecided = (counts[(True, "indeterminate")] + counts[(False, "indeterminate")]) / n
    return tp / (tp + fn), tn / (tn + fp), undecided


def test_a_vehicle_lane_with_the_scanner_in_range_is_screened_like_indoors() -> None:
    for mode in ("forehead", "canthus"):
        indoor = operating_point(mode, 21.0, vehicle=False)
        lane = operating_point(mode, 20.0, vehicle=True)
        assert abs(lane[0] - indoor[0]) <= 0.05, (mode, indoor, lane)
        assert lane[2] <= 0.01, (mode, lane)  # verdicts, not retests


def run_sim(workdir: Path, scenario: Path, *options: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "sim", "run", "--json", "--scenario", str(scenario), "--workdir", str(workdir),
         *options],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, f"checkpoint-sim run failed:\n{out.stdout}\n{out.stderr}"
    summary: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return summary


SCENARIO = """duration_s = {duration}
speed = 5.0
seed = {seed}
rate_per_min = 10.0
fever_prevalence = 0.2

[[site]]
name = "bridge"
nodes = {nodes}
ambient_c = -6.0
indoor = false
mode = "forehead"
arrival = "vehicle"
{scanner}
"""


def test_a_scanner_out_in_the_cold_gives_warm_the_scanner_and_no_verdict(tmp_path: Path) -> None:
    """Carried out of a heated booth (21 C) and left in -6 C air: it cools (sensor_unsettled), then sits below
    the calibration's range (cold_ambient). The node says so; staff are told to warm the scanner."""
    scenario = tmp_path / "cold.toml"
    scanner = 'scanner = "exposed"\nscanner_start_c = 21.0\nscanner_tau_s = 30.0'
    scenario.write_text(SCENARIO.format(duration=40, seed=3, nodes=1, scanner=scanner))
    summary = run_sim(tmp_path / "w", scenario)
    assert summary["scans_made"] >= 4
    assert summary["verdicts_gateway"] == {"indeterminate": summary["scans_made"]}
    truth = [json.loads(line) for line in (tmp_path / "w" / "truth.jsonl").read_text().splitlines()]
    for scan in truth:
        assert {"cold_ambient", "sensor_unsettled"} & set(scan["flags"]), scan
        assert "scanner" in str(screening.advice(scan["verdict"], scan["flags"]))
    assert any("warm the scanner" in str(screening.advice("indeterminate", s["flags"])) for s in truth)
    assert summary["normal_outside_conditions"] == 0 and summary["definitive_share"] == 0.0


def stored(summary: dict[str, Any], leave: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The scans in the gateway's export (`checkpoint-gateway export --what scans`), by node and seq, without the
    fields named in `leave`."""
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "export", "--what", "scans", "--format", "jsonl", "--db", summary["db"]],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return sorted(({k: v for k, v in r.items() if k not in leave} for r in rows), key=lambda r: (r["node"], r["seq"]))


def test_one_seed_gives_one_run(tmp_path: Path) -> None:
    """The issue's input: two runs with one seed differed (t_site 32.33 vs 32.35; 8 vs 9 elevated). On virtual
    time they are the same run: the same summary but for real time, the same stored scans but for the gateway's
    reception times, and no tolerance on any temperature."""
    scenario = tmp_path / "bridge.toml"
    scenario.write_text(SCENARIO.format(duration=40, seed=2026, nodes=2, scanner='scanner = "heated"'))
    first = run_sim(tmp_path / "a", scenario, "--virtual-time")
    second = run_sim(tmp_path / "b", scenario, "--virtual-time")
    assert first["clock"] == "virtual" and first["scans_made"] > 5 and first["alerts"] > 0
    assert {k: v for k, v in first.items() if k not in REAL} == {k: v for k, v in second.items() if k not in REAL}
    a, b = stored(first, GATEWAY_CLOCK), stored(second, GATEWAY_CLOCK)
    assert len(a) == first["scans_made"]
    assert all(r["ts"] is not None and r["t_site_c"] is not None for r in a)  # the node's clock and reading
    assert a == b, [(x, y) for x, y in zip(a, b, strict=False) if x != y]


RETEST_SCENARIO = """duration_s = 720
speed = 20.0
seed = 11
rate_per_min = 2.0
fever_prevalence = 0.3

[[site]]
name = "tent"
nodes = 1
ambient_c = 20.0
indoor = true
mode = "forehead"
outdoor_c = -8.0
cold_share = 1.0
minutes_inside = [0.2, 1.0]
retest_after_min = [8.0, 10.0]
retest_air_c = 21.0
"""


def test_cold_travellers_come_back_with_their_code_and_fevers_go_to_the_medic(tmp_path: Path) -> None:
    """A heated tent (20 C) where everyone walks in from -8 C and is scanned within a minute: cold faces are
    indeterminate (cold_skin), come back after 8-10 minutes inside and are retested by their case's code; the
    simulated medic takes every fever alert through acknowledge, thermometer and outcome."""
    scenario = tmp_path / "tent.toml"
    scenario.write_text(RETEST_SCENARIO)
    summary = run_sim(tmp_path / "w", scenario)
    truth = [json.loads(line) for line in (tmp_path / "w" / "truth.jsonl").read_text().splitlines()]
    first = {s["traveller"]: s for s in truth if s["visit"] == 0}
    again = [s for s in truth if s["visit"] > 0]
    assert summary["retests"] == len(again) > 0
    for s in again:  # each retest names the code its traveller's first scan opened
        assert s["retest_code"] == first[s["traveller"]]["code"] is not None, s
        assert first[s["traveller"]]["verdict"] == "indeterminate"
    rows = {(r["node"], r["seq"]): r for r in stored(summary)}
    assert all(rows[(s["node"], s["seq"])]["retest_code"] == s["retest_code"] for s in again)
    # (scanned within a minute of coming in, against the procedure, some cold faces still read "normal": the
    # summary counts them in normal_outside_conditions; the demo's posts follow the procedure and have none)
    command = ["alerts", "--all", "--kind", "fever", "--db", summary["db"], "--format", "json"]
    out = subprocess.run(
        [sys.executable, "-m", "gateway", *command], capture_output=True, text=True, cwd=REPO, timeout=60, check=True
    )
    fevers = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert fevers and summary["medic"]["rechecked"] == len(fevers)
    assert {a["state"] for a in fevers} == {"resolved"}
    assert summary["medic"]["referred"] + summary["medic"]["cleared"] == len(fevers)
