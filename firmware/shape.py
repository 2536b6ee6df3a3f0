"""The node config's shape: defaults, types of the optional keys, ranges and choices (config.py validates by it).

A value of None in DEFAULTS means "optional" (None allowed; OPTIONAL gives the type). MicroPython subset.
"""

from contract import CONFIG, MODES, PREFIX, THRESHOLD_C, names

VARIANTS = ("BAA", "BCC", "BCI", "DAA", "DCC", "DCH", "DCI")
NARROW_FOV = ("BCI", "DCC", "DCH", "DCI")  # 5-10 deg parts: the only ones that resolve the inner canthus
# Settling time (s) at the factory filter settings, MLX90614 datasheet rev 13 section 8.3 (docs/domain.md).
SETTLE_MS = {"BAA": 100, "BCC": 140, "DAA": 100, "DCC": 140, "BCI": 650, "DCH": 650, "DCI": 650}
# What the gateway may set remotely: the contract's config message, less its authentication (ctr, sig: checked
# and taken off by downlink.py before the config is merged).
PUSH_KEYS = tuple([k for k in names(CONFIG) if k not in ("ctr", "sig")])
TRIGGERS = ("auto", "button")

# Shape and defaults. A value of None in a default means "optional" (None allowed).
DEFAULTS = {
    "site": "",
    "node": "",
    "config_id": "local",
    "prefix": PREFIX,
    "mode": "forehead",
    "threshold_c": None,
    "calibration": None,
    "reference": None,  # the unit's reference correction {"gain", "offset_c"} (reference.py), pushed by the gateway
    "wifi": {"ssid": "", "password": ""},
    "ntp_host": "pool.ntp.org",  # a post's own access point or the gateway machine where there is no internet
    # cafile: the CA certificate (PEM or DER) that signed the broker's, a file beside config.json: required with
    # tls. hmac_key: 64 hex digits, the per-node key the gateway signs receipts, verdicts and configs with
    # (auth.py, docs/security.md); without it the node trusts whatever its broker delivers. hosts: the members of
    # a broker cluster, ["host" or "host:port", ...] (at most 8; port default `port`), tried in turn (session.py).
    "broker": {
        "host": "",
        "hosts": None,
        "port": 1883,
        "tls": False,
        "cafile": None,
        "user": None,
        "password": None,
        "keepalive_s": 60,
        "hmac_key": None,
    },
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
        "sensor_power": None,  # an output switching the MLX90614's supply (high = on): sensorboot.py
    },
    "intervals": {"health_s": 60, "wdt_ms": 8000},
    # distance: a time-of-flight sensor on the same bus ("vl53l0x") or null; target_mm: the size of what must fill
    # the view (null: by mode, distance.py). Together they give the distance window a scan is taken in.
    "sensor": {
        "variant": "BAA",
        "address": 0x5A,
        "sample_ms": 20,
        "settle_ms": None,
        "iir": None,
        "fir": None,
        "distance": None,
        "target_mm": None,
    },
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
    "sensor.target_mm": (5, 300),
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


# Types of the optional keys (default None): "num", "int", "str", "dict" or "list".
OPTIONAL = {
    "broker.hosts": "list",
    "threshold_c": "num",
    "calibration": "dict",
    "reference": "dict",
    "broker.cafile": "str",
    "broker.hmac_key": "str",
    "broker.user": "str",
    "broker.password": "str",
    "pins.supply_adc": "int",
    "pins.display_addr": "int",
    "pins.sensor_power": "int",
    "sensor.settle_ms": "int",
    "sensor.iir": "int",
    "sensor.fir": "int",
    "sensor.distance": "str",
    "sensor.target_mm": "int",
}
