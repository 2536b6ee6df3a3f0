"""The generated tables of docs/screening.md, one function a table, each from the study's subjects and the
shipped calibration. Deterministic: fixed seeds, no timestamps."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firmware import module
from lab.calibration import MAX_SEX_GAP, PREVIOUS_METHOD, SHIPPED_METHOD, TARGET_SENS
from lab.dataset import CANTHUS, FOREHEAD, Reading, Subject, readings
from lab.evaluate import evaluate
from lab.fairness import FEMALE, MALE, by_sex, rates, wilson
from lab.fit import METHODS, METHODS_BY_NAME, ambient_weight_iv, estimates, fit_heat_balance_k, fit_heat_balance_offset
from lab.roc import alerts_per_10k, sens_spec
from lab.validate import HeldOut, ambient_band_out, ambient_split, cross_validate, cross_validate_repeated, other_rounds
from sim import travellers

baseline: Any = module("baseline")
contract: Any = module("contract")
screening: Any = module("screening")
REPEATS = 10
PREVALENCES = (("NZ airport 0.5 %", 0.005), ("Korea 0.002 %", 0.00002))
PPV_PREVALENCES = (0.01, 0.05)
BOOTSTRAP = 200
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
        r = cross_validate_repeated(data, m, TARGET_SENS[mode], repeats=REPEATS, max_gap=MAX_SEX_GAP[mode])
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
        r = other_rounds(subjects, mode, m, TARGET_SENS[mode], max_gap=MAX_SEX_GAP[mode])
        cells = [
            f"{r[k]['auc']:.3f}; {r[k]['sensitivity']:.2f} / {r[k]['specificity']:.2f}; {r[k]['bias_c']:+.2f}"
            for k in r
        ]
        rows.append([m.label, *cells])
    return _table(["method (fit on round 1)", "round 2", "round 3", "round 4"], rows)


def pooled_out_of_fold(data: Sequence[Reading], mode: str, method_name: str = SHIPPED_METHOD) -> HeldOut:
    """Out-of-fold estimates of a method (the shipped one), pooled over REPEATS seeded 5-fold splits."""
    method = METHODS_BY_NAME[method_name]
    gap = MAX_SEX_GAP[mode] if method_name == SHIPPED_METHOD else None
    runs = [cross_validate(data, method, TARGET_SENS[mode], seed=1 + r, max_gap=gap) for r in range(REPEATS)]
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


def band_out_table(subjects: Sequence[Subject], mode: str) -> str:
    """Every method leave-ambient-band-out: AUC; sensitivity / specificity at the training band's threshold;
    bias C (the drift with the room)."""
    data, _ = readings(subjects, mode, 1)
    rows = []
    for m in METHODS:
        held = ambient_band_out(data, m, TARGET_SENS[mode], MAX_SEX_GAP[mode])
        cells = []
        for h in held.values():
            x = h.metrics()
            cells.append(f"{x['auc']:.3f}; {x['sensitivity']:.2f} / {x['specificity']:.2f}; {x['bias_c']:+.2f}")
        name = f"**{m.label}** (shipped)" if m.name == SHIPPED_METHOD else m.label
        rows.append([name, *cells])
    cool, warm, median = ambient_split(data)
    header = [
        "method",
        f"fit <= {median:.1f} C ({len(cool)}), test warmer ({len(warm)})",
        f"fit > {median:.1f} C, test cooler",
    ]
    return _table(header, rows)


def _bootstrap_ci(data: Sequence[Reading], stat: Any, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    values = sorted(stat([rng.choice(data) for _ in data]) for _ in range(BOOTSTRAP))
    return values[int(0.025 * BOOTSTRAP)], values[int(0.975 * BOOTSTRAP) - 1]


def ambient_weight_table(subjects: Sequence[Subject]) -> str:
    """The ambient weight k by three estimators, round 1, with 95 % bootstrap intervals (fixed seed)."""
    rows = []
    for mode in contract.MODES:
        data, _ = readings(subjects, mode, 1)
        cool, warm, _ = ambient_split(data)
        cells = []
        for stat in (
            lambda d: fit_heat_balance_k(d)["k"],
            ambient_weight_iv,
            lambda d: fit_heat_balance_offset(d)["k"],
        ):
            lo, hi = _bootstrap_ci(data, stat, seed=7)
            cells.append(f"{stat(data):.3f} [{lo:.3f}, {hi:.3f}]")
        halves = f"{fit_heat_balance_k(cool)['k']:.3f} / {fit_heat_balance_k(warm)['k']:.3f}"
        rows.append([mode, *cells, halves])
    header = [
        "mode",
        "heat balance, k fitted (shipped)",
        "k from room ambient (instrument)",
        "k with a free offset (least squares)",
        "shipped k on cooler / warmer half",
    ]
    return _table(header, rows)


def _ci(g: dict[str, Any], key: str) -> str:
    if g[key] is None:
        return "n/a"
    lo, hi = g[key + "_ci"]
    return f"{g[key]:.2f} [{lo:.2f}, {hi:.2f}]"


def fairness_table(dataset: Path, cal: dict[str, Any]) -> str:
    """`evaluate`'s by_sex and by_age_band on the whole file, each mode, with 95 % Wilson intervals."""
    rows = []
    for mode in contract.MODES:
        r, _ = evaluate(str(dataset), mode, cal)
        for key, label in (("by_sex", "sex"), ("by_age_band", "age")):
            for name, g in r[key].items():
                rows.append([mode, f"{label} {name}", str(g["n"]), str(g["fevers"]), _ci(g, "sensitivity"),
                             _ci(g, "specificity")])  # fmt: skip
    return _table(["mode", "group", "n", "fevers", "sensitivity [95 % CI]", "specificity [95 % CI]"], rows)


def _held_by_sex(held: HeldOut, repeats: int = REPEATS) -> dict[str, dict[str, Any]]:
    """Rates by sex of pooled out-of-fold results, the intervals on the subjects' counts (pool / repeats)."""
    elevated = [e >= t for e, t in zip(held.estimates, held.thresholds, strict=True)]
    out = by_sex(held.readings, elevated)
    for g in out.values():
        fevers, others = g["fevers"] // repeats, (g["n"] - g["fevers"]) // repeats
        g["sensitivity_ci"] = list(wilson(round(g["sensitivity"] * fevers), fevers) or (0.0, 1.0))
        g["specificity_ci"] = list(wilson(round(g["specificity"] * others), others) or (0.0, 1.0))
    return out


def sex_gap_table(subjects: Sequence[Subject]) -> str:
    """Held-out sensitivity by sex, previous calibration (k = 0.19 + offset, threshold for the target alone)
    against the shipped one (k fitted, threshold with the sex gap bounded where MAX_SEX_GAP says)."""
    rows = []
    for mode in contract.MODES:
        data, _ = readings(subjects, mode, 1)
        for name in (PREVIOUS_METHOD, SHIPPED_METHOD):
            held = pooled_out_of_fold(data, mode, name)
            g = _held_by_sex(held)
            x = held.metrics()
            gap = g[MALE]["sensitivity"] - g[FEMALE]["sensitivity"]
            label = "shipped" if name == SHIPPED_METHOD else "previous (fda-flir-g1-1)"
            rows.append([mode, label, _ci(g[MALE], "sensitivity"), _ci(g[FEMALE], "sensitivity"), f"{gap:+.2f}",
                         f"{x['sensitivity']:.2f} / {x['specificity']:.2f}"])  # fmt: skip
    header = ["mode", "calibration", "men: sensitivity", "women: sensitivity", "gap", "all: sens / spec"]
    return _table(header, rows)


def sex_tradeoff_table(held: HeldOut, default_c: float) -> str:
    """Held-out sensitivity by sex and specificity at fixed thresholds: the price of a smaller gap."""
    rows = []
    for i in range(10):
        t = round(37.05 + 0.05 * i, 2)
        elevated = [e >= t for e in held.estimates]
        g = by_sex(held.readings, elevated)
        all_ = rates(elevated, held.labels)
        alerts, _ = alerts_per_10k(all_["sensitivity"], all_["specificity"], 0.01)
        mark = " (default)" if abs(t - default_c) < 1e-6 else ""
        rows.append([f"{t:.2f}{mark}", f"{g[MALE]['sensitivity']:.2f}", f"{g[FEMALE]['sensitivity']:.2f}",
                     f"{g[MALE]['sensitivity'] - g[FEMALE]['sensitivity']:+.2f}",
                     f"{all_['sensitivity']:.2f} / {all_['specificity']:.2f}", f"{alerts:,.0f}"])  # fmt: skip
    header = ["threshold C", "men", "women", "gap", "all: sens / spec", "alerts / 10,000 at 1 %"]
    return _table(header, rows)


def ppv(sens: float, spec: float, prevalence: float) -> float:
    """Positive predictive value: the share of alerts that are fevers."""
    true = prevalence * sens
    return true / (true + (1 - prevalence) * (1 - spec))


def ppv_table(subjects: Sequence[Subject], cal: dict[str, Any]) -> str:
    """Each mode at its shipped threshold on held-out estimates (10 x 5-fold pooled, as the operating-point
    tables): PPV and alerts per 10,000 at 1 % and 5 % prevalence."""
    rows = []
    for mode in contract.MODES:
        data, _ = readings(subjects, mode, 1)
        held = pooled_out_of_fold(data, mode)
        t = cal["modes"][mode]["threshold_c"]
        se, sp = sens_spec(held.estimates, held.labels, t)
        row = [mode, f"{t:.2f}", f"{held.metrics()['auc']:.3f}", f"{se:.2f} / {sp:.2f}"]
        for p in PPV_PREVALENCES:
            alerts, _ = alerts_per_10k(se, sp, p)
            row.append(f"{ppv(se, sp, p):.1%} ({alerts:,.0f} alerts)")
        rows.append(row)
    header = ["mode", "threshold C", "AUC", "sens / spec"] + [
        f"PPV at {p:.0%} (alerts / 10,000)" for p in PPV_PREVALENCES
    ]
    return _table(header, rows)
