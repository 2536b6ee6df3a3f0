"""The real console in Debian's chromium, driven by Playwright (never `playwright install`), behind the real
gateway: scans are published on MQTT by node publishers to a private Mosquitto, the gateway service
(testkit.gateway.InProcessGateway) stores them and raises alerts, and the console (`checkpoint-gateway web`, its
own process on the same SQLite file) shows them live by server-sent events. One broker, gateway, console and
browser for the module; each test has nodes of its own. Screenshots go to build/test-artifacts/web/."""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.store.base import SiteRow, Store
from sim.broker import Broker
from testkit.gateway import InProcessGateway, make_config
from testkit.node import NodePublisher, scan_payload

from .conftest import PASSWORD, make_db

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = Path(__file__).parents[2] / "gateway/web/static/vendor/htmx.min.js"
ARTIFACTS = Path(__file__).parents[2] / "build/test-artifacts/web"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
PHONE, DESK = {"width": 390, "height": 844}, {"width": 1280, "height": 800}
FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
ZONE = "Asia/Shanghai"  # bridge and ferry
LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST \(Asia/Shanghai\)$")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/setup.sh)")


def now_ms() -> int:
    return int(time.time() * 1000)


class Node:
    """A node publisher with its own seqs and a boot time, whose scans carry the wall clock."""

    def __init__(self, port: int, site: str, node: str) -> None:
        self.publisher = NodePublisher(port, site, node).connect()
        self.site, self.node, self.seq, self.boot = site, node, 0, now_ms() - 60_000

    def scan(self, **fields: Any) -> int:
        self.seq += 1
        ts = now_ms()
        self.publisher.send([scan_payload(self.site, self.node, self.seq, ts=ts, uptime_ms=ts - self.boot, **fields)])
        return self.seq


@dataclass
class Stack:
    url: str
    db: Path
    store: Store  # the test's own connection, to read what the gateway and console wrote
    port: int
    nodes: list[Node] = field(default_factory=list)

    def node(self, name: str, site: str = "bridge") -> Node:
        self.nodes.append(Node(self.port, site, name))
        return self.nodes[-1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, hashed: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("console")
    db = tmp / "console.db"
    store = make_db(db, hashed)
    with store.transaction() as tx:
        tx.save_site(SiteRow("ferry", "Ferry post", "east", ZONE))
    env = {**os.environ, "CHECKPOINT_WEB_SESSION_SECRET_FILE": str(tmp / "session.key"),
           "CHECKPOINT_WEB_POLL_INTERVAL_S": "0.1", "CHECKPOINT_REPORT_TIMEZONE": ZONE}  # fmt: skip
    cmd = [sys.executable, "-m", "gateway", "web", "--port", "0", "--db", f"sqlite:///{db}"]
    with Broker() as broker:
        gateway = InProcessGateway(make_config(broker.port, f"sqlite:///{db}")).start()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket is bound
        assert "console on http://" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        s = Stack(line.split("console on ")[1].split("/ ")[0], db, store, broker.port)
        yield s
        for n in s.nodes:
            n.publisher.close()
        proc.terminate()
        proc.wait(timeout=10)
        gateway.stop()
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def log_in(browser: Any, url: str, name: str, viewport: dict[str, int], locale: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport=viewport, locale=locale)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/alerts")
    if VENDOR.exists():
        page.wait_for_function("window.htmx !== undefined")
    page.wait_for_selector("#live-state.on")  # the EventSource is open
    return context, page


def row_of(node: Node, seq: int) -> str:
    return f'tr[data-node="{node.site}/{node.node}"][data-seq="{seq}"]'


def fever_on_board(page: Any, node: Node, timeout_ms: int = 1_000) -> tuple[str, float]:
    """Publish a fever scan and wait for its row on the open board; (alert id, seconds it took)."""
    start = time.monotonic()
    seq = node.scan(**FEVER)
    row = page.wait_for_selector(row_of(node, seq), timeout=timeout_ms)
    return row.get_attribute("data-alert-id"), time.monotonic() - start


def post(page: Any, path: str, form: dict[str, str]) -> int:
    """A POST from inside the page (its cookies, same origin): the response status, redirects not followed."""
    return int(page.evaluate(
        "([path, form]) => fetch(path, {method: 'POST', body: new URLSearchParams(form), redirect: 'manual'})"
        ".then(r => r.type === 'opaqueredirect' ? 303 : r.status)", [path, form]))  # fmt: skip


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_fever_published_on_mqtt_is_on_the_board_within_a_second_and_handled_to_a_referral(stack, browser) -> None:
    context, page = log_in(browser, stack.url, "li", PHONE, "zh-CN")
    assert "未关闭的告警" in page.content()
    alert_id, took = fever_on_board(page, stack.node("n1"))
    assert took < 1.0, f"the fever took {took:.2f} s from MQTT to the board"
    row = page.wait_for_selector(f'tr[data-alert-id="{alert_id}"].flash', timeout=1_000)
    assert "未处理" in row.inner_text() and "39" in row.inner_text()
    shot(page, "board-phone.png")

    page.click(f'tr[data-alert-id="{alert_id}"] a')
    page.wait_for_selector(".alert-detail")
    page.click("button[value=acknowledge]")
    page.wait_for_selector('tr.event[data-reason="acknowledged"]')
    page.select_option("select[name=method]", "oral")
    page.fill("input[name=reading_c]", "38.2")
    page.click("button[value=recheck]")
    page.wait_for_selector('tr.event[data-reason="recheck"]')
    page.select_option("select[name=outcome]", "referred")
    page.fill("input[name=note]", "county fever clinic")
    page.click("button[value=resolve]")
    page.wait_for_selector('tr.event[data-reason="referred"]')
    shot(page, "alert-phone.png")

    events = stack.store.alert_events(alert_id)
    assert [(e.state, e.reason, e.actor) for e in events] == [
        ("raised", "elevated", "gateway"), ("acknowledged", "acknowledged", "medic:li"),
        ("acknowledged", "recheck", "medic:li"), ("resolved", "referred", "medic:li")]  # fmt: skip
    assert (events[2].method, events[2].reading_c) == ("oral", 38.2)
    history = page.query_selector_all("tr.event")
    zone = zoneinfo.ZoneInfo(ZONE)
    for tr, e in zip(history, events, strict=True):
        shown = tr.query_selector("time").inner_text()
        assert LOCAL_TIME.match(shown), shown
        assert shown.startswith(f"{dt.datetime.fromtimestamp(e.at / 1000, zone):%Y-%m-%d %H:%M:%S} CST")
        assert tr.query_selector(".actor").inner_text() == e.actor
    assert "口温 38.2 °C" in history[2].inner_text() and "county fever clinic" in history[3].inner_text()
    alert = stack.store.alert(alert_id)
    assert alert is not None and (alert.state, alert.reason, alert.acknowledged_by) == ("resolved", "referred",
                                                                                         "medic:li")  # fmt: skip
    context.close()


def test_an_infrared_retest_adds_its_reading_and_never_resolves(stack, browser) -> None:
    context, page = log_in(browser, stack.url, "wang", DESK, "en-GB")
    n2 = stack.node("n2")
    alert_id, _ = fever_on_board(page, n2, timeout_ms=5_000)
    n2.scan(retest_of=n2.seq)  # a normal infrared retest of the same traveller
    row = page.wait_for_selector(f'#board table.alerts:not(.closed) tr[data-alert-id="{alert_id}"][data-events="2"]',
                                 timeout=5_000)  # fmt: skip
    assert row.get_attribute("data-state") == "raised" and "Active, unacknowledged" in row.inner_text()
    shot(page, "board-desk.png")
    page.click(f'tr[data-alert-id="{alert_id}"] a')
    retest = page.wait_for_selector('tr.event[data-reason="retest_normal"]')
    assert "does not close" in retest.inner_text() and "°C" in retest.inner_text()
    assert page.query_selector("button[value=resolve]") is None  # a thermometer must decide first
    alert = stack.store.alert(alert_id)
    assert alert is not None and (alert.state, alert.resolved_at, alert.events) == ("raised", None, 2)
    context.close()


def test_two_medics_racing_to_acknowledge_get_one_winner_and_a_clear_message(stack, browser) -> None:
    li_context, li = log_in(browser, stack.url, "li", PHONE, "zh-CN")
    wang_context, wang = log_in(browser, stack.url, "wang", DESK, "en-GB")
    alert_id, _ = fever_on_board(li, stack.node("n3"), timeout_ms=5_000)
    for page in (li, wang):
        page.goto(f"{stack.url}/alerts/{alert_id}")
    li.click("button[value=acknowledge]", no_wait_after=True)
    wang.click("button[value=acknowledge]", no_wait_after=True)  # before li's answer has come back
    done = 'tr.event[data-reason="acknowledged"], h1.error'
    lost = [p.wait_for_selector(done).get_attribute("class") == "error" for p in (li, wang)]
    assert sorted(lost) == [False, True]
    events = stack.store.alert_events(alert_id)
    assert [e.reason for e in events] == ["elevated", "acknowledged"]
    winner, loser = ("li", wang) if lost[1] else ("wang", li)
    assert events[1].actor == f"medic:{winner}"
    message = loser.inner_text("main")
    assert ("already acknowledged" in message or "已由他人接手" in message) and f"{winner} · " in message
    assert "CST (Asia/Shanghai)" in message
    li_context.close()
    wang_context.close()


def test_a_coordinator_reads_an_alert_but_cannot_acknowledge_it(stack, browser) -> None:
    context, page = log_in(browser, stack.url, "chen", DESK, "en-GB")
    alert_id, _ = fever_on_board(page, stack.node("n4"), timeout_ms=5_000)
    page.goto(f"{stack.url}/alerts/{alert_id}")
    page.wait_for_selector(".alert-detail")
    assert page.query_selector("button[value=acknowledge]") is None
    csrf = page.get_attribute("input[name=csrf]", "value")
    assert post(page, f"/alerts/{alert_id}/acknowledge", {"csrf": csrf}) == 403
    assert [e.reason for e in stack.store.alert_events(alert_id)] == ["elevated"]
    context.close()


def test_a_post_without_the_csrf_token_is_refused(stack, browser) -> None:
    context, page = log_in(browser, stack.url, "li", DESK, "en-GB")
    alert_id, _ = fever_on_board(page, stack.node("n5"), timeout_ms=5_000)
    assert post(page, f"/alerts/{alert_id}/acknowledge", {}) == 403
    assert post(page, f"/alerts/{alert_id}/acknowledge", {"csrf": "forged"}) == 403
    assert [e.reason for e in stack.store.alert_events(alert_id)] == ["elevated"]
    csrf = page.get_attribute("input[name=csrf]", "value")
    assert post(page, f"/alerts/{alert_id}/acknowledge", {"csrf": csrf}) == 303  # the token is the difference
    assert [e.reason for e in stack.store.alert_events(alert_id)] == ["elevated", "acknowledged"]
    context.close()


def expected_sheet(db: Path, day: str) -> dict[str, dict[str, int]]:
    """The day's tallies per site counted straight from the database's tables (the sheet's definitions)."""
    zone = zoneinfo.ZoneInfo(ZONE)
    start = int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), zone).timestamp() * 1000)
    end = start + 86_400_000
    out: dict[str, dict[str, int]] = {}
    with sqlite3.connect(db) as c:
        for site, verdict, retest in c.execute(
            "SELECT site, gateway_verdict, retest_of IS NOT NULL FROM scans WHERE scanned_at >= ? AND scanned_at < ?",
            (start, end),
        ):
            r = out.setdefault(site, {})
            key = "retests" if retest else "screened"
            r[key] = r.get(key, 0) + 1
            if not retest:
                r[verdict] = r.get(verdict, 0) + 1
        fevers = c.execute(
            "SELECT a.site, a.alert_id, a.state, a.reason, a.confirmed_at FROM alerts a JOIN scans s"
            " ON (s.site, s.node, s.seq) = (a.site, a.node, a.seq)"
            " WHERE a.kind = 'fever' AND s.scanned_at >= ? AND s.scanned_at < ?",
            (start, end),
        ).fetchall()
        for site, alert_id, state, reason, confirmed_at in fevers:
            r = out.setdefault(site, {})
            methods = c.execute("SELECT COUNT(*) FROM alert_events WHERE alert_id = ? AND method IS NOT NULL",
                                (alert_id,)).fetchone()[0]  # fmt: skip
            r["rechecked"] = r.get("rechecked", 0) + (methods > 0)
            r["confirmed"] = r.get("confirmed", 0) + (confirmed_at is not None)
            if state == "resolved":
                r[reason] = r.get(reason, 0) + 1
        for site, state in c.execute("SELECT site, state FROM nodes"):
            r = out.setdefault(site, {})
            r["nodes_up"] = r.get("nodes_up", 0) + (state == "online")
    return out


def test_the_days_sheet_matches_the_database(stack, browser) -> None:
    f1 = stack.node("f1", site="ferry")
    for _ in range(5):
        f1.scan()
    fever = f1.scan(**FEVER)
    f1.scan(retest_of=fever)
    assert f1.publisher.wait_receipts(range(1, f1.seq + 1))  # receipts follow the gateway's commit
    day = dt.datetime.now(zoneinfo.ZoneInfo(ZONE)).date().isoformat()
    expected = expected_sheet(stack.db, day)
    assert {k: expected["ferry"].get(k, 0) for k in ("screened", "normal", "elevated", "retests", "nodes_up")} == {
        "screened": 6, "normal": 5, "elevated": 1, "retests": 1, "nodes_up": 1}  # fmt: skip

    context, page = log_in(browser, stack.url, "chen", DESK, "en-GB")
    page.goto(f"{stack.url}/sheet?day={day}")
    shown: dict[str, dict[str, int]] = {}
    for tr in page.query_selector_all("table.sheet:not(.field-loop):not(.by-shift) tbody tr"):
        cells = {td.get_attribute("class"): td.inner_text() for td in tr.query_selector_all("td[class]")}
        shown[tr.get_attribute("data-site")] = {k: int(v) for k, v in cells.items() if k != "site"}
    assert set(shown) == {"bridge", "ferry"}  # chen's county; toll is another county's
    for site, row in shown.items():
        assert row == {k: expected[site].get(k, 0) for k in row}, site
    by_shift: dict[str, int] = {}
    for td in page.query_selector_all("table.by-shift tbody tr td.screened"):
        site = td.evaluate("cell => cell.parentElement.dataset.site")
        by_shift[site] = by_shift.get(site, 0) + int(td.inner_text())
    assert by_shift == {site: row["screened"] for site, row in shown.items()}  # the default shifts: the whole day
    assert shown["bridge"]["referred"] >= 1 and shown["bridge"]["rechecked"] >= 1
    shot(page, "sheet-desk.png")
    csv = page.request.get(f"{stack.url}/sheet.csv?day={day}").text().splitlines()
    header = csv[0].split(",")
    for line in csv[1:]:
        values = dict(zip(header, line.split(","), strict=True))
        assert {k: int(v) for k, v in values.items() if k != "site"} == shown[values["site"]]
    context.close()

    context, page = log_in(browser, stack.url, "chen", PHONE, "zh-CN")
    page.goto(f"{stack.url}/sheet?day={day}")
    page.wait_for_selector('table.sheet tr[data-site="ferry"]')
    assert "筛查人数" in page.content()
    shot(page, "sheet-phone.png")
    context.close()
