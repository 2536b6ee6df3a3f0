"""Fixtures for the notifier's tests: a fresh SQLite store built by the real migrations with one named site, and
a FakeClock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, open_store
from gateway.store.base import SiteRow
from testkit.gateway import FakeClock
from testkit.notify import POST, SITE, ZONE


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    with s.transaction() as tx:
        tx.save_site(SiteRow(SITE, POST, "county-a", ZONE))
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_796_000_000_000)  # 2026-11-30 08:53:20 in Asia/Shanghai
