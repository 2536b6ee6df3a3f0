"""Console fixtures: a fresh database built by the real migrations, sites in two zones, one account per role,
and a helper that raises a fever the way the gateway does (scan and alert through the store)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import alerts
from gateway.store import open_store
from gateway.store.base import ScanRow, SiteRow, Store, UserRow
from gateway.web.auth import hash_password

T0 = 1_796_078_756_290  # 2026-12-01 06:45:56 in Asia/Shanghai
PASSWORD = "correct horse battery"
USERS = {  # name: (role, sites, county)
    "li": ("medic", "bridge", ""),
    "wang": ("medic", "bridge", ""),
    "zhao": ("medic", "toll", ""),
    "chen": ("coordinator", "", "east"),
    "root": ("admin", "", ""),
}


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make_db(path: Path, hashed: str) -> Store:
    store = open_store(f"sqlite:///{path}")
    with store.transaction() as tx:
        tx.save_site(SiteRow("bridge", "Bridge post", "east", "Asia/Shanghai"))
        tx.save_site(SiteRow("toll", "Toll post", "west", "Asia/Urumqi"))
        for name, (role, sites, county) in USERS.items():
            tx.save_user(UserRow(name, role, hashed, sites, county, "", 0, T0, T0))
    return store


@pytest.fixture(scope="session")
def hashed() -> str:
    return hash_password(PASSWORD)  # argon2 once: ~0.1 s a hash


def scan(site: str, node: str, seq: int, at: int, verdict: str = "elevated", retest_of: int | None = None,
         t_core: float = 38.49) -> ScanRow:  # fmt: skip
    return ScanRow(site, node, seq, 1, at, 1000 + seq, "forehead", 35.9, 22.0, t_core, verdict, (), 12, 900,
                   retest_of, "0.1.0", "cal", t_core, verdict, (), "cal", at, at)  # fmt: skip


def raise_fever(store: Store, site: str, node: str, seq: int, at: int) -> str:
    """An elevated scan stored and its alert raised, as ingest does; returns the alert id."""
    row = scan(site, node, seq, at)
    change = alerts.raise_fever(row, at)
    with store.transaction() as tx:
        tx.insert_scans([row])
        tx.save_alert(change.alert, change.event)
    return change.alert.alert_id


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


Login = Callable[..., str]
