"""Protocol v1 (docs/protocol.md) at the gateway: topics, and validation of what nodes publish. Pure.

Every name and rule comes from the one contract, firmware/contract.py, which the node runs too: the field
tables (SCAN, STATUS, HEALTH), the identifier rule, the topic words. The dataclasses below carry exactly the
contract's fields (tests/test_contract.py checks it), so a field the node sends always arrives with its value.

`parse(prefix, topic, payload)` returns a `Scan`, `Status` or `Health`, a `Rejection` with a reason from the
fixed vocabulary below, or None for messages the gateway ignores on purpose (its own status, a cleared
retained status).

Rejection reasons: not_utf8, not_json, not_object, oversize, bad_version, bad_topic, bad_identifier,
identity_mismatch, missing_field:<f>, wrong_type:<f>, not_finite:<f>, out_of_range:<f>.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any

import orjson

import firmware

# firmware/contract.py is untyped MicroPython-subset code, loaded the one way (firmware.module).
contract: Any = firmware.module("contract")

PROTOCOL_VERSION: int = contract.VERSION
DEFAULT_PREFIX: str = contract.PREFIX
MAX_PAYLOAD_BYTES: int = contract.MAX_PAYLOAD
NODE_KINDS: tuple[str, ...] = contract.UPLINK
MODES: tuple[str, ...] = contract.MODES
VERDICTS: tuple[str, ...] = contract.VERDICTS
_HEADER = ("v", "site", "node")


def is_identifier(text: object) -> bool:
    """A site or node name (contract.is_identifier): [a-z0-9][a-z0-9-]{0,31}, not a reserved topic word."""
    return bool(contract.is_identifier(text))


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    site: str | None = None
    node: str | None = None
    seq: int | None = None  # set when the payload named a valid seq of the topic's node


# Not frozen, like the other values built for every scan (screening.Assessment, nodeclock.Judgement): a frozen
# dataclass's __init__ sets each field through object.__setattr__, 4 us a scan at 28 fields (docs/benchmarks.md).
# Nothing assigns to one once it is built.
@dataclass(slots=True)
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
    # Retest codes (contract.SCAN): keyword-only, so a Scan built by position keeps its meaning.
    code: int | None = dataclasses.field(default=None, kw_only=True)
    retest_code: int | None = dataclasses.field(default=None, kw_only=True)
    wait_s: int | None = dataclasses.field(default=None, kw_only=True)
    # The unit's reference correction the node applied to t_site_c (both or neither; firmware/reference.py).
    ref_gain: float | None = dataclasses.field(default=None, kw_only=True)
    ref_offset_c: float | None = dataclasses.field(default=None, kw_only=True)
    # The unit's identity (firmware health.unit_id), None from firmware before record layout 4: part of its origin.
    unit: int | None = dataclasses.field(default=None, kw_only=True)
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
    config_error: str | None = None
    auth_refused: int | None = None  # downlink messages the node refused for their MAC or counter
    auth_error: str | None = None
    sensor_error: str | None = None  # why the node refuses to screen (its sensor must be re-powered)
    taken_over: int | None = None  # sessions the broker ended under the node (another unit with its name?)


@dataclass(frozen=True, slots=True)
class Health:
    site: str
    node: str
    uptime_ms: int | None = None
    heap_free: int | None = None
    rssi: int | None = None
    outbox_depth: int | None = None
    outbox_drops: int | None = None
    outbox_errors: int | None = None
    sensor_errors: int | None = None  # the total when the node sends counts by kind
    supply_v: float | None = None
    fw: str | None = None
    scans: int | None = None
    task_restarts: int | None = None
    uplink: dict[str, Any] | None = None


Message = Scan | Status | Health
_TABLES: dict[type[Any], Any] = {Scan: contract.SCAN, Status: contract.STATUS, Health: contract.HEALTH}
_CLASSES: dict[str, type[Any]] = {"scan": Scan, "status": Status, "health": Health}


class Topics:
    """Topic names under a prefix (default `checkpoint/v1`), as contract.topic lays them out."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")

    def node(self, site: str, node: str, kind: str) -> str:
        return str(contract.topic(self.prefix, site, node, kind))

    def subscriptions(self) -> list[str]:
        return [self.node("+", "+", kind) for kind in NODE_KINDS]

    def alerts(self, site: str) -> str:
        return f"{self.prefix}/{contract.ALERTS}/{site}"

    def gateway_status(self, instance: str) -> str:
        return f"{self.prefix}/{contract.GATEWAY}/{instance}/status"


def parse(prefix: str, topic: str, payload: bytes) -> Message | Rejection | None:
    """Validate one message a node published; see the module docstring."""
    where = _topic(prefix, topic)
    if where is None or isinstance(where, Rejection):
        return where
    site, node, kind = where
    if kind == "status" and not payload:
        return None  # a retained status being cleared
    obj = _load(payload)
    if isinstance(obj, str):
        return Rejection(obj, site, node)
    if kind == "scan":
        fast = read_scan_fast(obj, site, node)
        if fast is not None:
            return fast
    message: Message | Rejection = read(_CLASSES[kind], obj, site, node)
    if isinstance(message, Rejection) and kind == "scan":
        return Rejection(message.reason, site, node, _seq_hint(obj, site, node))
    return message


@functools.lru_cache(maxsize=4096)
def _topic(prefix: str, topic: str) -> tuple[str, str, str] | Rejection | None:
    """(site, node, kind) of a node's topic, a Rejection, or None (the gateway's own status). Cached: a pure
    function of its arguments, and the same few topics (one per node and kind) come again and again."""
    parts = topic.split("/")
    base = prefix.rstrip("/").split("/")
    if len(parts) != len(base) + 3 or parts[: len(base)] != base or parts[-1] not in NODE_KINDS:
        return Rejection("bad_topic")
    site, node, kind = parts[-3:]
    if site == contract.GATEWAY and kind == "status":
        return None
    if not (is_identifier(site) and is_identifier(node)):
        return Rejection("bad_identifier")
    return site, node, kind


def _load(payload: bytes) -> dict[str, Any] | str:
    """The JSON object of a payload, or the reason it is not one. orjson reads the well-formed ones (a quarter of
    the json module's time, docs/benchmarks.md); what it refuses is read again by the json module, so that the
    reason stays the one it names: not UTF-8, not JSON, or a NaN or Infinity (which orjson refuses as not JSON
    and json reads, for the field checks to name the field: not_finite:t_site_c), or an integer beyond 64 bits."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return "oversize"
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return "not_utf8"
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return "not_json"
    return obj if isinstance(obj, dict) else "not_object"


def _header_problem(obj: dict[str, Any], site: str, node: str, required: bool) -> str | None:
    if "v" not in obj:
        return "missing_field:v"
    if type(obj["v"]) is not int or obj["v"] != PROTOCOL_VERSION:
        return "bad_version"
    for field, expected in (("site", site), ("node", node)):
        if field not in obj:
            if required:
                return "missing_field:" + field
            continue
        value = obj[field]
        if not isinstance(value, str):
            return "wrong_type:" + field
        if not is_identifier(value):
            return "bad_identifier"
        if value != expected:
            return "identity_mismatch"
    return None


def read(cls: type[Any], obj: dict[str, Any], site: str, node: str) -> Any:
    """The full checks: a `cls` (Scan, Status or Health) built from the JSON object `obj` of node site/node by
    the contract's table, or the Rejection naming the first problem."""
    table = _TABLES[cls]
    problem = _header_problem(obj, site, node, required=cls is Scan) or contract.check(obj, table)
    if problem is None and cls is Scan:
        problem = _scan_problem(obj)
    if problem is not None:
        return Rejection(problem, site, node)
    values = {}
    for name, kind, *_ in table:
        if name in _HEADER:
            continue
        value = obj.get(name)
        if value is not None and kind == "num":
            value = float(value)
        elif kind == "flags" and value is not None:
            value = tuple(value)
        elif kind == "count" and isinstance(value, dict):
            value = min(sum(value.values()), contract.INT64)
        values[name] = value
    return cls(site=site, node=node, **values)


def _scan_problem(obj: dict[str, Any]) -> str | None:
    """What the table cannot say of a scan: retest_of before seq, and a reference correction whole or absent."""
    if obj["retest_of"] is not None and obj["retest_of"] >= obj["seq"]:
        return "out_of_range:retest_of"
    if (obj.get("ref_gain") is None) != (obj.get("ref_offset_c") is None):
        return "missing_field:" + ("ref_gain" if obj.get("ref_gain") is None else "ref_offset_c")
    return None


def _seq_hint(obj: dict[str, Any], site: str, node: str) -> int | None:
    """The seq of a rejected scan, when it is readable and the payload is this node's (for the receipt)."""
    if obj.get("site") != site or obj.get("node") != node:
        return None
    seq = obj.get("seq")
    return seq if type(seq) is int and 0 <= seq <= contract.INT64 else None


def _bounds(table: Any) -> dict[str, tuple[Any, Any]]:
    return {f[0]: (f[2], f[3]) for f in table}


_SCAN_FIELDS = frozenset(f[0] for f in contract.SCAN if f[4] != contract.OPT)  # the optional ones may be absent
_B = _bounds(contract.SCAN)
_TS, _T_SITE, _T_AMB, _T_CORE = _B["ts"], _B["t_site_c"], _B["t_amb_c"], _B["t_core_c"]
_SAMPLES, _DURATION, _INT64 = _B["samples"][1], _B["duration_ms"][1], contract.INT64
_TEXT_MAX, _FLAGS_MAX = contract.TEXT_MAX, contract.FLAGS_MAX
_CODE, _WAIT = _B["code"], _B["wait_s"][1]
_GAIN, _OFFSET = _B["ref_gain"], _B["ref_offset_c"]
_UNIT = _B["unit"]


def _temp_ok(value: Any, bounds: tuple[float, float]) -> bool:
    # NaN and infinities fail the range test; ints are range-tested before any float conversion.
    return value is None or (type(value) in (int, float) and bounds[0] <= value <= bounds[1])


def _code_ok(value: Any) -> bool:
    return value is None or (type(value) is int and _CODE[0] <= value <= _CODE[1])


def _wait_ok(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value <= _WAIT)


def _ref_ok(gain: Any, offset: Any) -> bool:
    if gain is None or offset is None:
        return gain is None and offset is None
    return type(gain) in (int, float) and _GAIN[0] <= gain <= _GAIN[1] and _temp_ok(offset, _OFFSET)


def _text_ok(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= _TEXT_MAX and value.isprintable()


def read_scan_fast(obj: dict[str, Any], site: str, node: str) -> Scan | None:
    """A well-formed scan in one pass, the same Scan `read` builds, with the contract's bounds; None as soon as
    anything is unusual (a field missing, a type, a range), and then the full checks run and name the reason.
    Accepts only what the full checks accept (tests/gateway/test_protocol_fastpath.py, 30,000 mutations)."""
    if not obj.keys() >= _SCAN_FIELDS:
        return None
    v, seq, boot, ts, uptime_ms = obj["v"], obj["seq"], obj["boot"], obj["ts"], obj["uptime_ms"]
    samples, duration_ms, retest_of = obj["samples"], obj["duration_ms"], obj["retest_of"]
    t_site_c, t_amb_c, t_core_c, flags = obj["t_site_c"], obj["t_amb_c"], obj["t_core_c"], obj["flags"]
    mode, verdict, fw, cal = obj["mode"], obj["verdict"], obj["fw"], obj["cal"]
    code, retest_code, wait_s = obj.get("code"), obj.get("retest_code"), obj.get("wait_s")
    ref_gain, ref_offset_c, unit = obj.get("ref_gain"), obj.get("ref_offset_c"), obj.get("unit")
    if not (
        type(v) is int and v == PROTOCOL_VERSION and obj["site"] == site and obj["node"] == node
        and type(seq) is int and 0 <= seq <= _INT64
        and type(boot) is int and 0 <= boot <= _INT64
        and (ts is None or (type(ts) is int and _TS[0] <= ts <= _TS[1]))
        and type(uptime_ms) is int and 0 <= uptime_ms <= _INT64
        and type(samples) is int and 0 <= samples <= _SAMPLES
        and type(duration_ms) is int and 0 <= duration_ms <= _DURATION
        and (retest_of is None or (type(retest_of) is int and 0 <= retest_of < seq))
        and type(mode) is str and mode in MODES
        and type(verdict) is str and verdict in VERDICTS
        and _temp_ok(t_site_c, _T_SITE) and _temp_ok(t_amb_c, _T_AMB) and _temp_ok(t_core_c, _T_CORE)
        and _text_ok(fw) and _text_ok(cal)
        and _code_ok(code) and _code_ok(retest_code) and _wait_ok(wait_s) and _ref_ok(ref_gain, ref_offset_c)
        and (unit is None or (type(unit) is int and _UNIT[0] <= unit <= _UNIT[1]))
        and type(flags) is list and len(flags) <= _FLAGS_MAX
        and all(type(f) is str and contract.is_flag(f) for f in flags)
    ):  # fmt: skip
        return None
    return Scan(
        site, node, seq, boot, ts, uptime_ms, mode,
        None if t_site_c is None else float(t_site_c),
        None if t_amb_c is None else float(t_amb_c),
        None if t_core_c is None else float(t_core_c),
        verdict, tuple(flags), samples, duration_ms, retest_of, fw, cal,
        code=code, retest_code=retest_code, wait_s=wait_s,
        ref_gain=None if ref_gain is None else float(ref_gain),
        ref_offset_c=None if ref_offset_c is None else float(ref_offset_c), unit=unit,
    )  # fmt: skip


def to_dict(message: Message) -> dict[str, Any]:
    """The protocol-v1 JSON object of a message, fields in the contract's order."""
    values = dict(dataclasses.asdict(message), v=PROTOCOL_VERSION)
    if isinstance(message, Scan):
        values["flags"] = list(message.flags)
    kept = contract.NULL if isinstance(message, Scan) else contract.REQ  # a scan's null fields are written null,
    fields = _TABLES[type(message)]  # but an optional one only with a value (as the node's record.to_payload)
    return {f[0]: values[f[0]] for f in fields if f[0] in values and (values[f[0]] is not None or f[4] <= kept)}


def scan_to_dict(scan: Scan) -> dict[str, Any]:
    """The protocol-v1 JSON object of a scan (field order as in the contract)."""
    return to_dict(scan)
