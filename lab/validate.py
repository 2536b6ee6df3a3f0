"""Validation by subject: a method is fitted, and its operating point chosen, on some subjects and judged on
readings of subjects it never saw. Three schemes: k folds (fixed seeds); leave-ambient-band-out (fit on the
cooler half of the rooms, test on the warmer half, and the reverse: does the ambient correction transfer?);
leave-rounds-out (fit on round 1, test rounds 2-4 of held-out subjects: another session)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from lab.dataset import EBT_C, ROUNDS, Reading, Subject, readings
from lab.fairness import choose_threshold_fair
from lab.fit import CalMode, Method, estimates, mean, sd
from lab.roc import auc, bias_sd, sens_spec


def threshold(cal_mode: CalMode, train: Sequence[Reading], target_sens: float, max_gap: float | None) -> float:
    """The operating point chosen on training readings: the target sensitivity, and the sex gap if bounded."""
    return choose_threshold_fair(train, estimates(cal_mode, train), target_sens, max_gap)


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
    max_gap: float | None = None,
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
        thr = threshold(cal_mode, train, target_sens, max_gap)
        out_readings += test
        out_est += estimates(cal_mode, test)
        out_thr += [thr] * len(test)
    return HeldOut(out_readings, out_est, out_thr)


def cross_validate_repeated(
    data: Sequence[Reading],
    method: Method,
    target_sens: float,
    repeats: int = 10,
    k: int = 5,
    seed: int = 1,
    max_gap: float | None = None,
) -> dict[str, tuple[float, float]]:
    """Mean and SD over `repeats` seeded k-fold splits of each held-out metric."""
    runs = [cross_validate(data, method, target_sens, k, seed + r, max_gap=max_gap).metrics() for r in range(repeats)]
    return {key: (mean([r[key] for r in runs]), sd([r[key] for r in runs]) if repeats > 1 else 0.0) for key in runs[0]}


def other_rounds(
    subjects: Sequence[Subject],
    mode: str,
    method: Method,
    target_sens: float,
    k: int = 5,
    seed: int = 1,
    max_gap: float | None = None,
) -> dict[int, dict[str, float]]:
    """Leave-rounds-out: fit on round 1, evaluate rounds 2-4, on subjects held out of the fit (k-fold).

    Rounds 2-4 are later captures in the same session: a proxy for another session or camera set-up.
    """
    r1, _ = readings(subjects, mode, 1)
    result: dict[int, dict[str, float]] = {}
    for rnd in ROUNDS[1:]:
        target, _ = readings(subjects, mode, rnd)
        result[rnd] = cross_validate(r1, method, target_sens, k, seed, evaluate_on=target, max_gap=max_gap).metrics()
    return result


BANDS = ("cool->warm", "warm->cool")


def ambient_split(data: Sequence[Reading]) -> tuple[list[Reading], list[Reading], float]:
    """The cooler half of the rooms (ambient at or below the median reading's) and the warmer half, and the
    median (C). The file's ambient is coarse (0.1 C, 94 readings at 24.0 C), so the halves are near, not
    exactly, equal."""
    amb = sorted(r.t_amb for r in data)
    median = amb[(len(amb) - 1) // 2]
    return [r for r in data if r.t_amb <= median], [r for r in data if r.t_amb > median], median


def fit_and_test(
    train: Sequence[Reading], test: Sequence[Reading], method: Method, target_sens: float, max_gap: float | None = None
) -> HeldOut:
    """Fit and choose the threshold on `train`, estimate `test` (disjoint subjects)."""
    cal_mode = method.fit(train)
    thr = threshold(cal_mode, train, target_sens, max_gap)
    return HeldOut(list(test), estimates(cal_mode, test), [thr] * len(test))


def ambient_band_out(
    data: Sequence[Reading], method: Method, target_sens: float, max_gap: float | None = None
) -> dict[str, HeldOut]:
    """Leave-ambient-band-out: fit on one half of the rooms, test on the other, both ways (BANDS)."""
    cool, warm, _ = ambient_split(data)
    return {
        BANDS[0]: fit_and_test(cool, warm, method, target_sens, max_gap),
        BANDS[1]: fit_and_test(warm, cool, method, target_sens, max_gap),
    }
