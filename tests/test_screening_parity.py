"""The node and the gateway reach the same verdict: firmware/screening.py on the real MicroPython interpreter
(ESP32 heap budget) against the same module under CPython (what the gateway imports), with the shipped
calibration, over a grid of edge cases and seeded random scans.

Inputs travel as integers (the MLX90614's raw 0.02 K steps, thresholds in hundredths) and both interpreters
convert them with the same arithmetic, so verdicts and flags must match exactly and estimates to 1e-9 C.
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import firmware
from gateway.protocol import Scan, parse
from gateway.screening import Screener
from testkit.micropython import micropython_command

calibration = firmware.module("calibration")
screening = firmware.module("screening")
baseline = firmware.module("baseline")
contract = firmware.module("contract")

ROOT = Path(__file__).resolve().parents[1]
MICROPYTHON = micropython_command("112k")
# What the scan procedure and the lane baseline may hand to assess(): none, every flag of the contract alone, and a
# warning beside the elevating flag.
FLAG_SETS: tuple[list[str], ...] = ([], *([f] for f in contract.FLAGS), ["low_supply", "above_baseline"])

# Runs under MicroPython: one JSON case per line in, one JSON result per line out (keeps the heap small).
RUNNER = """
import gc, json, sys
sys.path.insert(0, {firmware!r})
import screening
from baseline import Baseline
from calibration import CALIBRATION

def run(case):
    mode, raw_site, raw_amb, flags, thr = case
    t_site = None if raw_site is None else raw_site * 0.02 - 273.15
    t_amb = raw_amb * 0.02 - 273.15
    threshold = None if thr is None else thr / 100
    t_core, verdict, out = screening.assess(CALIBRATION, mode, t_site, t_amb, flags, threshold)
    return [t_core, verdict, out, screening.advice(verdict, out)]

def baseline(readings):
    b = Baseline(10, 0.2)
    for raw in readings:
        t = raw * 0.02 - 273.15
        flags = b.flags(t)
        t_core, verdict, fl = screening.assess(CALIBRATION, "forehead", t, 22.0, flags)
        b.update(t, verdict, fl)
        print(json.dumps([flags, verdict, b.value()]))  # one line a reading: short strings for a small heap

with open({cases!r}) as f:
    for line in f:
        gc.collect()
        case = json.loads(line)
        if case[0] == "baseline":
            baseline(case[1])
        else:
            print(json.dumps(run(case)))
"""


def to_raw(t_c: float) -> int:
    return round((t_c + 273.15) / 0.02)


def run_cpython(case: list[Any]) -> list[Any]:
    mode, raw_site, raw_amb, flags, thr = case
    t_site = None if raw_site is None else raw_site * 0.02 - 273.15
    t_amb = raw_amb * 0.02 - 273.15
    threshold = None if thr is None else thr / 100
    t_core, verdict, out = screening.assess(calibration.CALIBRATION, mode, t_site, t_amb, flags, threshold)
    return [t_core, verdict, out, screening.advice(verdict, out)]


def baseline_cpython(readings: list[int]) -> list[Any]:
    b = baseline.Baseline(10, 0.2)
    out = []
    for raw in readings:
        t = raw * 0.02 - 273.15
        flags = b.flags(t)
        _, verdict, fl = screening.assess(calibration.CALIBRATION, "forehead", t, 22.0, flags)
        b.update(t, verdict, fl)
        out.append([flags, verdict, b.value()])
    return out


def cases() -> list[list[Any]]:
    cal = calibration.CALIBRATION
    out: list[list[Any]] = []
    # Lane baselines: a node's run of readings, some fevers and some cold faces.
    for seed in range(5):
        r = random.Random(seed)
        # a lane's forehead readings: some fevers (+1.5 C), some cold faces (-3 C)
        shifts = [(1.5 if r.random() < 0.08 else 0.0) - (3.0 if r.random() < 0.05 else 0.0) for _ in range(60)]
        readings = [to_raw(r.gauss(35.2, 0.5) + d) for d in shifts]
        out.append(["baseline", readings])
    # Edges: ambient range, skin range, the cold-skin floor and the threshold of each mode, to the raw step.
    lo_amb, hi_amb = cal["ambient_c"]
    ambients = [lo_amb - 0.02, lo_amb, lo_amb + 0.02, 22.0, hi_amb - 0.02, hi_amb, hi_amb + 0.02, -5.0, 35.0]
    for mode in contract.MODES:
        m = cal["modes"][mode]
        sites = [cal["skin_c"][0] - 0.02, cal["skin_c"][0], cal["skin_c"][1], cal["skin_c"][1] + 0.02, 33.0]
        for t_amb in (22.0, 20.2, 24.0):
            for target in (m["threshold_c"], m["min_core_c"], 37.3):
                # the site temperature whose estimate lands on the target, and its raw neighbours
                t_site = (target - m["offset_c"] + m["k"] * t_amb) / (1 + m["k"])
                sites += [t_site - 0.02, t_site, t_site + 0.02]
        for t_site in sites:
            for t_amb in ambients:
                for thr in (None, 3730, 3750):
                    out.append([mode, to_raw(t_site), to_raw(t_amb), [], thr])
    rng = random.Random(20240605)
    for _ in range(3000):
        mode = rng.choice(contract.MODES)
        raw_site = None if rng.random() < 0.02 else to_raw(rng.uniform(25.0, 43.0))
        flags = list(rng.choice(FLAG_SETS))
        thr = rng.choice((None, None, 3730, 3800))
        out.append([mode, raw_site, to_raw(rng.uniform(10.0, 34.0)), flags, thr])
    return out


def test_firmware_and_gateway_reach_the_same_verdicts(tmp_path: Path) -> None:
    all_cases = cases()
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in all_cases), encoding="utf-8")
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(firmware=str(ROOT / "firmware"), cases=str(path)), encoding="utf-8")
    done = subprocess.run(
        [*MICROPYTHON, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = iter(done.stdout.splitlines())
    verdicts: set[str] = set()
    for case in all_cases:
        if case[0] == "baseline":
            py = baseline_cpython(case[1])
            mp = [json.loads(next(lines)) for _ in py]
            assert [(f, v) for f, v, _ in mp] == [(f, v) for f, v, _ in py], case
            for (_, _, a), (_, _, b) in zip(mp, py, strict=True):
                assert (a is None) == (b is None) and (a is None or abs(a - b) < 1e-9), case
            continue
        py = run_cpython(case)
        mp = json.loads(next(lines))
        assert mp[1:] == py[1:], case  # verdict, flags, advice: exactly
        assert (mp[0] is None) == (py[0] is None), case
        if py[0] is not None:
            assert abs(mp[0] - py[0]) < 1e-9, case
        verdicts.add(py[1])
    assert next(lines, None) is None
    assert verdicts == set(contract.VERDICTS)  # the cases reach every verdict


# Runs under MicroPython: the node's side of a scan by a unit with a reference correction (scanner.py's steps:
# the reading rounded as published, corrected, assessed; the record packed; the payload built from it).
REFERENCE_RUNNER = """
import gc, json, sys
sys.path.insert(0, {firmware!r})
import record, reference, screening
from calibration import CALIBRATION

with open({cases!r}) as f:
    for line in f:
        gc.collect()
        mode, raw_site, raw_amb, gain, offset = json.loads(line)
        ref = reference.correction(gain, offset)
        t_site, t_amb = round(raw_site * 0.02 - 273.15, 2), round(raw_amb * 0.02 - 273.15, 2)
        t_core, verdict, flags = screening.assess(CALIBRATION, mode, reference.correct(ref, t_site), t_amb)
        scan = {{"boot": 1, "ts": None, "uptime_ms": 1, "mode": mode, "t_site_c": t_site, "t_amb_c": t_amb,
                "t_core_c": None if t_core is None else round(t_core, 2), "verdict": verdict, "flags": flags,
                "samples": 9, "duration_ms": 600, "retest_of": None, "ref_gain": ref["gain"],
                "ref_offset_c": ref["offset_c"], "fw": "t", "cal": CALIBRATION["id"]}}
        print(record.to_payload(1, record.pack(scan), "s", "n").decode())
"""


def test_node_and_gateway_apply_the_same_reference_correction(tmp_path: Path) -> None:
    """A unit's correction on the node (MicroPython: scanner's steps, the record, the payload) and at the gateway
    (the payload parsed, gateway.screening.Screener): the same verdicts, flags and estimates, and the correction
    moves verdicts (a unit reading 0.8 C high no longer alarms on a normal traveller)."""
    rng = random.Random(20261201)
    all_cases = []
    for _ in range(1500):
        gain, offset = rng.uniform(0.92, 1.08), rng.uniform(-2.5, 2.5)
        all_cases.append([rng.choice(contract.MODES), to_raw(rng.uniform(31.0, 42.0)), to_raw(rng.uniform(15, 30)),
                          gain, offset])  # fmt: skip
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in all_cases), encoding="utf-8")
    script = tmp_path / "runner.py"
    script.write_text(REFERENCE_RUNNER.format(firmware=str(ROOT / "firmware"), cases=str(path)), encoding="utf-8")
    done = subprocess.run([*MICROPYTHON, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    screener = Screener(calibration.CALIBRATION, {})
    moved = 0
    for case, line in zip(all_cases, done.stdout.splitlines(), strict=True):
        scan = parse(contract.PREFIX, f"{contract.PREFIX}/s/n/scan", line.encode())
        assert isinstance(scan, Scan), (case, line)
        got = screener.assess(scan)
        assert (got.verdict, list(got.flags)) == (scan.verdict, list(scan.flags)), case
        assert got.t_core_c == scan.t_core_c, case
        plain = screener.assess(replace(scan, ref_gain=None, ref_offset_c=None))
        moved += plain.verdict != got.verdict
    assert moved > 50  # the correction decides verdicts: without it the gateway would disagree with the node
