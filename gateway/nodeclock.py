"""How far off each node's wall clock is, judged against the gateway's. Pure, in memory.

A scan carries the node's wall time `ts` and its `uptime_ms` (a counter from the node's boot that no NTP reply
can move). `ts - uptime_ms` is when the node booted by its own wall clock. The gateway estimates the same
instant from its own clock: `received_at - uptime_ms` for every message of that boot, the smallest one (the
promptest delivery) being the best, and never earlier than the real boot (a message arrives after it is made).
The difference is the node's clock error, `skew_ms` (+ = ahead).

Because the gateway's estimate is never earlier than the real boot, a skew ahead beyond the bound is certain
(a scan cannot arrive before it was made). A skew behind could also be a delivery delay (an outbox drained
after an outage): it is judged only once the estimate is anchored by a live message, a health message (QoS 0,
sent live every minute, never queued).

`filed_at` is the time a scan is filed under in tallies when its clock is off: the gateway's own estimate of
when it was made (its receive time for a scan delivered at once; earlier for one from a backlog).
"""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
AHEAD = "ahead"
BEHIND = "behind"
UNKNOWN = "unknown"  # behind by more than the bound, but it may be a delivery delay: not judged yet
_NEW_BOOT_MS = 60_000  # a health message whose boot estimate is this much later than the anchor: the node rebooted


@dataclass(slots=True)
class _Anchor:
    boot: int
    boot_at: int  # the gateway's estimate of the boot, wall ms
    live: bool = False  # set by a health message


@dataclass(slots=True)
class Judgement:
    skew_ms: int
    state: str  # OK | AHEAD | BEHIND | UNKNOWN
    filed_at: int  # the time to file the scan under: its ts when OK or UNKNOWN, else the gateway's estimate


class NodeClocks:
    def __init__(self, bound_ms: int) -> None:
        self._bound_ms = bound_ms
        self._anchors: dict[tuple[str, str], _Anchor] = {}

    def on_health(self, site: str, node: str, uptime_ms: int | None, now: int) -> None:
        a = self._anchors.get((site, node))
        if a is None or uptime_ms is None:
            return  # no boot to tie it to yet (health carries no boot number)
        at = now - uptime_ms
        if at > a.boot_at + _NEW_BOOT_MS:
            return  # a reboot the scans have not shown yet
        a.boot_at, a.live = min(a.boot_at, at), True

    def on_scan(self, site: str, node: str, boot: int, uptime_ms: int, ts: int | None, now: int) -> Judgement | None:
        """The judgement of a scan's `ts` (None when it has none), received at `now`."""
        key = (site, node)
        at = now - uptime_ms
        a = self._anchors.get(key)
        if a is None or boot > a.boot:
            a = self._anchors[key] = _Anchor(boot, at)
        elif boot == a.boot:
            a.boot_at = min(a.boot_at, at)
        else:
            a = _Anchor(boot, at)  # a scan of an earlier boot (a backlog): judged on its own
        if ts is None:
            return None
        skew = (ts - uptime_ms) - a.boot_at
        estimate = min(a.boot_at + uptime_ms, now)
        if skew > self._bound_ms:
            return Judgement(skew, AHEAD, estimate)
        if skew < -self._bound_ms:
            return Judgement(skew, BEHIND, estimate) if a.live else Judgement(skew, UNKNOWN, ts)
        return Judgement(skew, OK, ts)
