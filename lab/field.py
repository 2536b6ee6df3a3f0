"""The field loop (issue 15, item 5): from medics' clinical re-checks, per node and per site, the bias of the
IR estimate against the clinical reading and its spread, the false-alarm share, and field PPV; and the
re-check records written as a data set in the study's format, so `checkpoint-gateway evaluate` runs on them.

A re-check is one elevated (or retested) scan with the medic's clinical reading. Fever = clinical >= 37.5 C,
as in the study. False-alarm share = elevated scans whose clinical reading is below it, over elevated scans;
field PPV is its complement over the same scans.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.dataset import EBT_C, SITE_COLUMNS


@dataclass(frozen=True)
class Recheck:
    site: str
    node: str
    mode: str
    t_site_c: float  # the node's site reading
    t_amb_c: float  # the node's sensor ambient
    t_core_c: float  # the IR estimate shown
    elevated: bool  # the scan's verdict was elevated
    clinical_c: float  # the medic's clinical thermometer


def summary(rechecks: Sequence[Recheck]) -> dict[str, Any]:
    """n, bias_c and sd_c of (IR estimate - clinical), elevated, false_alarm_share and ppv (None if none)."""
    n = len(rechecks)
    d = [r.t_core_c - r.clinical_c for r in rechecks]
    bias = sum(d) / n if n else None
    spread = math.sqrt(sum((x - bias) ** 2 for x in d) / (n - 1)) if n > 1 and bias is not None else None
    elevated = [r for r in rechecks if r.elevated]
    true = sum(1 for r in elevated if r.clinical_c >= EBT_C)
    return {
        "n": n,
        "bias_c": bias,
        "sd_c": spread,
        "elevated": len(elevated),
        "false_alarm_share": (len(elevated) - true) / len(elevated) if elevated else None,
        "ppv": true / len(elevated) if elevated else None,
    }


def _grouped(rechecks: Sequence[Recheck], key: Callable[[Recheck], str]) -> dict[str, dict[str, Any]]:
    names = sorted({key(r) for r in rechecks})
    return {name: summary([r for r in rechecks if key(r) == name]) for name in names}


def by_node(rechecks: Sequence[Recheck]) -> dict[str, dict[str, Any]]:
    """`summary` per "site/node"."""
    return _grouped(rechecks, lambda r: f"{r.site}/{r.node}")


def by_site(rechecks: Sequence[Recheck]) -> dict[str, dict[str, Any]]:
    return _grouped(rechecks, lambda r: r.site)


def write_dataset(rechecks: Sequence[Recheck], path: Path) -> int:
    """The re-checks as a CSV in the study's format (three header lines, round 1 only, the clinical reading
    as `aveOralM`), readable by `evaluate`; returns the rows written."""
    cols = ["SubjectID", *[c + "1" for c in SITE_COLUMNS.values()], "aveOralM", "T_atm"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "Round 1:"] + [""] * (len(cols) - 2))
        w.writerow([""] * len(cols))
        w.writerow(cols)
        for i, r in enumerate(rechecks):
            sites = [f"{r.t_site_c}" if mode == r.mode else "" for mode in SITE_COLUMNS]
            w.writerow([f"{r.site}/{r.node}/{i}", *sites, f"{r.clinical_c}", f"{r.t_amb_c}"])
    return len(rechecks)
