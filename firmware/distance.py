"""The distance gate: a scan counts only where the target fills the MLX90614's field of view.

A single-pixel sensor averages whatever its field of view holds (docs/domain.md section 2.7): a forehead that fills
95 % of it in a 22 C room reads about 0.8 C low on the core estimate, 85 % about 2.4 C low, and nothing in
the reading says so. The view is a cone; a target of diameter `target_mm` fills it wholly while the spot
2 d tan(FOV / 2) is no larger than the target, that is up to d = target_mm / (2 tan(FOV / 2)).

The window a node scans in is (MIN_MM, that distance less the ranging tolerance), so a distance measured
inside it means the target is really within the full-fill distance: MIN_MM is the time-of-flight sensor's
shortest usable range, the tolerance TOL_MM + TOL_REL of the distance covers its ranging error (VL53L0X,
vl53l0x.py; figures and assumptions in docs/sensor.md, "Distance"). During a scan the gate keeps ranging
(non-blocking: one single-shot measurement per about 33 ms); the scan is inside the window when more than
half of its measurements, and the last one, were valid and inside. Otherwise the scan gets "too_far", an
indeterminate reason (screening.py): too far, too close or not measured, the reading is not a screen.

Loaded only when config `sensor.distance` names a sensor (heap: docs/firmware.md).
"""

import math

from contract import MODES

# Field of view by the part's package option, the third letter of its code (MLX90614 datasheet rev 13,
# ordering information): A standard package 90 deg, C 35 deg, F 10 deg, H 12 deg (refractive lens), I 5 deg.
FOV_DEG = {"A": 90, "C": 35, "F": 10, "H": 12, "I": 5}
MIN_MM = 30  # the VL53L0X's shortest usable range (assumed: docs/sensor.md)
TOL_MM = 3  # ranging tolerance: TOL_MM + TOL_REL * distance (assumed: 3 sd of the modelled noise)
TOL_REL = 0.03
FLAG = "too_far"
SENSORS = ("vl53l0x",)  # config sensor.distance: one of these, or null (no distance sensor)
TARGET_MM = {MODES[0]: 50, MODES[1]: 20}  # default sensor.target_mm by mode (docs/sensor.md, "Distance")


def fov_deg(variant):
    """The field of view (full angle, degrees) of an MLX90614 variant such as "BCC"."""
    return FOV_DEG[variant[2]]


def full_fill_mm(variant, target_mm):
    """The farthest distance (mm) at which a target `target_mm` across fills the variant's whole view."""
    return target_mm / (2 * math.tan(math.radians(fov_deg(variant)) / 2))


def window(variant, target_mm):
    """(nearest, farthest) distance in mm a scan is taken at; farthest < nearest means no such distance."""
    far = full_fill_mm(variant, target_mm)
    return MIN_MM, int(far - TOL_MM - TOL_REL * far)


class NoGate:
    """No distance sensor: every scan passes (the operating distance is the staff's: docs/firmware.md)."""

    def configure(self, window_mm=None):
        pass

    start = poll = configure

    def flag(self):
        return None


NO_GATE = NoGate()


class Gate:
    """Ranges while the node samples and judges each scan by the distances measured during it."""

    def __init__(self, sensor, near_mm, far_mm):
        self.sensor = sensor
        self.near = near_mm
        self.far = far_mm
        self.last = None  # the last distance (mm) or None (no valid range)
        self.errors = 0  # bus errors (the sensor is set up again after one)
        self._up = False
        self._busy = False
        self.start()

    def configure(self, window_mm):
        """A new window (a pushed config changed the mode and so the target); None keeps the old one."""
        if window_mm is not None:
            self.near, self.far = window_mm

    def start(self):
        """A scan begins: forget the distances measured before."""
        self.n = 0
        self.inside = 0
        self._last_in = False

    def poll(self):
        """Once per sample, never blocking: take a finished measurement, start the next."""
        s = self.sensor
        try:
            if not self._up:
                s.init()
                self._up = True
            if self._busy:
                if not s.ready():
                    return
                self._take(s.read())
            s.start()
            self._busy = True
        except s.Error:
            self.errors += 1
            self._up = self._busy = False
            self._take(None)

    def _take(self, mm):
        self.last = mm
        self.n += 1
        self._last_in = mm is not None and self.near <= mm <= self.far
        if self._last_in:
            self.inside += 1

    def flag(self):
        """FLAG unless the scan was inside the window (more than half its measurements and the last), else None."""
        return None if self._last_in and 2 * self.inside > self.n else FLAG


def target_of(cfg):
    """The size (mm) of what must fill the view: config sensor.target_mm, else the mode's default."""
    t = cfg["sensor"]["target_mm"]
    return t if t is not None else TARGET_MM[cfg["mode"]]


def hold_mm(cfg):
    """Without a distance sensor, the farthest distance (mm) staff must hold the target at: where it still fills
    the variant's view (docs/firmware.md, "Distance"); None with one (the node then judges it itself)."""
    s = cfg["sensor"]
    return None if s["distance"] is not None else int(full_fill_mm(s["variant"], target_of(cfg)))


def window_of(cfg):
    """The scan window (near, far) mm of a config with a distance sensor, else None."""
    s = cfg["sensor"]
    return None if s["distance"] is None else window(s["variant"], target_of(cfg))


def make(i2c, window_mm):
    """The gate for scan settings' `window_mm` (config.scan_settings), or NO_GATE (no distance sensor or bus)."""
    if window_mm is None or i2c is None:
        return NO_GATE
    import vl53l0x  # only when configured: the driver costs heap

    return Gate(vl53l0x.VL53L0X(i2c), window_mm[0], window_mm[1])
