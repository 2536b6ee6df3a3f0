"""Fairness measured (issue 15): `evaluate`'s by_sex and by_age_band with Wilson intervals, the sex gap
before and after, and the operating-point rule that bounds it; values computed from the study file."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from firmware import module
from lab import calibration as lab_cal
from lab.dataset import CANTHUS, FOREHEAD, Reading, Subject, age_band, readings
from lab.evaluate import evaluate
from lab.fairness import FEMALE, MALE, choose_threshold_fair, sex_gap, wilson
from lab.fit import METHODS_BY_NAME, estimates

shipped: Any = module("calibration")
GROUP_KEYS = {"n", "fevers", "sensitivity", "sensitivity_ci", "specificity", "specificity_ci"}


def test_wilson_interval_matches_the_formula() -> None:
    lo, hi = wilson(17, 20) or (math.nan, math.nan)
    assert (lo, hi) == pytest.approx((0.6396, 0.9476), abs=1e-4)  # 17 of 20 women's canthus fevers
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(0, 0) is None


def test_age_bands() -> None:
    assert [age_band(a) for a in ("18-20", "21-25", "26-30", "21-30", "31-40", ">60", "")] == [
        "18-20", "21-30", "21-30", "21-30", "31+", "31+", ""]  # fmt: skip


def test_evaluate_reports_sex_and_age_band_with_intervals(dataset: Path) -> None:
    r, _ = evaluate(str(dataset), CANTHUS, shipped.CALIBRATION)
    sex, age = r["by_sex"], r["by_age_band"]
    assert list(sex) == [FEMALE, MALE] and list(age) == ["18-20", "21-30", "31+"]
    assert all(set(g) == GROUP_KEYS for g in [*sex.values(), *age.values()])
    assert [(g["n"], g["fevers"]) for g in sex.values()] == [(327, 20), (206, 24)]
    assert sum(g["n"] for g in age.values()) == r["n"] and sum(g["fevers"] for g in age.values()) == 44
    assert (sex[FEMALE]["sensitivity"], sex[MALE]["sensitivity"]) == (17 / 20, 22 / 24)
    assert sex[MALE]["sensitivity"] - sex[FEMALE]["sensitivity"] <= 0.10  # the aim, at the operating point
    assert sex[FEMALE]["sensitivity_ci"] == pytest.approx(list(wilson(17, 20) or ()))
    assert age["31+"]["fevers"] == 0 and age["31+"]["sensitivity"] is None and age["31+"]["sensitivity_ci"] is None


def test_the_sex_gap_before_and_after(subjects: list[Subject]) -> None:
    """fda-flir-g1-1 at 37.45 C missed women's canthus fevers 0.11 more often than men's; fda-flir-g1-2 0.07."""
    data, _ = readings(subjects, CANTHUS, 1)
    before = lab_cal.fit_mode(data, CANTHUS, lab_cal.PREVIOUS_METHOD)
    before_gap = sex_gap(data, estimates(before, data), 37.45)
    after = shipped.CALIBRATION["modes"][CANTHUS]
    after_gap = sex_gap(data, estimates(after, data), after["threshold_c"])
    assert before_gap == pytest.approx(23 / 24 - 17 / 20)
    assert after_gap == pytest.approx(22 / 24 - 17 / 20)
    assert after_gap <= 0.10 < before_gap


def test_forehead_keeps_its_target_and_its_gap_is_stated(subjects: list[Subject]) -> None:
    data, _ = readings(subjects, FOREHEAD, 1)
    cal_mode = shipped.CALIBRATION["modes"][FOREHEAD]
    assert lab_cal.MAX_SEX_GAP[FOREHEAD] is None and cal_mode["threshold_c"] == 37.3
    assert sex_gap(data, estimates(cal_mode, data), 37.3) == pytest.approx(21 / 24 - 15 / 20)


def reading(sid: str, est: float, febrile: bool, sex: str) -> Reading:
    return Reading(sid, t_site=est, t_amb=0.0, oral_c=38.0 if febrile else 36.8, sex=sex)


def test_the_rule_gives_up_one_fever_to_close_the_gap_then_goes_down_the_grid() -> None:
    # 10 fevers: men 38.0, 37.9, 37.8, 37.6, 37.3; women 38.0, 37.7, 37.5, 37.25, 37.05.
    men = [reading(f"m{i}", e, True, MALE) for i, e in enumerate((38.0, 37.9, 37.8, 37.6, 37.3))]
    women = [reading(f"w{i}", e, True, FEMALE) for i, e in enumerate((38.0, 37.7, 37.5, 37.25, 37.05))]
    data = men + women
    est = [r.t_site for r in data]
    # Target 0.8 (8 of 10): 37.3; men 5/5, women 3/5, gap 0.4. Giving up one fever (7 of 10): 37.5, men 4/5,
    # women 3/5, gap 0.2; lower: 37.3 gap 0.4, 37.25 gap 0.2, 37.05 gap 0.
    assert choose_threshold_fair(data, est, 0.8, None) == pytest.approx(37.3)
    assert choose_threshold_fair(data, est, 0.8, 0.5) == pytest.approx(37.3)  # the target's own threshold holds
    assert choose_threshold_fair(data, est, 0.8, 0.25) == pytest.approx(37.5)  # one fever given up closes it
    assert choose_threshold_fair(data, est, 0.8, 0.1) == pytest.approx(37.05)  # then down the grid


def test_evaluate_without_sex_or_age_columns_reports_empty_groups(tmp_path: Path) -> None:
    path = tmp_path / "field.csv"
    path.write_text(",\n,\nSubjectID,canthiMax1,aveOralM,T_atm\na,35.5,37.8,22.0\nb,34.6,36.9,22.0\n", "utf-8")
    cal = copy.deepcopy(shipped.CALIBRATION)
    r, _ = evaluate(str(path), CANTHUS, cal)
    assert (r["n"], r["by_sex"], r["by_age_band"]) == (2, {}, {})


def test_sex_is_not_an_input(subjects: list[Subject]) -> None:
    """The same readings with sex swapped get the same estimates: sex only groups, it never estimates."""
    data, _ = readings(subjects, CANTHUS, 1)
    swapped = [Reading(r.subject_id, r.t_site, r.t_amb, r.oral_c, FEMALE if r.sex == MALE else MALE) for r in data]
    fit = METHODS_BY_NAME[lab_cal.SHIPPED_METHOD].fit
    assert fit(data) == fit(swapped)
