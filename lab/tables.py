"""The generated tables of docs/screening.md, one function a table, each from the study's subjects and the
shipped calibration. Deterministic: fixed seeds, no timestamps."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firmware import module
from lab.calibration import SHIPPED_METHOD, TARGET_SENS
from lab.dataset import CANTHUS, FOREHEAD, Reading, Subject, readings
from lab.evaluate import evaluate
from lab.fit import METHODS, METHODS_BY_NAME, estimates
from lab.roc import alerts_per_10k, sens_spec
from lab.validate import HeldOut, cross_validate, cross_validate_repeated, other_rounds
from sim import travellers

baseline: Any = module("baseline")
contract: Any = module("contract")
screening: Any = module("screening")
REPEATS = 10
PREVALENCES = (("NZ airport 0.5 %", 0.005), ("Korea 0.002 %", 0.00002))
CHINA_C = 37.3
NODE_OFFSETS_C = (-1.0, -0.5, 0.0, 0.5, 1.0)
COLD_MINUTES = (0, 1, 3, 5, 10)
WINTER_FLOORS = {FOREHEAD: (35.5, 36.0), CANTHUS: (36.0,)}


def _pm(v: tuple[float, float], fmt: str = ".3f") -> str:
    return f"{v[0]:{fmt}} ± {v[1]:{fmt}}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def methods_table(subjects: Sequence[Subject], mode: str) -> str:
    data, _ = readings(subjects, mode, 1)
    rows = []
    for m in METHODS:
        r = cross_validate_repeated(data, m, TARGET_SENS[mode], repeats=REPEATS)
        name = f"**{m.label}** (shipped)" if m.name == SHIPPED_METHOD else m.label
        rows.append(
            [
                name,
                _pm(r["auc"]),
                _pm(r["sensitivity"], ".2f"),
                _pm(r["specificity"], ".2f"),
                f"{r['sens_at_37_5'][0]:.2f} / {r['spec_at_37_5'][0]:.2f}",
                f"{r['bias_c'][0]:+.2f}",
                f"{r['sd_c'][0]:.2f}",
            ]
        )
    header = ["method", "AUC", "sensitivity", "specificity", "sens / spec at 37.5", "bias C", "SD C"]
    return _table(header, rows)


def rounds_table(subjects: Sequence[Subject], mode: str) -> str:
    rows = []
    for m in METHODS:
        r = other_rounds(subjects, mode, m, TARGET_SENS[mode])
        cells = [
            f"{r[k]['auc']:.3f}; {r[k]['sensitivity']:.2f} / {r[k]['specificity']:.2f}; {r[k]['bias_c']:+.2f}"
            for k in r
        ]
        rows.append([m.label, *cells])
    return _table(["method (fit on round 1)", "round 2", "round 3", "round 4"], rows)


def pooled_out_of_fold(data: Sequence[Reading], mode: str) -> HeldOut:
    """Out-of-fold estimates of the shipped method, pooled over REPEATS seeded 5-fold splits."""
    method = METHODS_BY_NAME[SHIPPED_METHOD]
    runs = [cross_validate(data, method, TARGET_SENS[mode], seed=1 + r) for r in range(REPEATS)]
    return HeldOut(
        [x for h in runs for x in h.readings],
        [e for h in runs for e in h.estimates],
        [t for h in runs for t in h.thresholds],
    )


def operating_table(held: HeldOut, default_c: float) -> str:
    rows = []
    for i in range(15):
        t = round(36.9 + 0.05 * i, 2)
        se, sp = sens_spec(held.estimates, held.labels, t)
        mark = " (default)" if abs(t - default_c) < 1e-6 else (" (China)" if abs(t - CHINA_C) < 1e-6 else "")
        row = [f"{t:.2f}{mark}", f"{se:.2f}", f"{sp:.2f}"]
        for _, p in PREVALENCES:
            alerts, true = alerts_per_10k(se, sp, p)
            row.append(f"{alerts:,.0f} ({true:.2f} fevers)")
        rows.append(row)
    header = ["threshold C", "sensitivity", "specificity"] + [f"alerts / 10,000, {n}" for n, _ in PREVALENCES]
    return _table(header, rows)


def baseline_table(subjects: Sequence[Subject], cal: dict[str, Any], mode: str) -> str:
    """The lane baseline on the subjects in time order, as if one node saw them, with the node reading off."""
    order = sorted(subjects, key=lambda s: (s.date.split("-"), s.time))
    data, _ = readings(order, mode, 1)
    labels = [r.febrile for r in data]
    rows = []
    for off in NODE_OFFSETS_C:
        base = baseline.Baseline(10, 0.2)
        signals: dict[str, list[bool]] = {"threshold": [], "baseline": [], "either (shipped policy)": []}
        for r in data:
            t_site = r.t_site + off
            above = base.above(t_site, 1.0)
            flags = ["above_baseline"] if above else []
            t_core, verdict, out = screening.assess(cal, mode, t_site, r.t_amb, flags)
            signals["threshold"].append(t_core is not None and t_core >= cal["modes"][mode]["threshold_c"])
            signals["baseline"].append(above)
            signals["either (shipped policy)"].append(verdict == screening.ELEVATED)
            base.update(t_site, verdict, out)
        cells = []
        for v in signals.values():
            se, sp = sens_spec([1.0 if x else 0.0 for x in v], labels, 0.5)
            cells.append(f"{se:.2f} / {sp:.2f}")
        rows.append([f"{off:+.1f}", *cells])
    return _table(["node reads off by C", "threshold only", "baseline only (+1.0 C)", "either (shipped policy)"], rows)


def _after_cold(cal: dict[str, Any], mode: str, febrile: bool) -> list[str]:
    """Share of cold travellers shown wrongly (healthy: indeterminate; febrile: normal) by minutes indoors."""
    pop = travellers.Population(11, fever_prevalence=1.0 if febrile else 0.0, cold_share=1.0)
    trav = pop.take(2000)
    rng = random.Random(12)
    shown = screening.NORMAL if febrile else screening.INDETERMINATE
    cells = []
    for minutes in COLD_MINUTES:
        verdicts = [
            screening.assess(cal, mode, travellers.site_temperature(t, mode, 20.5, minutes, rng), 20.5)[1] for t in trav
        ]
        cells.append(f"{sum(1 for v in verdicts if v == shown) / len(verdicts):.0%}")
    return cells


def cold_table(subjects: Sequence[Subject], cal: dict[str, Any]) -> str:
    """Travellers from -5..0 C air scanned at 20.5 C (sensor ambient indoor-like), by minutes since."""
    rows = []
    for mode in contract.MODES:
        data, _ = readings(subjects, mode, 1)
        for floor in (cal["modes"][mode]["min_core_c"], *WINTER_FLOORS[mode]):
            variant = copy.deepcopy(cal)
            variant["modes"][mode]["min_core_c"] = floor
            est = estimates(variant["modes"][mode], data)
            indoor = sum(1 for e in est if e < floor) / len(est)
            row = [mode, f"{floor:.1f}", f"{indoor:.1%}"]
            row += [" / ".join(_after_cold(variant, mode, febrile)) for febrile in (False, True)]
            rows.append(row)
    header = [
        "mode",
        "min_core_c",
        "indoor data flagged",
        "healthy: indeterminate at 0/1/3/5/10 min",
        "febrile: normal (missed) at 0/1/3/5/10 min",
    ]
    return _table(header, rows)


def calibration_table(cal: dict[str, Any]) -> str:
    rows = [
        [mode, m["form"], f"{m['k']}", f"{m['offset_c']:+.4f}", f"{m['threshold_c']:.2f}", f"{m['min_core_c']:.1f}"]
        for mode, m in cal["modes"].items()
    ]
    return _table(["mode", "form", "k", "offset_c", "threshold_c", "min_core_c"], rows)


EVALUATE_KEYS = ("n", "positives", "auc", "sensitivity", "specificity", "threshold_c", "bias_c", "sd_c", "skipped")
_EVALUATE_FORMATS = ("", "", ".3f", ".3f", ".3f", ".2f", "+.3f", ".3f", "")


def evaluate_table(dataset: Path, cal: dict[str, Any]) -> str:
    """`checkpoint-gateway evaluate` on the whole file, each mode."""
    rows = []
    for mode in contract.MODES:
        r, indeterminate = evaluate(str(dataset), mode, cal)
        cells = [format(r[k], f) for k, f in zip(EVALUATE_KEYS, _EVALUATE_FORMATS, strict=True)]
        rows.append([mode, *cells, str(indeterminate)])
    return _table(["mode", *EVALUATE_KEYS, "indeterminate"], rows)


def raw_reading_line(subjects: Sequence[Subject]) -> str:
    data, _ = readings(subjects, FOREHEAD, 1)
    se, sp = sens_spec([r.t_site for r in data], [r.febrile for r in data], CHINA_C)
    return f"Raw forehead peak >= {CHINA_C} C (a hobby node): sensitivity {se:.2f}, specificity {sp:.2f}."
