"""The field loop (issue 15, item 5): per node and site figures against a hand computation on a small
fixture, and the re-checks exported as a data set that `evaluate` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware import module
from lab import field
from lab.evaluate import evaluate

shipped: Any = module("calibration")

R = field.Recheck
FIXTURE = [
    R("bridge", "lane-1", "canthus", 35.6, 22.0, 37.6, True, 37.9),  # fever caught
    R("bridge", "lane-1", "canthus", 35.5, 22.0, 37.5, True, 37.1),  # false alarm
    R("bridge", "lane-1", "canthus", 35.4, 22.0, 37.4, False, 37.2),  # retest, normal
    R("bridge", "lane-2", "canthus", 35.8, 23.0, 37.7, True, 37.5),  # fever caught (at 37.5 exactly)
    R("port", "gate-1", "canthus", 35.6, 21.0, 37.7, True, 36.9),  # false alarm
]


def test_per_node_figures_match_a_hand_computation() -> None:
    nodes = field.by_node(FIXTURE)
    assert list(nodes) == ["bridge/lane-1", "bridge/lane-2", "port/gate-1"]
    lane1 = nodes["bridge/lane-1"]
    # differences IR - clinical: -0.3, +0.4, +0.2 -> mean 0.1, SD sqrt((0.16 + 0.09 + 0.01) / 2) = 0.3606
    assert lane1["n"] == 3 and lane1["bias_c"] == pytest.approx(0.1)
    assert lane1["sd_c"] == pytest.approx(0.36056, abs=1e-4)
    assert (lane1["elevated"], lane1["false_alarm_share"], lane1["ppv"]) == (2, 0.5, 0.5)
    assert nodes["bridge/lane-2"]["ppv"] == 1.0 and nodes["bridge/lane-2"]["sd_c"] is None
    assert nodes["port/gate-1"]["false_alarm_share"] == 1.0


def test_per_site_figures_match_a_hand_computation() -> None:
    sites = field.by_site(FIXTURE)
    bridge = sites["bridge"]
    # differences -0.3, +0.4, +0.2, +0.2 -> mean 0.125; elevated 3, fevers among them 2
    assert bridge["n"] == 4 and bridge["bias_c"] == pytest.approx(0.125)
    assert (bridge["elevated"], bridge["ppv"]) == (3, pytest.approx(2 / 3))
    assert bridge["false_alarm_share"] == pytest.approx(1 / 3)
    assert field.summary([])["ppv"] is None


def test_the_rechecks_exported_as_a_data_set_are_evaluated(tmp_path: Path) -> None:
    path = tmp_path / "rechecks.csv"
    assert field.write_dataset(FIXTURE, path) == 5
    r, _ = evaluate(str(path), "canthus", shipped.CALIBRATION)
    assert (r["n"], r["positives"], r["skipped"]) == (5, 2, 0)
    assert r["by_sex"] == {}
    r, _ = evaluate(str(path), "forehead", shipped.CALIBRATION)
    assert (r["n"], r["skipped"]) == (0, 5)  # no forehead readings in a canthus field's records
