"""The lane baseline as a drift monitor (issue 15, item 4), on the study's readings dealt to four nodes of
one site in the order they were measured."""

from __future__ import annotations

import pytest

from lab import drift
from lab.dataset import CANTHUS, Subject, readings


def site_nodes(subjects: list[Subject], shift: dict[int, float]) -> dict[str, list[float]]:
    order = sorted(subjects, key=lambda s: (s.date.split("-"), s.time))
    data, _ = readings(order, CANTHUS, 1)
    return {f"lane-{n}": [r.t_site + shift.get(n, 0.0) for r in data[n::4]] for n in range(4)}


def bound(subjects: list[Subject]) -> float:
    data, _ = readings(subjects, CANTHUS, 1)
    return drift.BOUND_SDS * drift.level_sd([r.t_site for r in data])


def test_the_bound_is_four_sds_of_a_30_reading_level(subjects: list[Subject]) -> None:
    assert bound(subjects) == pytest.approx(0.33, abs=0.02)


def test_honest_nodes_raise_nothing_and_a_node_reading_0_5_high_is_named(subjects: list[Subject]) -> None:
    b = bound(subjects)
    honest = {n: drift.node_level(r) for n, r in site_nodes(subjects, {}).items()}
    assert drift.drifting(honest, b) == {}
    shifted = {n: drift.node_level(r) for n, r in site_nodes(subjects, {3: 0.5}).items()}
    found = drift.drifting(shifted, b)
    assert list(found) == ["lane-3"] and found["lane-3"] == pytest.approx(0.5, abs=b)


def test_a_node_with_fewer_than_30_readings_has_no_level() -> None:
    assert drift.node_level([36.0] * 29) is None
    assert drift.node_level([36.0] * 30) == 36.0
    assert drift.drifting({"a": None, "b": 36.0}, 0.3) == {}  # alone, b has nothing to compare with
