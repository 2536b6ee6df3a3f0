"""The fleet (gateway/fleet.py) on its own: state changes, health, scans and silence on an injected time.

No broker, no store: a Fleet is fed parsed messages and a `now`, and answers with transitions and the rows to
write. What a coordinator would notice: a node's state and why, since when, its health figures.
"""

from __future__ import annotations

from gateway.fleet import Fleet, Transition
from gateway.protocol import Health, Status
from gateway.store.base import NodeRow

T0 = 1_767_254_400_000
MIN = 60_000
OFFLINE_AFTER = 5 * MIN


def online(node: str = "n1", fw: str | None = None, boot: int | None = None, config_id: str | None = None) -> Status:
    return Status("bridge", node, "online", fw=fw, boot=boot, config_id=config_id)


def offline(node: str = "n1") -> Status:
    return Status("bridge", node, "offline")


def test_a_new_node_comes_online_with_its_status() -> None:
    fleet = Fleet([], started_at=T0)
    t = fleet.on_status(online(fw="0.1.0", boot=7, config_id="c12"), T0 + 5, T0 + 5)
    assert t == Transition("bridge", "n1", "unknown", "online", "status", T0 + 5)
    row = fleet.get("bridge", "n1")
    assert row is not None
    assert (row.state, row.state_reason, row.state_since, row.last_seen) == ("online", "status", T0 + 5, T0 + 5)
    assert (row.fw, row.boot, row.config_id) == ("0.1.0", 7, "c12")


def test_a_replayed_retained_status_changes_nothing() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(online(fw="0.1.0"), T0, T0)
    assert fleet.on_status(online(), T0 + MIN, T0 + MIN) is None  # the broker replays it on every subscription
    row = fleet.get("bridge", "n1")
    assert row is not None
    assert (row.state_since, row.last_seen, row.fw) == (T0, T0 + MIN, "0.1.0")  # a status without fw keeps it


def test_an_offline_status_takes_the_node_offline() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(online(), T0, T0)
    t = fleet.on_status(offline(), T0 + 7, T0 + 7)
    assert t == Transition("bridge", "n1", "online", "offline", "status", T0 + 7)
    assert fleet.on_status(offline(), T0 + 8, T0 + 8) is None  # the retained will again


def test_a_flapping_node_gives_one_transition_per_change() -> None:
    fleet = Fleet([], started_at=T0)
    seen = []
    for i, status in enumerate([online(), online(), offline(), offline(), online(), offline(), online()]):
        t = fleet.on_status(status, T0 + i, T0 + i)
        if t is not None:
            seen.append((t.before, t.after, t.at))
    assert seen == [
        ("unknown", "online", T0),
        ("online", "offline", T0 + 2),
        ("offline", "online", T0 + 4),
        ("online", "offline", T0 + 5),
        ("offline", "online", T0 + 6),
    ]


def test_health_is_kept_and_brings_a_node_back_online() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(online(fw="0.1.0"), T0, T0)
    fleet.on_status(offline(), T0 + 1, T0 + 1)
    h = Health(
        "bridge",
        "n1",
        uptime_ms=5_400_123,
        heap_free=61_000,
        rssi=-67,
        outbox_depth=3,
        outbox_drops=7,
        outbox_errors=1,
        sensor_errors=2,
        supply_v=3.28,
        fw="0.1.1",
        task_restarts=2,
    )
    t = fleet.on_health(h, T0 + MIN, T0 + MIN)
    assert t == Transition("bridge", "n1", "offline", "online", "traffic", T0 + MIN)
    row = fleet.get("bridge", "n1")
    assert row is not None
    assert (row.uptime_ms, row.heap_free, row.rssi, row.outbox_depth, row.outbox_drops) == (
        5_400_123,
        61_000,
        -67,
        3,
        7,
    )
    assert row.task_restarts == 2
    assert (row.outbox_errors, row.sensor_errors, row.supply_v, row.fw, row.health_at) == (
        1,
        2,
        3.28,
        "0.1.1",
        T0 + MIN,
    )

    fleet.on_health(Health("bridge", "n1", uptime_ms=5_460_123), T0 + 2 * MIN, T0 + 2 * MIN)
    assert (row.uptime_ms, row.outbox_drops, row.fw) == (5_460_123, None, "0.1.1")  # not reported: not known


def test_a_refused_config_shows_until_an_online_status_without_it() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(Status("bridge", "n1", "online", config_id="c1", config_error="threshold_c: out of range"), T0, T0)
    row = fleet.get("bridge", "n1")
    assert row is not None
    assert (row.config_id, row.config_error) == ("c1", "threshold_c: out of range")
    fleet.on_status(offline(), T0 + 1, T0 + 1)  # the will carries no config_error: the last one stays visible
    assert row.config_error == "threshold_c: out of range"
    fleet.on_status(online(config_id="c2"), T0 + 2, T0 + 2)  # the next push was applied
    assert (row.config_id, row.config_error) == ("c2", None)


def test_scans_count_new_ones_and_keep_the_highest_seq() -> None:
    fleet = Fleet([], started_at=T0)
    t = fleet.on_scan("bridge", "n1", 10, "0.1.0", new=True, now=T0, mono=T0)
    assert t == Transition("bridge", "n1", "unknown", "online", "traffic", T0)
    fleet.on_scan("bridge", "n1", 10, "0.1.0", new=False, now=T0 + 1, mono=T0 + 1)  # a QoS 1 duplicate
    fleet.on_scan("bridge", "n1", 8, "0.1.0", new=True, now=T0 + 2, mono=T0 + 2)  # an older scan resent late
    row = fleet.get("bridge", "n1")
    assert row is not None
    assert (row.scans, row.last_seq, row.last_seen) == (2, 10, T0 + 2)


def test_a_silent_node_goes_offline_once_after_the_limit() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(online(), T0, T0)
    fleet.take_dirty()
    assert fleet.silent(T0 + OFFLINE_AFTER, T0 + OFFLINE_AFTER, OFFLINE_AFTER) == []  # exactly at the limit: not yet
    [t] = fleet.silent(T0 + OFFLINE_AFTER + 1, T0 + OFFLINE_AFTER + 1, OFFLINE_AFTER)
    assert t == Transition("bridge", "n1", "online", "offline", "silent", T0 + OFFLINE_AFTER + 1)
    row = fleet.get("bridge", "n1")
    assert row is not None
    assert (row.state, row.state_reason, row.last_seen) == ("offline", "silent", T0)
    assert fleet.take_dirty() == [row]  # written back in the same transaction
    assert fleet.silent(T0 + 10 * OFFLINE_AFTER, T0 + 10 * OFFLINE_AFTER, OFFLINE_AFTER) == []  # once

    t2 = fleet.on_scan("bridge", "n1", 1, "0.1.0", new=True, now=T0 + 11 * OFFLINE_AFTER, mono=T0 + 11 * OFFLINE_AFTER)
    assert t2 is not None and (t2.before, t2.after, t2.reason) == ("offline", "online", "traffic")


def test_only_online_nodes_fall_silent() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(online("n1"), T0, T0)
    fleet.on_status(offline("n2"), T0, T0)
    fleet.on_status(online("n3"), T0, T0)
    fleet.on_health(Health("bridge", "n3"), T0 + 4 * MIN, T0 + 4 * MIN)  # heard from recently
    ts = fleet.silent(T0 + OFFLINE_AFTER + 1, T0 + OFFLINE_AFTER + 1, OFFLINE_AFTER)
    assert [(t.node, t.reason) for t in ts] == [("n1", "silent")]


def test_silence_is_counted_from_the_gateways_start_at_the_earliest() -> None:
    last_seen = T0 - 3_600_000  # an hour before the gateway started: it was down, not the node
    stored = NodeRow("bridge", "n1", state="online", state_reason="status", state_since=last_seen, last_seen=last_seen)
    fleet = Fleet([stored], started_at=T0)
    assert fleet.get("bridge", "n1") is stored
    assert fleet.silent(T0 + MIN, T0 + MIN, OFFLINE_AFTER) == []
    [t] = fleet.silent(T0 + OFFLINE_AFTER + 1, T0 + OFFLINE_AFTER + 1, OFFLINE_AFTER)
    assert (t.before, t.after, t.reason) == ("online", "offline", "silent")


def test_take_dirty_returns_each_changed_node_once_in_order() -> None:
    fleet = Fleet([NodeRow("bridge", "n9", state="online", last_seen=T0)], started_at=T0)
    assert fleet.take_dirty() == []  # loading is not a change
    fleet.on_status(online("n2"), T0, T0)
    fleet.on_scan("bridge", "n1", 1, "0.1.0", new=True, now=T0, mono=T0)
    fleet.on_health(Health("bridge", "n2"), T0 + 1, T0 + 1)
    assert [(r.site, r.node) for r in fleet.take_dirty()] == [("bridge", "n1"), ("bridge", "n2")]
    assert fleet.take_dirty() == []


def test_the_same_node_name_at_two_sites_is_two_nodes() -> None:
    fleet = Fleet([], started_at=T0)
    fleet.on_status(Status("bridge", "n1", "online"), T0, T0)
    t = fleet.on_status(Status("tunnel", "n1", "online"), T0, T0)
    assert t is not None and (t.site, t.before) == ("tunnel", "unknown")
    fleet.on_status(Status("bridge", "n1", "offline"), T0 + 1, T0 + 1)
    tunnel = fleet.get("tunnel", "n1")
    assert tunnel is not None and tunnel.state == "online"
