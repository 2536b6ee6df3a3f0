"""Protocol v1 (docs/protocol.md): topics and validation of what nodes publish. Pure: values in, values out.

`parse(prefix, topic, payload)` returns a `Scan`, `Status` or `Health`, a `Rejection` with a reason from the
fixed vocabulary below, or None for messages the gateway ignores on purpose (its own status, a cleared
retained status).

Rejection reasons: not_utf8, not_json, not_object, oversize, bad_version, bad_topic, bad_identifier,
identity_mismatch, missing_field:<f>, wrong_type:<f>, not_finite:<f>, out_of_range:<f>.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
DEFAULT_PREFIX = "checkpoint/v1"
MAX_PAYLOAD_BYTES = 4096
NODE_KINDS = ("scan", "status", "health")
MODES = ("forehead", "canthus")
VERDICTS = ("normal", "elevated", "indeterminate", "invalid")
STATES = ("online", "offline")
# "alerts" and "gateway" are topic levels of the gateway's own messages, so no site may take those names.
RESERVED_SITES = ("alerts", "gateway")

_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")
_FLAG = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_MAX_FLAGS = 16
_MAX_TEXT = 64
_INT64 = 2**63 - 1
# Wall clock: 2000-01-01 (the ESP32 epoch: an unsynced clock is sent as null, never as a year-2000 time)
# to 2100-01-01, in Unix ms.
_TS_RANGE = (946_684_800_000, 4_102_444_800_000)
# MLX90614 datasheet: object temperature -70.01..382.19 C (0x7FFF is the largest valid value), ambient
# -40..125 C. Anything outside is not a reading (0xFFFF = 1037.55 C is the classic broken-bus value).
_T_SITE_RANGE = (-70.01, 382.19)
_T_AMB_RANGE = (-40.0, 125.0)
_T_CORE_RANGE = (-100.0, 400.0)


def is_identifier(text: object) -> bool:
    return isinstance(text, str) and _IDENTIFIER.match(text) is not None


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    site: str | None = None
    node: str | None = None
    seq: int | None = None  # set when the payload named a valid seq of the topic's node


@dataclass(frozen=True, slots=True)
class Scan:
    site: str
    node: str
    seq: int
    boot: int
    ts: int | None
    uptime_ms: int
    mode: str
    t_site_c: float | None
    t_amb_c: float | None
    t_core_c: float | None
    verdict: str
    flags: tuple[str, ...]
    samples: int
    duration_ms: int
    retest_of: int | None
    fw: str
    cal: str


@dataclass(frozen=True, slots=True)
class Status:
    site: str
    node: str
    state: str
    fw: str | None = None
    boot: int | None = None
    config_id: str | None = None


@dataclass(frozen=True, slots=True)
class Health:
    site: str
    node: str
    uptime_ms: int | None = None
    heap_free: int | None = None
    rssi: int | None = None
    outbox_depth: int | None = None
    outbox_drops: int | None = None
    sensor_errors: int | None = None
    supply_v: float | None = None
    fw: str | None = None


Message = Scan | Status | Health


class Topics:
    """Topic names under a prefix (default `checkpoint/v1`)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")

    def node(self, site: str, node: str, kind: str) -> str:
        return f"{self.prefix}/{site}/{node}/{kind}"

    def subscriptions(self) -> list[str]:
        return [f"{self.prefix}/+/+/{kind}" for kind in NODE_KINDS]

    def alerts(self, site: str) -> str:
        return f"{self.prefix}/alerts/{site}"

    def gateway_status(self, instance: str) -> str:
        return f"{self.prefix}/gateway/{instance}/status"


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(prefix: str, topic: str, payload: bytes) -> Message | Rejection | None:
    """Validate one message a node published; see the module docstring."""
    where = _topic(prefix, topic)
    if where is None or isinstance(where, Rejection):
        return where
    site, node, kind = where
    if kind == "status" and not payload:
        return None  # a retained status being cleared
    try:
        obj = _load(payload)
        if kind == "scan":
            fast = _scan_fast(obj, site, node)
            if fast is not None:
                return fast
        _check_header(obj, site, node, required=(kind == "scan"))
        if kind == "scan":
            return _scan(obj, site, node)
        if kind == "status":
            return _status(obj, site, node)
        return _health(obj, site, node)
    except _Invalid as e:
        return Rejection(e.reason, site, node, _seq_hint(payload, kind, site, node))


@functools.lru_cache(maxsize=4096)
def _topic(prefix: str, topic: str) -> tuple[str, str, str] | Rejection | None:
    """(site, node, kind) of a node's topic, a Rejection, or None (the gateway's own status). Cached: a pure
    function of its arguments, and the same few topics (one per node and kind) come again and again."""
    parts = topic.split("/")
    base = prefix.rstrip("/").split("/")
    if len(parts) != len(base) + 3 or parts[: len(base)] != base or parts[-1] not in NODE_KINDS:
        return Rejection("bad_topic")
    site, node, kind = parts[-3:]
    if site == "gateway" and kind == "status":
        return None
    if not (is_identifier(site) and is_identifier(node)) or site in RESERVED_SITES:
        return Rejection("bad_identifier")
    return site, node, kind


def _load(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _Invalid("oversize")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("not_utf8") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise _Invalid("not_json") from None
    if not isinstance(obj, dict):
        raise _Invalid("not_object")
    return obj


def _check_header(obj: dict[str, Any], site: str, node: str, required: bool) -> None:
    if "v" not in obj:
        raise _Invalid("missing_field:v")
    if type(obj["v"]) is not int or obj["v"] != PROTOCOL_VERSION:
        raise _Invalid("bad_version")
    for field, expected in (("site", site), ("node", node)):
        if field not in obj:
            if required:
                raise _Invalid("missing_field:" + field)
            continue
        value = obj[field]
        if not isinstance(value, str):
            raise _Invalid("wrong_type:" + field)
        if not is_identifier(value):
            raise _Invalid("bad_identifier")
        if value != expected:
            raise _Invalid("identity_mismatch")


def _seq_hint(payload: bytes, kind: str, site: str, node: str) -> int | None:
    """The seq of a rejected scan, when it is readable and the payload is this node's (for the receipt)."""
    if kind != "scan" or len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("site") != site or obj.get("node") != node:
        return None
    seq = obj.get("seq")
    return seq if type(seq) is int and 0 <= seq <= _INT64 else None


def _get(obj: dict[str, Any], field: str, required: bool) -> Any:
    if field not in obj:
        if required:
            raise _Invalid("missing_field:" + field)
        return None
    return obj[field]


def _int(obj: dict[str, Any], field: str, lo: int, hi: int, nullable: bool = False, required: bool = True) -> Any:
    value = _get(obj, field, required)
    if value is None and (nullable or not required):
        return None
    if type(value) is not int:
        raise _Invalid("wrong_type:" + field)
    if not lo <= value <= hi:
        raise _Invalid("out_of_range:" + field)
    return value


def _num(
    obj: dict[str, Any],
    field: str,
    bounds: tuple[float, float],
    nullable: bool = False,
    required: bool = True,
) -> float | None:
    value = _get(obj, field, required)
    if value is None and (nullable or not required):
        return None
    if type(value) not in (int, float):
        raise _Invalid("wrong_type:" + field)
    if not math.isfinite(value):
        raise _Invalid("not_finite:" + field)
    if not bounds[0] <= value <= bounds[1]:
        raise _Invalid("out_of_range:" + field)
    return float(value)


def _text(obj: dict[str, Any], field: str, choices: tuple[str, ...] = (), required: bool = True) -> Any:
    value = _get(obj, field, required)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Invalid("wrong_type:" + field)
    if choices and value not in choices:
        raise _Invalid("out_of_range:" + field)
    if not 0 < len(value) <= _MAX_TEXT or not value.isprintable():
        raise _Invalid("out_of_range:" + field)
    return value


def _flags(obj: dict[str, Any]) -> tuple[str, ...]:
    value = _get(obj, "flags", True)
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise _Invalid("wrong_type:flags")
    if len(value) > _MAX_FLAGS or not all(_FLAG.match(f) for f in value):
        raise _Invalid("out_of_range:flags")
    return tuple(value)


def _scan(obj: dict[str, Any], site: str, node: str) -> Scan:
    seq = _int(obj, "seq", 0, _INT64)
    boot = _int(obj, "boot", 0, _INT64)
    ts = _int(obj, "ts", _TS_RANGE[0], _TS_RANGE[1], nullable=True)
    uptime_ms = _int(obj, "uptime_ms", 0, _INT64)
    mode = _text(obj, "mode", MODES)
    t_site_c = _num(obj, "t_site_c", _T_SITE_RANGE, nullable=True)
    t_amb_c = _num(obj, "t_amb_c", _T_AMB_RANGE, nullable=True)
    t_core_c = _num(obj, "t_core_c", _T_CORE_RANGE, nullable=True)
    verdict = _text(obj, "verdict", VERDICTS)
    flags = _flags(obj)
    samples = _int(obj, "samples", 0, 1_000_000)
    duration_ms = _int(obj, "duration_ms", 0, 3_600_000)
    retest_of = _int(obj, "retest_of", 0, max(seq - 1, 0), nullable=True)
    if retest_of is not None and retest_of >= seq:
        raise _Invalid("out_of_range:retest_of")
    fw = _text(obj, "fw")
    cal = _text(obj, "cal")
    return Scan(site, node, seq, boot, ts, uptime_ms, mode, t_site_c, t_amb_c, t_core_c, verdict, flags,
                samples, duration_ms, retest_of, fw, cal)  # fmt: skip


_SCAN_FIELDS = frozenset(
    ("v", "site", "node", "seq", "boot", "ts", "uptime_ms", "mode", "t_site_c", "t_amb_c", "t_core_c", "verdict",
     "flags", "samples", "duration_ms", "retest_of", "fw", "cal")
)  # fmt: skip


def _temp_ok(value: Any, bounds: tuple[float, float]) -> bool:
    # NaN and infinities fail the range test; ints are range-tested before any float conversion.
    return value is None or (type(value) in (int, float) and bounds[0] <= value <= bounds[1])


def _text_ok(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= _MAX_TEXT and value.isprintable()


def _scan_fast(obj: dict[str, Any], site: str, node: str) -> Scan | None:
    """A well-formed scan in one pass, the same Scan `_check_header` + `_scan` build; None as soon as anything
    is unusual (a field missing, a type, a range), and then the full checks run and name the reason. Accepts
    only what the full checks accept."""
    if not obj.keys() >= _SCAN_FIELDS:
        return None
    v, seq, boot, ts, uptime_ms = obj["v"], obj["seq"], obj["boot"], obj["ts"], obj["uptime_ms"]
    samples, duration_ms, retest_of = obj["samples"], obj["duration_ms"], obj["retest_of"]
    t_site_c, t_amb_c, t_core_c, flags = obj["t_site_c"], obj["t_amb_c"], obj["t_core_c"], obj["flags"]
    mode, verdict, fw, cal = obj["mode"], obj["verdict"], obj["fw"], obj["cal"]
    if not (
        type(v) is int and v == PROTOCOL_VERSION and obj["site"] == site and obj["node"] == node
        and type(seq) is int and 0 <= seq <= _INT64
        and type(boot) is int and 0 <= boot <= _INT64
        and (ts is None or (type(ts) is int and _TS_RANGE[0] <= ts <= _TS_RANGE[1]))
        and type(uptime_ms) is int and 0 <= uptime_ms <= _INT64
        and type(samples) is int and 0 <= samples <= 1_000_000
        and type(duration_ms) is int and 0 <= duration_ms <= 3_600_000
        and (retest_of is None or (type(retest_of) is int and 0 <= retest_of < seq))
        and type(mode) is str and mode in MODES
        and type(verdict) is str and verdict in VERDICTS
        and _temp_ok(t_site_c, _T_SITE_RANGE) and _temp_ok(t_amb_c, _T_AMB_RANGE)
        and _temp_ok(t_core_c, _T_CORE_RANGE)
        and _text_ok(fw) and _text_ok(cal)
        and type(flags) is list and len(flags) <= _MAX_FLAGS
        and all(type(f) is str and _FLAG.match(f) for f in flags)
    ):  # fmt: skip
        return None
    return Scan(
        site, node, seq, boot, ts, uptime_ms, mode,
        None if t_site_c is None else float(t_site_c),
        None if t_amb_c is None else float(t_amb_c),
        None if t_core_c is None else float(t_core_c),
        verdict, tuple(flags), samples, duration_ms, retest_of, fw, cal,
    )  # fmt: skip


def _status(obj: dict[str, Any], site: str, node: str) -> Status:
    state = _text(obj, "state", STATES)
    fw = _text(obj, "fw", required=False)
    boot = _int(obj, "boot", 0, _INT64, required=False)
    config_id = _text(obj, "config_id", required=False)
    return Status(site, node, state, fw, boot, config_id)


def _health(obj: dict[str, Any], site: str, node: str) -> Health:
    errors = obj.get("sensor_errors")
    if isinstance(errors, dict):  # per-kind counts ({"pec": 2, "flag": 0}): the fleet keeps the total
        if not all(type(n) is int and n >= 0 for n in errors.values()):
            raise _Invalid("wrong_type:sensor_errors")
        obj = dict(obj, sensor_errors=min(sum(errors.values()), _INT64))
    return Health(
        site,
        node,
        uptime_ms=_int(obj, "uptime_ms", 0, _INT64, required=False),
        heap_free=_int(obj, "heap_free", 0, _INT64, required=False),
        rssi=_int(obj, "rssi", -127, 20, required=False),
        outbox_depth=_int(obj, "outbox_depth", 0, _INT64, required=False),
        outbox_drops=_int(obj, "outbox_drops", 0, _INT64, required=False),
        sensor_errors=_int(obj, "sensor_errors", 0, _INT64, required=False),
        supply_v=_num(obj, "supply_v", (0.0, 10.0), required=False),
        fw=_text(obj, "fw", required=False),
    )


def scan_to_dict(scan: Scan) -> dict[str, Any]:
    """The protocol-v1 JSON object of a scan (field order as in docs/protocol.md)."""
    return {
        "v": PROTOCOL_VERSION,
        "site": scan.site,
        "node": scan.node,
        "seq": scan.seq,
        "boot": scan.boot,
        "ts": scan.ts,
        "uptime_ms": scan.uptime_ms,
        "mode": scan.mode,
        "t_site_c": scan.t_site_c,
        "t_amb_c": scan.t_amb_c,
        "t_core_c": scan.t_core_c,
        "verdict": scan.verdict,
        "flags": list(scan.flags),
        "samples": scan.samples,
        "duration_ms": scan.duration_ms,
        "retest_of": scan.retest_of,
        "fw": scan.fw,
        "cal": scan.cal,
    }
