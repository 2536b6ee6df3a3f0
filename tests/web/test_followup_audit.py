"""Privacy on SQLite and PostgreSQL. Follow-up details (issue 12 item 8): recorded only with an outcome that needs
follow-up, in their own table, shown to the medics of the alert's site only (page and API), in no other table,
export, report, topic payload or log line, and deleted by `retention` after [web] followup_days. The audit log
(item 2): logins ok and refused with the address (never the password, never a user name that is no account),
logouts, account and site changes from the CLI with the OS user, who looked at follow-up details, and
`checkpoint-gateway audit` listing them in local time with the zone named."""

from __future__ import annotations

import getpass
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from gateway import alerts, audit, cli, followup
from gateway import config as config_mod
from gateway.errors import ConfigError
from gateway.store import open_store, sqlite_path
from gateway.store.base import FollowupRow, SiteRow, Store, UserRow
from gateway.web.app import create_app

from .conftest import PASSWORD, T0, USERS, Clock, csrf_of, raise_fever

SECRET = b"k" * 32
DAY_MS = 86_400_000
DETAILS = {"followup_name": "Zhang Wei", "followup_phone": "+86 138-0013-8000", "followup_plate": "ZJ-A12345",
           "followup_note": "lives at Qingshan Road 7"}  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


def seeded(url: str, hashed: str) -> Store:
    """The console's sites and accounts (conftest.make_db) in the database at `url` (SQLite or PostgreSQL)."""
    s = open_store(url)
    with s.transaction() as tx:
        tx.save_site(SiteRow("bridge", "Bridge post", "east", "Asia/Shanghai"))
        tx.save_site(SiteRow("toll", "Toll post", "west", "Asia/Urumqi"))
        for name, (role, sites, county) in USERS.items():
            tx.save_user(UserRow(name, role, hashed, sites, county, "", 0, T0, T0))
    return s


@pytest.fixture
def store(any_db: str, hashed: str) -> Iterator[Store]:
    s = seeded(any_db, hashed)
    yield s
    s.close()


@pytest.fixture
def client(store: Store, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(store, SECRET, "Asia/Shanghai", clock=clock), follow_redirects=False) as c:
        yield c


def login(client: TestClient, name: str) -> None:
    client.cookies.clear()
    assert client.post("/login", data={"username": name, "password": PASSWORD}).status_code == 303


def post(client: TestClient, alert_id: str, action: str, **form: str) -> int:
    csrf = csrf_of(client.get(f"/alerts/{alert_id}").text)
    return client.post(f"/alerts/{alert_id}/{action}", data={"csrf": csrf, **form}).status_code


def rechecked_fever(client: TestClient, store: Store, seq: int) -> str:
    """A fever at the bridge, acknowledged and re-checked by li (logged in): ready to resolve."""
    alert_id = raise_fever(store, "bridge", "n1", seq, T0)
    login(client, "li")
    assert post(client, alert_id, "acknowledge") == 303
    assert post(client, alert_id, "recheck", method="oral", reading_c="38.2") == 303
    return alert_id


def every_cell(url: str) -> list[str]:
    """Every value of every table but `followups`, as text: where personal details must not be."""
    path = sqlite_path(url)
    if path is not None:
        with sqlite3.connect(path) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = [r for n in names if n != "followups" for r in conn.execute(f"SELECT * FROM {n}")]
    else:
        with psycopg.connect(url) as conn:
            names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            rows = [r for n in names if n != "followups" for r in conn.execute(f"SELECT * FROM {n}").fetchall()]
    return [str(v) for r in rows for v in r]


def test_details_with_referred_reach_the_sites_medics_and_nothing_else(
    client: TestClient, store: Store, any_db: str, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    alert_id = rechecked_fever(client, store, 7)
    assert post(client, alert_id, "resolve", outcome="referred", note="fever clinic", **DETAILS) == 303
    name, phone, plate, note = DETAILS.values()
    assert store.followup(alert_id) == FollowupRow(alert_id, name, phone, plate, note, T0, "medic:li")

    page = client.get(f"/alerts/{alert_id}")
    assert all(v in page.text for v in DETAILS.values()) and page.headers["cache-control"] == "no-store"
    login(client, "wang")  # another medic of the bridge
    assert "Zhang Wei" in client.get(f"/alerts/{alert_id}").text
    login(client, "zhao")  # a medic of another site: not found at all
    assert client.get(f"/alerts/{alert_id}").status_code == 404
    for reader in ("chen", "root"):  # the county's coordinator, an admin: the alert, not the person
        login(client, reader)
        page = client.get(f"/alerts/{alert_id}")
        assert page.status_code == 200 and "referred" in page.text.lower()
        assert not any(v in page.text for v in DETAILS.values())

    def api_alert(name: str) -> dict[str, object]:
        token = client.post("/api/v1/token", json={"username": name, "password": PASSWORD}).json()["token"]
        reply = client.get(f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200
        body: dict[str, object] = reply.json()
        return body

    assert api_alert("li")["followup"] == {f.removeprefix("followup_"): v for f, v in DETAILS.items()}
    coordinator = api_alert("chen")
    assert "followup" not in coordinator and "Zhang Wei" not in str(coordinator)

    for what in ("alerts", "scans"):
        assert cli.main(["export", "--db", any_db, "--what", what]) == 0
    assert cli.main(["report", "--db", any_db, "--day", "2026-12-01", "--format", "json"]) == 0
    assert cli.main(["alerts", "--db", any_db, "--all", "--format", "json"]) == 0
    printed = capsys.readouterr()
    assert alert_id in printed.out and "referred" in printed.out
    payloads = [str(alerts.event_payload(store.alert(alert_id), e)) for e in store.alert_events(alert_id)]  # type: ignore[arg-type]
    cells = every_cell(any_db)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for value in DETAILS.values():
        assert value not in printed.out + printed.err, "in a CLI's output"
        assert not any(value in p for p in payloads), "in an MQTT payload"
        assert not any(value in c for c in cells), "in a table other than followups (events, outbox, audit...)"
        assert value not in logged, "in the log"
    seen = [(r.actor, r.action, r.target) for r in store.audit(None, None) if r.action.startswith("followup")]
    assert sorted(seen) == [("medic:li", "followup_recorded", alert_id), ("medic:li", "followup_viewed", alert_id),
                            ("medic:li", "followup_viewed", alert_id),  # the page, then the API
                            ("medic:wang", "followup_viewed", alert_id)]  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "fields", "says"),
    [
        ("cleared", {"followup_name": "Zhang Wei"}, "only for a follow-up"),
        ("referred", {"followup_name": "x" * 101}, "name: at most 100 characters (given 101)"),
        ("monitored", {"followup_phone": "138 0013 8000 ext 5"}, "phone: digits, spaces, + and - only"),
        ("turned_back", {"followup_plate": "A" * 17}, "plate: at most 16 characters"),
        ("referred", {"followup_note": "two\nlines"}, "note: one line of text"),
    ],
)
def test_details_are_refused_with_cleared_and_when_malformed(
    client: TestClient, store: Store, outcome: str, fields: dict[str, str], says: str
) -> None:
    alert_id = rechecked_fever(client, store, 8)
    csrf = csrf_of(client.get(f"/alerts/{alert_id}").text)
    reply = client.post(f"/alerts/{alert_id}/resolve", data={"csrf": csrf, "outcome": outcome, **fields})
    assert reply.status_code == 409 and says in reply.text
    assert not any(v in reply.text for v in fields.values() if len(v) > 3), "the error repeats what was typed"
    assert store.followup(alert_id) is None and store.alert(alert_id).state != alerts.RESOLVED  # type: ignore[union-attr]


def test_the_api_resolve_takes_the_details_and_refuses_them_with_cleared(client: TestClient, store: Store) -> None:
    alert_id = rechecked_fever(client, store, 9)
    token = client.post("/api/v1/token", json={"username": "wang", "password": PASSWORD}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    refused = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"outcome": "cleared", **DETAILS}, headers=auth)
    assert refused.status_code == 409 and refused.json()["error"] == "refused"
    done = client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"outcome": "monitored", **DETAILS}, headers=auth)
    assert done.status_code == 200 and "Zhang Wei" not in done.text
    assert store.followup(alert_id).recorded_by == "medic:wang"  # type: ignore[union-attr]


def test_retention_deletes_details_after_28_days_and_keeps_younger_ones(store: Store, any_db: str) -> None:
    ids = [raise_fever(store, "bridge", "n1", seq, T0) for seq in (1, 2, 3)]
    now = T0 + 40 * DAY_MS
    with store.transaction() as tx:
        for alert_id, age_days in zip(ids, (29, 28, 27), strict=True):
            tx.save_followup(FollowupRow(alert_id, "Zhang Wei", "", "", "", now - age_days * DAY_MS, "medic:li"))
    assert followup.forget(store, now, 28) == 1  # recorded more than 28 days before now: 29 goes, 28 and 27 stay
    assert [store.followup(a) is not None for a in ids] == [False, True, True]
    assert followup.forget(store, now + DAY_MS, 28) == 1
    # The command (the wall clock, [web] followup_days from the environment) on the same rule, with no flag.
    wall = int(time.time() * 1000)
    with store.transaction() as tx:
        tx.save_followup(FollowupRow(ids[0], "Li Na", "", "", "", wall - 8 * DAY_MS, "medic:li"))
        tx.save_followup(FollowupRow(ids[1], "Wu Lei", "", "", "", wall - 6 * DAY_MS, "medic:li"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHECKPOINT_WEB_FOLLOWUP_DAYS", "7")
        assert cli.main(["retention", "--db", any_db]) == 0
    assert [store.followup(a) is not None for a in ids] == [False, True, True]
    assert [a.alert_id for a in store.alerts(None, None, None)] == ids  # without --older-than nothing else goes


def test_followup_days_is_validated() -> None:
    assert config_mod.load(environ={}).web.followup_days == 28
    with pytest.raises(ConfigError, match="followup_days"):
        config_mod.load(environ={"CHECKPOINT_WEB_FOLLOWUP_DAYS": "0"})


NEW_PASSWORD = "a new one, long enough"


def lines(store: Store) -> list[tuple[str, str, str, str, str]]:
    return [(r.actor, r.action, r.target, r.address, r.detail) for r in store.audit(None, None)]


def test_logins_ok_and_refused_and_logouts_are_audited(client: TestClient, store: Store) -> None:
    assert client.post("/login", data={"username": "li", "password": "wrong password!"}).status_code == 401
    assert client.post("/login", data={"username": PASSWORD, "password": PASSWORD}).status_code == 401  # typed
    assert client.post("/login", data={"username": "li", "password": PASSWORD}).status_code == 303
    csrf = csrf_of(client.get("/alerts").text)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.post("/api/v1/token", json={"username": "chen", "password": PASSWORD}).status_code == 201
    assert sorted(lines(store)) == sorted([
        ("li", "login_refused", "li", "testclient", "page: wrong password"),
        ("", "login_refused", "", "testclient", "page: unknown user name"),  # the name typed is not kept
        ("medic:li", "login", "li", "testclient", "page"),
        ("medic:li", "logout", "li", "testclient", ""),
        ("coordinator:chen", "login", "chen", "testclient", "api"),
    ])  # fmt: skip
    assert all(r.at == T0 for r in store.audit(None, None))
    assert not any(PASSWORD in str(line) for line in lines(store))


def test_rate_limited_logins_are_audited(client: TestClient, store: Store) -> None:
    for _ in range(6):
        client.post("/login", data={"username": "zhao", "password": "wrong password!"})
    assert [d for *_, d in lines(store)][-1] == "page: too many failed logins"


def test_account_and_site_changes_from_the_cli_name_the_os_user(
    any_db: str, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "password"
    secret.write_text(NEW_PASSWORD)
    users, pw = ["users", "--db", any_db], ["--password-file", str(secret)]
    assert cli.main([*users, "add", "sun", "--role", "medic", "--sites", "bridge", *pw]) == 0
    assert cli.main([*users, "reset-password", "sun", *pw]) == 0
    assert cli.main([*users, "disable", "sun"]) == 0
    assert cli.main(["sites", "--db", any_db, "set", "ferry", "--timezone", "Asia/Shanghai", "--county", "east"]) == 0
    me = f"cli:{getpass.getuser()}"
    assert lines(store) == [
        (me, "user_add", "sun", "", "role=medic sites=bridge county="),
        (me, "user_reset_password", "sun", "", ""),
        (me, "user_disable", "sun", "", ""),
        (me, "site_set", "ferry", "", "name=ferry county=east timezone=Asia/Shanghai shifts=08-16,16-24,00-08"),
    ]
    assert not any(NEW_PASSWORD in str(line) for line in lines(store))

    capsys.readouterr()
    monkeypatch.setenv("CHECKPOINT_REPORT_TIMEZONE", "Asia/Urumqi")
    assert cli.main(["audit", "--db", any_db]) == 0  # today, in [report] timezone
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == list(audit.COLUMNS) and len(out) == 5
    assert all("(Asia/Urumqi)" in line and me in line for line in out[1:])
    assert cli.main(["audit", "--db", any_db, "--action", "site_set", "--format", "json"]) == 0
    assert '"target": "ferry"' in capsys.readouterr().out
    assert cli.main(["audit", "--db", any_db, "--since", "2000-01-01", "--until", "2000-01-02"]) == 0
    assert "no audit lines" in capsys.readouterr().out


def test_audit_on_a_missing_database_names_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["audit", "--db", f"sqlite:///{tmp_path / 'none.db'}"]) != 0
    assert "no database at" in capsys.readouterr().err
