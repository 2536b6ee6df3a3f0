"""firmware/reference.py: a unit's reference correction, and the one validator at every door of the node's
config (its file and a pushed config): refused with a reason naming the key, as other config refusals are."""

from __future__ import annotations

import math
from typing import Any

import pytest

from firmware import module as firmware_module

config = firmware_module("config")
reference = firmware_module("reference")


def minimal(**extra: Any) -> dict[str, Any]:
    return {"site": "bridge-1", "node": "lane-1", "broker": {"host": "10.0.0.2"}, **extra}


def test_two_points_give_the_units_gain_and_offset_rounded_as_they_travel() -> None:
    got = reference.two_point(35.0, 34.62, 39.0, 38.71)
    assert got == {"gain": 1.0225, "offset_c": -1.168}  # -1.1675 to the record's 0.001 C
    assert reference.two_point(39.0, 38.71, 35.0, 34.62) == got  # in either order
    assert reference.correct(got, 38.71) == pytest.approx(39.0, abs=1e-3)
    assert reference.correct(None, 36.5) == 36.5


@pytest.mark.parametrize(
    "points,words",
    [
        ((36.0, 36.1, 37.0, 37.1), "closer than 2.0 C"),
        ((35.0, 35.0, 39.0, 39.8), "gain = 1.2 is outside 0.9..1.1"),
        ((35.0, 39.0, 39.0, 43.0), "offset_c = 4.0 is outside -3.0..3.0"),
        ((35.0, math.nan, 39.0, 39.0), "finite"),
        ((35.0, 35.0, 35.0, 35.0), "closer than"),
    ],
)
def test_two_point_refuses_what_no_honest_sensor_reads(points: tuple[float, ...], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        reference.two_point(*points)


@pytest.mark.parametrize(
    "ref,reason",
    [
        ({"gain": 1.2, "offset_c": 0.0}, "reference: gain = 1.2 is outside 0.9..1.1: service the unit"),
        ({"gain": 1.0, "offset_c": -3.5}, "reference: offset_c = -3.5 is outside -3.0..3.0: service the unit"),
        ({"gain": math.nan, "offset_c": 0.0}, "reference: gain must be a finite number, got nan"),
        ({"gain": 1.0, "offset_c": math.inf}, "reference: offset_c must be a finite number, got inf"),
        ({"gain": True, "offset_c": 0.0}, "reference: gain must be a finite number, got True"),
        ({"gain": 1.0}, "reference: offset_c must be a finite number, got None"),
        ({"gain": 1.0, "offset_c": 0.0, "ts": 1}, "reference: unknown key 'ts'"),
        (["1.0", 0.0], "reference: must be an object"),
    ],
)
def test_a_bad_correction_is_refused_at_every_door(ref: Any, reason: str) -> None:
    assert config.validate(minimal(reference=ref)) == (None, reason)  # the config file at boot
    cfg, _ = config.validate(minimal())
    assert config.merge_push(cfg, {"v": 1, "id": "ref-1", "reference": ref}) == (None, reason)  # a push
    with pytest.raises(ValueError) as e:
        reference.check_correction(ref)
    assert str(e.value).startswith(reason)  # the config's type check says it first for a non-object


def test_a_pushed_correction_replaces_the_last_whole_and_reaches_the_scan_settings() -> None:
    cfg, _ = config.validate(minimal(threshold_c=37.3))
    new, reason = config.merge_push(cfg, {"v": 1, "id": "ref-1", "reference": {"gain": 1.0300004, "offset_c": -0.4}})
    assert reason is None and new["config_id"] == "ref-1" and new["threshold_c"] == 37.3
    assert config.scan_settings(new)["ref"] == {"gain": 1.03, "offset_c": -0.4}  # what its scans carry
    newer, _ = config.merge_push(new, {"v": 1, "id": "ref-2", "reference": {"gain": 0.99, "offset_c": 0.2}})
    assert newer["reference"] == {"gain": 0.99, "offset_c": 0.2}
    assert config.scan_settings(config.validate(minimal())[0])["ref"] is None  # never checked: the identity


def test_drift_and_overdue_are_the_node_alerts_rules() -> None:
    first = reference.two_point(35.0, 34.8, 39.0, 38.9)
    assert not reference.drifted(first, reference.two_point(35.0, 34.85, 39.0, 38.95))  # 0.05 C
    assert reference.drifted(first, reference.two_point(35.0, 35.15, 39.0, 39.25))  # 0.34 C
    assert reference.overdue(None, 0) and not reference.overdue(0, reference.SHIFT_MS)
    assert reference.overdue(0, reference.SHIFT_MS + 1)
