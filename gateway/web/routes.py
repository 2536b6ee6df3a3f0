"""Pages, actions and live events. Every page needs a session; every POST a CSRF token; only a medic of the
alert's site acts on it. Handlers are async and call the store on the event loop: one thread touches the
connection, and each call is short (WAL readers do not wait for the gateway's writes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway import alerts, followup
from gateway.errors import ConfigError
from gateway.store.base import AlertRow
from gateway.web import actions, views
from gateway.web.auth import COOKIE, LoginRefused, Visitor, csrf_ok

if TYPE_CHECKING:
    from gateway.web.app import Console

LOOKBACK_MS = 5_000  # live events: re-read this far back (another process may commit an older event late)


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


class Pages:
    def __init__(self, c: Console) -> None:
        self.c = c

    def visitor(self, request: Request) -> Visitor | None:
        return self.c.sessions.visitor(request.cookies.get(COOKIE), self.c.clock())

    def to_login(self) -> Response:
        return RedirectResponse("/login", status_code=303)

    async def login_page(self, request: Request) -> Response:
        return self.c.page(request, "login.html", None)

    async def login(self, request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        try:
            token, session = self.c.sessions.login(username, password, _address(request), self.c.clock())
        except LoginRefused as e:
            status, word = (429, "too_many") if e.limited else (401, "bad_login")
            return self.c.page(request, "login.html", None, status=status, error=word)
        response = RedirectResponse("/alerts", status_code=303)
        max_age = (session.expires_at - session.created_at) // 1000
        response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        form = await request.form()
        if not csrf_ok(v, str(form.get("csrf", ""))):
            return PlainTextResponse("CSRF token missing or wrong", status_code=403)
        self.c.sessions.logout(v, _address(request), self.c.clock())
        response = self.to_login()
        response.delete_cookie(COOKIE)
        return response

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/alerts", status_code=303)

    def _board_ctx(self, request: Request, v: Visitor) -> dict[str, Any]:
        site, kind = request.query_params.get("site", ""), request.query_params.get("kind", "")
        open_, closed = views.board(self.c.store, v, self.c.zones(), self.c.clock(), site, kind)
        return {"open_alerts": open_, "closed_alerts": closed, "site": site, "kind": kind, "kinds": alerts.KINDS}

    async def board_page(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        return self.c.page(request, "alerts.html", v, **self._board_ctx(request, v))

    async def board_fragment(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return PlainTextResponse("log in", status_code=401)
        return self.c.page(request, "_board.html", v, **self._board_ctx(request, v))

    async def alert_page(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        alert = self.c.store.alert(request.path_params["alert_id"])
        if alert is None or not v.sees(alert.site):  # another site's alert is not found, not forbidden
            return self.c.page(request, "message.html", v, status=404, word="not_found")
        events = self.c.store.alert_events(alert.alert_id)
        a = views.view(alert, v, self.c.zones(), self.c.clock())
        extra: dict[str, Any] = {
            "describe": views.describe,
            "methods": alerts.METHODS,
            "outcomes": alerts.OUTCOMES,
            "closed_by_people": alerts.CLOSED_BY_PEOPLE,
            "followup_outcomes": followup.FOR_OUTCOMES,
            "followup_max": followup.MAX_CHARS,
        }
        if v.acts_on(alert.site):  # personal details: the medics of the alert's site only; each look is audited
            extra["details"] = followup.read(self.c.store, alert.alert_id, v.actor, _address(request), self.c.clock())
        page = self.c.page(request, "alert.html", v, a=a, events=events, rechecks=views.rechecks(events), **extra)
        page.headers["Cache-Control"] = "no-store"  # may hold personal details: not kept by the browser or a proxy
        return page

    async def act(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        form = await request.form()
        if not csrf_ok(v, str(form.get("csrf", ""))):
            return PlainTextResponse("CSRF token missing or wrong", status_code=403)
        alert_id, action = request.path_params["alert_id"], request.path_params["action"]
        done = actions.perform(self.c.store, v, alert_id, action, dict(form), _address(request), self.c.clock())
        if done.word == "":
            return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
        back = alert_id if done.alert is not None else None
        detail = self._held(done.alert) if done.word == "taken" and done.alert else done.detail
        return self.c.page(request, "message.html", v, status=done.status, word=done.word, detail=detail, back=back)

    def _held(self, alert: AlertRow) -> str:
        """Who holds an alert, since when (local): what the loser of a race to acknowledge reads."""
        who = (alert.acknowledged_by or "").split(":")[-1]
        return f"{who} · {self.c.zones().show(alert.acknowledged_at, alert.site)}"

    async def events(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return PlainTextResponse("log in", status_code=401)
        return StreamingResponse(_live(self.c, v, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    async def nodes_page(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        windows = views.windows(self.c.store, v, self.c.clock())
        return self.c.page(request, "nodes.html", v, nodes=views.nodes(self.c.store, v), windows=windows,
                           forged=views.forged(self.c.store, v),
                           clashes=views.node_alerts(self.c.store, v, alerts.IDENTITY_CLASH))  # fmt: skip

    def _sheet(self, request: Request, v: Visitor) -> tuple[str, list[Any]]:
        day = request.query_params.get("day", "today") or "today"
        if day == "today":
            day = self.c.zones().today(None, self.c.clock())
        return day, views.sheet(self.c.store, v, self.c.zones(), day, self.c.clock())

    async def sheet_page(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        if v.user.role == "medic":
            return self.c.page(request, "message.html", v, status=403, word="forbidden")
        try:
            day, rows = self._sheet(request, v)
        except ConfigError as e:
            return self.c.page(request, "message.html", v, status=400, word="refused", detail=str(e))
        loop = views.field_sheet(self.c.store, v, self.c.zones(), day, self.c.clock())
        return self.c.page(
            request,
            "sheet.html",
            v,
            day=day,
            rows=rows,
            columns=views.SHEET_COLUMNS,
            shifts=views.shift_sheet(self.c.store, v, self.c.zones(), day),
            shift_columns=("shift", *views.SHEET_COLUMNS[1:]),
            hourly=views.hourly(self.c.store, v, self.c.zones(), day),
            field=loop,
            field_columns=views.FIELD_COLUMNS,
        )

    async def sheet_csv(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        if v.user.role == "medic":
            return PlainTextResponse("not allowed", status_code=403)
        try:
            day, rows = self._sheet(request, v)
        except ConfigError as e:
            return PlainTextResponse(str(e), status_code=400)
        headers = {"Content-Disposition": f'attachment; filename="sheet-{day}.csv"'}
        return Response(views.sheet_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)

    async def users_page(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        if v.user.role != "admin":
            return self.c.page(request, "message.html", v, status=403, word="forbidden")
        return self.c.page(request, "users.html", v, users=self.c.store.users())

    async def set_locale(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return self.to_login()
        form = await request.form()
        if not csrf_ok(v, str(form.get("csrf", ""))):
            return PlainTextResponse("CSRF token missing or wrong", status_code=403)
        locale = str(form.get("locale", ""))
        user = self.c.store.user(v.user.username)
        if user is not None and locale in ("", "zh-CN", "en"):
            user.locale = locale
            with self.c.store.transaction() as tx:
                tx.save_user(user)
        return RedirectResponse(request.headers.get("referer") or "/alerts", status_code=303)

    def table(self) -> list[Route]:
        return [
            Route("/", self.home),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/alerts", self.board_page),
            Route("/alerts/board", self.board_fragment),
            Route("/alerts/{alert_id}", self.alert_page),
            Route("/alerts/{alert_id}/{action:str}", self.act, methods=["POST"]),
            Route("/events", self.events),
            Route("/nodes", self.nodes_page),
            Route("/sheet", self.sheet_page),
            Route("/sheet.csv", self.sheet_csv),
            Route("/users", self.users_page),
            Route("/locale", self.set_locale, methods=["POST"]),
        ]


def routes(c: Console) -> list[Route]:
    return Pages(c).table()


async def _live(c: Console, v: Visitor, request: Request) -> AsyncIterator[str]:
    """Server-sent events: one `alert` event per new alert event of the visitor's sites. The database is the
    only channel (the gateway and other web processes write it), read every poll_interval_s with a time cursor
    and the keys already sent."""
    cursor = c.clock()
    sent: dict[tuple[str, int], int] = {}
    yield ": live\n\n"
    while not await request.is_disconnected():
        for alert, event in c.store.events_since(cursor - LOOKBACK_MS):
            key = (event.alert_id, event.n)
            if key in sent or event.at < cursor - LOOKBACK_MS or not v.sees(alert.site):
                continue
            sent[key] = event.at
            payload = alerts.event_payload(alert, event)
            yield f"event: alert\ndata: {json.dumps(payload)}\n\n"
        newest = max(sent.values(), default=cursor)
        cursor = max(cursor, newest)
        sent = {k: at for k, at in sent.items() if at >= cursor - LOOKBACK_MS}
        await asyncio.sleep(c.poll_interval_s)
