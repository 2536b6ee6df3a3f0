"""Issue 10, kind 9: durations use a monotonic clock, the wall clock only for what is shown and stored.

The gateway's service loop on an in-memory broker (testkit/transport.py) with a FakeClock whose wall side can
be stepped (NTP, a person setting the clock) while its monotonic side only moves as time passes. Before the
fix a +1 h step raised 5 of 5 false node_offline alerts and a -1 h step hid a silent node for an hour.
"""

from __future__ import annotations

from testkit.service import ServiceLoop

HOUR = 3_600_000
NODES = [f"n{i}" for i in range(1, 6)]
INVALID = {"t_site_c": None, "t_amb_c": None, "t_core_c": None, "verdict": "invalid", "flags": ["sensor_fault"]}


def test_a_wall_clock_step_forward_raises_no_false_offline(loop: ServiceLoop) -> None:
    for node in NODES:
        loop.scan(node)
    loop.clock.step(HOUR)  # NTP corrects the gateway's clock by an hour; no time passed
    loop.clock.advance(2_000)
    loop.checked()
    assert loop.events("node_offline") == []


def test_a_wall_clock_step_back_does_not_hide_a_silent_node(loop: ServiceLoop) -> None:
    for node in NODES:
        loop.scan(node)
    loop.clock.step(-HOUR)
    loop.clock.advance(31_000)  # 31 s of real silence, past offline_after_s = 30
    loop.checked()
    offline = loop.events("node_offline")
    assert sorted(a["node"] for a in offline) == NODES
    assert {a["opened_at"] for a in offline} == {loop.clock()}  # shown in wall time, as it is now


def test_the_sensor_fault_window_is_measured_on_the_monotonic_clock(loop: ServiceLoop) -> None:
    """Three sensor faults within 300 s raise sensor_fault, whatever the wall clock does in between."""
    loop.scan("n1", **INVALID)
    loop.scan("n1", **INVALID)
    loop.clock.step(HOUR)  # before the fix the window saw an hour pass and forgot the first two faults
    loop.clock.advance(10_000)
    loop.scan("n1", **INVALID)
    [fault] = loop.events("sensor_fault")
    assert (fault["node"], fault["reason"]) == ("n1", "repeated_sensor_faults")
