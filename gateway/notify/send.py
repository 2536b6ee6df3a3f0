"""Sending one message to one URL through Apprise (the only module that imports it).

`send` returns None when the service took the message, else the error text as Apprise reported it (its
warnings for this call): the caller redacts it before it is stored or logged. Apprise's own logger is cut off
from the process's log handlers, because its debug lines may carry a URL with its token, and whatever handler
is attached to it anyway gets its records redacted (`redact_apprise_logs`).
"""

from __future__ import annotations

import logging

import apprise

from gateway.notify.urls import Redactor

_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.propagate = False
_APPRISE_LOG.addHandler(logging.NullHandler())
# The HTTP client under Apprise logs each request line (with a token in the path) at DEBUG: not below WARNING.
_HTTP_LOGS = [logging.getLogger(name) for name in ("urllib3", "urllib3.connectionpool", "requests")]
for _log in _HTTP_LOGS:
    _log.setLevel(logging.WARNING)


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redactor.clean(record.getMessage()), None
        return True


def redact_apprise_logs(redactor: Redactor) -> None:
    """Every record of Apprise's logger and of the HTTP client under it passes through `redactor` before any
    handler sees it."""
    for logger in (_APPRISE_LOG, *_HTTP_LOGS):
        for f in list(logger.filters):
            if isinstance(f, _RedactingFilter):
                logger.removeFilter(f)
        logger.addFilter(_RedactingFilter(redactor))


class Sender:
    """Apprise behind one call; tests use it as it is, against receivers on loopback."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    def send(self, url: str, title: str, body: str) -> str | None:
        client = apprise.Apprise()
        if not client.add(url):
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            return f"Apprise does not take this URL (scheme {scheme}://): see docs/notifications.md for the forms"
        try:
            result = client.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT,
                                   timeout=self.timeout_s)  # fmt: skip
        except Exception as e:  # a plugin's bug must not stop the notifier: the delivery is retried
            return f"Apprise raised {type(e).__name__}: {e}"
        if result:
            return None
        lines = [e.message for e in result.logs() if logging.getLevelName(e.level) >= logging.WARNING]
        return "; ".join(dict.fromkeys(lines)) or f"not delivered ({result.status.name})"
