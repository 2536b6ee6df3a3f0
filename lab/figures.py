"""docs/img/roc_{mode}.png: the ROC curves of held-out subjects, with the operating points and the goal.
Needs matplotlib (dev extra), imported here only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab.calibration import SHIPPED_METHOD, TARGET_SENS
from lab.dataset import CANTHUS, FOREHEAD, Reading
from lab.fit import METHODS_BY_NAME
from lab.roc import auc, roc_points, sens_spec
from lab.tables import CHINA_C
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
