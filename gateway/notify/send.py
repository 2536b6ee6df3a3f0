"""Sending one message to one URL through Apprise (the only module that imports it).

`send` returns None when the service took the message, else the error text as Apprise reported it (its
warnings for this call): the caller redacts it before it is stored or logged. Apprise's own logger is cut off
from the process's log handlers, because its debug lines may carry a URL with its token; every line the
notifier writes about a delivery goes through the Redactor instead.
"""

from __future__ import annotations

import logging

import apprise

logging.getLogger("apprise").propagate = False
logging.getLogger("apprise").addHandler(logging.NullHandler())


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
