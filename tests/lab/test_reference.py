"""Per-unit reference calibration (issue 15, item 3): the two-point check round-trips a unit's gain and
offset, and an overdue or drifting unit raises its alert."""

from __future__ import annotations

import random

import pytest

from lab import reference as ref

HOUR_MS = 3600 * 1000


def unit_reads(true_c: float, gain: float, offset_c: float, rng: random.Random) -> float:
    """A simulated MLX90614 unit: its gain and offset, noise of 0.02 C averaged over 16 samples, 0.02 C steps."""
    raw = sum(gain * true_c + offset_c + rng.gauss(0, 0.02) for _ in range(16)) / 16
    return round(raw / 0.02) * 0.02


def test_a_unit_with_gain_1_03_and_offset_minus_0_4_is_corrected_within_0_05_c() -> None:
    rng = random.Random(15)
    lo, hi = ref.REFERENCE_C
    corr = ref.two_point(lo, unit_reads(lo, 1.03, -0.4, rng), hi, unit_reads(hi, 1.03, -0.4, rng), ts_ms=0)
    assert corr.gain == pytest.approx(1.03, abs=0.005) and corr.offset_c == pytest.approx(-0.4, abs=0.2)
    for i in range(81):
        true_c = 33.0 + 0.1 * i
        uncorrected = unit_reads(true_c, 1.03, -0.4, rng)
        assert abs(uncorrected - true_c) > 0.5  # 0.59 C high at 33 C, 0.83 C at 41 C: a missed or false fever
        assert corr.correct(uncorrected) == pytest.approx(true_c, abs=0.05)


def test_the_check_refuses_points_too_close_and_units_beyond_service() -> None:
    with pytest.raises(ValueError, match="closer than"):
        ref.two_point(36.0, 36.1, 37.0, 37.1, 0)
    with pytest.raises(ValueError, match="gain"):
        ref.two_point(35.0, 35.0, 39.0, 39.8, 0)  # gain 1.2
    with pytest.raises(ValueError, match="offset"):
        ref.two_point(35.0, 39.0, 39.0, 43.0, 0)  # offset +4


def test_an_overdue_unit_raises_its_alert() -> None:
    corr = ref.two_point(35.0, 34.8, 39.0, 38.9, ts_ms=0)
    assert ref.check([], now_ms=0) == [ref.OVERDUE]  # never checked
    assert ref.check([corr], now_ms=11 * HOUR_MS) == []
    assert ref.check([corr], now_ms=13 * HOUR_MS) == [ref.OVERDUE]  # a shift is 12 h


def test_a_drifting_unit_raises_its_alert() -> None:
    first = ref.two_point(35.0, 34.8, 39.0, 38.9, ts_ms=0)
    steady = ref.two_point(35.0, 34.85, 39.0, 38.95, ts_ms=12 * HOUR_MS)  # 0.05 C apart
    drifted = ref.two_point(35.0, 35.15, 39.0, 39.25, ts_ms=12 * HOUR_MS)  # reads 0.35 C higher: 0.34 C true
    assert ref.drift_c(first, steady) == pytest.approx(0.05, abs=0.01)
    assert ref.check([first, steady], now_ms=13 * HOUR_MS) == []
    assert ref.drift_c(first, drifted) > ref.DRIFT_LIMIT_C
    assert ref.check([first, drifted], now_ms=13 * HOUR_MS) == [ref.DRIFTED]
    assert ref.check([first, drifted], now_ms=25 * HOUR_MS) == [ref.OVERDUE, ref.DRIFTED]
