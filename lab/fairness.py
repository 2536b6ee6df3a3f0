"""Fairness of a screen: sensitivity and specificity by group (sex, age band) with 95 % Wilson intervals, and
the operating point chosen with the sex gap in view.

Sex and age are never inputs of the estimate (staff cannot and must not enter them): they only group the
study's readings to measure who the screen misses, and to choose the threshold on training data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from lab.dataset import Reading, age_band
from lab.roc import THRESHOLD_STEP_C, choose_threshold

Z95 = 1.959963984540054
FEMALE, MALE = "Female", "Male"
SLACK_FEVERS = 1  # how many fevers of the target sensitivity the sex-gap bound may give up


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None for n = 0."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rates(elevated: Sequence[bool], labels: Sequence[bool]) -> dict[str, Any]:
    """n, fevers, sensitivity and specificity (None without the class) with their 95 % Wilson intervals."""
    pairs = list(zip(elevated, labels, strict=True))
    fevers = sum(1 for _, y in pairs if y)
    tp = sum(1 for e, y in pairs if y and e)
    tn = sum(1 for e, y in pairs if not y and not e)
    others = len(pairs) - fevers
    ci_se, ci_sp = wilson(tp, fevers), wilson(tn, others)
    return {
        "n": len(pairs),
        "fevers": fevers,
        "sensitivity": tp / fevers if fevers else None,
        "sensitivity_ci": list(ci_se) if ci_se else None,
        "specificity": tn / others if others else None,
        "specificity_ci": list(ci_sp) if ci_sp else None,
    }


def by_group(
    data: Sequence[Reading], elevated: Sequence[bool], group: Callable[[Reading], str]
) -> dict[str, dict[str, Any]]:
    """`rates` per group (readings whose group is "" are left out), groups in sorted order."""
    names = sorted({group(r) for r in data} - {""})
    out = {}
    for name in names:
        idx = [i for i, r in enumerate(data) if group(r) == name]
        out[name] = rates([elevated[i] for i in idx], [data[i].febrile for i in idx])
    return out


def by_sex(data: Sequence[Reading], elevated: Sequence[bool]) -> dict[str, dict[str, Any]]:
    return by_group(data, elevated, lambda r: r.sex)


def by_age_band(data: Sequence[Reading], elevated: Sequence[bool]) -> dict[str, dict[str, Any]]:
    return by_group(data, elevated, lambda r: age_band(r.age))


def sex_gap(data: Sequence[Reading], est: Sequence[float], threshold_c: float) -> float:
    """Men's sensitivity minus women's at `threshold_c` (NaN if either has no fever)."""
    sens = {}
    for sex in (MALE, FEMALE):
        pos = [e for e, r in zip(est, data, strict=True) if r.sex == sex and r.febrile]
        sens[sex] = sum(1 for e in pos if e >= threshold_c) / len(pos) if pos else math.nan
    return sens[MALE] - sens[FEMALE]


def choose_threshold_fair(
    data: Sequence[Reading], est: Sequence[float], target_sens: float, max_gap: float | None, floor_c: float = 36.5
) -> float:
    """The operating point with the sex gap in view (`max_gap` None: `choose_threshold` at the target).

    The target's own threshold if women's and men's sensitivity on these readings differ by at most
    `max_gap`; else the target may give up one fever (the resolution of the data: 44 fevers in the study) and
    the threshold goes down the 0.05 C grid from there, not below `floor_c`, to the first that closes the gap.
    """
    labels = [r.febrile for r in data]
    thr = choose_threshold(est, labels, target_sens)
    if max_gap is None or abs(sex_gap(data, est, thr)) <= max_gap + 1e-9:
        return thr
    n_pos = sum(labels)
    thr = choose_threshold(est, labels, target_sens - SLACK_FEVERS / n_pos)
    while thr - THRESHOLD_STEP_C >= floor_c - 1e-9 and abs(sex_gap(data, est, thr)) > max_gap + 1e-9:
        thr = round(thr - THRESHOLD_STEP_C, 2)
    return thr
