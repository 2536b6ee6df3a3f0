"""Cross-validation by subject: a method is fitted, and its operating point chosen, on some subjects and
judged on readings of subjects it never saw (k folds, fixed seeds); leave-rounds-out for another session."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from lab.dataset import EBT_C, ROUNDS, Reading, Subject, readings
from lab.fit import Method, estimates, mean, sd
from lab.roc import auc, bias_sd, choose_threshold, sens_spec


def folds(ids: Sequence[str], k: int, seed: int) -> list[set[str]]:
    """Subjects split into k folds at random (fixed seed)."""
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    return [set(order[i::k]) for i in range(k)]


@dataclass(frozen=True)
class HeldOut:
    """Out-of-fold results of one method: each reading's estimate and the threshold its training folds chose."""

    readings: list[Reading]
    estimates: list[float]
    thresholds: list[float]

    @property
    def labels(self) -> list[bool]:
        return [r.febrile for r in self.readings]

    def metrics(self) -> dict[str, float]:
        labels = self.labels
        triples = list(zip(self.estimates, self.thresholds, labels, strict=True))
        tp = sum(1 for e, t, y in triples if y and e >= t)
        tn = sum(1 for e, t, y in triples if not y and e < t)
        n_pos = sum(labels)
        bias, sd_c = bias_sd(self.estimates, [r.oral_c for r in self.readings])
        at_ebt = sens_spec(self.estimates, labels, EBT_C)
        return {
            "auc": auc(self.estimates, labels),
            "sensitivity": tp / n_pos,
            "specificity": tn / (len(labels) - n_pos),
            "sens_at_37_5": at_ebt[0],
            "spec_at_37_5": at_ebt[1],
            "bias_c": bias,
            "sd_c": sd_c,
        }


def cross_validate(
    data: Sequence[Reading],
    method: Method,
    target_sens: float,
    k: int = 5,
    seed: int = 1,
    evaluate_on: Sequence[Reading] | None = None,
) -> HeldOut:
    """k-fold by subject: fit and choose the threshold on k-1 folds of `data`, estimate the held-out subjects'
    readings in `evaluate_on` (default `data` itself; another round's readings for leave-rounds-out)."""
    pool = data if evaluate_on is None else evaluate_on
    out_readings: list[Reading] = []
    out_est: list[float] = []
    out_thr: list[float] = []
    for fold in folds([r.subject_id for r in data], k, seed):
        train = [r for r in data if r.subject_id not in fold]
        test = [r for r in pool if r.subject_id in fold]
        cal_mode = method.fit(train)
        thr = choose_threshold(estimates(cal_mode, train), [r.febrile for r in train], target_sens)
        out_readings += test
        out_est += estimates(cal_mode, test)
        out_thr += [thr] * len(test)
    return HeldOut(out_readings, out_est, out_thr)


def cross_validate_repeated(
    data: Sequence[Reading], method: Method, target_sens: float, repeats: int = 10, k: int = 5, seed: int = 1
) -> dict[str, tuple[float, float]]:
    """Mean and SD over `repeats` seeded k-fold splits of each held-out metric."""
    runs = [cross_validate(data, method, target_sens, k, seed + r).metrics() for r in range(repeats)]
    return {key: (mean([r[key] for r in runs]), sd([r[key] for r in runs]) if repeats > 1 else 0.0) for key in runs[0]}


def other_rounds(
    subjects: Sequence[Subject], mode: str, method: Method, target_sens: float, k: int = 5, seed: int = 1
) -> dict[int, dict[str, float]]:
    """Leave-rounds-out: fit on round 1, evaluate rounds 2-4, on subjects held out of the fit (k-fold).

    Rounds 2-4 are later captures in the same session: a proxy for another session or camera set-up.
    """
    r1, _ = readings(subjects, mode, 1)
    result: dict[int, dict[str, float]] = {}
    for rnd in ROUNDS[1:]:
        target, _ = readings(subjects, mode, rnd)
        result[rnd] = cross_validate(r1, method, target_sens, k, seed, evaluate_on=target).metrics()
    return result
