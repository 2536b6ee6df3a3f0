"""[notify]: receivers, routes and timings, validated at the door (deploy/gateway.example.toml shows each key).

    [notify]                                   # how the notifier works
    poll_interval_s = 1.0                      # how often it looks for new events and due deliveries
    retry_first_s = 5.0                        # a failed delivery is retried after this, doubling ...
    retry_max_s = 300.0                        # ... up to this, for as long as it takes (never dropped)
    summary_after = 5                          # a backlog longer than this starts with a summary line
    send_timeout_s = 10.0                      # one delivery's network timeout

    [notify.receivers.medics-g7]               # a receiver: one Apprise URL, a locale and a form
    url = "dingtalk://${DINGTALK_G7_TOKEN}/"   # ${NAME}: from the notifier's environment, never from here
    # url_file = "/etc/checkpoint/medics-g7.url" # or the whole URL from a file (0600)
    locale = "zh-CN"                           # zh-CN | en
    form = "long"                              # long (chat, email) | short (an SMS gateway)

    [[notify.routes]]                          # first match wins, unless continue = true
    kinds = ["fever"]                          # default: every kind
    sites = ["g7-km12"]                        # default: every site
    states = ["raised", "escalated"]           # default: raised and escalated
    receivers = ["medics-g7"]
    continue = false

    [notify.timing.fever]                      # per kind: reminders and escalation (0 = never)
    repeat_min = 10
    escalate_min = 30
    [notify.sites.g7-km12.timing.fever]        # per site, over the kind's
    repeat_min = 5

A URL may hold no literal password: its secrets come from the environment (${NAME}) or from url_file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway import alerts
from gateway.errors import ConfigError

KINDS = alerts.KINDS
STATES = (alerts.RAISED, alerts.ACKNOWLEDGED, alerts.ESCALATED, alerts.RESOLVED)
LOCALES = ("zh-CN", "en")  # gateway/web/i18n.py LOCALES
FORMS = ("long", "short")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str = ""  # an Apprise URL; ${NAME} parts come from the environment when it is sent
    url_file: str = ""  # or the whole URL from this file
    locale: str = "zh-CN"
    form: str = "long"


@dataclass(frozen=True)
class Route:
    receivers: tuple[str, ...]
    kinds: tuple[str, ...] = ()  # () = every kind
    sites: tuple[str, ...] = ()  # () = every site
    states: tuple[str, ...] = (alerts.RAISED, alerts.ESCALATED)
    keep_going: bool = False  # `continue` in the file (Alertmanager's word): try the next routes too


@dataclass(frozen=True)
class Timing:
    repeat_min: float = 0.0  # re-send an unacknowledged alert this often (0: never)
    escalate_min: float = 0.0  # escalate an alert not acknowledged this long after it opened (0: never)


DEFAULT_TIMING = {alerts.FEVER: Timing(10.0, 30.0)}  # loud for fevers; node alerts quiet (no reminder)


@dataclass(frozen=True)
class NotifySection:
    poll_interval_s: float = 1.0
    retry_first_s: float = 5.0
    retry_max_s: float = 300.0
    summary_after: int = 5
    send_timeout_s: float = 10.0
    receivers: Mapping[str, Receiver] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    timing: Mapping[str, Timing] = field(default_factory=lambda: dict(DEFAULT_TIMING))
    sites: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)  # site -> kind -> keys

    def timing_for(self, site: str, kind: str) -> Timing:
        """The kind's timing with the site's keys over it (a site may set only repeat_min)."""
        return dataclasses.replace(self.timing.get(kind) or Timing(), **self.sites.get(site, {}).get(kind, {}))


_SCALARS: dict[str, tuple[type, float, float]] = {
    "poll_interval_s": (float, 0.0, 60.0),
    "retry_first_s": (float, 0.01, 3600),
    "retry_max_s": (float, 0.01, 86_400),
    "summary_after": (int, 1, 10_000),
    "send_timeout_s": (float, 0.5, 300.0),
}


def parse(values: Mapping[str, Any], source: str) -> NotifySection:
    """The [notify] table of the config file, checked; ConfigError names the key and the reason."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        where = f"notify.{key} ({source})"
        if key in _SCALARS:
            out[key] = _scalar(where, value, *_SCALARS[key])
        elif key in _TABLES:
            out[key] = _TABLES[key](where, source, value)
        else:
            known = ", ".join(sorted([*_SCALARS, *_TABLES]))
            raise ConfigError(f"{where}: unknown key; known keys in [notify]: {known}")
    section = NotifySection(**out)
    if section.retry_max_s < section.retry_first_s:
        raise ConfigError(f"notify.retry_max_s ({source}): must not be below retry_first_s")
    for i, route in enumerate(section.routes):
        for name in route.receivers:
            if name not in section.receivers:
                raise ConfigError(f"notify.routes[{i}] ({source}): no receiver {name!r} in [notify.receivers]")
    return section


def _receivers(where: str, source: str, value: Any) -> dict[str, Receiver]:
    return {name: _receiver(f"notify.receivers.{name} ({source})", name, v) for name, v in _table(where, value).items()}


def _routes(where: str, source: str, value: Any) -> tuple[Route, ...]:
    return tuple(_route(f"notify.routes[{i}] ({source})", r) for i, r in enumerate(_list(where, value)))


def _kind_timings(where: str, source: str, value: Any) -> dict[str, Timing]:
    given = _timings(f"notify.timing ({source})", value)
    return {
        k: dataclasses.replace(DEFAULT_TIMING.get(k, Timing()), **given.get(k, {})) for k in {*DEFAULT_TIMING, *given}
    }


def _sites(where: str, source: str, value: Any) -> dict[str, dict[str, dict[str, float]]]:
    return {site: _site(f"notify.sites.{site} ({source})", v) for site, v in _table(where, value).items()}


_TABLES = {"receivers": _receivers, "routes": _routes, "timing": _kind_timings, "sites": _sites}


def env_names(url: str) -> list[str]:
    """The environment variables a URL template names (${NAME})."""
    return _ENV_REF.findall(url)


def expand(url: str, environ: Mapping[str, str]) -> str:
    """The URL with each ${NAME} replaced from `environ`; ConfigError naming the variable when one is unset."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in environ:
            raise ConfigError(f"${{{m.group(1)}}} is not set in the notifier's environment")
        return environ[m.group(1)]

    return _ENV_REF.sub(value, url)


def _scalar(where: str, value: Any, kind: type, lo: float, hi: float) -> Any:
    """A number of `kind` within [lo, hi] (an int is taken for a float)."""
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a {kind.__name__}, got {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{where}: {value!r} must be between {lo} and {hi}")
    return value


def _table(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table")
    return value


def _list(where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list ([[notify.routes]] tables)")
    return value


def _words(where: str, value: Any, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of strings")
    for v in value:
        if allowed is not None and v not in allowed:
            raise ConfigError(f"{where}: {v!r} must be one of {', '.join(allowed)}")
    return tuple(value)


def _receiver(where: str, name: str, value: Any) -> Receiver:
    body = _table(where, value)
    if not _NAME.match(name):
        raise ConfigError(f"{where}: a receiver's name must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    unknown = set(body) - {"url", "url_file", "locale", "form"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; known: url, url_file, locale, form")
    for key in body:
        if not isinstance(body[key], str):
            raise ConfigError(f"{where}.{key}: expected a string")
    r = Receiver(name, **body)
    if bool(r.url) == bool(r.url_file):
        raise ConfigError(f"{where}: give url (secrets as ${{NAME}}) or url_file, one of them")
    if r.locale not in LOCALES:
        raise ConfigError(f"{where}.locale: {r.locale!r} must be one of {', '.join(LOCALES)}")
    if r.form not in FORMS:
        raise ConfigError(f"{where}.form: {r.form!r} must be one of {', '.join(FORMS)}")
    if r.url:
        _no_literal_secret(where, r.url)
    return r


def _no_literal_secret(where: str, url: str) -> None:
    """A password written into the file is refused (the URL's user:password part must be ${NAME})."""
    if "://" not in url:
        raise ConfigError(f"{where}.url: an Apprise URL looks like scheme://..., e.g. json://host:port/path")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password and not _ENV_REF.fullmatch(password):
        raise ConfigError(f"{where}.url: secrets do not go in files: write the password as ${{NAME}} (set NAME in"
                          " the notifier's environment) or put the whole URL in url_file")  # fmt: skip


def _route(where: str, value: Any) -> Route:
    body = dict(_table(where, value))
    unknown = set(body) - {"receivers", "kinds", "sites", "states", "continue"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; known: receivers, kinds, sites, states,"
                          " continue")  # fmt: skip
    if "receivers" not in body:
        raise ConfigError(f"{where}: receivers is required")
    keep_going = body.pop("continue", False)
    if type(keep_going) is not bool:
        raise ConfigError(f"{where}.continue: expected true or false")
    words = {
        "receivers": None,
        "kinds": KINDS,
        "sites": None,
        "states": STATES,
    }
    parsed = {k: _words(f"{where}.{k}", v, words[k]) for k, v in body.items()}
    if not parsed["receivers"]:
        raise ConfigError(f"{where}.receivers: name at least one receiver")
    return Route(keep_going=keep_going, **parsed)


def _timings(where: str, value: Any) -> dict[str, dict[str, float]]:
    out = {}
    for kind, body in _table(where, value).items():
        if kind not in KINDS:
            raise ConfigError(f"{where}: {kind!r} must be one of {', '.join(KINDS)}")
        t = _table(f"{where}.{kind}", body)
        unknown = set(t) - {"repeat_min", "escalate_min"}
        if unknown:
            raise ConfigError(f"{where}.{kind}: unknown key {sorted(unknown)[0]!r}; known: repeat_min, escalate_min")
        out[kind] = {k: _scalar(f"{where}.{kind}.{k}", v, float, 0, 10_080) for k, v in t.items()}
    return out


def _site(where: str, value: Any) -> dict[str, dict[str, float]]:
    body = _table(where, value)
    if set(body) - {"timing"}:
        raise ConfigError(f"{where}: only a timing table goes here ([notify.sites.SITE.timing.KIND])")
    return _timings(f"{where}.timing", body.get("timing", {}))
