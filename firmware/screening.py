"""Screening math shared by the node and the gateway: site temperature + ambient -> core estimate -> verdict.

MicroPython subset (no f-strings, dataclasses or typing at runtime): the ESP32 and the gateway compute the
same verdict from the same versioned calibration (firmware/calibration.py, or one pushed in the retained
`config` topic), a plain JSON-serialisable dict: {"id", "ambient_c": [lo, hi] (outside: cold_ambient /
hot_ambient), "skin_c": [lo, hi] (outside: not_skin), "modes": {mode: {"form", coefficients, "threshold_c",
"min_core_c"}}}. Forms (docs/screening.md compares them on the FDA clinical data):
  "heat_balance" (default): core = t_site + k * (t_site - t_amb) + offset_c   (arterial heat balance,
                            US 7,787,938; k = 0 is a constant offset)
  "linear":                 core = offset_c + site * t_site + amb * t_amb
An estimate below `min_core_c` means skin too cold for the ambient (a face fresh from the cold wind, not yet
in equilibrium): indeterminate, never normal.

`Baseline` is the lane baseline commercial screening cameras use: the trimmed mean of the node's last N usable
site readings; a reading 1 C above it is "above_baseline" (elevated), 2 C below "below_baseline"
(indeterminate). The caller owns one Baseline per node and mode.

Floats: the ESP32 port computes in single precision (about 1e-5 C here); the gateway's verdict rules.
"""

NORMAL = "normal"
ELEVATED = "elevated"
INDETERMINATE = "indeterminate"
INVALID = "invalid"
VERDICTS = (NORMAL, ELEVATED, INDETERMINATE, INVALID)
MODES = ("forehead", "canthus")
FORMS = ("heat_balance", "linear")

# Flags that make a reading unusable as a screen (staff retest), those that mean no reading at all, and the
# second signal that raises an alert below the threshold.
_COND = ("cold_ambient", "hot_ambient", "not_skin", "cold_skin")
INDETERMINATE_FLAGS = _COND + ("below_baseline", "unstable", "not_settled")
INVALID_FLAGS = ("sensor_fault",)
ELEVATING_FLAGS = ("above_baseline",)

WARM_UP = "let the traveller warm up 5-10 minutes indoors, retest"
# Advice for staff, by flag, in priority order. A calibration may carry its own "advice" dict (same keys).
ADVICE = (
    ("sensor_fault", "sensor fault: use a clinical thermometer, report the node"),
    ("cold_ambient", "too cold here for a reading (sensor ambient below range): screen indoors; " + WARM_UP),
    ("hot_ambient", "too hot here for a reading (sensor ambient above range): screen in the shade, retest"),
    ("not_skin", "no face in view: aim at the forehead or inner eye corner, retest"),
    ("cold_skin", "skin too cold for the ambient (fresh from the cold or wind): " + WARM_UP),
    ("below_baseline", "far below this lane's recent readings (cold face?): " + WARM_UP),
    ("not_settled", "reading not settled: hold still at the marked distance, retest"),
    ("unstable", "reading unstable: hold still at the marked distance, retest"),
    ("above_baseline", "well above this lane's recent readings: confirm with a clinical thermometer"),
)
ELEVATED_ADVICE = "above threshold: confirm with a clinical thermometer (a screen is not a diagnosis)"


def core_estimate(cal, mode, t_site, t_amb):
    """Core temperature (C) estimated from the site temperature and the sensor's ambient (C)."""
    m = cal["modes"][mode]
    form = m.get("form", "heat_balance")
    if form == "heat_balance":
        return t_site + m["k"] * (t_site - t_amb) + m["offset_c"]
    if form == "linear":
        return m["offset_c"] + m["site"] * t_site + m["amb"] * t_amb
    raise ValueError("calibration: unknown form " + str(form))


def check_calibration(cal):
    """Raise ValueError naming the key if `cal` cannot be used (for config validation on node and gateway)."""
    if not isinstance(cal, dict) or not isinstance(cal.get("id"), str) or not cal["id"]:
        raise ValueError("calibration: must be a dict with a non-empty id")
    for key in ("ambient_c", "skin_c"):
        r = cal.get(key)
        if not isinstance(r, (list, tuple)) or len(r) != 2 or not r[0] < r[1]:
            raise ValueError("calibration: " + key + " must be [low, high]")
    modes = cal.get("modes")
    if not isinstance(modes, dict) or not modes:
        raise ValueError("calibration: modes must be a non-empty dict")
    for mode in modes:
        if mode not in MODES:
            raise ValueError("calibration: unknown mode " + str(mode))
        m = modes[mode]
        if not isinstance(m, dict) or not isinstance(m.get("threshold_c"), (int, float)):
            raise ValueError("calibration: modes." + mode + ".threshold_c must be a number")
        if m.get("form", "heat_balance") not in FORMS:
            raise ValueError("calibration: modes." + mode + ".form must be one of " + ", ".join(FORMS))
        try:
            core_estimate(cal, mode, 35.0, 22.0)
        except (KeyError, TypeError) as e:
            raise ValueError("calibration: modes." + mode + " lacks a coefficient: " + repr(e))


def condition_flags(cal, t_site, t_amb):
    """Flags from the conditions alone: ambient outside the calibration's range, a target that is not skin."""
    flags = []
    lo, hi = cal["ambient_c"]
    if t_amb < lo:
        flags.append("cold_ambient")
    elif t_amb > hi:
        flags.append("hot_ambient")
    lo, hi = cal["skin_c"]
    if t_site < lo or t_site > hi:
        flags.append("not_skin")
    return flags


def assess(cal, mode, t_site, t_amb, flags=(), threshold_c=None):
    """One scan's screening result: (t_core_c or None, verdict, flags).

    `flags` are what the scan procedure and the lane baseline already found (unstable, not_settled,
    low_supply, sensor_fault, above_baseline, below_baseline); condition flags are added here. A sensor fault
    gives "invalid"; a flag in INDETERMINATE_FLAGS gives "indeterminate" (retest), never "normal"; both carry
    no temperature (a wrong number is worse than none). "above_baseline" gives "elevated". `threshold_c`
    overrides the calibration's operating point for the mode (a site's configured display threshold).
    """
    if mode not in MODES:
        raise ValueError("unknown mode: " + str(mode))
    out = list(flags)
    for f in INVALID_FLAGS:
        if f in out:
            return None, INVALID, out
    if t_site is None or t_amb is None:
        out.append("sensor_fault")
        return None, INVALID, out
    for f in condition_flags(cal, t_site, t_amb):
        if f not in out:
            out.append(f)
    m = cal["modes"][mode]
    t_core = core_estimate(cal, mode, t_site, t_amb)
    floor = m.get("min_core_c")
    if floor is not None and t_core < floor and "not_skin" not in out and "cold_skin" not in out:
        out.append("cold_skin")
    for f in INDETERMINATE_FLAGS:
        if f in out:
            return None, INDETERMINATE, out
    if threshold_c is None:
        threshold_c = m["threshold_c"]
    if t_core >= threshold_c:
        return t_core, ELEVATED, out
    for f in ELEVATING_FLAGS:
        if f in out:
            return t_core, ELEVATED, out
    return t_core, NORMAL, out


def advice(verdict, flags, cal=None):
    """A short instruction for staff for this result, or None when there is nothing to do (normal)."""
    table = cal.get("advice") if cal is not None else None
    for flag, text in ADVICE:
        if flag in flags:
            if table and flag in table:
                return table[flag]
            return text
    if verdict == ELEVATED:
        return ELEVATED_ADVICE
    return None


class Baseline:
    """Trimmed mean of the last `n` usable site readings of one node and mode (a lane baseline).

    `trim` is the share of readings dropped at each end before averaging (0.2 of 10: the 2 lowest and the 2
    highest). The baseline is not ready, and flags nothing, until it holds `n` readings.
    """

    def __init__(self, n=10, trim=0.2):
        if n < 1 or not 0 <= trim < 0.5:
            raise ValueError("baseline: n >= 1 and 0 <= trim < 0.5")
        self.n = n
        self.trim = trim
        self._values = []

    def add(self, t_site):
        self._values.append(t_site)
        if len(self._values) > self.n:
            self._values.pop(0)

    def update(self, t_site, verdict, flags=()):
        """Feed one scan's result. Usable readings that are not above the baseline enter it: normal ones, and
        ones elevated only by the absolute threshold (a node that reads high must not starve its baseline)."""
        if t_site is None or "above_baseline" in flags:
            return
        if verdict == NORMAL or verdict == ELEVATED:
            self.add(t_site)

    def value(self):
        """The trimmed mean (C), or None until `n` readings are in."""
        if len(self._values) < self.n:
            return None
        v = sorted(self._values)
        cut = int(len(v) * self.trim)
        if cut:
            v = v[cut:-cut]
        return sum(v) / len(v)

    def above(self, t_site, offset_c=1.0):
        b = self.value()
        return b is not None and t_site >= b + offset_c

    def below(self, t_site, offset_c=2.0):
        b = self.value()
        return b is not None and t_site <= b - offset_c

    def flags(self, t_site, offset_c=1.0, below_c=2.0):
        """The baseline's flags for a reading, to pass to assess()."""
        out = []
        if self.above(t_site, offset_c):
            out.append("above_baseline")
        elif self.below(t_site, below_c):
            out.append("below_baseline")
        return out
