"""The console's Prometheus metrics (issue 17 item 1): `[metrics] console_listen = "127.0.0.1:9109"` serves
/metrics for `checkpoint-gateway web` on a port of its own, like the gateway's (`[metrics] listen`), so that the
console's public port never shows them.

Counted by an ASGI middleware around the whole application, from what each request came to:
- checkpoint_console_requests_total{route, method, status}: `route` is the route's template
  (`/alerts/{alert_id}`), never a path with an id in it, so the labels stay few.
- checkpoint_console_request_seconds{route}: how long each took (a server-sent event stream: as long as it was
  open).
- checkpoint_console_logins_total{via, result}: a login on the page (`page`) or for an API token (`api`),
  `ok` or `refused` (wrong password, unknown user, rate-limited).
- checkpoint_console_alert_actions_total{action, result}: acknowledge, recheck, resolve, escalate from the page
  or the API, `done` or `refused` (a state that does not allow it, another medic first, a value out of range).
No user name, alert id or temperature is ever a label.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway import metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
ACTIONS = ("acknowledge", "recheck", "resolve", "escalate")
LOGINS = {"/login": "page", "/api/v1/token": "api"}
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600)


class Measured:
    """ASGI middleware (Starlette's `Middleware(Measured, metrics=...)`): every HTTP request counted when it ends,
    by the route template the router matched (it writes `route` into the request's scope)."""

    def __init__(self, app: App, metrics: ConsoleMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, started = 500, time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - started)


class ConsoleMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("checkpoint_console_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)  # fmt: skip
        self.seconds = Histogram("checkpoint_console_request_seconds", "Time to answer a request, by route template",
                                 ["route"], buckets=_SECONDS, registry=r)  # fmt: skip
        self.logins = Counter("checkpoint_console_logins", "Logins by way (page, api) and result (ok, refused)",
                              ["via", "result"], registry=r)  # fmt: skip
        self.actions = Counter("checkpoint_console_alert_actions", "People's alert actions by action and result"
                               " (done, refused)", ["action", "result"], registry=r)  # fmt: skip

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"  # the template Starlette matched
        method = str(scope.get("method", ""))
        self.requests.labels(route, method, str(status)).inc()
        self.seconds.labels(route).observe(seconds)
        if method != "POST":
            return
        ok = status < 400
        if route in LOGINS:
            self.logins.labels(LOGINS[route], "ok" if ok else "refused").inc()
        action = str(scope.get("path_params", {}).get("action", ""))
        if action in ACTIONS:
            self.actions.labels(action, "done" if ok else "refused").inc()

    def serve(self, listen: str) -> metrics.Server:
        """/metrics on `listen` (host:port; port 0: a free one), on a thread of its own."""
        return metrics.serve_registry(self.registry, listen, "metrics.console_listen")
