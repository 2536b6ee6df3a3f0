"""Regenerate docs/screening.md's tables and docs/img/roc_*.png from the FDA data (`make screening-docs`).

The prose of docs/screening.md is written by hand; every block between `<!-- BEGIN name -->` and
`<!-- END name -->` is rewritten here. With --write-calibration it also rewrites firmware/calibration.py from
the fit (tests/lab/test_calibration.py checks that the shipped file equals the fit). Deterministic: fixed
seeds, no timestamps. Needs matplotlib (dev extra); the gateway does not.

    python -m lab.docs [--dataset FILE] [--write-calibration]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from firmware import module
from lab import tables
from lab.calibration import CAL_ID, fit_calibration, render_calibration_module
from lab.dataset import DatasetError, Subject, default_dataset_path, read_dataset, readings
from lab.figures import ambient_figure, roc_figure, sex_figure

contract: Any = module("contract")
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "screening.md"
IMG = ROOT / "docs" / "img"


def replace_blocks(text: str, blocks: dict[str, str]) -> str:
    """`text` with the body of each `<!-- BEGIN name -->` .. `<!-- END name -->` block replaced."""
    for name, body in blocks.items():
        begin, end = f"<!-- BEGIN {name} -->\n", f"<!-- END {name} -->"
        i, j = text.find(begin), text.find(end)
        if i < 0 or j < i:
            raise ValueError(f"docs/screening.md lacks the block {name!r}")
        text = text[: i + len(begin)] + body + "\n" + text[j:]
    return text


def blocks(subjects: list[Subject], cal: dict[str, Any], dataset: Path) -> dict[str, str]:
    """Every generated block by name; draws the ROC figures on the way."""
    out = {"calibration": tables.calibration_table(cal), "evaluate": tables.evaluate_table(dataset, cal)}
    IMG.mkdir(parents=True, exist_ok=True)
    for mode in contract.MODES:
        data, _ = readings(subjects, mode, 1)
        held = tables.pooled_out_of_fold(data, mode)
        default_c = cal["modes"][mode]["threshold_c"]
        roc_figure(data, held, mode, default_c, IMG / f"roc_{mode}.png")
        sex_figure(held, mode, default_c, IMG / f"sex_{mode}.png")
        ambient_figure(data, cal["modes"][mode], mode, IMG / f"ambient_{mode}.png")
        out[f"operating-{mode}"] = tables.operating_table(held, default_c)
        out[f"sex-tradeoff-{mode}"] = tables.sex_tradeoff_table(held, default_c)
        out[f"band-{mode}"] = tables.band_out_table(subjects, mode)
        out[f"methods-{mode}"] = tables.methods_table(subjects, mode)
        out[f"rounds-{mode}"] = tables.rounds_table(subjects, mode)
        out[f"baseline-{mode}"] = tables.baseline_table(subjects, cal, mode)
    out["cold"] = tables.cold_table(subjects, cal)
    out["ambient-weight"] = tables.ambient_weight_table(subjects)
    out["fairness"] = tables.fairness_table(dataset, cal)
    out["sex-gap"] = tables.sex_gap_table(subjects)
    out["ppv"] = tables.ppv_table(subjects, cal)
    out["raw"] = tables.raw_reading_line(subjects)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.docs", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=default_dataset_path())
    parser.add_argument("--write-calibration", action="store_true", help="rewrite firmware/calibration.py")
    args = parser.parse_args(argv)
    try:
        subjects = read_dataset(args.dataset)
        cal = fit_calibration(subjects, CAL_ID)
        if args.write_calibration:
            (ROOT / "firmware" / "calibration.py").write_text(render_calibration_module(cal), encoding="utf-8")
        text = replace_blocks(DOC.read_text(encoding="utf-8"), blocks(subjects, cal, args.dataset))
    except (DatasetError, ValueError) as e:
        print(f"screening-docs: {e}", file=sys.stderr)
        return 2
    DOC.write_text(text, encoding="utf-8")
    print(f"screening-docs: wrote {DOC.relative_to(ROOT)} and {IMG.relative_to(ROOT)}/*.png ({cal['id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
