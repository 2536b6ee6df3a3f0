"""Per-unit reference calibration at shift start (issue 15, item 3): the procedure, proved in the lab.

The arithmetic is the node's and the gateway's own, firmware/reference.py (MicroPython subset): a unit reads
`reading = gain * true + offset`; two reference points near 35 C and 39 C give that unit's gain and offset,
and `correct` undoes them before the skin-to-core estimate. Here a correction also carries the time of its
check, and `check` says when a unit's check is overdue or its correction has drifted beyond DRIFT_LIMIT_C
between two checks (the node alerts the gateway raises: gateway/reference.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import firmware

_ref: Any = firmware.module("reference")  # untyped MicroPython-subset code, imported by name
_contract: Any = firmware.module("contract")

REFERENCE_C: tuple[float, float] = _ref.REFERENCE_C
MIN_SPAN_C: float = _ref.MIN_SPAN_C
GAIN_RANGE: tuple[float, float] = _contract.GAIN_RANGE
OFFSET_RANGE_C: tuple[float, float] = _contract.OFFSET_RANGE_C
CHECK_RANGE_C: tuple[float, float] = _ref.CHECK_RANGE_C
DRIFT_LIMIT_C: float = _ref.DRIFT_LIMIT_C
SHIFT_MS: int = _ref.SHIFT_MS
OVERDUE, DRIFTED = "reference_overdue", "reference_drift"


@dataclass(frozen=True)
class Correction:
    """One unit's two-point result: reading = gain * true + offset_c, taken at ts_ms."""

    gain: float
    offset_c: float
    ts_ms: int

    def as_dict(self) -> dict[str, float]:
        return {"gain": self.gain, "offset_c": self.offset_c}

    def correct(self, t_read: float) -> float:
        """The true temperature of a reading by this unit."""
        return float(_ref.correct(self.as_dict(), t_read))


IDENTITY = Correction(1.0, 0.0, 0)


def two_point(ref_lo: float, read_lo: float, ref_hi: float, read_hi: float, ts_ms: int) -> Correction:
    """The unit's gain and offset from two reference points; ValueError for points too close or a gain or
    offset no honest sensor has (the unit needs service, not a correction)."""
    found = _ref.two_point(ref_lo, read_lo, ref_hi, read_hi)
    return Correction(found["gain"], found["offset_c"], ts_ms)


def drift_c(before: Correction, after: Correction) -> float:
    """The largest difference (C) the two corrections make over CHECK_RANGE_C (linear: at its ends)."""
    return float(_ref.drift_c(before.as_dict(), after.as_dict()))


def check(history: Sequence[Correction], now_ms: int, interval_ms: int = SHIFT_MS) -> list[str]:
    """Node alerts from a unit's corrections, oldest first: OVERDUE when there is none or the last is older
    than `interval_ms`, DRIFTED when the last two differ by more than DRIFT_LIMIT_C."""
    alerts = []
    if _ref.overdue(history[-1].ts_ms if history else None, now_ms, interval_ms):
        alerts.append(OVERDUE)
    if len(history) >= 2 and _ref.drifted(history[-2].as_dict(), history[-1].as_dict()):
        alerts.append(DRIFTED)
    return alerts
