"""Follow-up details in Debian's chromium (Playwright, never `playwright install`) against the real console
process (`checkpoint-gateway web` on a SQLite file, log level debug): the fields show only for an outcome that
needs follow-up, a medic resolves as referred with a name and sees it on the alert page, a coordinator does not,
and the console's log holds none of it. Screenshot: build/test-artifacts/web/followup-phone.png."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import PASSWORD, make_db, raise_fever

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "build/test-artifacts/web"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
PHONE = {"width": 390, "height": 844}
NAME, PLATE = "Zhang Wei", "ZJ-A12345"
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/setup.sh)")


@pytest.fixture
def console(tmp_path: Path, hashed: str) -> Iterator[tuple[str, str, Path]]:
    """(console URL, a fever alert's id at the bridge, the console's log file)."""
    db = tmp_path / "console.db"
    store = make_db(db, hashed)
    alert_id = raise_fever(store, "bridge", "n1", 1, int(time.time() * 1000))
    store.close()
    log = tmp_path / "console.log"
    env = {**os.environ, "CHECKPOINT_WEB_SESSION_SECRET_FILE": str(tmp_path / "session.key"),
           "CHECKPOINT_GATEWAY_LOG_LEVEL": "debug"}  # fmt: skip
    cmd = [sys.executable, "-m", "gateway", "web", "--port", "0", "--db", f"sqlite:///{db}"]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket is bound
        assert "console on http://" in line, (line, log.read_text())
        yield line.split("console on ")[1].split("/ ")[0], alert_id, log
        proc.terminate()
        proc.wait(timeout=10)


def log_in(browser: Any, url: str, name: str) -> Any:
    page = browser.new_context(viewport=PHONE, locale="en-GB").new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/alerts")
    return page


def test_a_medic_resolves_as_referred_with_a_name_and_sees_it(console: tuple[str, str, Path]) -> None:
    url, alert_id, log = console
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = log_in(browser, url, "li")
        page.goto(f"{url}/alerts/{alert_id}")
        page.click("button[value=acknowledge]")
        page.select_option("form.recheck select[name=method]", "oral")
        page.fill("form.recheck input[name=reading_c]", "38.2")
        page.click("button[value=recheck]")
        box = page.locator("form.resolve fieldset.followup")
        page.select_option("form.resolve select[name=outcome]", "cleared")
        assert box.is_hidden()  # no personal details with cleared
        page.select_option("form.resolve select[name=outcome]", "referred")
        assert box.is_visible()
        page.fill("input[name=followup_name]", NAME)
        page.fill("input[name=followup_plate]", PLATE)
        page.click("button[value=resolve]")
        page.wait_for_selector(".followup-details")
        assert page.inner_text(".followup-name") == NAME and page.inner_text(".followup-plate") == PLATE
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "followup-phone.png"), full_page=True)
        coordinator = log_in(browser, url, "chen")
        coordinator.goto(f"{url}/alerts/{alert_id}")
        text = coordinator.inner_text("main")
        assert "Referred" in text or "referred" in text
        assert NAME not in text and PLATE not in text and coordinator.locator(".followup-details").count() == 0
        browser.close()
    logged = log.read_text()
    assert logged and NAME not in logged and PLATE not in logged
