"""The JSON API for phone apps, under /api/v1 (schema: GET /api/v1/openapi.json, OpenAPI 3.1).

Authentication is a bearer token only (`Authorization: Bearer ...`, from POST /api/v1/token with the user's
name and password, rate-limited like the login page; it is a session: same lifetime, ended by DELETE
/api/v1/token, by `users disable` or `users reset-password`). Cookies are ignored here, so a page of another
site cannot act with a medic's browser session and no CSRF token is needed. Roles and sites as on the pages; an
action may carry `events`, the alert's event counter the app last saw, and is refused (409 conflict) if the
alert has moved on since. Times are Unix ms (`*_at`) and ISO 8601 in the site's zone (`*_local`, `timezone`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import followup
from gateway.store.base import AlertEvent, AlertRow
from gateway.web import actions, views
from gateway.web.auth import LoginRefused, Visitor
from gateway.web.i18n import Zones

if TYPE_CHECKING:
    from gateway.web.app import Console

PREFIX = "/api/v1"


def _error(status: int, word: str, detail: str = "") -> JSONResponse:
    return JSONResponse({"error": word, "detail": detail}, status_code=status)


class Api:
    def __init__(self, c: Console) -> None:
        self.c = c

    def visitor(self, request: Request) -> Visitor | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.c.sessions.visitor(token.strip(), self.c.clock())

    async def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def token(self, request: Request) -> Response:
        body = await self._body(request)
        if body is None:
            return _error(400, "bad_request", "a JSON object with username and password")
        address = request.client.host if request.client else ""
        try:
            token, session = self.c.sessions.login(
                str(body.get("username", "")), str(body.get("password", "")), address, self.c.clock(), via="api"
            )
        except LoginRefused as e:
            return _error(429, "too_many") if e.limited else _error(401, "bad_login")
        user = self.c.store.user(session.username)
        role = user.role if user else ""
        return JSONResponse({"token": token, "expires_at": session.expires_at,
                             "user": {"username": session.username, "role": role}}, status_code=201)  # fmt: skip

    async def end_token(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return _error(401, "unauthorized")
        self.c.sessions.logout(v, request.client.host if request.client else "", self.c.clock())
        return Response(status_code=204)

    async def alerts(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return _error(401, "unauthorized")
        q = request.query_params
        open_, closed = views.board(self.c.store, v, self.c.zones(), self.c.clock(), q.get("site", ""),
                                    q.get("kind", ""))  # fmt: skip
        zones = self.c.zones()
        return JSONResponse({"open": [alert_json(a.alert, zones, v) for a in open_],
                             "closed": [alert_json(a.alert, zones, v) for a in closed]})  # fmt: skip

    async def alert(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return _error(401, "unauthorized")
        row = self.c.store.alert(request.path_params["alert_id"])
        if row is None or not v.sees(row.site):
            return _error(404, "not_found")
        zones = self.c.zones()
        events = [event_json(e, row.site, zones) for e in self.c.store.alert_events(row.alert_id)]
        reply: dict[str, Any] = {"alert": alert_json(row, zones, v), "events": events}
        if v.acts_on(row.site):  # personal details: the medics of the alert's site only; each look is audited
            address = request.client.host if request.client else ""
            details = followup.read(self.c.store, row.alert_id, v.actor, address, self.c.clock())
            reply["followup"] = None if details is None else {f: getattr(details, f) for f in followup.FIELDS}
        return JSONResponse(reply, headers={"Cache-Control": "no-store"})

    async def act(self, request: Request) -> Response:
        v = self.visitor(request)
        if v is None:
            return _error(401, "unauthorized")
        body = await self._body(request)
        if body is None:
            return _error(400, "bad_request", "a JSON object")
        seen = body.get("events")
        if seen is not None and not isinstance(seen, int):
            return _error(400, "bad_request", "events: the alert's event counter, an integer")
        address = request.client.host if request.client else ""
        alert_id, action = request.path_params["alert_id"], request.path_params["action"]
        done = actions.perform(self.c.store, v, alert_id, action, body, address, self.c.clock(), seen)
        if done.word or done.alert is None:
            held = done.alert.acknowledged_by if done.alert and done.word == "taken" else None
            payload: dict[str, Any] = {"error": done.word, "detail": done.detail or (held or "")}
            if done.alert is not None and done.word != "not_found":
                payload["alert"] = alert_json(done.alert, self.c.zones(), v)
            return JSONResponse(payload, status_code=done.status)
        return JSONResponse({"alert": alert_json(done.alert, self.c.zones(), v)})

    async def schema(self, request: Request) -> Response:
        return JSONResponse(openapi())

    def table(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/openapi.json", self.schema, methods=["GET"]),
            Route(f"{PREFIX}/token", self.token, methods=["POST"]),
            Route(f"{PREFIX}/token", self.end_token, methods=["DELETE"]),
            Route(f"{PREFIX}/alerts", self.alerts, methods=["GET"]),
            Route(f"{PREFIX}/alerts/{{alert_id}}", self.alert, methods=["GET"]),
            Route(f"{PREFIX}/alerts/{{alert_id}}/{{action}}", self.act, methods=["POST"]),
        ]


def _local(ms: int | None, site: str, zones: Zones) -> str | None:
    return None if ms is None else zones.local(ms, site).isoformat(timespec="seconds")


def alert_json(a: AlertRow, zones: Zones, v: Visitor) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id, "kind": a.kind, "state": a.state, "status": views.status_key(a), "reason": a.reason,
        "site": a.site, "node": a.node, "seq": a.seq, "t_site_c": a.t_site_c, "t_core_c": a.t_core_c,
        "timezone": zones.name(a.site), "opened_at": a.opened_at, "opened_local": _local(a.opened_at, a.site, zones),
        "acknowledged_by": a.acknowledged_by, "acknowledged_at": a.acknowledged_at,
        "resolved_at": a.resolved_at, "events": a.events, "may_act": v.acts_on(a.site),
    }  # fmt: skip


def event_json(e: AlertEvent, site: str, zones: Zones) -> dict[str, Any]:
    return {"n": e.n, "state": e.state, "reason": e.reason, "at": e.at, "at_local": _local(e.at, site, zones),
            "by": e.actor, "seq": e.seq, "t_core_c": e.t_core_c, "method": e.method, "reading_c": e.reading_c,
            "note": e.note, "address": e.address}  # fmt: skip


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required or props)}


_S, _I, _N = {"type": "string"}, {"type": "integer"}, {"type": "number"}
_NS, _NI, _NN = {"type": ["string", "null"]}, {"type": ["integer", "null"]}, {"type": ["number", "null"]}
ALERT_SCHEMA = _obj({"alert_id": _S, "kind": _S, "state": _S, "status": _S, "reason": _S, "site": _S, "node": _S,
                     "seq": _NI, "t_site_c": _NN, "t_core_c": _NN, "timezone": _S, "opened_at": _I,
                     "opened_local": _S, "acknowledged_by": _NS, "acknowledged_at": _NI, "resolved_at": _NI,
                     "events": _I, "may_act": {"type": "boolean"}})  # fmt: skip
EVENT_SCHEMA = _obj({"n": _I, "state": _S, "reason": _S, "at": _I, "at_local": _S, "by": _S, "seq": _NI,
                     "t_core_c": _NN, "method": _NS, "reading_c": _NN, "note": _NS, "address": _NS})  # fmt: skip
ERROR_SCHEMA = _obj({"error": _S, "detail": _S, "alert": {"$ref": "#/components/schemas/Alert"}}, ("error",))


def _reply(description: str, schema: str | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema}}}}


def openapi() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document."""
    err = "#/components/schemas/Error"
    action_body = _obj({"events": _I, "note": _S, "method": {"enum": ["oral", "axillary", "tympanic", "rectal"]},
                        "reading_c": _N, "outcome": {"enum": ["cleared", "referred", "monitored", "turned_back"]},
                        **{followup.FORM_PREFIX + f: {"type": "string", "maxLength": n}
                           for f, n in followup.MAX_CHARS.items()}}, ())  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "Checkpoint console API", "version": "1", "description": __doc__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Alert": ALERT_SCHEMA, "Event": EVENT_SCHEMA, "Error": ERROR_SCHEMA},
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{PREFIX}/openapi.json": {"get": {"summary": "this document", "security": [],
                                               "responses": {"200": _reply("OpenAPI 3.1")}}},
            f"{PREFIX}/token": {
                "post": {"summary": "a bearer token for a user name and password", "security": [],
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": _obj({"username": _S, "password": _S})}}},
                         "responses": {"201": _reply("the token, its expiry (Unix ms) and the user"),
                                       "401": _reply("wrong user name or password", err),
                                       "429": _reply("too many failed logins", err)}},
                "delete": {"summary": "end this token's session", "responses": {"204": _reply("ended")}},
            },
            f"{PREFIX}/alerts": {"get": {
                "summary": "open alerts (fevers first, oldest unacknowledged on top) and those closed in 24 h",
                "parameters": [{"name": n, "in": "query", "required": False, "schema": _S} for n in ("site", "kind")],
                "responses": {"200": {"description": "the board", "content": {"application/json": {"schema": _obj(
                    {"open": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                     "closed": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}})}}},
                              "401": _reply("no or expired token", err)}}},
            f"{PREFIX}/alerts/{{alert_id}}": {"get": {
                "summary": "an alert and its history",
                "parameters": [{"name": "alert_id", "in": "path", "required": True, "schema": _S}],
                "responses": {"200": {"description": "the alert", "content": {"application/json": {"schema": _obj(
                    {"alert": {"$ref": "#/components/schemas/Alert"},
                     "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                     "followup": {"type": ["object", "null"], "description": "personal details (name, phone, plate,"
                                  " note): present for a medic of the alert's site only"}},
                    ("alert", "events"))}}},
                              "404": _reply("no such alert among the user's sites", err)}}},
            f"{PREFIX}/alerts/{{alert_id}}/{{action}}": {"post": {
                "summary": "acknowledge, record a clinical re-check (method, reading_c), resolve (outcome, note; "
                           "followup_name, _phone, _plate, _note only with referred, monitored or turned_back) "
                           "or escalate (note); a medic of the alert's site only",
                "parameters": [{"name": "alert_id", "in": "path", "required": True, "schema": _S},
                               {"name": "action", "in": "path", "required": True,
                                "schema": {"enum": list(actions.ACTIONS)}}],
                "requestBody": {"required": False, "content": {"application/json": {"schema": action_body}}},
                "responses": {"200": {"description": "done: the alert now", "content": {"application/json": {
                    "schema": _obj({"alert": {"$ref": "#/components/schemas/Alert"}})}}},
                              "403": _reply("the user may not act on this alert", err),
                              "404": _reply("no such alert among the user's sites", err),
                              "409": _reply("refused (the state does not allow it), taken (another medic "
                                            "acknowledged it first) or conflict (it changed since `events`)", err)}}},
        },
    }  # fmt: skip


def routes(c: Console) -> list[Route]:
    return Api(c).table()
