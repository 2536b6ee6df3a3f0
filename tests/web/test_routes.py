"""The console's routes with Starlette's TestClient on a real SQLite file (real migrations): logins and the
rate limit, roles and sites enforced, CSRF, and the lifecycle written as alert events with the user's name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.store.base import Store
from gateway.web.app import create_app

from .conftest import PASSWORD, T0, Clock, csrf_of, make_db, raise_fever

SECRET = b"k" * 32


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
    app = create_app(store, SECRET, "Asia/Shanghai", clock=clock)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login(client: TestClient, name: str, password: str = PASSWORD) -> int:
    client.cookies.clear()
    return client.post("/login", data={"username": name, "password": password}).status_code


def test_login_sets_a_strict_httponly_cookie_and_pages_need_it(client: TestClient) -> None:
    assert client.get("/alerts").headers["location"] == "/login"
    r = client.post("/login", data={"username": "li", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/alerts").status_code == 200
    assert login(client, "li", "wrong password!") == 401


def test_the_board_is_in_chinese_by_default_with_local_times_and_zone(client: TestClient, store: Store) -> None:
    alert_id = raise_fever(store, "bridge", "n1", 7, T0)
    login(client, "li")
    page = client.get("/alerts").text
    assert "未处理" in page and alert_id in page
    assert "2026-12-01 06:45:56 CST (Asia/Shanghai)" in page  # T0 in the site's zone, zone named
    english = client.get("/alerts", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert "Active, unacknowledged" in english


def test_a_medic_of_one_site_neither_sees_nor_acts_on_another(client: TestClient, store: Store) -> None:
    mine = raise_fever(store, "bridge", "n1", 1, T0)
    theirs = raise_fever(store, "toll", "t1", 1, T0)
    login(client, "li")
    board = client.get("/alerts").text
    assert mine in board and theirs not in board
    assert client.get(f"/alerts/{theirs}").status_code == 404
    csrf = csrf_of(client.get(f"/alerts/{mine}").text)
    assert client.post(f"/alerts/{theirs}/acknowledge", data={"csrf": csrf}).status_code == 404
    assert [e.reason for e in store.alert_events(theirs)] == ["elevated"]


def test_a_post_without_the_csrf_token_is_refused(client: TestClient, store: Store) -> None:
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    login(client, "li")
    assert client.post(f"/alerts/{alert_id}/acknowledge", data={}).status_code == 403
    assert client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": "forged"}).status_code == 403
    assert [e.reason for e in store.alert_events(alert_id)] == ["elevated"]


def test_acknowledge_recheck_resolve_are_events_with_the_user(client: TestClient, store: Store, clock: Clock) -> None:
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    login(client, "li")
    csrf = csrf_of(client.get(f"/alerts/{alert_id}").text)
    clock.now = T0 + 60_000
    assert client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": csrf}).status_code == 303
    refused = client.post(f"/alerts/{alert_id}/resolve", data={"csrf": csrf, "outcome": "referred"})
    assert refused.status_code == 409  # a thermometer decides first
    clock.now = T0 + 120_000
    r = client.post(f"/alerts/{alert_id}/recheck", data={"csrf": csrf, "method": "oral", "reading_c": "38.2"})
    assert r.status_code == 303
    clock.now = T0 + 180_000
    r = client.post(f"/alerts/{alert_id}/resolve", data={"csrf": csrf, "outcome": "referred", "note": "clinic 2"})
    assert r.status_code == 303
    events = store.alert_events(alert_id)
    assert [(e.state, e.reason, e.actor, e.at) for e in events] == [
        ("raised", "elevated", "gateway", T0),
        ("acknowledged", "acknowledged", "medic:li", T0 + 60_000),
        ("acknowledged", "recheck", "medic:li", T0 + 120_000),
        ("resolved", "referred", "medic:li", T0 + 180_000),
    ]
    assert (events[2].method, events[2].reading_c, events[3].note) == ("oral", 38.2, "clinic 2")
    assert {e.address for e in events[1:]} == {"testclient"}
    alert = store.alert(alert_id)
    assert alert is not None and (alert.state, alert.acknowledged_by) == ("resolved", "medic:li")
    history = client.get(f"/alerts/{alert_id}").text
    assert "medic:li" in history and "口温 38.2 °C" in history and "06:48:56 CST" in history


def test_two_medics_acknowledging_see_one_winner(client: TestClient, store: Store) -> None:
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    login(client, "wang")
    wang = csrf_of(client.get(f"/alerts/{alert_id}").text)
    wang_cookie = dict(client.cookies)
    login(client, "li")
    li = csrf_of(client.get(f"/alerts/{alert_id}").text)
    assert client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": li}).status_code == 303
    client.cookies.clear()
    client.cookies.update(wang_cookie)
    late = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": wang})
    assert late.status_code == 409 and "此告警已由他人接手" in late.text and "li · 2026-12-01 06:45:56 CST" in late.text
    assert [e.actor for e in store.alert_events(alert_id)] == ["gateway", "medic:li"]


def test_a_coordinator_reads_and_exports_but_cannot_act(client: TestClient, store: Store) -> None:
    alert_id = raise_fever(store, "bridge", "n1", 1, T0)
    login(client, "chen")
    page = client.get(f"/alerts/{alert_id}").text
    assert "/acknowledge" not in page
    assert client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": csrf_of(page)}).status_code == 403
    sheet = client.get("/sheet?day=2026-12-01")
    assert sheet.status_code == 200 and 'data-site="bridge"' in sheet.text and 'data-site="toll"' not in sheet.text
    csv = client.get("/sheet.csv?day=2026-12-01")
    assert csv.text.splitlines()[0].startswith("site,screened,elevated")
    assert csv.text.splitlines()[1].startswith("bridge,1,1,")
    login(client, "li")
    assert client.get("/sheet").status_code == 403


def test_the_day_sheet_counts_the_outcomes_medics_recorded(client: TestClient, store: Store) -> None:
    ids = [raise_fever(store, "bridge", "n1", seq, T0 + seq) for seq in (1, 2)]
    login(client, "li")
    csrf = csrf_of(client.get(f"/alerts/{ids[0]}").text)
    for alert_id, outcome in zip(ids, ("referred", "turned_back"), strict=True):
        client.post(f"/alerts/{alert_id}/recheck", data={"csrf": csrf, "method": "tympanic", "reading_c": "38.0"})
        client.post(f"/alerts/{alert_id}/resolve", data={"csrf": csrf, "outcome": outcome})
    login(client, "chen")
    csv = client.get("/sheet.csv?day=2026-12-01").text.splitlines()
    row = dict(zip(csv[0].split(","), csv[1].split(","), strict=True))
    assert (row["screened"], row["rechecked"], row["referred"], row["turned_back"], row["cleared"]) == (
        "2", "2", "1", "1", "0")  # fmt: skip


def test_logins_are_rate_limited_per_account(client: TestClient, clock: Clock) -> None:
    for _ in range(5):
        assert login(client, "li", "not the password") == 401
    assert login(client, "li") == 429  # even the right password, for a while
    assert login(client, "wang") == 303  # another account from the same address
    clock.now += 15 * 60_000 + 1
    assert login(client, "li") == 303


def test_a_session_expires_and_logout_ends_it(client: TestClient, clock: Clock) -> None:
    login(client, "li")
    csrf = csrf_of(client.get("/alerts").text)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/alerts").status_code == 303
    login(client, "li")
    clock.now += 12 * 3_600_000 + 1
    assert client.get("/alerts").headers["location"] == "/login"
