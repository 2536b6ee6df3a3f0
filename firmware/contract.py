"""Protocol v1, the one contract: every name on the wire and its rules (docs/protocol.md).

The node, the gateway, the simulator and the tests all import this module, so the two sides of the wire cannot
drift apart: a field is named once, here. MicroPython subset (no f-strings, no typing at runtime, no `re`).
A field is `(name, kind, a, b, need)`: kind "int" (a <= n <= b, never a bool), "num" (finite, a <= x <= b),
"text" (printable, a..b characters), "enum" (one of the tuple a), "flags" (a list of at most b flag names),
"seqs" (a list of at most b ints >= 0), "count" (an int >= 0, or an object of such ints: the total is kept),
"obj" (an object, checked by its own reader); need REQ (present, not null), NULL (present, null allowed), OPT
(may be absent or null). `check(obj, fields)` returns None or the first problem as a rejection reason:
`missing_field:<f>`, `wrong_type:<f>`, `not_finite:<f>`, `out_of_range:<f>`.
"""

VERSION, PREFIX = 1, "checkpoint/v1"
MAX_PAYLOAD = 4096  # bytes; a larger message is refused (oversize)

MODES = ("forehead", "canthus")
VERDICTS = ("normal", "elevated", "indeterminate", "invalid")
STATES = ("online", "offline")
# Flag names; the index is the bit in the outbox record (record.py). Append only: never reorder or reuse.
FLAGS = ("cold_ambient", "hot_ambient", "not_skin", "unstable", "not_settled", "sensor_fault", "low_supply")
FLAGS += ("cold_skin", "below_baseline", "above_baseline", "too_far", "sensor_unsettled")

# Topics: {prefix}/{site}/{node}/{kind}; the gateway's own under {prefix}/alerts/{site} and
# {prefix}/gateway/{instance}/status: those words are never a site or node.
UPLINK, DOWNLINK = ("scan", "status", "health"), ("receipt", "verdict", "config")  # node -> gateway, gateway -> node
ALERTS, GATEWAY = "alerts", "gateway"
RESERVED = (ALERTS, GATEWAY)

REQ, NULL, OPT, INT64 = 0, 1, 2, 9223372036854775807
# The node's wall clock, Unix ms, as it reads it (null when never synced): the gateway judges it against its own
# and never refuses a scan for it (a clock at 2036 or 2101 is still a traveller's scan). 2**53: JSON-safe.
TS_RANGE = (0, 9007199254740992)
# MLX90614 datasheet section 8.7.1 (docs/domain.md): object -70.01..382.19 C, ambient -40..125 C. Outside is not
# a reading (0xFFFF = 1037.55 C is the classic broken-bus value).
T_SITE_RANGE, T_AMB_RANGE, T_CORE_RANGE = (-70.01, 382.19), (-40.0, 125.0), (-100.0, 400.0)
# A fever threshold, C: a screen between 37.0 (below it most healthy people alarm) and 38.5 (above it definite
# fevers pass); 37.3 is China's screening line, 38.0 the WHO/CDC fever definition (docs/screening.md).
THRESHOLD_C = (37.0, 38.5)
GAIN_RANGE, OFFSET_RANGE_C = (0.9, 1.1), (-3.0, 3.0)  # a unit's reference correction (reference.py); beyond: service
TEXT_MAX, FLAGS_MAX, SEQS_MAX, CODE_MAX = 64, 16, 1000, 999  # CODE_MAX: retest codes are three digits
ORIGIN_MAX = 0xFFFFFFFF  # origin(): a CRC-32

SCAN = (
    ("v", "int", VERSION, VERSION, REQ),
    ("site", "text", 1, 32, REQ),
    ("node", "text", 1, 32, REQ),
    ("seq", "int", 0, INT64, REQ),
    ("boot", "int", 0, INT64, REQ),
    ("ts", "int", TS_RANGE[0], TS_RANGE[1], NULL),
    ("uptime_ms", "int", 0, INT64, REQ),
    ("mode", "enum", MODES, None, REQ),
    ("t_site_c", "num", T_SITE_RANGE[0], T_SITE_RANGE[1], NULL),
    ("t_amb_c", "num", T_AMB_RANGE[0], T_AMB_RANGE[1], NULL),
    ("t_core_c", "num", T_CORE_RANGE[0], T_CORE_RANGE[1], NULL),
    ("verdict", "enum", VERDICTS, None, REQ),
    ("flags", "flags", 0, FLAGS_MAX, REQ),
    ("samples", "int", 0, 1000000, REQ),
    ("duration_ms", "int", 0, 3600000, REQ),
    ("retest_of", "int", 0, INT64, NULL),  # and < seq
    ("code", "int", 0, CODE_MAX, OPT),  # retest codes (conditions.py, record layout 2): the case's code,
    ("retest_code", "int", 0, CODE_MAX, OPT),  # the code this scan retests,
    ("wait_s", "int", 0, 86400, OPT),  # and the wait before a retest helps (the scanner's or the traveller's)
    ("ref_gain", "num", GAIN_RANGE[0], GAIN_RANGE[1], OPT),  # the unit's reference correction the node
    ("ref_offset_c", "num", OFFSET_RANGE_C[0], OFFSET_RANGE_C[1], OPT),  # applied (both or neither; reference.py)
    ("unit", "int", 1, ORIGIN_MAX, OPT),  # the unit's random identity, drawn at its flash's first boot (health.py)
    ("fw", "text", 1, TEXT_MAX, REQ),
    ("cal", "text", 1, TEXT_MAX, REQ),
)
STATUS = (
    ("v", "int", VERSION, VERSION, REQ),
    ("state", "enum", STATES, None, REQ),
    ("fw", "text", 1, TEXT_MAX, OPT),
    ("boot", "int", 0, INT64, OPT),
    ("config_id", "text", 1, TEXT_MAX, OPT),
    ("config_error", "text", 1, 200, OPT),  # why the node refused the last pushed config
    ("auth_refused", "int", 0, INT64, OPT),  # downlink messages refused (auth.py): how many, the last why
    ("auth_error", "text", 1, 200, OPT),
    ("sensor_error", "text", 1, 200, OPT),  # why the node refuses to screen (sensor_repower_needed: ...)
    ("taken_over", "int", 0, INT64, OPT),  # sessions the broker ended under it since boot (uplink.py)
)
HEALTH = (
    ("v", "int", VERSION, VERSION, REQ),
    ("uptime_ms", "int", 0, INT64, OPT),
    ("heap_free", "int", 0, INT64, OPT),
    ("rssi", "int", -127, 20, OPT),  # dBm
    ("outbox_depth", "int", 0, INT64, OPT),  # records not yet receipted
    ("outbox_drops", "int", 0, INT64, OPT),  # records lost to a full outbox (never silent)
    ("outbox_errors", "int", 0, INT64, OPT),  # scans the outbox refused to store
    ("sensor_errors", "count", 0, INT64, OPT),
    ("supply_v", "num", 0.0, 10.0, OPT),
    ("fw", "text", 1, TEXT_MAX, OPT),
    ("scans", "int", 0, INT64, OPT),
    ("task_restarts", "int", 0, INT64, OPT),
    ("uplink", "obj", None, None, OPT),  # the uplink's counters, for a person reading the log
)
SIGNED = (("ctr", "int", 0, INT64, OPT), ("sig", "text", 1, 64, OPT))  # to a node with a key (auth.py)
RECEIPT = (
    ("v", "int", VERSION, VERSION, REQ),
    ("seqs", "seqs", 0, SEQS_MAX, REQ),  # stored: the node frees them
    ("rejected", "seqs", 0, SEQS_MAX, OPT),  # kept whole in the gateway's quarantine
    ("origins", "seqs", 0, SEQS_MAX, OPT),  # origin(boot, uptime_ms) of each of seqs, in its order: the unit
    ("rejected_origins", "seqs", 0, SEQS_MAX, OPT),  # whose scan it is (two units under one name)
) + SIGNED
VERDICT = (
    ("v", "int", VERSION, VERSION, REQ),
    ("seq", "int", 0, INT64, REQ),
    ("verdict", "enum", VERDICTS, None, REQ),
    ("t_core_c", "num", T_CORE_RANGE[0], T_CORE_RANGE[1], NULL),
    ("flags", "flags", 0, FLAGS_MAX, REQ),
    ("cal", "text", 1, TEXT_MAX, REQ),
    ("threshold_c", "num", THRESHOLD_C[0], THRESHOLD_C[1], REQ),
    ("alert_id", "text", 1, 128, NULL),  # kind:site:node:... (up to about 92 characters)
    ("origin", "int", 0, ORIGIN_MAX, OPT),  # origin(boot, uptime_ms) of the scan: the unit shows only its own
) + SIGNED
CONFIG = (
    ("v", "int", VERSION, VERSION, REQ),
    ("id", "text", 1, 32, REQ),
    ("mode", "enum", MODES, None, OPT),
    ("threshold_c", "num", THRESHOLD_C[0], THRESHOLD_C[1], OPT),
    ("calibration", "obj", None, None, OPT),  # checked by screening.check_calibration
    ("intervals", "obj", None, None, OPT),  # checked by the node's config validation
    ("scan", "obj", None, None, OPT),
    ("reference", "obj", None, None, OPT),  # checked by reference.check_correction
) + SIGNED
MESSAGES = {"scan": SCAN, "status": STATUS, "health": HEALTH, "receipt": RECEIPT, "verdict": VERDICT, "config": CONFIG}


def names(fields):
    """The field names of a message table, in wire order."""
    return tuple([f[0] for f in fields])


def is_identifier(s):
    """A site or node name: [a-z0-9][a-z0-9-]{0,31} and not a reserved topic word."""
    if not isinstance(s, str) or not 1 <= len(s) <= 32 or s[0] == "-" or s in RESERVED:
        return False
    return all(["a" <= ch <= "z" or "0" <= ch <= "9" or ch == "-" for ch in s])


def is_flag(s):
    """A flag name as the wire allows it: [a-z][a-z0-9_]{0,31} (unknown names pass: forward compatible)."""
    if not isinstance(s, str) or not 1 <= len(s) <= 32 or not "a" <= s[0] <= "z":
        return False
    return all(["a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_" for ch in s])


def is_plain(s, n=TEXT_MAX):
    """1..n printable ASCII characters without a quote or backslash (fw, cal and calibration ids: they are
    written into JSON by hand on the node)."""
    if not isinstance(s, str) or not 1 <= len(s) <= n:
        return False
    return all([" " <= ch <= "~" and ch != '"' and ch != "\\" for ch in s])


def origin(boot, uptime_ms, unit=None):
    """Which unit made a scan, as a receipt or verdict names it: CRC-32 (binascii, on MicroPython too) of
    "boot/uptime_ms/unit" ("boot/uptime_ms" without a unit: firmware before record layout 4). Two units under one
    name each number from seq 0 and boot 1: a receipt or verdict is for the unit whose scan has this origin
    (docs/protocol.md, "Two units under one name"); the unit tells apart two made at one boot and uptime."""
    import binascii

    return binascii.crc32(("%d/%d" % (boot, uptime_ms) + ("/%d" % unit if unit else "")).encode()) & ORIGIN_MAX


def topic(prefix, site, node, kind):
    return prefix + "/" + site + "/" + node + "/" + kind


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _printable(s):
    return all([ch >= " " and ch != "\x7f" for ch in s])


def _number(kind, a, b, v):
    if kind == "int" and not _is_int(v) or not (_is_int(v) or isinstance(v, float)):
        return "wrong_type"
    if v != v or v in (float("inf"), float("-inf")):
        return "not_finite"
    return None if a <= v <= b else "out_of_range"


def _list(kind, b, v):
    if not isinstance(v, list):
        return "wrong_type"
    if kind == "flags":
        if not all([isinstance(f, str) for f in v]):
            return "wrong_type"
        return None if len(v) <= b and all([is_flag(f) for f in v]) else "out_of_range"
    if not all([_is_int(n) for n in v]):  # seqs
        return "wrong_type"
    return None if len(v) <= b and all([n >= 0 for n in v]) else "out_of_range"


def _problem(kind, a, b, v):
    """None, or "wrong_type" / "not_finite" / "out_of_range" for value `v` of a field of `kind`."""
    if kind in ("int", "num"):
        return _number(kind, a, b, v)
    if kind in ("text", "enum"):
        if not isinstance(v, str):
            return "wrong_type"
        if kind == "enum":
            return None if v in a else "out_of_range"
        return None if a <= len(v) <= b and _printable(v) else "out_of_range"
    if kind == "count":
        if isinstance(v, dict):
            return None if all([_is_int(n) and n >= 0 for n in v.values()]) else "wrong_type"
        return _number("int", a, b, v)
    if kind == "obj":
        return None if isinstance(v, dict) else "wrong_type"
    return _list(kind, b, v)


def check(obj, fields):
    """None if the object `obj` satisfies the table `fields`, else the first problem (see the module doc)."""
    for name, kind, a, b, need in fields:
        if name not in obj:
            if need == OPT:
                continue
            return "missing_field:" + name
        v = obj[name]
        if v is None:
            if need == REQ:
                return "wrong_type:" + name
            continue
        p = _problem(kind, a, b, v)
        if p is not None:
            return p + ":" + name
    return None
