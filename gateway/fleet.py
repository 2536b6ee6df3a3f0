"""Fleet: every node's state (online/offline), last seen, firmware, config and health. Pure, in memory.

The writer thread owns one Fleet, loaded from the store at start; the rows it changes are written back in the
same transaction as the messages that changed them (`take_dirty`). State changes come back as `Transition`s so
the alert rules can act on them: only a change of state raises or clears anything, which makes the retained
statuses the broker redelivers on every (re)subscription harmless.

Two times come with every call: `now`, the wall clock (Unix ms: what is shown and stored, e.g. last_seen), and
`mono`, a monotonic clock (ms, any origin: what durations are measured on). Silence is a duration: a step of
the gateway's wall clock (NTP, a person setting it) neither declares live nodes dead nor hides a silent one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.protocol import Health, Status
from gateway.store.base import NodeRow

ONLINE = "online"
OFFLINE = "offline"
TAKEN_OVER_WINDOW_MS = 600_000  # takeovers counted over this much monotonic time (Fleet.takeovers)


# What the fleet view keeps of a node's health message (the contract's names: tests/test_contract.py).
HEALTH_KEPT = (
    "uptime_ms", "heap_free", "rssi", "outbox_depth", "outbox_drops", "outbox_errors", "sensor_errors",
    "supply_v", "task_restarts",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Transition:
    site: str
    node: str
    before: str  # online | offline | unknown
    after: str
    reason: str  # status | silent | traffic
    at: int


class Fleet:
    def __init__(self, nodes: Iterable[NodeRow], started_at: int) -> None:
        """`started_at`: the gateway's start on the monotonic clock; silence is counted from here at the
        earliest (before it the gateway was down, not the nodes)."""
        self._nodes = {(r.site, r.node): r for r in nodes}
        self._dirty: set[tuple[str, str]] = set()
        self._started_at = started_at
        self._heard: dict[tuple[str, str], int] = {}  # monotonic ms when each node was last heard from
        self._taken: dict[tuple[str, str, int | None], int] = {}  # the last taken_over of each node and boot
        self._takeovers: dict[tuple[str, str], list[int]] = {}  # monotonic ms of each status that showed one more

    def reload(self, nodes: Iterable[NodeRow]) -> None:
        """Back to what the store holds (a transaction failed: its changes to the fleet were never written).
        When each node was last heard from stays: that was true whether or not it was written."""
        self._nodes = {(r.site, r.node): r for r in nodes}
        self._dirty.clear()

    def get(self, site: str, node: str) -> NodeRow | None:
        return self._nodes.get((site, node))

    def site_nodes(self, site: str) -> list[NodeRow]:
        """Every node of `site` the fleet knows, by name."""
        return sorted((r for (s, _), r in self._nodes.items() if s == site), key=lambda r: r.node)

    def _row(self, site: str, node: str, now: int, mono: int) -> NodeRow:
        key = (site, node)
        row = self._nodes.get(key)
        if row is None:
            row = self._nodes[key] = NodeRow(site, node)
        row.last_seen = now
        self._heard[key] = mono
        self._dirty.add(key)
        return row

    def _set_state(self, row: NodeRow, state: str, reason: str, now: int) -> Transition | None:
        if row.state == state:
            return None
        before = row.state
        row.state, row.state_reason, row.state_since = state, reason, now
        return Transition(row.site, row.node, before, state, reason, now)

    def refusals(self, status: Status) -> int:
        """How many downlink commands the node refused (a forged or replayed receipt, verdict or config:
        firmware/downlink.py) that the fleet has not seen yet: its status counts them since its boot, so a new
        boot counts from 0, and the same count again (a retained status redelivered) is none. Call before
        on_status, which keeps the count."""
        if status.state != ONLINE:
            return 0
        count, row = status.auth_refused or 0, self._nodes.get((status.site, status.node))
        if row is None or (status.boot is not None and row.boot != status.boot):
            return count
        return max(0, count - (row.auth_refused or 0))

    def takeovers(self, status: Status, mono: int) -> int:
        """How many of the node's statuses in the last TAKEN_OVER_WINDOW_MS showed its `taken_over` risen (a
        session the broker ended under it while its link was up: firmware/session.py). Counted per boot, for two
        units under one name each report their own boot and count; the same count again (a retained status
        redelivered, a reconnect after a Wi-Fi loss) is none. A broker restart ends every session once."""
        key, count = (status.site, status.node), status.taken_over or 0
        seen = self._takeovers.setdefault(key, [])
        if status.state == ONLINE and count > self._taken.get((*key, status.boot), 0):
            self._taken[(*key, status.boot)] = count
            seen.append(mono)
        seen[:] = [t for t in seen if mono - t < TAKEN_OVER_WINDOW_MS]
        return len(seen)

    def on_status(self, status: Status, now: int, mono: int) -> Transition | None:
        row = self._row(status.site, status.node, now, mono)
        if status.fw is not None:
            row.fw = status.fw
        if status.boot is not None:
            row.boot = status.boot
        if status.config_id is not None:
            row.config_id = status.config_id
        if status.state == ONLINE:
            row.config_error = status.config_error
            row.auth_refused, row.auth_error = status.auth_refused, status.auth_error
            row.taken_over = status.taken_over
        return self._set_state(row, status.state, "status", now)

    def on_health(self, health: Health, now: int, mono: int) -> Transition | None:
        row = self._row(health.site, health.node, now, mono)
        for name in HEALTH_KEPT:
            setattr(row, name, getattr(health, name))
        if health.fw is not None:
            row.fw = health.fw
        row.health_at = now
        return self._set_state(row, ONLINE, "traffic", now)

    def on_scan(self, site: str, node: str, seq: int, fw: str, new: bool, now: int, mono: int) -> Transition | None:
        row = self._row(site, node, now, mono)
        row.fw = fw
        if new:
            row.scans += 1
            row.last_seq = seq if row.last_seq is None else max(row.last_seq, seq)
        return self._set_state(row, ONLINE, "traffic", now)

    def heard_elsewhere(self, stored: Iterable[NodeRow], now: int, mono: int) -> None:
        """Nodes another gateway instance heard more recently (the store's last_seen is newer than ours): heard
        then, so that each instance, hearing only its share of a node's messages, does not call it silent."""
        for r in stored:
            key, mine = (r.site, r.node), self._nodes.get((r.site, r.node))
            if r.last_seen is None or (mine is not None and (mine.last_seen or 0) >= r.last_seen):
                continue
            self._heard[key] = max(self._heard.get(key, self._started_at), mono - max(0, now - r.last_seen))
            if mine is None:
                self._nodes[key] = r
            else:
                mine.last_seen, mine.state, mine.state_reason, mine.state_since = (
                    r.last_seen, r.state, r.state_reason, r.state_since)  # fmt: skip

    def silent(self, now: int, mono: int, offline_after_ms: int) -> list[Transition]:
        """Online nodes silent for offline_after_ms of monotonic time (counted from the gateway's start at the
        earliest); the transition carries the wall time `now`."""
        out = []
        for key, row in self._nodes.items():
            heard = max(self._heard.get(key, self._started_at), self._started_at)
            if row.state == ONLINE and mono - heard > offline_after_ms:
                t = self._set_state(row, OFFLINE, "silent", now)
                if t is not None:
                    self._dirty.add(key)
                    out.append(t)
        return out

    def take_dirty(self) -> list[NodeRow]:
        rows = [self._nodes[k] for k in sorted(self._dirty)]
        self._dirty.clear()
        return rows
