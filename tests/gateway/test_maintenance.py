"""Planned maintenance windows (issue 12 item 5): a node, or a whole post, marked as planned down raises no
offline alert inside its window; one still offline when the window ends raises it then (maintenance_over); a
node outside any window alerts as before. The service loop on an injected clock with the real SQLite store;
`maintenance set|list|end` through the real CLI, each an audit line; the console's nodes page shows the window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import Store, open_store
from gateway.store.base import MaintenanceRow
from testkit.gateway import FakeClock, run_cli
from testkit.service import ServiceLoop

SITE = "hill"  # not the loop's probe site (bridge): a post of its own
HOUR = 3_600_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield s
    s.close()


@pytest.fixture
def loop(store: Store) -> Iterator[ServiceLoop]:
    """The service loop on a FakeClock, both nodes of the post online."""
    running = ServiceLoop(store, FakeClock()).start()
    try:
        for n in ("n1", "n2"):
            _state(running, n, "online")
        yield running
    finally:
        running.stop()


def _window(store: Store, node: str, start: int, end: int) -> None:
    with store.transaction() as tx:
        tx.save_maintenance(MaintenanceRow(SITE, node, start, end, "power cut", "cli:test", start))


def _state(loop: ServiceLoop, node: str, state: str) -> None:
    loop.send(node, "status", {"v": 1, "state": state, "fw": "1.0", "boot": 1, "config_id": "c"}, site=SITE)


def _raised(loop: ServiceLoop, kind: str) -> list[tuple[str, str]]:
    return [(e["node"], e["reason"]) for e in loop.events(kind) if e["state"] == "raised" and e["site"] == SITE]


def test_a_node_down_inside_its_window_alerts_only_if_still_down_when_it_ends(store: Store, loop: ServiceLoop) -> None:
    clock = loop.clock
    _window(store, "n1", clock(), clock() + HOUR)
    _state(loop, "n1", "offline")  # planned: the workshop
    loop.checked()
    assert _raised(loop, "node_offline") == []
    _state(loop, "n2", "offline")  # not planned: alerts, and the post is dark
    assert _raised(loop, "node_offline") == [("n2", "status")]
    assert _raised(loop, "post_offline") == [("*", "status")]

    clock.advance(HOUR + 1000)  # the window is over and n1 is still down
    loop.checked()
    assert _raised(loop, "node_offline") == [("n2", "status"), ("n1", "maintenance_over")]
    loop.checked()
    assert len(_raised(loop, "node_offline")) == 2  # once


def test_a_whole_post_planned_down_is_quiet_until_its_window_ends(store: Store, loop: ServiceLoop) -> None:
    clock = loop.clock
    _window(store, "*", clock(), clock() + HOUR)
    _state(loop, "n1", "offline")
    _state(loop, "n2", "offline")
    loop.checked()
    assert _raised(loop, "node_offline") == [] and _raised(loop, "post_offline") == []
    _state(loop, "n2", "online")  # back before the end: nothing to say about it
    clock.advance(HOUR + 1000)
    _state(loop, "n2", "online")  # n2 still talking (else silent after 30 s)
    loop.checked()
    assert _raised(loop, "node_offline") == [("n1", "maintenance_over")]
    assert _raised(loop, "post_offline") == []  # n2 is up: the post is not dark


def test_windows_are_set_listed_ended_and_audited_through_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    open_store(db).close()
    made = run_cli("maintenance", "--db", db, "set", SITE, "--node", "n1", "--until", "2099-01-01T08:00",
                   "--note", "sensor swap")  # fmt: skip
    assert made.returncode != 0 and "at most 14 days" in made.stderr and "Traceback" not in made.stderr
    made = run_cli("maintenance", "--db", db, "set", SITE, "--until", str(_now_ms() + 2 * HOUR), "--note", "power cut")
    assert made.returncode == 0, made.stderr
    assert f"{SITE}/* planned down" in made.stdout
    listed = run_cli("maintenance", "--db", db, "list")
    assert f"{SITE}/*" in listed.stdout and "power cut" in listed.stdout and "1 current or planned" in listed.stdout
    ended = run_cli("maintenance", "--db", db, "end", SITE)
    assert ended.returncode == 0, ended.stderr
    assert "0 current or planned" in run_cli("maintenance", "--db", db, "list").stdout
    past = run_cli("maintenance", "--db", db, "set", SITE, "--until", "2020-01-01", "--note", "x")
    assert past.returncode != 0 and "must end after it starts and after now" in past.stderr
    lines = run_cli("audit", "--db", db, "--since", "2020-01-01").stdout
    assert re.search(r"maintenance_set\s.*hill/\*", lines) and re.search(r"maintenance_ended\s.*hill/\*", lines)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
