"""docs/img/: the ROC curves of held-out subjects with the operating points and the goal (roc_{mode}.png),
sensitivity by sex (sex_{mode}.png), the estimate's drift with the room (ambient_{mode}.png). Needs
matplotlib (dev extra), imported here only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.calibration import PREVIOUS_METHOD, SHIPPED_METHOD, TARGET_SENS
from lab.dataset import CANTHUS, FOREHEAD, Reading
from lab.fairness import FEMALE, MALE, by_sex, wilson
from lab.fit import METHODS_BY_NAME, CalMode, estimates, mean
from lab.roc import auc, roc_points, sens_spec
from lab.tables import CHINA_C, REPEATS
from lab.validate import HeldOut, cross_validate

GOALS = {FOREHEAD: (0.80, 0.78), CANTHUS: (0.90, 0.85)}  # (sensitivity, specificity), docs/screening.md


def roc_figure(data: Sequence[Reading], held: HeldOut, mode: str, default_c: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    labels = held.labels
    ls = cross_validate(data, METHODS_BY_NAME["least_squares"], TARGET_SENS[mode])
    raw = [r.t_site for r in data]
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=100)
    for name, scores, lab in (
        (f"{SHIPPED_METHOD} (shipped)", held.estimates, labels),
        ("least squares", ls.estimates, ls.labels),
        ("raw site reading", raw, [r.febrile for r in data]),
    ):
        pts = roc_points(scores, lab)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"{name}, AUC {auc(scores, lab):.3f}")
    points = [(default_c, "o", "default")]
    if abs(default_c - CHINA_C) > 1e-6:
        points.append((CHINA_C, "s", "China"))
    for t, marker, text in points:
        se, sp = sens_spec(held.estimates, labels, t)
        ax.plot([1 - sp], [se], marker, color="black", label=f"{text} {t:.2f} C: {se:.2f} / {sp:.2f}")
    goal = GOALS[mode]
    ax.add_patch(Rectangle((0, goal[0]), 1 - goal[1], 1 - goal[0], fill=False, ls="--", color="grey"))
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(f"{mode}: EBT (oral >= 37.5 C), held-out subjects; dashed: goal", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def sex_figure(held: HeldOut, mode: str, default_c: float, path: Path) -> None:
    """Held-out sensitivity of men and women by threshold, with 95 % Wilson bands, and the default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [round(36.9 + 0.05 * i, 2) for i in range(15)]
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=100)
    for sex in (MALE, FEMALE):
        rows = [by_sex(held.readings, [e >= t for e in held.estimates])[sex] for t in grid]
        sens = [r["sensitivity"] for r in rows]
        ax.plot(grid, sens, marker=".", label=f"{sex.lower()} ({rows[0]['fevers'] // REPEATS} fevers)")
        ax.fill_between(grid, [wilson_n(r, REPEATS)[0] for r in rows], [wilson_n(r, REPEATS)[1] for r in rows],
                        alpha=0.15)  # fmt: skip
    ax.axvline(default_c, color="black", ls="--", lw=0.8, label=f"default {default_c:.2f} C")
    ax.set(xlabel="threshold C", ylabel="sensitivity (held out)", ylim=(0.3, 1.01))
    ax.set_title(f"{mode}: sensitivity by sex; bands: 95 % Wilson on the subjects", fontsize=9)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def wilson_n(group: dict[str, Any], repeats: int) -> tuple[float, float]:
    """The Wilson interval of a rate pooled over `repeats` splits, on the subjects' count (not the pool's)."""
    fevers = group["fevers"] // repeats
    ci = wilson(round(group["sensitivity"] * fevers), fevers)
    return ci if ci else (0.0, 1.0)


def ambient_figure(data: Sequence[Reading], cal_mode: CalMode, mode: str, path: Path) -> None:
    """Oral minus estimate against room ambient for the patent's k and the fitted k (each with its offset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    amb = [r.t_amb for r in data]
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=100)
    for label, cm in (
        ("k = 0.19 + offset (previous)", METHODS_BY_NAME[PREVIOUS_METHOD].fit(data)),
        (f"k = {cal_mode['k']:.3f} fitted (shipped)", cal_mode),
    ):
        res = [r.oral_c - e for r, e in zip(data, estimates(cm, data), strict=True)]
        bins = sorted({round(a) for a in amb})
        means = [mean([x for x, a in zip(res, amb, strict=True) if round(a) == b]) for b in bins]
        ax.plot(bins, means, marker="o", label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="room ambient C (1 C bins)", ylabel="oral - estimate, mean C")
    ax.set_title(f"{mode}: does the estimate drift with the room?", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
