"""The console's and the notifier's own /metrics (issue 17 item 1), scraped over HTTP: the console counts
requests by route template, logins by result and alert actions by result as people made them (the audit log
and the alert events say the same); the notifier counts attempts by receiver and result as the outbox records
them, and shows a receiver that is down by its waiting deliveries and their age."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gateway.notify.metrics import NotifyMetrics
from gateway.store import Store, open_store
from gateway.store.base import UserRow
from gateway.web.app import create_app
from gateway.web.auth import hash_password
from gateway.web.metrics import ConsoleMetrics
from testkit.gateway import FakeClock
from testkit.notify import SITE, attempts, notifier, raise_fever, settings
from testkit.receivers import Webhook

PASSWORD = "correct horse battery"


def scrape(server_port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from /metrics over HTTP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield s
    s.close()


def test_the_console_counts_logins_and_actions_as_people_made_them(store: Store) -> None:
    clock = FakeClock(1_796_078_756_290)
    with store.transaction() as tx:
        for name in ("li", "wang"):
            tx.save_user(UserRow(name, "medic", hash_password(PASSWORD), SITE, "", "en", 0, clock(), clock()))
    alert = raise_fever(store, clock, seq=7, t_core=38.6)
    measured = ConsoleMetrics()
    server = measured.serve("127.0.0.1:0")
    try:
        clients = {n: TestClient(create_app(store, b"k" * 32, "Asia/Shanghai", clock=clock, metrics=measured))
                   for n in ("li", "wang")}  # fmt: skip
        assert clients["li"].post("/login", data={"username": "li", "password": "wrong"}).status_code == 401
        for name, client in clients.items():
            client.post("/login", data={"username": name, "password": PASSWORD}, follow_redirects=False)
        pages = {n: c.get(f"/alerts/{alert.alert_id}").text for n, c in clients.items()}
        csrf = {n: p.split('name="csrf" value="')[1].split('"')[0] for n, p in pages.items()}
        won = clients["li"].post(f"/alerts/{alert.alert_id}/acknowledge", data={"csrf": csrf["li"]},
                                 follow_redirects=False)  # fmt: skip
        lost = clients["wang"].post(f"/alerts/{alert.alert_id}/acknowledge", data={"csrf": csrf["wang"]},
                                    follow_redirects=False)  # fmt: skip
        assert won.status_code < 400 <= lost.status_code  # one winner (issue 12)
        got = scrape(server.port)
    finally:
        server.stop()
    assert got[("checkpoint_console_logins_total", (("result", "ok"), ("via", "page")))] == 2
    assert got[("checkpoint_console_logins_total", (("result", "refused"), ("via", "page")))] == 1
    assert got[("checkpoint_console_alert_actions_total", (("action", "acknowledge"), ("result", "done")))] == 1
    assert got[("checkpoint_console_alert_actions_total", (("action", "acknowledge"), ("result", "refused")))] == 1
    page = (
        "checkpoint_console_requests_total",
        (("method", "GET"), ("route", "/alerts/{alert_id}"), ("status", "200")),
    )
    assert got[page] == 2  # the route's template, never an alert id, as a label
    assert not any(alert.alert_id in str(labels) for _, labels in got)
    assert [e.actor for e in store.alert_events(alert.alert_id)] == ["gateway", "medic:li"]  # as counted
    assert len([a for a in store.audit(None, None) if a.action == "login"]) == 2


def test_the_notifier_counts_attempts_and_shows_a_receiver_that_is_down(store: Store) -> None:
    clock = FakeClock(1_796_078_756_290)
    webhook = Webhook()  # nothing listens on its port yet: the receiver is down
    section = settings({"retry_first_s": 5, "receivers": {"medics": {"url": webhook.url(), "locale": "en"}},
                        "routes": [{"receivers": ["medics"]}],
                        "timing": {"fever": {"repeat_min": 0, "escalate_min": 0}}})  # fmt: skip
    measured = NotifyMetrics()
    n = notifier(store, section, clock)
    n.metrics = measured
    server = measured.serve("127.0.0.1:0")
    try:
        raise_fever(store, clock, seq=1, t_core=38.4)
        n.step()
        clock.advance(120_000)
        n.step()  # the failed delivery waits (retry after 5 s): tried again, failed again
        down = scrape(server.port)
        with webhook:
            clock.advance(600_000)
            n.step()
            webhook.wait_for(lambda: len(webhook.posts) == 1)
        n.step()
        up = scrape(server.port)
    finally:
        server.stop()
    medics = (("receiver", "medics"),)
    assert down[("checkpoint_notify_attempts_total", (("receiver", "medics"), ("result", "failed")))] == 2
    assert down[("checkpoint_notify_pending", medics)] == 1
    assert down[("checkpoint_notify_oldest_pending_seconds", medics)] == 120  # waiting since the first pass
    tried = attempts(store)
    assert up[("checkpoint_notify_attempts_total", (("receiver", "medics"), ("result", "sent")))] == 1
    assert len(tried) == 3 == sum(v for (name, _), v in up.items() if name == "checkpoint_notify_attempts_total")
    assert up[("checkpoint_notify_pending", medics)] == 0 and up[("checkpoint_notify_send_seconds_count", medics)] == 3
