"""Per-unit reference calibration (issue 15 item 3): a unit's gain and offset from two reference points.

A unit reads `reading = gain * true + offset_c` (sensors differ in gain, not only offset: two instruments agree
on normal skin and disagree by tenths on febrile skin). At shift start it scans a reference source at two known
temperatures near 35 and 39 C; `two_point` gives the unit's correction, the gateway keeps it and pushes it in
the node's signed config (`reference`: {"gain", "offset_c"}), and the node and the gateway both `correct` the
site reading with it before the skin-to-core estimate. `check_correction` is the one validator of a correction,
called at every door (the node's config file and pushed config, the gateway's command, the scan's fields).
`drift_c` and `overdue` are the node alerts' rules. MicroPython subset: a correction is a plain dict.

Gain and offset travel rounded (GAIN_DIGITS, OFFSET_DIGITS decimals: the outbox record keeps them so, record.py),
and `rounded` gives what the node applies, so the node and the gateway correct with the same numbers.
"""

from contract import GAIN_RANGE, OFFSET_RANGE_C

REFERENCE_C = (35.0, 39.0)  # the two reference temperatures the procedure asks for
MIN_SPAN_C = 2.0  # the two points must be at least this far apart for a usable gain
CHECK_RANGE_C = (33.0, 41.0)  # where a correction is compared (skin of the living)
DRIFT_LIMIT_C = 0.3
SHIFT_MS = 12 * 3600 * 1000  # a check each shift
GAIN_DIGITS, OFFSET_DIGITS = 5, 3
KEYS = ("gain", "offset_c")
_INF = float("inf")


def _finite(v):
    return not isinstance(v, bool) and isinstance(v, (int, float)) and v == v and v not in (_INF, -_INF)


def _within(v, lo, hi):
    return lo <= v <= hi


def check_correction(ref):
    """Raise ValueError naming the key, the value and its range if `ref` is not a usable correction (None: no
    correction, the identity)."""
    if ref is None:
        return
    if not isinstance(ref, dict):
        raise ValueError("reference: must be an object {gain, offset_c}")
    for k in ref:
        if k not in KEYS:
            raise ValueError("reference: unknown key " + repr(k))
    for k, (lo, hi) in ((KEYS[0], GAIN_RANGE), (KEYS[1], OFFSET_RANGE_C)):
        v = ref.get(k)
        if not _finite(v):
            raise ValueError("reference: " + k + " must be a finite number, got " + repr(v))
        if not _within(v, lo, hi):
            raise ValueError("reference: " + k + " = " + repr(v) + " is outside " + str(lo) + ".." + str(hi)
                             + ": service the unit")  # fmt: skip


def correction(gain, offset_c):
    """A correction rounded as it travels; ValueError if no honest sensor has it (the unit needs service)."""
    ref = {"gain": round(gain, GAIN_DIGITS), "offset_c": round(offset_c, OFFSET_DIGITS)}
    check_correction(ref)
    return ref


def rounded(ref):
    """What a node applies of a validated correction (None stays None): the numbers its scans carry."""
    return None if ref is None else correction(ref["gain"], ref["offset_c"])


def two_point(ref_lo, read_lo, ref_hi, read_hi):
    """The unit's correction from two reference points (reference C, the unit's reading C); ValueError for
    points too close together, or a gain or offset no honest sensor has."""
    for v in (ref_lo, read_lo, ref_hi, read_hi):
        if not _finite(v):
            raise ValueError("reference points must be finite numbers, got " + repr(v))
    if ref_hi < ref_lo:
        ref_lo, read_lo, ref_hi, read_hi = ref_hi, read_hi, ref_lo, read_lo
    if ref_hi - ref_lo < MIN_SPAN_C:
        raise ValueError("reference points " + str(ref_lo) + " and " + str(ref_hi) + " C are closer than "
                         + str(MIN_SPAN_C) + " C")  # fmt: skip
    gain = (read_hi - read_lo) / (ref_hi - ref_lo)
    return correction(gain, read_lo - gain * ref_lo)


def correct(ref, t_read):
    """The true temperature of a reading by a unit with correction `ref` (None: the reading itself)."""
    if ref is None or t_read is None:
        return t_read
    return (t_read - ref["offset_c"]) / ref["gain"]


def drift_c(before, after):
    """The largest difference (C) two corrections make over CHECK_RANGE_C (linear: at its ends)."""
    return max([abs(correct(before, t) - correct(after, t)) for t in CHECK_RANGE_C])


def drifted(before, after):
    """True when a unit's correction moved beyond DRIFT_LIMIT_C between two checks."""
    return before is not None and after is not None and drift_c(before, after) > DRIFT_LIMIT_C


def overdue(last_ms, now_ms, interval_ms=SHIFT_MS):
    """True when a unit's last check (Unix ms, None: never) is older than `interval_ms`."""
    return last_ms is None or now_ms - last_ms > interval_ms
