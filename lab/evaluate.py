"""`checkpoint-gateway evaluate`: how a calibration screens a clinical dataset.

Reads a CSV in the FDA facial/oral temperature study's format (UTF-8 with BOM, three header lines, column
names on line 3, empty cells missing), takes round 1 of each subject as one reading by a node (site
temperature and `T_atm` as the node's ambient), runs the screening math every node and the gateway run
(firmware/screening.py) with the shipped calibration (or --calibration FILE.json) and its default operating
point (or --threshold), and reports against oral >= 37.5 C:

    n, positives        readings used and febrile among them
    auc                 ranking of the core estimates (Mann-Whitney)
    sensitivity         share of febrile readings whose verdict is "elevated"
    specificity         share of the others whose verdict is "normal" (an indeterminate one counts against it)
    threshold_c         the operating point used
    bias_c, sd_c        mean and SD of (estimate - oral)
    skipped             rows without the needed values (site, T_atm or aveOralM)
    by_sex              per `Gender` (when the file has it): n, fevers, sensitivity, specificity and their
    by_age_band         per age band (18-20, 21-30, 31+, from `Age`): 95 % Wilson intervals
                        (sensitivity_ci, specificity_ci; None for a class the group lacks)

A record set exported from the field (medics' clinical re-checks) in the same format is evaluated the same
way: the clinical reading stands in `aveOralM`, the node's site and ambient readings in the site column and
`T_atm` (lab/field.py).

Exit codes: 0 done, 2 unusable input (missing or malformed CSV, bad calibration), with a one-line reason.
Pure Python: no numpy on this path.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from firmware import module
from lab.dataset import EBT_C, SITE_COLUMNS, DatasetError, read_dataset, readings
from lab.fairness import by_age_band, by_sex
from lab.roc import auc, bias_sd

contract: Any = module("contract")
screening: Any = module("screening")
shipped: Any = module("calibration")
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="CSV in the FDA facial/oral study's format")
    parser.add_argument("--mode", required=True, choices=contract.MODES, help="measurement site")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--calibration", help="calibration JSON file (default: the shipped one)")
    parser.add_argument("--threshold", type=float, help="operating point, C (default: the calibration's)")


def load_calibration(path: str | None) -> dict[str, Any]:
    """The shipped calibration, or one from a JSON file, checked by screening.check_calibration (ValueError
    says what is wrong)."""
    if path is None:
        cal: dict[str, Any] = shipped.CALIBRATION
        return cal
    try:
        with open(path, encoding="utf-8") as f:
            cal = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read calibration {path}: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"calibration {path}: not JSON ({e.msg}, line {e.lineno})") from e
    screening.check_calibration(cal)
    return cal


def evaluate(
    dataset: str, mode: str, cal: dict[str, Any], threshold_c: float | None = None
) -> tuple[dict[str, Any], int]:
    """The report (the keys listed in the module docstring) and the number of indeterminate readings."""
    data, skipped = readings(read_dataset(dataset, modes=(mode,)), mode, 1)
    if threshold_c is None:
        threshold_c = float(cal["modes"][mode]["threshold_c"])
    labels = [r.febrile for r in data]
    est: list[float] = []
    elevated: list[bool] = []
    tp = tn = indeterminate = 0
    for r, febrile in zip(data, labels, strict=True):
        est.append(screening.core_estimate(cal, mode, r.t_site, r.t_amb))
        _, verdict, _ = screening.assess(cal, mode, r.t_site, r.t_amb, threshold_c=threshold_c)
        indeterminate += verdict == screening.INDETERMINATE
        elevated.append(verdict == screening.ELEVATED)
        tp += febrile and verdict == screening.ELEVATED
        tn += not febrile and verdict == screening.NORMAL
    positives = sum(labels)
    bias, sd = bias_sd(est, [r.oral_c for r in data])
    report = {
        "n": len(data),
        "positives": positives,
        "auc": _finite(auc(est, labels)),
        "sensitivity": tp / positives if positives else None,
        "specificity": tn / (len(data) - positives) if len(data) > positives else None,
        "threshold_c": threshold_c,
        "bias_c": _finite(bias),
        "sd_c": _finite(sd),
        "skipped": skipped,
        "by_sex": by_sex(data, elevated),
        "by_age_band": by_age_band(data, elevated),
    }
    return report, indeterminate


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fmt(x: Any, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def run(args: argparse.Namespace) -> int:
    try:
        cal = load_calibration(args.calibration)
        if args.mode not in cal["modes"]:
            raise ValueError(f"calibration {cal['id']} has no {args.mode} mode")
        report, indeterminate = evaluate(args.dataset, args.mode, cal, args.threshold)
    except (DatasetError, ValueError) as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report))
        return 0
    r = report
    print(f"dataset {args.dataset}, mode {args.mode} ({SITE_COLUMNS[args.mode]}1), calibration {cal['id']}")
    print(
        f"  readings {r['n']} ({r['positives']} with oral >= {EBT_C} C), skipped {r['skipped']}, "
        f"indeterminate {indeterminate}"
    )
    print(
        f"  AUC {_fmt(r['auc'], '.3f')}; at {r['threshold_c']:.2f} C: "
        f"sensitivity {_fmt(r['sensitivity'], '.3f')}, specificity {_fmt(r['specificity'], '.3f')}"
    )
    print(f"  estimate - oral: bias {_fmt(r['bias_c'], '+.3f')} C, SD {_fmt(r['sd_c'], '.3f')} C")
    for key in ("by_sex", "by_age_band"):
        for name, g in r[key].items():
            print(
                f"  {name:>8}: n {g['n']}, fevers {g['fevers']}, {_rate(g, 'sensitivity')}, {_rate(g, 'specificity')}"
            )
    return 0


def _rate(group: dict[str, Any], key: str) -> str:
    ci = group[key + "_ci"]
    if group[key] is None or ci is None:
        return f"{key} n/a"
    return f"{key} {group[key]:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.evaluate", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
