"""Issue 10, kind 3 (the gateway's part): a scan is never dropped or misfiled for its `ts`.

Before the fix a node whose clock jumped to 2101 had every scan quarantined `out_of_range:ts`: 0 stored, 0
fever alerts, while staff saw red LEDs. Right: stored, the skew kept with the scan, filed in tallies under the
gateway's own time, one clock_skew node alert for a clock off by more than alerts.clock_skew_s (5 min),
resolved when the clock is right again. A backlog delivered late is not a wrong clock.

The service loop on an in-memory broker (testkit/service.py); the gateway's clock is a FakeClock at
2026-01-01T00:00:00Z.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.store import Store
from testkit.service import ServiceLoop

T0 = 1_767_225_600_000  # the gateway's clock: 2026-01-01T00:00:00Z
Y2101 = 4_133_980_800_000  # 2101-01-01: a node clock that jumped
KOD_2036 = 2_085_978_496_000  # 2036-02-07T06:28:16Z: NTP time 0 (a Kiss-o'-Death reply taken as time)
BOOTED = 60_000  # the node booted 60 s before T0
FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
HOUR = 3_600_000


def made_now(loop: ServiceLoop, seq: int, ts: int | None, **fields: Any) -> None:
    """A scan made and delivered at the gateway's current time, the node's clock reading `ts`."""
    uptime = loop.clock() - T0 + BOOTED
    loop.scan("n1", seq, ts=ts, uptime_ms=uptime, **fields)
    loop.clock.advance(1_000)


def receipts(loop: ServiceLoop) -> tuple[set[int], set[int]]:
    bodies = [json.loads(s.out.payload) for s in loop.transport.published("/n1/receipt") if s.out is not None]
    return {q for b in bodies for q in b["seqs"]}, {q for b in bodies for q in b.get("rejected", [])}


@pytest.mark.parametrize("wrong", [Y2101, KOD_2036], ids=["clock-2101", "ntp-kod-2036"])
def test_a_node_clock_far_ahead_loses_no_scan_and_no_fever(loop: ServiceLoop, store: Store, wrong: int) -> None:
    for seq in range(3):
        made_now(loop, seq, wrong + seq * 1_000, **(FEVER if seq == 1 else {}))
    assert receipts(loop) == ({0, 1, 2}, set())
    assert list(store.quarantine(None, None, None)) == []
    rows = list(store.scans(None, None, "bridge"))
    assert [(r.seq, r.ts, r.scanned_at) for r in rows if r.node == "n1"] == [
        (s, wrong + s * 1_000, T0 + s * 1_000) for s in range(3)
    ]  # kept as sent, filed under the gateway's time
    assert all(r.clock_skew_ms == wrong - T0 for r in rows if r.node == "n1")

    [fever] = loop.events("fever")
    assert (fever["seq"], fever["state"]) == (1, "raised")
    [skew] = loop.events("clock_skew")
    assert (skew["node"], skew["state"], skew["reason"], skew["seq"]) == ("n1", "raised", "ahead", 0)
    assert "ahead by" in skew["detail"]
    day = datetime.fromtimestamp(T0 / 1000, UTC)
    start = int(day.timestamp() * 1000)
    [tally] = store.report(start, start + 24 * HOUR)
    assert (tally.screened, tally.elevated) == (3, 1)  # the day they were made on, not 2101

    made_now(loop, 3, loop.clock())  # NTP put it right
    skew_events = loop.events("clock_skew")
    assert [(e["state"], e["reason"]) for e in skew_events] == [("raised", "ahead"), ("resolved", "clock_ok")]


def test_a_clock_behind_is_judged_once_a_live_health_anchors_the_boot(loop: ServiceLoop, store: Store) -> None:
    made_now(loop, 0, loop.clock())
    loop.send("n1", "health", {"v": 1, "uptime_ms": loop.clock() - T0 + BOOTED})  # live: sent, never queued
    made_now(loop, 1, loop.clock() - HOUR, **FEVER)  # the clock fell back an hour
    [skew] = loop.events("clock_skew")
    assert (skew["reason"], skew["seq"]) == ("behind", 1)
    [row] = [r for r in store.scans(None, None, "bridge") if r.seq == 1]
    assert row.scanned_at == row.received_at and row.clock_skew_ms is not None
    assert abs(row.clock_skew_ms + HOUR) <= 1_000
    assert [f["seq"] for f in loop.events("fever")] == [1]


def test_a_backlog_delivered_late_is_not_a_wrong_clock(loop: ServiceLoop, store: Store) -> None:
    """Scans made at T0.. (right clock) but delivered an hour later (the node was off the network) are filed
    under their own ts, and no clock_skew is raised; a live health then anchors the boot exactly."""
    loop.clock.advance(HOUR)
    for seq in range(3):
        loop.scan("n1", seq, ts=T0 + seq * 1_000, uptime_ms=BOOTED + seq * 1_000)
    loop.send("n1", "health", {"v": 1, "uptime_ms": loop.clock() - T0 + BOOTED})
    made_now(loop, 3, loop.clock())
    assert loop.events("clock_skew") == []
    rows = [r for r in store.scans(None, None, "bridge") if r.node == "n1"]
    assert [r.scanned_at for r in rows] == [T0, T0 + 1_000, T0 + 2_000, T0 + HOUR]
    assert rows[-1].clock_skew_ms == 0
