"""The console as a Starlette application: routes, templates, static files, and what every page needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.store.base import Store
from gateway.web import api, i18n, routes
from gateway.web.auth import Sessions, Visitor
from gateway.web.metrics import ConsoleMetrics, Measured

HERE = Path(__file__).parent


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Console:
    """What the routes share: the store, sessions, zones, templates and the clock (injected in tests)."""

    store: Store
    sessions: Sessions
    default_zone: str
    poll_interval_s: float
    clock: Callable[[], int]
    templates: Environment

    def zones(self) -> i18n.Zones:
        return i18n.Zones(self.default_zone, ((s.site, s.timezone) for s in self.store.sites()))

    def page(self, request: Request, name: str, visitor: Visitor | None, status: int = 200, **ctx: Any) -> HTMLResponse:
        user_locale = visitor.user.locale if visitor else ""
        locale = i18n.pick(user_locale, request.headers.get("accept-language", ""))
        html = self.templates.get_template(name).render(
            request=request, visitor=visitor, locale=locale, t=i18n.translator(locale), zones=self.zones(), **ctx
        )
        return HTMLResponse(html, status_code=status)


def create_app(
    store: Store,
    secret: bytes,
    default_zone: str = "UTC",
    session_hours: float = 12.0,
    poll_interval_s: float = 0.5,
    clock: Callable[[], int] = wall_clock_ms,
    metrics: ConsoleMetrics | None = None,
) -> Starlette:
    """The console; with `metrics`, every request is counted in them (gateway/web/metrics.py)."""
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    console = Console(store, Sessions(store, secret, session_hours), default_zone, poll_interval_s, clock, templates)
    app = Starlette(
        routes=[
            *routes.routes(console),
            *api.routes(console),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(Measured, metrics=metrics)] if metrics is not None else [],
    )
    app.state.console = console
    return app


__all__ = ["Console", "Route", "create_app"]
