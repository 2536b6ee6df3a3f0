"""Metrics of a screen against the oral reference: AUC, sensitivity and specificity, the ROC curve, the
estimate's bias, operating points on a 0.05 C grid, and the alert workload they mean at a prevalence."""

from __future__ import annotations

import math
from collections.abc import Sequence

THRESHOLD_STEP_C = 0.05  # operating points are chosen on this grid (the display shows 0.1 C)


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic (ties count one half); NaN without a class."""
    pairs = sorted(zip(scores, labels, strict=True))
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if not n_pos or not n_neg:
        return math.nan
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += mid_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def sens_spec(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity of `score >= threshold` (NaN for a class that is absent)."""
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= threshold)
    tn = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s < threshold)
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    return (tp / n_pos if n_pos else math.nan), (tn / n_neg if n_neg else math.nan)


def roc_points(scores: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, float]]:
    """(1 - specificity, sensitivity) at every distinct threshold, from (0, 0) to (1, 1)."""
    pts = [(0.0, 0.0)]
    for t in sorted(set(scores), reverse=True):
        se, sp = sens_spec(scores, labels, t)
        pts.append((1.0 - sp, se))
    pts.append((1.0, 1.0))
    return pts


def bias_sd(estimates: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Mean and sample SD of (estimate - reference)."""
    d = [e - r for e, r in zip(estimates, reference, strict=True)]
    if len(d) < 2:
        return (d[0] if d else math.nan), math.nan
    m = sum(d) / len(d)
    return m, math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))


def alerts_per_10k(sens: float, spec: float, prevalence: float) -> tuple[float, float]:
    """(alerts, true fevers among them) per 10,000 travellers at a fever prevalence."""
    true_alerts = 10_000 * prevalence * sens
    return true_alerts + 10_000 * (1 - prevalence) * (1 - spec), true_alerts


def choose_threshold(scores: Sequence[float], labels: Sequence[bool], target_sens: float) -> float:
    """The highest threshold on the 0.05 C grid whose sensitivity on these readings is >= target_sens."""
    pos = sorted((s for s, y in zip(scores, labels, strict=True) if y), reverse=True)
    if not pos:
        raise ValueError("choose_threshold: no febrile reading")
    need = math.ceil(target_sens * len(pos) - 1e-9)
    kth = pos[max(need, 1) - 1]  # the need-th highest febrile score must stay at or above the threshold
    return round(math.floor(kth / THRESHOLD_STEP_C + 1e-9) * THRESHOLD_STEP_C, 2)  # 37.3, not 37.300000000000004
