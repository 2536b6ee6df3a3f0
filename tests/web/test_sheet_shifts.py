"""The day sheet per shift and by hour (issue 12 item 7): a coordinator sees each site's shifts in the site's own
zone and an hourly chart of scans and fevers, counted as the database holds them, for the sites of their county
only."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from starlette.testclient import TestClient

from gateway.store.base import Store

from .conftest import scan
from .test_routes import client, clock, login, store  # noqa: F401  (the console's fixtures, shared)

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")  # the bridge's zone (conftest); default shifts 08-16, 16-24, 00-08


def _at(hhmm: str) -> int:
    return int(dt.datetime.fromisoformat(f"2026-12-01T{hhmm}").replace(tzinfo=ZONE).timestamp() * 1000)


def test_the_sheet_shows_each_shift_and_each_hour(client: TestClient, store: Store) -> None:  # noqa: F811
    rows = [scan("bridge", "n1", 1, _at("07:59"), "normal"), scan("bridge", "n1", 2, _at("08:00"), "normal"),
            scan("bridge", "n1", 3, _at("09:10")), scan("bridge", "n1", 4, _at("09:50"), "normal"),
            scan("bridge", "n1", 5, _at("23:59"), "normal"),
            scan("toll", "t1", 1, _at("09:00"))]  # fmt: skip
    with store.transaction() as tx:
        tx.insert_scans(rows)
    login(client, "chen")  # coordinator of the east county: the bridge, not the toll
    page = client.get("/sheet?day=2026-12-01").text

    shifts = dict(re.findall(r'data-site="bridge" data-shift="([\d-]+)">.*?class="screened">(\d+)<', page))
    assert shifts == {"00-08": "1", "08-16": "3", "16-24": "1"}
    fevers = re.search(r'data-site="bridge" data-shift="08-16">.*?class="elevated">(\d+)<', page)
    assert fevers and fevers.group(1) == "1"
    bars = re.findall(r'<g data-hour="(\d+)" data-scans="(\d+)" data-fevers="(\d+)">', page)
    assert len(bars) == 24  # the bridge's chart only
    assert {int(h): (int(n), int(f)) for h, n, f in bars if n != "0"} == {7: (1, 0), 8: (1, 0), 9: (2, 1), 23: (1, 0)}
    assert 'data-site="toll"' not in page
    assert "分班次统计" in page and "Asia/Shanghai" in page
