"""The compact binary form of one scan result (what the outbox stores) and its protocol-v1 JSON.

A scan is about 45 bytes here instead of about 330 bytes of JSON, so 10,000 scans fit in well under 1 MiB of
flash. The scan dict the node hands in has every protocol field except v/site/node/seq (those are added by
`to_payload`, from the outbox seq and the node's identity).

Byte layout, version 4 (1, before retest codes, ends after cal: its code, retest_code and wait_s are null; 2
ends after wait_s: its reference correction is null; 3 ends before unit: it has none; all are still read).
"uv" and "sv" are varint.py's (LEB128; signed values zigzag-mapped); temperatures are stored as sv of
round(t * 100), i.e. exact to 0.01 C whatever the float width (the ESP32 port uses 32-bit floats).

    byte 0       layout version (4)
    byte 1       bit 0 mode (0 forehead, 1 canthus); bits 1-2 verdict (index in VERDICTS);
                 presence bits: 3 ts, 4 t_site_c, 5 t_amb_c, 6 t_core_c, 7 retest_of (absent = null)
    uv           flags bitmask: bit i = FLAGS[i]
    uv           boot
    uv           ts (Unix ms UTC)                     only if present
    uv           uptime_ms
    sv           t_site_c * 100                       only if present
    sv           t_amb_c * 100                        only if present
    sv           t_core_c * 100                       only if present
    uv           samples
    uv           duration_ms
    uv           retest_of                            only if present
    u8 + bytes   fw (printable ASCII, no quote or backslash, at most contract.TEXT_MAX bytes)
    u8 + bytes   cal (same rules)
    uv           code + 1 (0 = null)                  layout 2 only
    uv           retest_code + 1 (0 = null)           layout 2 only
    uv           wait_s + 1 (0 = null)                layout 2 and 3
    u8           1 if the reference correction follows, else 0        layout 3
    sv, sv       ref_gain * 10**5, ref_offset_c * 10**3 (reference.py's rounding)     only if present
    uv           unit (0 = none: a scan handed in without one)                        layout 4

MODES, VERDICTS and FLAGS (the bit of each flag) come from contract.py; FLAGS is append-only there: a new flag
takes the next bit, a bit is never reused or reordered. `unpack` returns flags in FLAGS order (a set of
conditions, not a sequence).
"""

from contract import FLAGS, MODES, OPT, ORIGIN_MAX, SCAN, TEXT_MAX, VERDICTS, is_plain
from varint import Reader, put, put_sv

LAYOUT = 4
LAYOUTS = (1, 2, 3, 4)  # readable: records already on flash keep their layout until they are receipted

_TEMPS = ("t_site_c", "t_amb_c", "t_core_c")
_IGNORED = ("v", "site", "node", "seq")  # the message's header: added by to_payload, not stored
_TAIL = ("code", "retest_code", "wait_s")  # layout 2; optional in the scan dict the node hands in
_REF = ("ref_gain", "ref_offset_c")  # layout 3, both or neither; optional too
_OPTIONAL = _TAIL + _REF + ("unit",)  # unit: layout 4 (health.unit_id), optional too
_DIGITS = {"ref_gain": 5, "ref_offset_c": 3}  # decimals kept (temperatures: 2)
_FIELDS = tuple([f[0] for f in SCAN if f[0] not in _IGNORED])
_TEMP_LIMIT = 1000.0  # |t| beyond this is not a reading; also rejects NaN and infinities


def _uint(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError("scan." + name + ": need an int >= 0, got " + repr(v))
    return v


def _centi(name, t):
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (-_TEMP_LIMIT < t < _TEMP_LIMIT):
        raise ValueError("scan." + name + ": need a temperature in C, got " + repr(t))
    return round(t * 100)


def _text(name, s):
    if not is_plain(s):
        raise ValueError("scan." + name + ": need 1-" + str(TEXT_MAX) + " printable ASCII characters, no quotes")
    return s.encode()


def _flag_bits(flags):
    if not isinstance(flags, (list, tuple)):
        raise ValueError("scan.flags: need a list of strings, got " + repr(flags))
    bits = 0
    for f in flags:
        if f not in FLAGS:
            raise ValueError("scan.flags: unknown flag " + repr(f))
        bits |= 1 << FLAGS.index(f)
    return bits


def _index(name, table, v):
    if v not in table:
        raise ValueError("scan." + name + ": one of " + ", ".join(table) + ", got " + repr(v))
    return table.index(v)


def _head(scan, opt):
    """Byte 1 of the layout: mode, verdict and which optional values are present."""
    head = _index("mode", MODES, scan["mode"]) | (_index("verdict", VERDICTS, scan["verdict"]) << 1)
    for i in range(5):
        if opt[i] is not None:
            head |= 1 << (3 + i)
    return head


def _check_names(scan):
    for k in scan:
        if k not in _FIELDS and k not in _IGNORED:
            raise ValueError("scan: unknown field " + repr(k))
    for k in _FIELDS:
        if k not in scan and k not in _OPTIONAL:
            raise ValueError("scan: missing field " + k)


def pack(scan):
    """The bytes of one scan (layout above). ValueError names the first bad or missing field."""
    _check_names(scan)
    opt = (scan["ts"], scan["t_site_c"], scan["t_amb_c"], scan["t_core_c"], scan["retest_of"])
    buf = bytearray((LAYOUT, _head(scan, opt)))
    put(buf, _flag_bits(scan["flags"]))
    put(buf, _uint("boot", scan["boot"]))
    if opt[0] is not None:
        put(buf, _uint("ts", opt[0]))
    put(buf, _uint("uptime_ms", scan["uptime_ms"]))
    for name in _TEMPS:
        if scan[name] is not None:
            put_sv(buf, _centi(name, scan[name]))
    put(buf, _uint("samples", scan["samples"]))
    put(buf, _uint("duration_ms", scan["duration_ms"]))
    if opt[4] is not None:
        put(buf, _uint("retest_of", opt[4]))
    for name in ("fw", "cal"):
        b = _text(name, scan[name])
        buf.append(len(b))
        buf.extend(b)
    for name in _TAIL:  # layout 2's retest codes, each + 1 (0 = null)
        put(buf, 0 if scan.get(name) is None else _uint(name, scan[name]) + 1)
    _pack_ref(buf, [scan.get(name) for name in _REF])
    unit = scan.get("unit") or 0  # 0: none
    if _uint("unit", unit) > ORIGIN_MAX:
        raise ValueError("scan.unit: need 1 .. 2**32-1, got " + repr(unit))
    put(buf, unit)
    return bytes(buf)


def _pack_ref(buf, ref):
    """Layout 3's reference correction (both values or neither), as scaled ints."""
    if (ref[0] is None) != (ref[1] is None):
        raise ValueError("scan: ref_gain and ref_offset_c come together")
    buf.append(0 if ref[0] is None else 1)
    for i in range(2 if ref[0] is not None else 0):
        v = ref[i]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not -10 < v < 10:
            raise ValueError("scan." + _REF[i] + ": need a number, got " + repr(v))
        put_sv(buf, round(v * 10 ** _DIGITS[_REF[i]]))


def _decode_tail(r, layout, d):
    """Layout 2's retest codes, layout 3's reference correction and layout 4's unit, into `d`."""
    for name in _TAIL:  # absent when null: the dict stays as small as layout 1's (the TLS heap's margin)
        n = r.uv() if layout > 1 else 0
        if n:
            d[name] = n - 1
    if layout > 2 and r.byte():
        for name in _REF:
            d[name] = r.sv()
    unit = r.uv() if layout > 3 else 0
    if unit:
        d["unit"] = unit


def _decode(b):
    """The stored values as ints (temperatures in centi-degrees C); ValueError on a malformed record."""
    r = Reader(b)
    layout = r.byte()
    if layout not in LAYOUTS:
        raise ValueError("record: unknown layout " + str(b[0]))
    head = r.byte()
    d = {"mode": MODES[head & 1], "verdict": VERDICTS[(head >> 1) & 3]}
    bits = r.uv()
    if bits >> len(FLAGS):
        raise ValueError("record: unknown flag bits")
    d["flags"] = [FLAGS[i] for i in range(len(FLAGS)) if bits & (1 << i)]
    d["boot"] = r.uv()
    d["ts"] = r.uv() if head & 0x08 else None
    d["uptime_ms"] = r.uv()
    for i in range(3):
        d[_TEMPS[i]] = r.sv() if head & (0x10 << i) else None
    d["samples"] = r.uv()
    d["duration_ms"] = r.uv()
    d["retest_of"] = r.uv() if head & 0x80 else None
    d["fw"] = r.text()
    d["cal"] = r.text()
    _decode_tail(r, layout, d)
    if r.i != len(b):
        raise ValueError("record: trailing bytes")
    return d


def unpack(b):
    """The scan dict packed in `b` (temperatures as floats in C, rounded to 0.01 C)."""
    d = _decode(b)
    for name in _TEMPS:
        if d[name] is not None:
            d[name] = d[name] / 100
    for name in _REF:
        d[name] = d[name] / 10 ** _DIGITS[name] if name in d else None
    for name in _TAIL + ("unit",):
        d.setdefault(name, None)
    return d


def _json(kind, v, digits):
    """One value as JSON; numbers ("num") are the stored ints, with `digits` decimals."""
    if v is None:
        return "null"
    if kind == "num":
        unit = 10**digits
        return ("-" if v < 0 else "") + str(abs(v) // unit) + "." + str(unit + abs(v) % unit)[1:]
    if kind in ("text", "enum"):
        return '"' + v + '"'  # identifiers, enums and record texts hold no quote, backslash or control byte
    if kind == "flags":
        return "[" + ",".join(['"' + f + '"' for f in v]) + "]"
    return str(v)


def to_payload(seq, b, site, node):
    """Protocol-v1 JSON (bytes) for the scan topic, fields in contract.SCAN order; an optional field only with a
    value (a scan that opens no case is as long as before retest codes: the TLS heap's margin). Temperatures are
    written from the stored centi-degrees: the payload is byte-identical on the ESP32, MicroPython and CPython."""
    d = _decode(b)
    d["v"], d["site"], d["node"], d["seq"] = 1, site, node, _uint("seq", seq)
    parts = ['"' + f[0] + '":' + _json(f[1], d[f[0]], _DIGITS.get(f[0], 2)) for f in SCAN if f[4] != OPT or f[0] in d]
    parts[0], parts[-1] = "{" + parts[0], parts[-1] + "}"  # two long strings, not four: a fragmented heap
    return ",".join(parts).encode()
