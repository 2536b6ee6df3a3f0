"""The node's configuration: load, validate, merge a pushed config, persist. Plain dicts, JSON on flash.

The real file is `config.json` at the root of the filesystem (git-ignored; start from config.example.json).
Validation is strict (unknown keys refused) and every failure names the key: `validate(cfg)` returns
`(full_cfg, None)` or `(None, reason)`. An invalid file at boot puts the node in safe mode (app.py).
The gateway pushes a partial config on the retained `config` topic (protocol v1): `{"v": 1, "id": "cfg-7",
"mode", "threshold_c", "calibration": {...}, "intervals": {...}, "scan": {...}, "reference": {"gain",
"offset_c"}}` (reference: the unit's correction, reference.py). Only those keys may be pushed (Wi-Fi, broker,
identity and pins are set on the node itself); `merge_push()` validates the merged result or gives the reason.
"""

import json
import os

import distance
import reference
import screening
from contract import VERSION, is_identifier
from shape import CHOICES, DEFAULTS, NARROW_FOV, OPTIONAL, PUSH_KEYS, RANGES, SETTLE_MS


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the reason."""


_TYPE_NAMES = {"num": "a number", "int": "an integer", "str": "a string", "dict": "an object", "bool": "true or false",
               "list": "a list"}  # fmt: skip


def _kind(v):
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "num"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    return "dict" if isinstance(v, dict) else "other"


def _check_value(key, default, v):
    want = OPTIONAL.get(key) if default is None else _kind(default)
    if v is None and default is None:
        return
    got = _kind(v)
    if got == want or (want == "num" and got == "int"):
        return
    raise ConfigError(key + ": must be " + (_TYPE_NAMES[want] if want in _TYPE_NAMES else str(want)))


def _fill(defaults, given, prefix):
    """A copy of `defaults` overlaid with `given`, type-checked; unknown keys refused."""
    if not isinstance(given, dict):
        raise ConfigError((prefix[:-1] or "config") + ": must be an object")
    out = {}
    for k in given:
        if k not in defaults:
            raise ConfigError("unknown key: " + prefix + k)
    for k in defaults:
        d = defaults[k]
        key = prefix + k
        if isinstance(d, dict):
            out[k] = _fill(d, given.get(k, {}), key + ".")
            continue
        v = given.get(k, d)
        _check_value(key, d, v)
        r = RANGES.get(key)
        if r is not None and v is not None and not r[0] <= v <= r[1]:
            raise ConfigError(key + ": out of range " + str(r[0]) + ".." + str(r[1]))
        c = CHOICES.get(key)
        if c is not None and v not in c:
            raise ConfigError(key + ": must be one of " + ", ".join(c))
        out[k] = v
    return out


def _check_models(cfg):  # the calibration and the unit's reference correction, each by its one validator
    try:
        if cfg["calibration"] is not None:
            screening.check_calibration(cfg["calibration"], (cfg["mode"],))
        reference.check_correction(cfg["reference"])
    except ValueError as e:
        raise ConfigError(str(e))


def _check_broker(b):
    hosts = b["hosts"]
    if not b["host"] and not hosts:
        raise ConfigError("broker.host: required (or broker.hosts, the members of a cluster)")
    if hosts is not None and not 1 <= len(hosts) <= 8:
        raise ConfigError("broker.hosts: 1 to 8 members")
    for h in hosts or ():
        host, _, port = h.partition(":") if isinstance(h, str) else ("", "", "")
        if not host or (port and not (port.isdigit() and 1 <= int(port) <= 65535)):
            raise ConfigError("broker.hosts: " + repr(h) + " is not host or host:port")
    if b["tls"] and not b["cafile"]:
        raise ConfigError("broker.tls: true needs broker.cafile (the broker's CA certificate, beside config.json)")
    k = b["hmac_key"]
    if k is not None and (len(k) != 64 or k.strip("0123456789abcdef") != ""):
        raise ConfigError("broker.hmac_key: must be 64 lowercase hex digits (checkpoint-gateway provision)")


def _check(cfg):
    for k in ("site", "node"):
        if not is_identifier(cfg[k]):
            raise ConfigError(k + ": must match [a-z0-9][a-z0-9-]{0,31} and not be alerts or gateway")
    if not isinstance(cfg["config_id"], str) or not 1 <= len(cfg["config_id"]) <= 32:
        raise ConfigError("config_id: 1-32 characters")
    _check_broker(cfg["broker"])
    sensor = cfg["sensor"]
    if cfg["mode"] == "canthus" and sensor["variant"] not in NARROW_FOV:
        raise ConfigError("mode: canthus needs a narrow-FOV sensor (" + ", ".join(NARROW_FOV) + ")")
    if (sensor["iir"] is None) != (sensor["fir"] is None):
        raise ConfigError("sensor: iir and fir are set together")
    if cfg["scan"]["max_ms"] < settle_ms(cfg):
        raise ConfigError("scan.max_ms: shorter than the sensor's settling time")
    _check_models(cfg)
    _check_distance(cfg)


def _check_distance(cfg):
    s = cfg["sensor"]
    if s["distance"] is None:
        return
    if s["distance"] not in distance.SENSORS:
        raise ConfigError("sensor.distance: must be one of " + ", ".join(distance.SENSORS) + ", or null")
    near, far = distance.window(s["variant"], distance.target_of(cfg))
    if far < near:
        raise ConfigError(
            "sensor.distance: a " + s["variant"] + " (" + str(distance.fov_deg(s["variant"])) + " deg) is filled by"
            " the target only within " + str(far) + " mm (with the ranging tolerance), nearer than the distance"
            " sensor measures (" + str(near) + " mm): use a narrower part, or no distance sensor"
        )


def validate(given):
    """(full config with defaults, None) or (None, reason)."""
    try:
        cfg = _fill(DEFAULTS, given, "")
        _check(cfg)
    except ConfigError as e:
        return None, str(e)
    return cfg, None


def settle_ms(cfg):
    """Settling time of the configured sensor and filter, ms (the node uses the part's: sensorboot.py)."""
    s = cfg["sensor"]
    if s["settle_ms"] is not None:
        return s["settle_ms"]
    if s["iir"] is None:
        return SETTLE_MS[s["variant"]]
    import mlx90614

    return mlx90614.settle_ms(SETTLE_MS[s["variant"]], s["iir"], s["fir"])


def calibration(cfg):
    """The calibration in force: the pushed one, else the shipped one."""
    if cfg["calibration"] is not None:
        return cfg["calibration"]
    import calibration as shipped

    return shipped.CALIBRATION


def scan_settings(cfg):
    """The flat settings scan.Scan runs on, from a validated config (copied: the config can be dropped)."""
    s = dict(cfg["scan"])
    s["mode"] = cfg["mode"]
    s["threshold_c"] = cfg["threshold_c"]
    s["sample_ms"] = cfg["sensor"]["sample_ms"]
    s["settle_ms"] = settle_ms(cfg)
    s["cal"] = calibration(cfg)
    s["ref"] = reference.rounded(cfg["reference"])  # the unit's correction, as its scans carry it (or None)
    s["window_mm"] = distance.window_of(cfg)  # None without a distance sensor
    s["node"] = cfg["node"]  # retest codes start with its last digit (conditions.py)
    return s


def load(path):
    """(config, None) or (None, reason) from a JSON file."""
    try:
        with open(path) as f:
            given = json.load(f)
    except OSError as e:
        return None, "cannot read " + path + " (" + str(e) + ")"
    except ValueError as e:
        return None, "not valid JSON: " + path + " (" + str(e) + ")"
    return validate(given)


def save(cfg, path):
    """Persist atomically: write a temporary file, then rename over the old one (LittleFS rename is atomic)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.rename(tmp, path)


_WHOLE = ("calibration", "reference")  # pushed whole, not merged key by key


def _overlay(cfg, push):
    """(a copy of cfg with the pushed values over it, None) or (None, reason); sections merge key by key."""
    new = {}
    for k in cfg:
        v = cfg[k]
        new[k] = dict(v) if isinstance(v, dict) and k not in _WHOLE else v
    for k in push:
        v = push[k]
        if k in ("v", "id"):
            continue
        if isinstance(v, dict) and k not in _WHOLE:
            if not isinstance(new[k], dict):
                return None, k + ": must be an object"
            new[k].update(v)
        else:
            new[k] = v
    if "id" in push:
        new["config_id"] = push["id"]
    return new, None


def merge_push(cfg, push):
    """(new config, None) or (None, reason) for a config pushed by the gateway."""
    if not isinstance(push, dict):
        return None, "config: must be an object"
    if push.get("v") != VERSION:
        return None, "v: must be " + str(VERSION)
    for k in push:
        if k not in PUSH_KEYS:
            return None, "not settable remotely: " + k
    new, reason = _overlay(cfg, push)
    if new is None:
        return None, reason
    return validate(new)
