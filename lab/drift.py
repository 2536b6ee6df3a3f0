"""The lane baseline as a drift monitor (issue 15, item 4): per node, the trimmed mean of its last readings;
a node whose population level moves beyond a bound relative to its site's other nodes raises a node alert.
Not part of the verdict: the baseline restores sensitivity after a shift but costs specificity and cannot
undo a gain difference (docs/screening.md, "The lane baseline"), so here it only says "check this unit".

The bound is measured, not guessed: `level_sd` is the spread of a WINDOW-reading trimmed mean of honest
readings (the study's), and BOUND_SDS of it is the alert bound (docs/screening.md, "Drift monitor").
The monitor itself is the product's (gateway/drift.py); this module measures its bound.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from gateway.drift import BOUND_SDS, DRIFT, TRIM, WINDOW, drifting, node_level, trimmed_mean
from lab.fit import sd

__all__ = ["BOUND_SDS", "DRIFT", "TRIM", "WINDOW", "drifting", "level_sd", "node_level", "trimmed_mean"]


def level_sd(population: Sequence[float], window: int = WINDOW, draws: int = 500, seed: int = 1) -> float:
    """SD of a `window`-reading trimmed mean drawn from an honest population (fixed seed)."""
    rng = random.Random(seed)
    return sd([trimmed_mean([rng.choice(population) for _ in range(window)]) for _ in range(draws)])
