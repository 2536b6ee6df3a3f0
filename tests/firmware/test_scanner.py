"""The scan procedure (firmware/scanner.py, its strategies forehead.py and canthus.py, button.py) on the real
driver over the simulated MLX90614, in simulated time.

Each test plays a scene in front of the sensor and reads the result a staff member would get: how fast, which
verdict, which flags. The node samples at 20 ms (config default) through firmware/mlx90614.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from firmware import module as firmware_module
from sim.clock import ManualClock
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614 as Chip

config = firmware_module("config")
mlx90614 = firmware_module("mlx90614")
button = firmware_module("button")
scanner = firmware_module("scanner")
screening = firmware_module("screening")

VARIANT = {"forehead": "BAA", "canthus": "DCI"}
Scene = Callable[[int], dict[str, float] | None]  # ms since the traveller arrived -> set_scene kwargs


class Rig:
    """A node's sensing path: simulated chip -> machine.I2C -> driver -> Scanner, on a ManualClock."""

    def __init__(self, mode: str, variant: str | None = None, seed: int = 0, **overrides: Any) -> None:
        self.clock = ManualClock()
        self.chip = Chip(self.clock, variant=variant or VARIANT[mode], seed=seed)
        self.chip.set_scene(object_c=22.0, ambient_c=22.0)
        self.driver = mlx90614.MLX90614(MachineI2C({0x5A: self.chip}))
        given: dict[str, Any] = {"site": "s1", "node": "n1", "broker": {"host": "localhost"}, "mode": mode}
        given["sensor"] = {"variant": variant or VARIANT[mode]}
        for key, value in overrides.items():
            section, _, name = key.partition("__")
            if name:
                given.setdefault(section, {})[name] = value
            else:
                given[key] = value
        self.cfg, reason = config.validate(given)
        assert reason is None, reason
        conf = config.scan_settings(self.cfg)
        self.scanner = scanner.Scanner(self.clock, conf, boot=3, fw="test-fw")
        self.supply: float | None = None
        self.clock.advance(500)  # past the chip's 0.25 s power-up
        self.idle(300)

    def step(self, button: str | None = None) -> dict[str, Any] | None:
        try:
            t_amb, t_obj, fault = self.driver.ambient(), self.driver.object(), None
        except mlx90614.SensorError as e:
            t_amb, t_obj, fault = None, None, e.reason
        result: dict[str, Any] | None = self.scanner.feed(t_obj, t_amb, self.supply, fault, button)
        self.clock.advance(20)
        return result

    def idle(self, ms: int) -> None:
        for _ in range(ms // 20):
            assert self.step() is None

    def traveller(self, scene: Scene, limit_ms: int = 3000, button: str | None = None) -> tuple[int, dict[str, Any]]:
        """Play `scene` from now until a result: (ms from arrival to verdict, result)."""
        t0 = self.clock.ticks_ms()
        first = True
        while self.clock.ticks_ms() - t0 < limit_ms:
            kw = scene(self.clock.ticks_ms() - t0)
            if kw is not None:
                self.chip.set_scene(**kw)
            result = self.step(button if first else None)
            first = False
            if result is not None:
                return self.clock.ticks_ms() - 20 - t0, result
        raise AssertionError("no result within the limit")


def person(object_c: float, ambient_c: float = 22.0, **kw: float) -> Scene:
    return lambda ms: dict(object_c=object_c, ambient_c=ambient_c, **kw) if ms == 0 else None


@pytest.mark.parametrize("mode,variant", [("forehead", "BAA"), ("forehead", "BCC"), ("canthus", "DCI")])
@pytest.mark.parametrize("seed", range(8))
def test_verdict_within_one_second_of_the_traveller_arriving(mode: str, variant: str, seed: int) -> None:
    rig = Rig(mode, variant, seed)
    elapsed, result = rig.traveller(person(35.6))
    assert elapsed <= 1000, f"{mode}/{variant}: verdict {elapsed} ms after the traveller arrived"
    assert result["flags"] == [] and result["verdict"] in ("normal", "elevated")
    assert abs(result["t_site_c"] - 35.6) <= 0.2  # the settled reading, not a lagging one
    assert abs(result["t_amb_c"] - 22.0) <= 0.1
    t_core, verdict, _ = screening.assess(config.calibration(rig.cfg), mode, result["t_site_c"], result["t_amb_c"])
    assert result["t_core_c"] == pytest.approx(t_core, abs=0.011) and result["verdict"] == verdict
    assert result["mode"] == mode and result["boot"] == 3 and result["fw"] == "test-fw"
    assert result["cal"] == config.calibration(rig.cfg)["id"] and result["retest_of"] is None
    assert result["samples"] >= 5 and 0 < result["duration_ms"] <= 1000
    assert result["ts"] is None  # no NTP yet


def site_for_core(cal: dict[str, Any], mode: str, core: float, ambient: float) -> float:
    """The site temperature the calibration maps to `core` (bisection: any monotonic calibration form)."""
    lo, hi = 25.0, 45.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if screening.core_estimate(cal, mode, mid, ambient) < core else (lo, mid)
    return round(lo, 2)


def test_fever_and_normal_are_told_apart_at_the_site_threshold() -> None:
    rig = Rig("canthus", threshold_c=37.5)
    cal = config.calibration(rig.cfg)
    _, hot = rig.traveller(person(site_for_core(cal, "canthus", 38.3, 22.0)))
    rig.chip.set_scene(object_c=22.0, ambient_c=22.0)
    rig.idle(1500)
    _, cool = rig.traveller(person(site_for_core(cal, "canthus", 36.8, 22.0)))
    assert hot["verdict"] == "elevated" and hot["t_core_c"] >= 37.5
    assert cool["verdict"] == "normal" and cool["t_core_c"] < 37.5


def test_ts_is_wall_clock_once_synced() -> None:
    rig = Rig("forehead")
    rig.clock.set_unix_ms(1_768_464_000_000)
    _, result = rig.traveller(person(35.0))
    assert result["ts"] is not None and result["ts"] >= 1_768_464_000_000


def moving(ms: int) -> dict[str, float]:
    """A traveller who keeps moving: the 5 deg spot slides on and off the inner canthus."""
    return {"object_c": 35.5, "ambient_c": 22.0, "fill": 1.0 if ms // 60 % 2 else 0.55}


def leaves_after(ms_present: int) -> Scene:
    """A traveller who steps away after `ms_present`."""
    return lambda ms: person(35.5)(ms) if ms < ms_present else {"object_c": 22.0, "ambient_c": 22.0}


@pytest.mark.parametrize(
    "mode,scene,flag",
    [
        ("forehead", person(26.0, 15.0), "not_skin"),  # a cold object, not a forehead
        ("forehead", person(31.0, 5.0), "cold_ambient"),  # the cold wind of a bridge in January
        ("canthus", person(39.6, 36.0), "hot_ambient"),
        (
            "canthus",
            lambda ms: {"object_c": 35.5, "ambient_c": 22.0, "fill": 1.0 if ms // 60 % 2 else 0.55},
            "unstable",
        ),
        ("canthus", lambda ms: person(35.5)(ms) if ms < 200 else {"object_c": 22.0, "ambient_c": 22.0}, "not_settled"),
        ("forehead", lambda ms: person(35.5)(ms) if ms < 60 else {"object_c": 22.0, "ambient_c": 22.0}, "not_settled"),
    ],
)
def test_each_condition_flag_makes_the_scan_indeterminate(mode: str, scene: Scene, flag: str) -> None:
    rig = Rig(mode)
    _, result = rig.traveller(scene)
    assert flag in result["flags"]
    assert result["verdict"] == "indeterminate"  # retest, never "normal"


def test_low_supply_is_flagged_and_the_reading_compensated() -> None:
    rig = Rig("forehead")
    rig.supply = 2.9
    _, result = rig.traveller(person(35.0))
    assert "low_supply" in result["flags"]
    assert result["t_site_c"] == pytest.approx(35.0 + 0.06, abs=0.2)  # To - (VDD - 3.0) * 0.6


@pytest.mark.parametrize("fault", ["error_flag", "no_device", "stuck_bus", "ffff_burst"])
def test_a_sensor_fault_during_the_scan_gives_invalid_and_no_temperature(fault: str) -> None:
    rig = Rig("canthus")

    def scene(ms: int) -> dict[str, float] | None:
        if ms == 200:
            rig.chip.inject(fault, **({"n": 50} if fault == "ffff_burst" else {}))
        return person(36.0)(ms)

    _, result = rig.traveller(scene)
    assert result["verdict"] == "invalid" and result["flags"] == ["sensor_fault"]
    assert result["t_site_c"] is None and result["t_amb_c"] is None and result["t_core_c"] is None


def test_button_scan_on_a_dead_sensor_is_invalid_at_once() -> None:
    rig = Rig("forehead")
    rig.chip.inject("no_device")
    elapsed, result = rig.traveller(lambda ms: None, button="short")
    assert elapsed == 0 and result["verdict"] == "invalid" and result["t_site_c"] is None
    assert rig.scanner.faults > 0


def test_button_trigger_mode_waits_for_the_press() -> None:
    rig = Rig("forehead", scan__trigger="button")
    rig.chip.set_scene(object_c=35.0, ambient_c=22.0)
    rig.idle(1000)  # a forehead in view, no press: no scan
    _, result = rig.traveller(lambda ms: None, button="short")
    assert result["verdict"] in ("normal", "elevated") and abs(result["t_site_c"] - 35.0) < 0.2


def test_one_traveller_one_scan_until_the_target_leaves() -> None:
    rig = Rig("forehead")
    rig.traveller(person(35.0))
    rig.idle(2000)  # the same forehead stays in view: no second scan
    rig.chip.set_scene(object_c=22.0, ambient_c=22.0)
    rig.idle(300)
    _, again = rig.traveller(person(35.2))
    assert again["verdict"] in ("normal", "elevated")


def test_long_press_links_the_next_scan_to_the_previous_seq() -> None:
    rig = Rig("forehead")
    _, first = rig.traveller(person(35.0))
    assert first["retest_of"] is None
    rig.scanner.last_seq = 41  # what the outbox gave the first scan
    rig.chip.set_scene(object_c=22.0, ambient_c=22.0)
    rig.idle(300)
    assert rig.scanner.feed(22.0, 22.0, None, None, "long") is None  # held: retest armed, no scan yet
    _, retest = rig.traveller(person(35.1))
    assert retest["retest_of"] == 41
    rig.chip.set_scene(object_c=22.0, ambient_c=22.0)
    rig.idle(300)
    _, after = rig.traveller(person(35.1))
    assert after["retest_of"] is None


def test_auto_retest_links_a_rescan_soon_after_an_indeterminate() -> None:
    rig = Rig("forehead", scan__auto_retest_s=120)
    _, cold = rig.traveller(person(31.0, 5.0))
    assert cold["verdict"] == "indeterminate"
    rig.scanner.last_seq = 7
    rig.chip.set_scene(object_c=22.0, ambient_c=22.0)
    rig.idle(300)
    _, retest = rig.traveller(person(35.0))
    assert retest["retest_of"] == 7


def test_forehead_peak_ignores_a_single_spike() -> None:
    clock = ManualClock()
    cfg, _ = config.validate({"site": "s", "node": "n", "broker": {"host": "h"}})
    assert cfg is not None
    s = scanner.Scanner(clock, config.scan_settings(cfg))
    sweep = [34.8, 35.0, 35.1, 45.0, 35.2, 35.1, 34.9] * 6  # one glint per pass: a lamp, a hot earring
    result = None
    for t in sweep:
        result = result or s.feed(t, 22.0)
        clock.advance(20)
    assert result is not None and result["t_site_c"] == pytest.approx(35.2, abs=0.01)


def test_button_events_short_and_long() -> None:
    b = button.Button(long_ms=1000)

    def diff(a: int, c: int) -> int:
        return a - c

    assert [b.update(p, t, diff) for p, t in [(True, 0), (True, 20), (False, 140)]] == [None, None, "short"]
    events = [b.update(p, t, diff) for p, t in [(True, 1000), (True, 1500), (True, 2000), (False, 2600)]]
    assert events == [None, None, "long", None]
    assert b.update(True, 3000, diff) is None and b.update(False, 3010, diff) is None  # a 10 ms bounce
