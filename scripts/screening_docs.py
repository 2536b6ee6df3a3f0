#!/usr/bin/env python3
"""Regenerate docs/screening.md's tables and docs/img/roc_*.png from the FDA data (`make screening-docs`).

The prose of docs/screening.md is written by hand; every block between `<!-- BEGIN name -->` and
`<!-- END name -->` is rewritten here. With --write-calibration it also rewrites firmware/calibration.py from
the fit (tests/gateway/test_calibration.py checks that the shipped file equals the fit). Deterministic: fixed
seeds, no timestamps. Needs matplotlib (dev extra); the gateway runtime does not.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import calibration as calib  # noqa: E402
from gateway.calibration import Scan, Subject  # noqa: E402
from gateway.evaluate import evaluate  # noqa: E402
from sim import travellers  # noqa: E402

# firmware/ is untyped MicroPython-subset code: imported by name so mypy does not check it as ours.
screening: Any = importlib.import_module("firmware.screening")
DOC = ROOT / "docs" / "screening.md"
IMG = ROOT / "docs" / "img"
REPEATS = 10
PREVALENCES = (("NZ airport 0.5 %", 0.005), ("Korea 0.002 %", 0.00002))
CHINA_C = 37.3
NODE_OFFSETS_C = (-1.0, -0.5, 0.0, 0.5, 1.0)
COLD_MINUTES = (0, 1, 3, 5, 10)
WINTER_FLOORS = {"forehead": (35.5, 36.0), "canthus": (36.0,)}


def _pm(v: tuple[float, float], fmt: str = ".3f") -> str:
    return f"{v[0]:{fmt}} ± {v[1]:{fmt}}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def methods_table(subjects: Sequence[Subject], mode: str) -> str:
    data, _ = calib.scans(subjects, mode, 1)
    rows = []
    for m in calib.METHODS:
        r = calib.cross_validate_repeated(data, m, calib.TARGET_SENS[mode], repeats=REPEATS)
        name = f"**{m.label}** (shipped)" if m.name == calib.SHIPPED_METHOD else m.label
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
    for m in calib.METHODS:
        r = calib.other_rounds(subjects, mode, m, calib.TARGET_SENS[mode])
        cells = [
            f"{r[k]['auc']:.3f}; {r[k]['sensitivity']:.2f} / {r[k]['specificity']:.2f}; {r[k]['bias_c']:+.2f}"
            for k in r
        ]
        rows.append([m.label, *cells])
    return _table(["method (fit on round 1)", "round 2", "round 3", "round 4"], rows)


def pooled_out_of_fold(data: Sequence[Scan], mode: str) -> calib.HeldOut:
    """Out-of-fold estimates of the shipped method, pooled over REPEATS seeded 5-fold splits."""
    method = calib.METHODS_BY_NAME[calib.SHIPPED_METHOD]
    runs = [calib.cross_validate(data, method, calib.TARGET_SENS[mode], seed=1 + r) for r in range(REPEATS)]
    return calib.HeldOut(
        [s for h in runs for s in h.scans],
        [e for h in runs for e in h.estimates],
        [t for h in runs for t in h.thresholds],
    )


def operating_table(held: calib.HeldOut, default_c: float) -> str:
    rows = []
    for i in range(15):
        t = round(36.9 + 0.05 * i, 2)
        se, sp = calib.sens_spec(held.estimates, held.labels, t)
        mark = " (default)" if abs(t - default_c) < 1e-6 else (" (China)" if abs(t - CHINA_C) < 1e-6 else "")
        row = [f"{t:.2f}{mark}", f"{se:.2f}", f"{sp:.2f}"]
        for _, p in PREVALENCES:
            alerts, true = calib.alerts_per_10k(se, sp, p)
            row.append(f"{alerts:,.0f} ({true:.2f} fevers)")
        rows.append(row)
    header = ["threshold C", "sensitivity", "specificity"] + [f"alerts / 10,000, {n}" for n, _ in PREVALENCES]
    return _table(header, rows)


def roc_figure(data: Sequence[Scan], held: calib.HeldOut, mode: str, default_c: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    labels = held.labels
    ls = calib.cross_validate(data, calib.METHODS_BY_NAME["least_squares"], calib.TARGET_SENS[mode])
    raw = [s.t_site for s in data]
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=100)
    for name, scores, lab in (
        (f"{calib.SHIPPED_METHOD} (shipped)", held.estimates, labels),
        ("least squares", ls.estimates, ls.labels),
        ("raw site reading", raw, [s.febrile for s in data]),
    ):
        pts = calib.roc_points(scores, lab)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"{name}, AUC {calib.auc(scores, lab):.3f}")
    points = [(default_c, "o", "default")]
    if abs(default_c - CHINA_C) > 1e-6:
        points.append((CHINA_C, "s", "China"))
    for t, marker, text in points:
        se, sp = calib.sens_spec(held.estimates, labels, t)
        ax.plot([1 - sp], [se], marker, color="black", label=f"{text} {t:.2f} C: {se:.2f} / {sp:.2f}")
    goal = {"forehead": (0.80, 0.78), "canthus": (0.90, 0.85)}[mode]
    ax.add_patch(Rectangle((0, goal[0]), 1 - goal[1], 1 - goal[0], fill=False, ls="--", color="grey"))
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(f"{mode}: EBT (oral >= 37.5 C), held-out subjects; dashed: goal", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def baseline_table(subjects: Sequence[Subject], cal: dict[str, Any], mode: str) -> str:
    """The lane baseline on the subjects in time order, as if one node saw them, with the node reading off."""
    order = sorted(subjects, key=lambda s: (s.date.split("-"), s.time))
    data, _ = calib.scans(order, mode, 1)
    labels = [s.febrile for s in data]
    rows = []
    for off in NODE_OFFSETS_C:
        base = screening.Baseline(10, 0.2)
        signals: dict[str, list[bool]] = {"threshold": [], "baseline": [], "either (shipped policy)": []}
        for s in data:
            t_site = s.t_site + off
            above = base.above(t_site, 1.0)
            flags = ["above_baseline"] if above else []
            t_core, verdict, out = screening.assess(cal, mode, t_site, s.t_amb, flags)
            thr = t_core is not None and t_core >= cal["modes"][mode]["threshold_c"]
            signals["threshold"].append(thr)
            signals["baseline"].append(above)
            signals["either (shipped policy)"].append(verdict == screening.ELEVATED)
            base.update(t_site, verdict, out)
        cells = []
        for v in signals.values():
            se, sp = calib.sens_spec([1.0 if x else 0.0 for x in v], labels, 0.5)
            cells.append(f"{se:.2f} / {sp:.2f}")
        rows.append([f"{off:+.1f}", *cells])
    return _table(["node reads off by C", "threshold only", "baseline only (+1.0 C)", "either (shipped policy)"], rows)


def cold_table(subjects: Sequence[Subject], cal: dict[str, Any]) -> str:
    """Travellers from -5..0 C air scanned at 20.5 C (sensor ambient indoor-like), by minutes since."""
    rows = []
    for mode in screening.MODES:
        data, _ = calib.scans(subjects, mode, 1)
        for floor in (cal["modes"][mode]["min_core_c"], *WINTER_FLOORS[mode]):
            variant = copy.deepcopy(cal)
            variant["modes"][mode]["min_core_c"] = floor
            est = calib.estimates(variant["modes"][mode], data)
            indoor = sum(1 for e in est if e < floor) / len(est)
            row = [mode, f"{floor:.1f}", f"{indoor:.1%}"]
            for febrile in (False, True):
                pop = travellers.Population(11, fever_prevalence=1.0 if febrile else 0.0, cold_share=1.0)
                trav = pop.take(2000)
                rng = random.Random(12)
                cells = []
                for minutes in COLD_MINUTES:
                    verdicts = [
                        screening.assess(variant, mode, travellers.site_temperature(t, mode, 20.5, minutes, rng), 20.5)[
                            1
                        ]
                        for t in trav
                    ]
                    shown = screening.NORMAL if febrile else screening.INDETERMINATE
                    share = sum(1 for v in verdicts if v == shown) / len(verdicts)
                    cells.append(f"{share:.0%}")
                row.append(" / ".join(cells))
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
        [
            mode,
            m["form"],
            f"{m['k']}",
            f"{m['offset_c']:+.4f}",
            f"{m['threshold_c']:.2f}",
            f"{m['min_core_c']:.1f}",
        ]
        for mode, m in cal["modes"].items()
    ]
    return _table(["mode", "form", "k", "offset_c", "threshold_c", "min_core_c"], rows)


def evaluate_table(dataset: Path, cal: dict[str, Any]) -> str:
    rows = []
    for mode in screening.MODES:
        r, ind = evaluate(str(dataset), mode, cal)
        rows.append(
            [
                mode,
                str(r["n"]),
                str(r["positives"]),
                f"{r['auc']:.3f}",
                f"{r['sensitivity']:.3f}",
                f"{r['specificity']:.3f}",
                f"{r['threshold_c']:.2f}",
                f"{r['bias_c']:+.3f}",
                f"{r['sd_c']:.3f}",
                str(r["skipped"]),
                str(ind),
            ]
        )
    header = [
        "mode",
        "n",
        "positives",
        "auc",
        "sensitivity",
        "specificity",
        "threshold_c",
        "bias_c",
        "sd_c",
        "skipped",
        "indeterminate",
    ]
    return _table(header, rows)


def raw_reading_line(subjects: Sequence[Subject]) -> str:
    data, _ = calib.scans(subjects, "forehead", 1)
    se, sp = calib.sens_spec([s.t_site for s in data], [s.febrile for s in data], CHINA_C)
    return f"Raw forehead peak >= {CHINA_C} C (a hobby node): sensitivity {se:.2f}, specificity {sp:.2f}."


def replace_blocks(text: str, blocks: dict[str, str]) -> str:
    for name, body in blocks.items():
        begin, end = f"<!-- BEGIN {name} -->\n", f"<!-- END {name} -->"
        i, j = text.find(begin), text.find(end)
        if i < 0 or j < i:
            raise SystemExit(f"screening_docs: docs/screening.md lacks the block {name!r}")
        text = text[: i + len(begin)] + body + "\n" + text[j:]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=calib.default_dataset_path())
    parser.add_argument("--write-calibration", action="store_true", help="rewrite firmware/calibration.py")
    args = parser.parse_args(argv)
    try:
        subjects = calib.read_dataset(args.dataset)
    except calib.DatasetError as e:
        print(f"screening_docs: {e}", file=sys.stderr)
        return 2
    cal = calib.fit_calibration(subjects, calib.CAL_ID)
    if args.write_calibration:
        (ROOT / "firmware" / "calibration.py").write_text(calib.render_calibration_module(cal), encoding="utf-8")
    IMG.mkdir(parents=True, exist_ok=True)
    blocks: dict[str, str] = {
        "calibration": calibration_table(cal),
        "evaluate": evaluate_table(args.dataset, cal),
    }
    for mode in screening.MODES:
        data, _ = calib.scans(subjects, mode, 1)
        held = pooled_out_of_fold(data, mode)
        default_c = cal["modes"][mode]["threshold_c"]
        roc_figure(data, held, mode, default_c, IMG / f"roc_{mode}.png")
        blocks[f"operating-{mode}"] = operating_table(held, default_c)
        blocks[f"methods-{mode}"] = methods_table(subjects, mode)
        blocks[f"rounds-{mode}"] = rounds_table(subjects, mode)
        blocks[f"baseline-{mode}"] = baseline_table(subjects, cal, mode)
    blocks["cold"] = cold_table(subjects, cal)
    blocks["raw"] = raw_reading_line(subjects)
    DOC.write_text(replace_blocks(DOC.read_text(encoding="utf-8"), blocks), encoding="utf-8")
    print(f"screening_docs: wrote {DOC.relative_to(ROOT)} and {IMG.relative_to(ROOT)}/roc_*.png ({cal['id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
