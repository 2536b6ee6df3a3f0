"""Configuration: one TOML file, validated at the door, then environment, then command-line flags.

Precedence (last wins): defaults < TOML file < environment `CHECKPOINT_<SECTION>_<KEY>` < CLI flags.
Unknown sections or keys, wrong types and out-of-range values are refused with the key and the reason.
Secrets never live in the file: the MQTT password comes from `CHECKPOINT_MQTT_PASSWORD` or `password_file`.
See deploy/gateway.example.toml for every key with its meaning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

import firmware
from gateway.errors import ConfigError
from gateway.notify import settings as notify_settings
from gateway.notify.settings import NotifySection
from gateway.protocol import DEFAULT_PREFIX, is_identifier

# firmware/ is untyped MicroPython-subset code, loaded the one way (firmware.module).
contract: Any = firmware.module("contract")
screening: Any = firmware.module("screening")
ENV_PREFIX = "CHECKPOINT_"
_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


@dataclass(frozen=True)
class GatewaySection:
    instance: str = "gateway-1"  # MQTT client id (persistent session) and status topic name
    registry: str = ""  # the node registry (checkpoint-gateway provision; gateway/signing.py); "" = none
    log_level: str = "info"


@dataclass(frozen=True)
class MqttSection:
    broker: str = "mqtt://127.0.0.1:1883"  # mqtt://, mqtts:// (TLS), amqp://h1:p1,h2:p2/ (a RabbitMQ cluster), amqps://
    username: str = ""
    password: str = field(default="", repr=False)  # environment only (CHECKPOINT_MQTT_PASSWORD)
    password_file: str = ""
    ca_file: str = ""
    topic_prefix: str = DEFAULT_PREFIX
    share_group: str = ""  # "" = plain subscription; a name = $share/<name>/... for several instances
    keepalive_s: int = 30


@dataclass(frozen=True)
class StoreSection:
    db: str = "sqlite:///var/checkpoint.db"
    synchronous: str = "full"  # see docs/gateway.md: a receipt lets the node delete its copy


@dataclass(frozen=True)
class IngestSection:
    max_batch: int = 200  # messages per transaction at most
    verdict_to_node: bool = True  # publish the authoritative verdict when it matters


@dataclass(frozen=True)
class ScreeningSection:
    calibration_file: str = ""  # JSON calibration; "" = the shipped one (firmware/calibration.py)
    threshold_forehead_c: float | None = None  # None = the calibration's operating point
    threshold_canthus_c: float | None = None


@dataclass(frozen=True)
class AlertsSection:
    offline_after_s: int = 180  # silence that makes a node offline (health comes every 60 s)
    check_interval_s: float = 5.0
    sensor_fault_count: int = 3  # this many sensor_fault scans ...
    sensor_fault_window_s: int = 300  # ... within this window raise a sensor_fault alert
    sensor_fault_clear_after: int = 5  # consecutive valid scans that resolve it
    clock_skew_s: int = 300  # a node clock off by more than this raises clock_skew; its scans filed by ours
    reference_every_h: float = 12.0  # an online node's reference check older than this raises reference_overdue


@dataclass(frozen=True)
class ReportSection:
    timezone: str = "UTC"  # day boundaries for `report --day` and naive --since/--until


@dataclass(frozen=True)
class WebSection:
    host: str = "127.0.0.1"  # the console (checkpoint-gateway web); loopback unless a proxy with TLS is in front
    port: int = 8080
    session_secret_file: str = "var/web-session.key"  # keys the stored session ids; made (0600) when missing
    session_hours: float = 12.0  # a session ends this long after login (one shift)
    poll_interval_s: float = 0.5  # how often live pages look for new alert events in the database
    public_url: str = ""  # how people reach the console (https://...): links in notifications; "" = no link
    followup_days: int = 28  # personal follow-up details are deleted this long after they were recorded


@dataclass(frozen=True)
class MetricsSection:
    listen: str = ""  # host:port of the Prometheus endpoint (/metrics), e.g. "127.0.0.1:9108"; "" = off
    console_listen: str = ""  # the console's (checkpoint-gateway web), e.g. "127.0.0.1:9109"; "" = off
    notify_listen: str = ""  # the notifier's (checkpoint-gateway notify), e.g. "127.0.0.1:9110"; "" = off


@dataclass(frozen=True)
class HomeAssistantSection:
    enabled: bool = False  # MQTT discovery of nodes and sites (gateway/homeassistant.py); no people's temperatures
    discovery_prefix: str = "homeassistant"  # Home Assistant's discovery prefix (its MQTT integration's setting)


@dataclass(frozen=True)
class Config:
    gateway: GatewaySection = GatewaySection()
    mqtt: MqttSection = MqttSection()
    store: StoreSection = StoreSection()
    ingest: IngestSection = IngestSection()
    screening: ScreeningSection = ScreeningSection()
    alerts: AlertsSection = AlertsSection()
    report: ReportSection = ReportSection()
    web: WebSection = WebSection()
    metrics: MetricsSection = MetricsSection()
    homeassistant: HomeAssistantSection = HomeAssistantSection()
    notify: NotifySection = field(
        default_factory=NotifySection
    )  # receivers, routes, timings: gateway/notify/settings.py


_SECRET_KEYS = {("mqtt", "password")}


def _ranges() -> dict[tuple[str, str], Callable[[Any], str | None]]:
    def within(lo: float, hi: float) -> Callable[[Any], str | None]:
        return lambda v: None if lo <= v <= hi else f"is {v}, must be between {lo} and {hi}"

    def one_of(*choices: str) -> Callable[[Any], str | None]:
        return lambda v: None if v in choices else "must be one of " + ", ".join(choices)

    return {
        ("gateway", "instance"): lambda v: None if _INSTANCE.match(v) else "must match [A-Za-z0-9][A-Za-z0-9_-]*",
        ("gateway", "log_level"): one_of("debug", "info", "warning", "error"),
        ("mqtt", "broker"): _check_broker,
        ("mqtt", "topic_prefix"): lambda v: None if v and "+" not in v and "#" not in v else "no wildcards",
        ("mqtt", "share_group"): lambda v: None if not v or is_identifier(v) else "must match [a-z0-9][a-z0-9-]*",
        ("mqtt", "keepalive_s"): within(5, 3600),
        ("store", "synchronous"): one_of("full", "normal"),
        ("ingest", "max_batch"): within(1, 10_000),
        ("screening", "threshold_forehead_c"): within(*contract.THRESHOLD_C),
        ("screening", "threshold_canthus_c"): within(*contract.THRESHOLD_C),
        ("alerts", "offline_after_s"): within(10, 86_400),
        ("alerts", "check_interval_s"): within(0.1, 3600),
        ("alerts", "sensor_fault_count"): within(1, 1000),
        ("alerts", "sensor_fault_window_s"): within(1, 86_400),
        ("alerts", "sensor_fault_clear_after"): within(1, 1000),
        ("alerts", "clock_skew_s"): within(1, 86_400),
        ("alerts", "reference_every_h"): within(1, 168),
        ("report", "timezone"): _check_timezone,
        ("web", "port"): within(0, 65_535),
        ("web", "session_hours"): within(0.1, 168),
        ("web", "poll_interval_s"): within(0.05, 10),
        ("web", "followup_days"): within(1, 366),
        ("web", "public_url"): lambda v: None if not v or v.startswith(("http://", "https://")) else "needs http(s)",
        ("metrics", "listen"): _check_listen,
        ("metrics", "console_listen"): _check_listen,
        ("metrics", "notify_listen"): _check_listen,
        ("homeassistant", "discovery_prefix"): lambda v: None if v and not set(v) & set("+#") else "no wildcards",
    }


def _check_listen(text: str) -> str | None:
    """Empty (off) or host:port (a port from 0 to 65535; 0 = any free one)."""
    host, _, port = text.rpartition(":")
    if text and not (host and port.isdigit() and int(port) <= 65_535):
        return "must be host:port, e.g. 127.0.0.1:9108 (or empty: off)"
    return None


def _check_broker(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("amqp", "amqps"):
        return _check_members(parts.netloc)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return "must look like mqtt://host:port or mqtts://host:port"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has a bad port"
    if parts.username or parts.password:
        return "must not carry credentials: use mqtt.username and CHECKPOINT_MQTT_PASSWORD"
    return None


def _check_members(netloc: str) -> str | None:
    """amqp://host:port,host:port/ (gateway/amqp.py): every member, no credentials."""
    if "@" in netloc:
        return "must not carry credentials: use mqtt.username and CHECKPOINT_MQTT_PASSWORD"
    for part in netloc.split(","):
        host, _, port = part.partition(":")
        if not host or (port and not (port.isdigit() and 0 < int(port) <= 65_535)):
            return f"names {part!r}: must look like amqp://host:port,host:port/ (every member of the cluster)"
    return None


def _check_timezone(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "is not a known time zone (e.g. UTC, Asia/Shanghai)"
    return None


def _coerce(key: str, value: Any, hint: Any, from_text: bool) -> Any:
    """Check (or, for environment text, convert) one value against the field's type."""
    allowed = tuple(t for t in getattr(hint, "__args__", (hint,)) if t is not type(None))
    kind = allowed[0]
    if from_text:
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return kind(value)
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not a {kind.__name__}") from None
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key}: expected a {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _section(name: str, cls: type[Any], values: Mapping[str, Any], from_text: bool, source: str) -> Any:
    hints = get_type_hints(cls)
    checks = _ranges()
    out: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{name}.{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{full} ({source}): unknown key; known keys in [{name}]: {known}")
        if (name, key) in _SECRET_KEYS and source != "environment":
            raise ConfigError(f"{full} ({source}): secrets do not go in files: set {ENV_PREFIX}MQTT_PASSWORD")
        v = _coerce(f"{full} ({source})", value, hints[key], from_text)
        check = checks.get((name, key))
        problem = check(v) if check else None
        if problem:
            raise ConfigError(f"{full} ({source}): {v!r} {problem}")
        out[key] = v
    return out


def load(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """The effective config. `overrides` maps "section.key" to a value (from CLI flags)."""
    environ = os.environ if environ is None else environ
    layers: dict[str, dict[str, Any]] = {f.name: {} for f in dataclasses.fields(Config) if f.name != "notify"}
    hints = get_type_hints(Config)
    file = _read_toml(Path(path)) if path is not None else {}
    notify = notify_settings.parse(file.pop("notify", {}), str(path))  # tables: its own parser, the file only
    for name, values in file.items():
        if name not in layers:
            raise ConfigError(f"[{name}] ({path}): unknown section; known: {', '.join(layers)}, notify")
        if not isinstance(values, dict):
            raise ConfigError(f"{name} ({path}): must be a [section] table")
        layers[name].update(_section(name, hints[name], values, False, str(path)))
    for var, text in environ.items():
        if var.startswith(ENV_PREFIX) and var != ENV_PREFIX + "CONFIG":
            name, _, key = var[len(ENV_PREFIX) :].lower().partition("_")
            if name not in layers:
                continue  # another tool's variable (the simulator shares the prefix), or a receiver's ${NAME}
            layers[name].update(_section(name, hints[name], {key: text}, True, "environment"))
    for dotted, value in (overrides or {}).items():
        name, _, key = dotted.partition(".")
        if value is not None:
            layers[name].update(_section(name, hints[name], {key: value}, False, "command line"))
    cfg = Config(**{name: hints[name](**values) for name, values in layers.items()}, notify=notify)
    _require_tls(cfg)
    return cfg


def _require_tls(cfg: Config) -> None:
    """With a node registry (production) the broker is reached over TLS; plain MQTT or AMQP only on this machine."""
    parts = urlsplit(cfg.mqtt.broker)
    if not cfg.gateway.registry or parts.scheme in ("mqtts", "amqps"):
        return
    hosts = [p.rpartition(":")[0] or p for p in parts.netloc.split(",")] if parts.scheme == "amqp" else [parts.hostname]
    if any(h not in ("127.0.0.1", "::1", "localhost") for h in hosts):
        plain, secure = ("AMQP", "amqps://host:5671,...") if parts.scheme == "amqp" else ("MQTT", "mqtts://host:8883")
        raise ConfigError(f"mqtt.broker: {cfg.mqtt.broker} is plain {plain} with a node registry (gateway.registry):"
                          f" use {secure} and mqtt.ca_file (deploy/gateway.example.toml)")  # fmt: skip


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (copy deploy/gateway.example.toml)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def mqtt_password(cfg: MqttSection) -> str | None:
    """The broker password from the environment or the password file, or None."""
    if cfg.password:
        return cfg.password
    if cfg.password_file:
        try:
            return Path(cfg.password_file).read_text().strip()
        except OSError as e:
            raise ConfigError(f"mqtt.password_file: cannot read {cfg.password_file}: {e.strerror}") from None
    return None


def load_calibration(cfg: ScreeningSection) -> dict[str, Any]:
    """The configured calibration (a JSON file in screening.py's format) or the shipped one."""
    if not cfg.calibration_file:
        return dict(firmware.module("calibration").CALIBRATION)
    try:
        cal = json.loads(Path(cfg.calibration_file).read_text())
    except OSError as e:
        raise ConfigError(f"screening.calibration_file: cannot read {cfg.calibration_file}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"screening.calibration_file: {cfg.calibration_file} is not JSON: {e}") from None
    try:
        screening.check_calibration(cal, contract.MODES)  # the one validator, the node's own
    except ValueError as e:
        raise ConfigError(f"screening.calibration_file: {cfg.calibration_file}: {e}") from None
    return dict(cal)


def effective(cfg: Config) -> dict[str, dict[str, Any]]:
    """The config as plain data with secrets hidden (for `check-config`)."""
    out = dataclasses.asdict(cfg)
    for name, key in _SECRET_KEYS:
        if out[name][key]:
            out[name][key] = "***"
    return out
