"""Logging: to stderr, rate-limited where a bad node could flood it, never with credentials."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Hashable
from urllib.parse import urlsplit, urlunsplit


def setup(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def redact_url(url: str) -> str:
    """The URL without user:password (frigate's log filter does the same)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RateLimitedLog:
    """Logs a warning at most once per `interval_ms` per key, then says how many it held back."""

    def __init__(self, logger: logging.Logger, interval_ms: int, clock: Callable[[], int]) -> None:
        self._logger = logger
        self._interval_ms = interval_ms
        self._clock = clock
        self._seen: dict[Hashable, list[int]] = {}  # key -> [last logged at, suppressed since]

    def warning(self, key: Hashable, message: str) -> bool:
        """True when this call logged."""
        now = self._clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self._interval_ms:
            entry[1] += 1
            return False
        held = entry[1] if entry else 0
        self._logger.warning("%s%s", message, f" (+{held} like it not logged in the last minute)" if held else "")
        self._seen[key] = [now, 0]
        return True
