"""The JSON API (/api/v1) on a real SQLite file: bearer tokens only (a browser's cookie does not act), the
lifecycle with the user and local times, optimistic concurrency on the event counter, roles and sites, and
replies that conform to the OpenAPI document the API serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.store.base import Store
from gateway.web.app import create_app

from .conftest import PASSWORD, T0, Clock, make_db, raise_fever

SECRET = b"k" * 32
TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list,
         "null": type(None)}  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, hashed: str) -> Iterator[Store]:
    s = make_db(tmp_path / "console.db", hashed)
    yield s
    s.close()


@pytest.fixture
def client(store: Store, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(store, SECRET, "Asia/Shanghai", clock=clock), follow_redirects=False) as c:
        yield c


def bearer(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/v1/token", json={"username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def conforms(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str = "$") -> None:
    """The JSON Schema subset the document uses: $ref, type (or a list of types), enum, properties, required,
    items."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "enum" in schema:
        assert value in schema["enum"], where
    kinds = schema.get("type")
    if kinds:
        allowed = tuple(TYPES[k] for k in ([kinds] if isinstance(kinds, str) else kinds))
        assert isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed), (where, value)
    if isinstance(value, dict):
        assert set(schema.get("required", ())) <= set(value), (where, sorted(value))
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                conforms(value[k], sub, doc, f"{where}.{k}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            conforms(item, schema.get("items", {}), doc, f"{where}[{i}]")


def reply_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    reply = doc["paths"][path][method]["responses"][str(status)]
    schema: dict[str, Any] = reply["content"]["application/json"]["schema"]
    return schema


def test_a_token_is_the_only_key_a_browser_cookie_does_not_act(client: TestClient, store: Store) -> None:
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    assert client.post("/api/v1/token", json={"username": "li", "password": "wrong password"}).status_code == 401
    client.post("/login", data={"username": "li", "password": PASSWORD})  # a page session in the cookie jar
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={}).status_code == 401
    headers = bearer(client, "li")
    assert client.get("/api/v1/alerts", headers=headers).status_code == 200
    assert client.delete("/api/v1/token", headers=headers).status_code == 204
    assert client.get("/api/v1/alerts", headers=headers).status_code == 401
    assert [e.reason for e in store.alert_events(alert_id)] == ["elevated"]


def test_the_lifecycle_through_the_api_with_the_user_and_local_times(client: TestClient, store: Store,
                                                                       clock: Clock) -> None:  # fmt: skip
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    li = bearer(client, "li")
    doc = client.get("/api/v1/openapi.json").json()
    board = client.get("/api/v1/alerts", headers=li).json()
    conforms(board, reply_schema(doc, "/api/v1/alerts", "get", 200), doc)
    assert [a["alert_id"] for a in board["open"]] == [alert_id] and board["open"][0]["may_act"] is True
    steps = [("acknowledge", {}), ("recheck", {"method": "oral", "reading_c": 38.2}),
             ("resolve", {"outcome": "referred", "note": "clinic 2"})]  # fmt: skip
    for i, (action, body) in enumerate(steps, start=1):
        clock.now = T0 + i * 60_000
        r = client.post(f"/api/v1/alerts/{alert_id}/{action}", json={"events": i, **body}, headers=li)
        assert r.status_code == 200, r.text
        conforms(r.json(), reply_schema(doc, "/api/v1/alerts/{alert_id}/{action}", "post", 200), doc)
    got = client.get(f"/api/v1/alerts/{alert_id}", headers=li).json()
    conforms(got, reply_schema(doc, "/api/v1/alerts/{alert_id}", "get", 200), doc)
    assert (got["alert"]["state"], got["alert"]["reason"], got["alert"]["timezone"]) == (
        "resolved", "referred", "Asia/Shanghai")  # fmt: skip
    assert [(e["reason"], e["by"], e["at_local"]) for e in got["events"]] == [
        ("elevated", "gateway", "2026-12-01T06:45:56+08:00"),
        ("acknowledged", "medic:li", "2026-12-01T06:46:56+08:00"),
        ("recheck", "medic:li", "2026-12-01T06:47:56+08:00"),
        ("referred", "medic:li", "2026-12-01T06:48:56+08:00"),
    ]
    assert (got["events"][2]["method"], got["events"][2]["reading_c"], got["events"][3]["note"]) == (
        "oral", 38.2, "clinic 2")  # fmt: skip


def test_two_apps_acknowledging_get_one_winner_and_a_stale_counter_is_refused(client: TestClient,
                                                                                store: Store) -> None:  # fmt: skip
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    li, wang = bearer(client, "li"), bearer(client, "wang")
    seen = client.get(f"/api/v1/alerts/{alert_id}", headers=wang).json()["alert"]["events"]
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"events": seen}, headers=li).status_code == 200
    late = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"events": seen}, headers=wang)
    assert late.status_code == 409
    assert (late.json()["error"], late.json()["detail"], late.json()["alert"]["acknowledged_by"]) == (
        "taken", "medic:li", "medic:li")  # fmt: skip
    stale = client.post(f"/api/v1/alerts/{alert_id}/escalate", json={"events": seen, "note": "x"}, headers=wang)
    assert (stale.status_code, stale.json()["error"]) == (409, "conflict")  # wang had not seen li's event
    assert [e.actor for e in store.alert_events(alert_id)] == ["gateway", "medic:li"]
    refused = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"outcome": "cleared"}, headers=li)
    assert (refused.status_code, refused.json()["error"]) == (409, "refused")  # a thermometer decides first
    assert "clinical re-check" in refused.json()["detail"]


def test_roles_and_sites_hold_in_the_api(client: TestClient, store: Store) -> None:
    bridge = raise_fever(store, "bridge", "n1", 1, T0)
    chen = bearer(client, "chen")
    assert client.get(f"/api/v1/alerts/{bridge}", headers=chen).json()["alert"]["may_act"] is False
    r = client.post(f"/api/v1/alerts/{bridge}/acknowledge", json={}, headers=chen)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    zhao = bearer(client, "zhao")  # a medic of another site
    assert client.get(f"/api/v1/alerts/{bridge}", headers=zhao).status_code == 404
    assert client.post(f"/api/v1/alerts/{bridge}/acknowledge", json={}, headers=zhao).status_code == 404
    assert client.get("/api/v1/alerts", headers=zhao).json() == {"open": [], "closed": []}
    assert [e.reason for e in store.alert_events(bridge)] == ["elevated"]


def test_the_openapi_document_names_every_api_route_and_only_those(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    routes = {(r.path, m.lower()) for r in client.app.routes if isinstance(r, Route)  # type: ignore[attr-defined]
              for m in (r.methods or ()) if r.path.startswith("/api/") and m != "HEAD"}  # fmt: skip
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert documented == routes
