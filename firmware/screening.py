"""Screening math shared by the node and the gateway: site temperature + ambient -> core estimate -> verdict.

Written in the MicroPython subset (no f-strings with format specs, no dataclasses, no typing at runtime) so the
ESP32 and the gateway compute the same verdict from the same versioned calibration.

A calibration is a plain dict (it travels in the retained `config` topic as JSON):

    {"id": "placeholder-0",
     "ambient_c": [16.0, 32.0],          # range the fit is valid for (outside: indeterminate)
     "skin_c": [30.0, 42.0],             # site temperatures a living forehead/canthus can show
     "modes": {"forehead": {"k": 0.19, "offset_c": 0.0, "threshold_c": 37.5},
               "canthus":  {"k": 0.0,  "offset_c": 0.3, "threshold_c": 37.5}}}

core = t_site + k * (t_site - t_amb) + offset_c   (arterial heat balance, US 7,787,938; k = 0 is a constant
offset). PLACEHOLDER: these coefficients are not fitted; the calibration issue replaces them with ones fitted on
the FDA clinical data. The shipped calibration is firmware/calibration.py; config may push another.
"""

NORMAL = "normal"
ELEVATED = "elevated"
INDETERMINATE = "indeterminate"
INVALID = "invalid"
VERDICTS = (NORMAL, ELEVATED, INDETERMINATE, INVALID)
MODES = ("forehead", "canthus")

# Flags that make a reading unusable as a screen (staff retest), and those that mean no reading at all.
INDETERMINATE_FLAGS = ("cold_ambient", "hot_ambient", "not_skin", "unstable", "not_settled")
INVALID_FLAGS = ("sensor_fault",)



def core_estimate(cal, mode, t_site, t_amb):
    """Core temperature (C) estimated from the site temperature and the sensor's ambient (C)."""
    m = cal["modes"][mode]
    return t_site + m["k"] * (t_site - t_amb) + m["offset_c"]


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

    `flags` are what the scan procedure already found (unstable, not_settled, low_supply, sensor_fault);
    condition flags are added here. A sensor fault gives "invalid" and no temperature; any flag in
    INDETERMINATE_FLAGS gives "indeterminate" (retest), never "normal". `threshold_c` overrides the
    calibration's operating point for the mode (a site's configured threshold).
    """
    if mode not in MODES:
        raise ValueError("unknown mode: " + str(mode))
    out = list(flags)
    for f in INVALID_FLAGS:
        if f in out:
            return None, INVALID, out
    if t_site is None or t_amb is None:
        if "sensor_fault" not in out:
            out.append("sensor_fault")
        return None, INVALID, out
    for f in condition_flags(cal, t_site, t_amb):
        if f not in out:
            out.append(f)
    t_core = core_estimate(cal, mode, t_site, t_amb)
    for f in INDETERMINATE_FLAGS:
        if f in out:
            return t_core, INDETERMINATE, out
    if threshold_c is None:
        threshold_c = cal["modes"][mode]["threshold_c"]
    return t_core, (ELEVATED if t_core >= threshold_c else NORMAL), out
