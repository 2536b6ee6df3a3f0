"""The lane baseline as a drift monitor (issue 15, item 4): per node, the trimmed mean of its last readings;
a node whose population level moves beyond a bound relative to its site's other nodes raises a node alert.
Not part of the verdict: the baseline restores sensitivity after a shift but costs specificity and cannot
undo a gain difference (docs/screening.md, "The lane baseline"), so here it only says "check this unit".

The bound is measured, not guessed: `level_sd` is the spread of a WINDOW-reading trimmed mean of honest
readings (the study's), and BOUND_SDS of it is the alert bound (docs/screening.md, "Drift monitor").
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from lab.fit import sd

WINDOW = 30  # readings per node, at least
TRIM = 0.2  # share cut from each end, as the lane baseline does
BOUND_SDS = 4.0
DRIFT = "population_drift"


def trimmed_mean(xs: Sequence[float], trim: float = TRIM) -> float:
    s = sorted(xs)
    cut = int(len(s) * trim)
    kept = s[cut : len(s) - cut] if len(s) > 2 * cut else s
    return sum(kept) / len(kept)


def node_level(readings: Sequence[float], window: int = WINDOW) -> float | None:
    """The node's population level: the trimmed mean of its last `window` readings; None with fewer."""
    if len(readings) < window:
        return None
    return trimmed_mean(readings[-window:])


def level_sd(population: Sequence[float], window: int = WINDOW, draws: int = 500, seed: int = 1) -> float:
    """SD of a `window`-reading trimmed mean drawn from an honest population (fixed seed)."""
    rng = random.Random(seed)
    return sd([trimmed_mean([rng.choice(population) for _ in range(window)]) for _ in range(draws)])


def drifting(levels: Mapping[str, float | None], bound_c: float) -> dict[str, float]:
    """Nodes whose level departs from the median of the site's other nodes by more than `bound_c`, with the
    departure (C). A node without a level (too few readings) is neither judged nor a reference."""
    known = {n: v for n, v in levels.items() if v is not None}
    out = {}
    for node, level in known.items():
        others = sorted(v for n, v in known.items() if n != node)
        if not others:
            continue
        mid = len(others) // 2
        median = others[mid] if len(others) % 2 else (others[mid - 1] + others[mid]) / 2
        if abs(level - median) > bound_c:
            out[node] = level - median
    return out
