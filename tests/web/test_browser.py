"""The real console in Debian's chromium, driven by Playwright (never `playwright install`): a medic on a
phone-sized screen logs in, sees a fever appear live (server-sent events) after it is written to the store by
another process's connection, acknowledges it and records a re-check; the page is in Chinese by default.
The console runs as its own process (`checkpoint-gateway web --port 0`), once for the module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.base import Store

from .conftest import PASSWORD, make_db, raise_fever

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = Path(__file__).parents[2] / "gateway/web/static/vendor/htmx.min.js"
ARTIFACTS = Path(__file__).parents[2] / "build/test-artifacts/web"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, hashed: str) -> Iterator[tuple[str, Store]]:
    """(the console's URL, the store the test writes through)."""
    tmp = tmp_path_factory.mktemp("console")
    store = make_db(tmp / "console.db", hashed)
    env = {**os.environ, "CHECKPOINT_WEB_SESSION_SECRET_FILE": str(tmp / "session.key"),
           "CHECKPOINT_WEB_POLL_INTERVAL_S": "0.1", "CHECKPOINT_REPORT_TIMEZONE": "Asia/Shanghai"}  # fmt: skip
    cmd = [sys.executable, "-m", "gateway", "web", "--port", "0", "--db", f"sqlite:///{tmp / 'console.db'}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once the socket is bound
    assert "console on http://" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    url = line.split("console on ")[1].split("/ ")[0]
    yield url, store
    proc.terminate()
    proc.wait(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def log_in(browser, url: str, name: str, viewport: dict[str, int], locale: str):
    context = browser.new_context(viewport=viewport, locale=locale)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/alerts")
    return context, page


def test_a_medic_on_a_phone_sees_a_fever_live_acknowledges_and_rechecks(console, browser) -> None:
    url, store = console
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context, page = log_in(browser, url, "li", {"width": 390, "height": 844}, "zh-CN")
    assert "未关闭的告警" in page.content()
    if VENDOR.exists():
        page.wait_for_function("window.htmx !== undefined")
    page.wait_for_selector("#live-state.on")  # the EventSource is open

    start = time.monotonic()
    alert_id = raise_fever(store, "bridge", "n1", 42, int(time.time() * 1000))
    row = page.wait_for_selector(f'tr[data-alert-id="{alert_id}"]', timeout=5_000)
    seen_after = time.monotonic() - start
    assert seen_after < 1.0, f"the fever took {seen_after:.2f} s to appear"
    assert "未处理" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "board-phone.png"), full_page=True)

    page.click(f'tr[data-alert-id="{alert_id}"] a')
    page.wait_for_selector(".alert-detail")
    page.click("button[value=acknowledge]")
    page.wait_for_selector('tr.event[data-reason="acknowledged"]')
    page.select_option("select[name=method]", "oral")
    page.fill("input[name=reading_c]", "38.2")
    page.click("button[value=recheck]")
    recheck = page.wait_for_selector('tr.event[data-reason="recheck"]')
    assert "口温 38.2 °C" in recheck.inner_text() and "medic:li" in recheck.inner_text()
    assert "CST" in recheck.inner_text()  # the site's zone, named
    page.screenshot(path=str(ARTIFACTS / "alert-phone.png"), full_page=True)
    events = store.alert_events(alert_id)
    assert [(e.reason, e.actor) for e in events] == [
        ("elevated", "gateway"), ("acknowledged", "medic:li"), ("recheck", "medic:li")]  # fmt: skip
    context.close()


def test_the_board_on_a_desk_screen_in_english(console, browser) -> None:
    url, _ = console
    context, page = log_in(browser, url, "wang", {"width": 1280, "height": 800}, "en-GB")
    assert "Open alerts" in page.content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "board-desk.png"), full_page=True)
    context.close()
