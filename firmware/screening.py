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

`check_calibration` is the one validator of a calibration, called at every door (the node's config file and
pushed config, the gateway's config, push-config, the lab): every number that decides a verdict must be finite
and inside the range in LIMITS (docs/screening.md, "Calibration limits"). The lane baseline is baseline.py.

Floats: the ESP32 port computes in single precision (about 1e-5 C here); the gateway's verdict rules.
"""

from contract import MODES, THRESHOLD_C, VERDICTS, is_plain

NORMAL, ELEVATED, INDETERMINATE, INVALID = VERDICTS
FORMS = ("heat_balance", "linear")
# The range of every number in a calibration, (low, high), C or dimensionless; docs/screening.md says why.
LIMITS = {
    "threshold_c": THRESHOLD_C,
    "min_core_c": (30.0, 37.0),
    "ambient_c": (-20.0, 50.0),
    "skin_c": (15.0, 45.0),
    "heat_balance": (("k", 0.0, 1.0), ("offset_c", -5.0, 5.0)),
    "linear": (("site", 0.0, 2.0), ("amb", -1.0, 1.0), ("offset_c", -60.0, 60.0)),
    "core_at_reference": (34.0, 40.0),  # the estimate for a 35 C forehead in a 22 C room
}
_CAL_KEYS = ("id", "method", "ambient_c", "skin_c", "modes", "advice")

# Flags that make a reading unusable as a screen (staff retest), those that mean no reading at all, and the
# second signal that raises an alert below the threshold.
_COND = ("cold_ambient", "hot_ambient", "not_skin", "cold_skin")
INDETERMINATE_FLAGS = _COND + ("below_baseline", "unstable", "not_settled", "too_far", "sensor_unsettled")
INVALID_FLAGS = ("sensor_fault",)
ELEVATING_FLAGS = ("above_baseline",)

WARM_UP = "retest after 10 minutes inside (the traveller need not leave if the scanner is the cause)"
WARM_SCANNER = "warm the scanner (heated housing or booth), wait until it has settled, retest"
# Advice for staff, by flag, in priority order. A calibration may carry its own "advice" dict (same keys).
ADVICE = (
    ("sensor_fault", "sensor fault: use a clinical thermometer, report the node"),
    ("cold_ambient", "scanner too cold (its sensor below the calibration's range): " + WARM_SCANNER),
    ("hot_ambient", "scanner too hot (its sensor above the calibration's range): shade it, wait, retest"),
    ("sensor_unsettled", "scanner not settled (its temperature is changing): keep it where it is, wait, retest"),
    ("not_skin", "no face in view: aim at the forehead or inner eye corner, retest"),
    ("cold_skin", "traveller's skin too cold (fresh from the cold or wind): " + WARM_UP),
    ("below_baseline", "far below this lane's recent readings (cold face?): " + WARM_UP),
    ("too_far", "not inside the marked distance (too far, too close or not measured): step to the mark, retest"),
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


def _number(where, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise ValueError("calibration: " + where + " must be a number, got " + repr(v))
    if not lo <= v <= hi:
        raise ValueError("calibration: " + where + " = " + repr(v) + " is outside " + str(lo) + ".." + str(hi))


def _pair(cal, key):
    r = cal.get(key)
    if not isinstance(r, (list, tuple)) or len(r) != 2:
        raise ValueError("calibration: " + key + " must be [low, high]")
    lo, hi = LIMITS[key]
    _number(key + "[0]", r[0], lo, hi)
    _number(key + "[1]", r[1], lo, hi)
    if not r[0] < r[1]:
        raise ValueError("calibration: " + key + " must be [low, high] with low < high")


def _check_mode(cal, mode):
    m = cal["modes"][mode]
    where = "modes." + mode
    if not isinstance(m, dict):
        raise ValueError("calibration: " + where + " must be an object")
    form = m.get("form", "heat_balance")
    if form not in FORMS:
        raise ValueError("calibration: " + where + ".form must be one of " + ", ".join(FORMS))
    coefficients = LIMITS[form]
    known = ("form", "threshold_c", "min_core_c") + tuple([c[0] for c in coefficients])
    for k in m:
        if k not in known:
            raise ValueError("calibration: " + where + ": unknown key " + repr(k))
    for name, lo, hi in coefficients:
        _number(where + "." + name, m.get(name), lo, hi)
    _number(where + ".threshold_c", m.get("threshold_c"), THRESHOLD_C[0], THRESHOLD_C[1])
    if m.get("min_core_c") is not None:
        _number(where + ".min_core_c", m["min_core_c"], LIMITS["min_core_c"][0], LIMITS["min_core_c"][1])
    lo, hi = LIMITS["core_at_reference"]
    _number(where + ": the core estimate at 35 C skin, 22 C ambient", core_estimate(cal, mode, 35.0, 22.0), lo, hi)


def _check_top(cal):
    if not isinstance(cal, dict):
        raise ValueError("calibration: must be an object")
    for k in cal:
        if k not in _CAL_KEYS:
            raise ValueError("calibration: unknown key " + repr(k))
    if not is_plain(cal.get("id"), 32):
        raise ValueError("calibration: id must be 1-32 printable ASCII characters without quotes")


def check_calibration(cal, modes=()):
    """Raise ValueError naming the key, the value and its range if `cal` cannot be used; `modes` must all be
    in it. The one validator of the format (module doc); the node, the gateway and the lab all call it."""
    _check_top(cal)
    _pair(cal, "ambient_c")
    _pair(cal, "skin_c")
    given = cal.get("modes")
    if not isinstance(given, dict) or not given:
        raise ValueError("calibration: modes must be a non-empty object")
    for mode in given:
        if mode not in MODES:
            raise ValueError("calibration: unknown mode " + repr(mode) + " (one of " + ", ".join(MODES) + ")")
        _check_mode(cal, mode)
    for mode in modes:
        if mode not in given:
            raise ValueError("calibration: has no mode " + mode)
    advice = cal.get("advice")
    if advice is not None and not isinstance(advice, dict):
        raise ValueError("calibration: advice must be an object of flag: text")


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
    overrides the calibration's operating point for the mode; outside THRESHOLD_C (NaN too) it is a ValueError.
    """
    if mode not in MODES:
        raise ValueError("unknown mode: " + str(mode))
    out = list(flags)
    if (t_site is None or t_amb is None) and "sensor_fault" not in out:
        out.append("sensor_fault")
    for f in INVALID_FLAGS:
        if f in out:
            return None, INVALID, out
    t_core = _estimate(cal, mode, t_site, t_amb, out)
    for f in INDETERMINATE_FLAGS:
        if f in out:
            return None, INDETERMINATE, out
    if threshold_c is None:
        threshold_c = cal["modes"][mode]["threshold_c"]
    return t_core, _verdict(t_core, threshold_c, out), out


def _verdict(t_core, threshold_c, flags):
    """Elevated at or above the threshold or with an elevating flag, else normal."""
    if not THRESHOLD_C[0] <= threshold_c <= THRESHOLD_C[1]:
        raise ValueError("threshold_c " + repr(threshold_c) + " is outside " + repr(THRESHOLD_C))
    if round(t_core, 2) >= threshold_c:  # the published estimate decides, on the node and the gateway
        return ELEVATED
    for f in ELEVATING_FLAGS:
        if f in flags:
            return ELEVATED
    return NORMAL


def _estimate(cal, mode, t_site, t_amb, out):
    """The core estimate; adds the condition flags and cold_skin (an estimate below min_core_c) to `out`."""
    for f in condition_flags(cal, t_site, t_amb):
        if f not in out:
            out.append(f)
    t_core = core_estimate(cal, mode, t_site, t_amb)
    floor = cal["modes"][mode].get("min_core_c")
    if floor is not None and round(t_core, 2) < floor and "not_skin" not in out and "cold_skin" not in out:
        out.append("cold_skin")
    return t_core


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
