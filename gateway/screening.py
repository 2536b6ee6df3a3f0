"""The authoritative verdict: the shared screening math (firmware/screening.py) on the scan's raw readings.

The gateway trusts the node's temperatures and its scan-procedure flags (what only the node could see while
sampling), and recomputes everything else: the condition flags, the core estimate and the verdict, with the
configured calibration and threshold per mode. The site reading is first corrected with the unit's reference
correction the scan carries (ref_gain, ref_offset_c: what the node applied, firmware/reference.py), so the node
and the gateway correct the same reading with the same numbers (docs/protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import firmware
from gateway.protocol import Scan

# firmware/ is untyped MicroPython-subset code: imported by name so mypy --strict does not check it as ours.
_screening: Any = firmware.module("screening")
_reference: Any = firmware.module("reference")

# Flags only the scan procedure on the node can know; every other flag is recomputed here.
SCAN_PROCEDURE_FLAGS = ("unstable", "not_settled", "low_supply", "sensor_fault", "too_far", "sensor_unsettled")


@dataclass(slots=True)
class Assessment:
    t_core_c: float | None
    verdict: str
    flags: tuple[str, ...]
    cal: str
    threshold_c: float


class Screener:
    def __init__(self, calibration: dict[str, Any], thresholds: dict[str, float | None]) -> None:
        self.calibration = calibration
        self.cal_id = str(calibration["id"])
        self._thresholds = {
            mode: float(t if t is not None else calibration["modes"][mode]["threshold_c"])
            for mode, t in ((m, thresholds.get(m)) for m in _screening.MODES)
        }

    def threshold(self, mode: str) -> float:
        return self._thresholds[mode]

    def assess(self, scan: Scan) -> Assessment:
        node_flags = [f for f in scan.flags if f in SCAN_PROCEDURE_FLAGS]
        t_site = _reference.correct(correction(scan), scan.t_site_c)
        t_core, verdict, flags = _screening.assess(
            self.calibration, scan.mode, t_site, scan.t_amb_c, node_flags, self._thresholds[scan.mode]
        )
        t = None if t_core is None else round(float(t_core), 2)
        return Assessment(t, str(verdict), tuple(flags), self.cal_id, self._thresholds[scan.mode])


def correction(scan: Scan) -> dict[str, float] | None:
    """The unit's reference correction a scan was made with (None: the node applied none)."""
    if scan.ref_gain is None or scan.ref_offset_c is None:
        return None
    return {"gain": scan.ref_gain, "offset_c": scan.ref_offset_c}
