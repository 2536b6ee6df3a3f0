"""Per-unit reference calibration at shift start (issue 15, item 3): the procedure's arithmetic.

The node scans a reference source at two known temperatures near 35 C and 39 C (a blackbody calibrator, or a
stable warm surface read by a reference contact thermometer). A unit reads `reading = gain * true + offset`
(sensors differ in gain, not only offset: two instruments agree on normal skin and disagree by tenths on
febrile skin); the two points give that unit's gain and offset, and `correct` undoes them before the
skin-to-core estimate. `check` says when a unit's check is overdue or its correction has drifted beyond
DRIFT_LIMIT_C between two checks (a node alert). Pure functions over values, MicroPython-subset arithmetic,
so the gateway and the node can share them when they are wired (the lab only proves the procedure here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REFERENCE_C = (35.0, 39.0)  # the two reference temperatures the procedure asks for
MIN_SPAN_C = 2.0  # the two points must be at least this far apart for a usable gain
GAIN_RANGE = (0.9, 1.1)  # beyond this the unit is broken, not miscalibrated
OFFSET_RANGE_C = (-3.0, 3.0)
CHECK_RANGE_C = (33.0, 41.0)  # where a correction is compared (skin of the living)
DRIFT_LIMIT_C = 0.3
SHIFT_MS = 12 * 3600 * 1000  # a check each shift
OVERDUE, DRIFTED = "reference_overdue", "reference_drift"


@dataclass(frozen=True)
class Correction:
    """One unit's two-point result: reading = gain * true + offset_c, taken at ts_ms."""

    gain: float
    offset_c: float
    ts_ms: int

    def correct(self, t_read: float) -> float:
        """The true temperature of a reading by this unit."""
        return (t_read - self.offset_c) / self.gain


IDENTITY = Correction(1.0, 0.0, 0)


def two_point(ref_lo: float, read_lo: float, ref_hi: float, read_hi: float, ts_ms: int) -> Correction:
    """The unit's gain and offset from two reference points; ValueError for points too close or a gain or
    offset no honest sensor has (the unit needs service, not a correction)."""
    if ref_hi - ref_lo < MIN_SPAN_C:
        raise ValueError(f"reference points {ref_lo} and {ref_hi} C are closer than {MIN_SPAN_C} C")
    gain = (read_hi - read_lo) / (ref_hi - ref_lo)
    offset = read_lo - gain * ref_lo
    if not GAIN_RANGE[0] <= gain <= GAIN_RANGE[1]:
        raise ValueError(f"gain {gain:.3f} is outside {GAIN_RANGE}: service the unit")
    if not OFFSET_RANGE_C[0] <= offset <= OFFSET_RANGE_C[1]:
        raise ValueError(f"offset {offset:+.2f} C is outside {OFFSET_RANGE_C}: service the unit")
    return Correction(gain, offset, ts_ms)


def drift_c(before: Correction, after: Correction) -> float:
    """The largest difference (C) the two corrections make over CHECK_RANGE_C (linear: at its ends)."""
    return max(abs(before.correct(t) - after.correct(t)) for t in CHECK_RANGE_C)


def check(history: Sequence[Correction], now_ms: int, interval_ms: int = SHIFT_MS) -> list[str]:
    """Node alerts from a unit's corrections, oldest first: OVERDUE when there is none or the last is older
    than `interval_ms`, DRIFTED when the last two differ by more than DRIFT_LIMIT_C."""
    alerts = []
    if not history or now_ms - history[-1].ts_ms > interval_ms:
        alerts.append(OVERDUE)
    if len(history) >= 2 and drift_c(history[-2], history[-1]) > DRIFT_LIMIT_C:
        alerts.append(DRIFTED)
    return alerts
