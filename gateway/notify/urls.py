"""A receiver's real URL, from the environment (${NAME}) or a file, and the redaction of its secrets.

Nothing the notifier logs or stores passes without `Redactor.clean`: the values of the variables a URL names,
the content of a url_file, the URL itself and, for a URL from a file, each part that may be a token (the
password, a host without a dot, path segments and query values of 8 characters or more). Prefer ${NAME} for
each secret: then the redaction is exact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from gateway.errors import ConfigError
from gateway.notify.settings import Receiver, env_names, expand

MASK = "***"
_TOKEN_LEN = 8


class Redactor:
    """Replaces every known secret in a text by ***, longest first (a secret inside another stays hidden)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for s in secrets:
            if s and len(s) >= 3:  # a one- or two-letter value would blank out ordinary words
                self._secrets.update({s, unquote(s)})

    def clean(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(s, MASK)
        return text


def resolve(receiver: Receiver, environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """(the URL to send to, the secrets in it). ConfigError (without any secret) when it cannot be had."""
    environ = os.environ if environ is None else environ
    if receiver.url:
        secrets = [environ.get(name, "") for name in env_names(receiver.url)]
        try:
            return expand(receiver.url, environ), secrets
        except ConfigError as e:
            raise ConfigError(f"receiver {receiver.name}: {e}") from None
    try:
        url = Path(receiver.url_file).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"receiver {receiver.name}: cannot read url_file {receiver.url_file}: {e.strerror}") from None
    return url, [url, *token_parts(url)]


def token_parts(url: str) -> list[str]:
    """The parts of a URL that may be secrets (see the module docstring)."""
    try:
        parts = urlsplit(url)
        password, host = parts.password, parts.hostname
    except ValueError:
        return []
    found = [password or "", parts.username or ""] if password else []
    if host and "." not in host and host != "localhost":
        found.append(host)
    found += [seg for seg in parts.path.split("/") if len(seg) >= _TOKEN_LEN]
    found += [v for _, v in parse_qsl(parts.query) if len(v) >= _TOKEN_LEN]
    return found


def redactor(receivers: Iterable[Receiver], environ: Mapping[str, str] | None = None) -> Redactor:
    """One redactor for every receiver's secrets (those that can be resolved now)."""
    out = Redactor()
    for r in receivers:
        try:
            out.add(resolve(r, environ)[1])
        except ConfigError:
            continue  # reported when that receiver is used
    return out
