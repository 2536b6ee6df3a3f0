"""The node's configuration: load, validate, merge a pushed config, persist. Plain dicts, JSON on flash.

The real file is `config.json` at the root of the filesystem (git-ignored; start from config.example.json).
Validation is strict (unknown keys refused) and every failure names the key: `validate(cfg)` returns
`(full_cfg, None)` or `(None, reason)`. An invalid file at boot puts the node in safe mode (app.py).

The gateway pushes a partial config on the retained `config` topic (protocol v1):
`{"v": 1, "id": "cfg-7", "mode": ..., "threshold_c": ..., "calibration": {...}, "intervals": {...},
"scan": {...}}`. Only those keys may be pushed (Wi-Fi, broker, identity and pins are set on the node itself);
`merge_push()` validates the merged result and returns a reason on refusal.
"""

import json
import os

import screening
from contract import MODES, THRESHOLD_C, is_identifier

VARIANTS = ("BAA", "BCC", "BCI", "DAA", "DCC", "DCH", "DCI")
NARROW_FOV = ("BCI", "DCC", "DCH", "DCI")  # 5-10 deg parts: the only ones that resolve the inner canthus
# Settling time (s) at the factory filter settings, MLX90614 datasheet rev 13 section 8.3 (DOMAIN.md).
SETTLE_MS = {"BAA": 100, "BCC": 140, "DAA": 100, "DCC": 140, "BCI": 650, "DCH": 650, "DCI": 650}
PUSH_KEYS = ("v", "id", "mode", "threshold_c", "calibration", "intervals", "scan")
TRIGGERS = ("auto", "button")

# Shape and defaults. A value of None in a default means "optional" (None allowed).
DEFAULTS = {
    "site": "",
    "node": "",
    "config_id": "local",
    "prefix": "checkpoint/v1",
    "mode": "forehead",
    "threshold_c": None,
    "calibration": None,
    "wifi": {"ssid": "", "password": ""},
    "broker": {"host": "", "port": 1883, "tls": False, "user": None, "password": None, "keepalive_s": 60},
    "pins": {
        "sda": 21,
        "scl": 22,
        "button": 0,
        "led_green": 25,
        "led_amber": 26,
        "led_red": 27,
        "buzzer": 14,
        "led_link": 2,
        "supply_adc": None,
        "display_addr": None,
    },
    "intervals": {"health_s": 60, "wdt_ms": 8000},
    "sensor": {"variant": "BAA", "address": 0x5A, "sample_ms": 20, "settle_ms": None, "iir": None, "fir": None},
    "scan": {
        "trigger": "auto",
        "margin_c": 3.0,
        "sweep_ms": 600,
        "max_ms": 900,
        "plateau_ms": 400,
        "plateau_c": 0.15,
        "unstable_c": 1.5,
        "low_supply_v": 3.1,
        "long_press_ms": 1000,
        "auto_retest_s": 0,
    },
}
# (min, max) for numbers; strings listed here must be one of the values.
RANGES = {
    "broker.port": (1, 65535),
    "broker.keepalive_s": (10, 3600),
    "threshold_c": THRESHOLD_C,
    "intervals.health_s": (5, 3600),
    "intervals.wdt_ms": (2000, 60000),
    "sensor.address": (1, 127),
    "sensor.sample_ms": (5, 1000),
    "sensor.settle_ms": (20, 7000),
    "sensor.iir": (0, 7),
    "sensor.fir": (0, 7),
    "scan.margin_c": (0.5, 20.0),
    "scan.sweep_ms": (100, 5000),
    "scan.max_ms": (200, 10000),
    "scan.plateau_ms": (40, 2000),
    "scan.plateau_c": (0.01, 2.0),
    "scan.unstable_c": (0.1, 10.0),
    "scan.low_supply_v": (2.0, 3.6),
    "scan.long_press_ms": (200, 10000),
    "scan.auto_retest_s": (0, 3600),
}
CHOICES = {"mode": MODES, "sensor.variant": VARIANTS, "scan.trigger": TRIGGERS}


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the reason."""


# Types of the optional keys (default None): "num", "int", "str" or "dict".
OPTIONAL = {
    "threshold_c": "num",
    "calibration": "dict",
    "broker.user": "str",
    "broker.password": "str",
    "pins.supply_adc": "int",
    "pins.display_addr": "int",
    "sensor.settle_ms": "int",
    "sensor.iir": "int",
    "sensor.fir": "int",
}
_TYPE_NAMES = {"num": "a number", "int": "an integer", "str": "a string", "dict": "an object", "bool": "true or false"}


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


def _check_calibration(cal, mode):
    if cal is None:
        return
    try:
        screening.check_calibration(cal, (mode,))
    except ValueError as e:
        raise ConfigError(str(e))


def _check(cfg):
    for k in ("site", "node"):
        if not is_identifier(cfg[k]):
            raise ConfigError(k + ": must match [a-z0-9][a-z0-9-]{0,31} and not be alerts or gateway")
    if not isinstance(cfg["config_id"], str) or not 1 <= len(cfg["config_id"]) <= 32:
        raise ConfigError("config_id: 1-32 characters")
    if not cfg["broker"]["host"]:
        raise ConfigError("broker.host: required")
    sensor = cfg["sensor"]
    if cfg["mode"] == "canthus" and sensor["variant"] not in NARROW_FOV:
        raise ConfigError("mode: canthus needs a narrow-FOV sensor (" + ", ".join(NARROW_FOV) + ")")
    if (sensor["iir"] is None) != (sensor["fir"] is None):
        raise ConfigError("sensor: iir and fir are set together")
    if sensor["iir"] is not None and sensor["settle_ms"] is None:
        raise ConfigError("sensor.settle_ms: required with a custom filter (datasheet table 8.3)")
    if cfg["scan"]["max_ms"] < settle_ms(cfg):
        raise ConfigError("scan.max_ms: shorter than the sensor's settling time")
    _check_calibration(cfg["calibration"], cfg["mode"])


def validate(given):
    """(full config with defaults, None) or (None, reason)."""
    try:
        cfg = _fill(DEFAULTS, given, "")
        _check(cfg)
    except ConfigError as e:
        return None, str(e)
    return cfg, None


def settle_ms(cfg):
    """Settling time of the configured sensor and filter, ms."""
    s = cfg["sensor"]
    return s["settle_ms"] if s["settle_ms"] is not None else SETTLE_MS[s["variant"]]


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


def merge_push(cfg, push):
    """(new config, None) or (None, reason) for a config pushed by the gateway."""
    if not isinstance(push, dict):
        return None, "config: must be an object"
    if push.get("v") != 1:
        return None, "v: must be 1"
    for k in push:
        if k not in PUSH_KEYS:
            return None, "not settable remotely: " + k
    new = {}
    for k in cfg:
        v = cfg[k]
        new[k] = dict(v) if isinstance(v, dict) and k != "calibration" else v
    for k in push:
        if k in ("v", "id"):
            continue
        v = push[k]
        if isinstance(v, dict) and k != "calibration":
            if not isinstance(new[k], dict):
                return None, k + ": must be an object"
            new[k].update(v)
        else:
            new[k] = v
    if "id" in push:
        new["config_id"] = push["id"]
    return validate(new)
