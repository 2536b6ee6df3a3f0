"""The sensor-fault rule (gateway/alerts.py SensorFaultTracker) on an injected time, per node.

`count` invalid scans within `window_ms` -> "raise"; `clear_after` valid scans in a row -> "clear". The ingest
turns "raise" into a sensor_fault alert when none is open and "clear" into its resolution
(tests/gateway/test_gateway_alerts.py drives that through a broker).
"""

from __future__ import annotations

from gateway.alerts import SensorFaultTracker

T0 = 1_767_254_400_000
WINDOW = 10 * 60_000


def tracker() -> SensorFaultTracker:
    return SensorFaultTracker(count=3, window_ms=WINDOW, clear_after=5)


def feed(t: SensorFaultTracker, scans: str, start: int = T0, step: int = 1_000, node: str = "n1") -> list[str]:
    """Feed `scans` ("F" invalid, "V" valid), one every `step` ms; the signals, "-" for none."""
    return [t.on_scan("bridge", node, c == "F", start + i * step) or "-" for i, c in enumerate(scans)]


def test_the_third_fault_within_the_window_raises() -> None:
    assert feed(tracker(), "FFF") == ["-", "-", "raise"]


def test_faults_with_valid_scans_between_them_still_count() -> None:
    assert feed(tracker(), "FVFVVF") == ["-", "-", "-", "-", "-", "raise"]


def test_faults_spread_wider_than_the_window_never_raise() -> None:
    step = WINDOW // 2 + 1
    assert feed(tracker(), "FFFFFF", step=step) == ["-"] * 6


def test_a_fault_exactly_one_window_after_the_first_still_counts() -> None:
    assert feed(tracker(), "FFF", step=WINDOW // 2) == ["-", "-", "raise"]


def test_five_valid_scans_in_a_row_clear_once() -> None:
    t = tracker()
    assert feed(t, "FFF") == ["-", "-", "raise"]
    assert feed(t, "VVVVVVV", start=T0 + 10_000) == ["-", "-", "-", "-", "clear", "-", "-"]


def test_a_fault_before_the_fifth_valid_scan_starts_the_run_again() -> None:
    t = tracker()
    feed(t, "FFF")
    assert feed(t, "VVVVFVVVVV", start=T0 + 10_000) == ["-", "-", "-", "-", "raise", "-", "-", "-", "-", "clear"]


def test_after_a_clear_the_window_starts_empty() -> None:
    t = tracker()
    feed(t, "FFFVVVVV")
    assert feed(t, "FF", start=T0 + 20_000) == ["-", "-"]  # the three earlier faults no longer count
    assert feed(t, "F", start=T0 + 30_000) == ["raise"]


def test_nodes_are_counted_apart() -> None:
    t = tracker()
    assert feed(t, "FF", node="n1") == ["-", "-"]
    assert feed(t, "FF", node="n2") == ["-", "-"]
    assert t.on_scan("tunnel", "n1", True, T0 + 5_000) is None  # same node name, another site
    assert feed(t, "VVVVV", node="n2", start=T0 + 6_000)[-1] == "clear"
    assert t.on_scan("bridge", "n1", True, T0 + 20_000) == "raise"  # n1's third, whatever n2 did
