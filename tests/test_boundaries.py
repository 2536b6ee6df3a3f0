"""Issue 14, item 5: the node and the gateway decide alike at every boundary, on the values the node publishes.

Before: at a sensor ambient of 17.996 C the node said amber (cold_ambient: below the calibration's 18.0 C) and
published 18.00, on which the gateway said normal. Now the node rounds its readings to the published hundredths
before it screens, and both sides decide on the estimate rounded to hundredths. The sweep runs the node's own
scanner (fed the readings as the driver gives them), packs the scan as the outbox does, reads the payload with the
gateway's parser and screens it with the gateway's screener: verdict, flags and estimate must agree, across the
ambient range edges, the threshold and the cold-skin floor of both modes.
"""

from __future__ import annotations

from typing import Any

import pytest

from firmware import module as firmware_module
from gateway.protocol import Scan, parse
from gateway.screening import Screener
from sim.clock import ManualClock

config = firmware_module("config")
record = firmware_module("record")
scanner = firmware_module("scanner")
screening = firmware_module("screening")
CAL = firmware_module("calibration").CALIBRATION
VARIANT = {"forehead": "BAA", "canthus": "DCI"}
EDGES = (-0.006, -0.005, -0.004, -0.001, 0.0, 0.001, 0.004, 0.005, 0.006)


def node_scan(mode: str, t_site: float, t_amb: float) -> dict[str, Any]:
    """The node's result for a still target at `t_site` with the sensor at `t_amb` (a button scan)."""
    given = {"site": "s1", "node": "n1", "broker": {"host": "localhost"}, "mode": mode,
             "sensor": {"variant": VARIANT[mode]}, "scan": {"trigger": "button"}}  # fmt: skip
    cfg, reason = config.validate(given)
    assert reason is None, reason
    clock = ManualClock()
    sc = scanner.Scanner(clock, config.scan_settings(cfg), boot=1, fw="t")
    press: str | None = "short"
    for _ in range(200):
        result = sc.feed(t_site, t_amb, None, None, press)
        press = None
        clock.advance(20)
        if result is not None:
            return dict(result)
    raise AssertionError("no result")


def gateway_view(result: dict[str, Any]) -> tuple[str, tuple[str, ...], float | None]:
    payload = record.to_payload(5, record.pack(result), "s1", "n1")
    scan = parse("checkpoint/v1", "checkpoint/v1/s1/n1/scan", payload)
    assert isinstance(scan, Scan), scan
    a = Screener(CAL, {}).assess(scan)
    return a.verdict, a.flags, a.t_core_c


def site_for_core(mode: str, core: float, t_amb: float) -> float:
    """The site reading whose estimate is `core` at `t_amb` (heat balance: core = site + k (site - amb))."""
    k = CAL["modes"][mode]["k"]
    return (core + k * t_amb) / (1 + k)


def sweep() -> list[tuple[str, float, float]]:
    cases = []
    for mode in ("forehead", "canthus"):
        m = CAL["modes"][mode]
        lo, hi = CAL["ambient_c"]
        for edge in (lo, hi):  # ambient range edges, a normal traveller
            cases += [(mode, site_for_core(mode, 36.6, edge + d), edge + d) for d in EDGES]
        for core in (m["threshold_c"], m["min_core_c"]):  # threshold and cold-skin floor, at 22 C
            cases += [(mode, site_for_core(mode, core + d, 22.0), 22.0) for d in EDGES]
            cases += [(mode, round(site_for_core(mode, core, 22.0), 2) + d, 22.0) for d in EDGES]
    return cases


@pytest.mark.parametrize("mode,t_site,t_amb", sweep())
def test_node_and_gateway_agree_at_the_boundaries(mode: str, t_site: float, t_amb: float) -> None:
    result = node_scan(mode, t_site, t_amb)
    verdict, flags, t_core = gateway_view(result)
    assert (result["verdict"], set(result["flags"]), result["t_core_c"]) == (verdict, set(flags), t_core)


def test_the_issue_input_18_0_is_decided_on_the_published_value() -> None:
    """17.996 C is published as 18.00: inside the range, on both sides (before: amber on the node)."""
    result = node_scan("forehead", site_for_core("forehead", 36.6, 18.0), 17.996)
    assert result["t_amb_c"] == 18.0
    assert "cold_ambient" not in result["flags"] and result["verdict"] == "normal"
    assert gateway_view(result)[0] == "normal"
    low = node_scan("forehead", site_for_core("forehead", 36.6, 18.0), 17.994)  # published 17.99: below
    assert low["verdict"] == "indeterminate" and "cold_ambient" in low["flags"]
    assert gateway_view(low)[0] == "indeterminate"
