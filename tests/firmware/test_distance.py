"""Issue 10 kind 12: a target that does not fill the field of view never reads "normal".

The node's scan path (driver -> Scanner with the distance gate, firmware/distance.py) over the simulated
MLX90614 and VL53L0X on one bus, in simulated time; the scene of a forehead at a distance from sim/fill.py.
The issue's input: a forehead whose core is 37.99 C at full fill, scanned where it fills 0.95 / 0.90 / 0.85 of
a BCC's 35 deg view in a 22 C room, read 37.17 / 36.34 / 35.51 C "normal" with no flag. With the distance
sensor it is "indeterminate" with "too_far", and the gateway, which recomputes the verdict, keeps it so.
"""

from __future__ import annotations

from typing import Any

import pytest

from firmware import module
from gateway.protocol import Scan
from gateway.screening import Screener
from sim import fill
from sim.clock import ManualClock
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614
from sim.travellers import Scene
from sim.vl53l0x import VL53L0X

config = module("config")
distance = module("distance")
mlx90614 = module("mlx90614")
scanner = module("scanner")
screening = module("screening")
CAL = module("calibration").CALIBRATION
AMBIENT_C = 22.0
CORE_C = 37.99  # the issue's traveller, at full fill
ISSUE = [(0.95, 37.17), (0.90, 36.34), (0.85, 35.51)]  # fill, the core estimate read today


def site_for_core(core: float) -> float:
    lo, hi = 25.0, 45.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if screening.core_estimate(CAL, "forehead", mid, AMBIENT_C) < core else (lo, mid)
    return lo


class Post:
    """A forehead scanner (BCC) with or without a VL53L0X beside it, sampling every 20 ms."""

    def __init__(self, with_distance: bool, variant: str = "BCC", seed: int = 1, mode: str = "forehead") -> None:
        self.clock = ManualClock()
        self.variant = variant
        self.mlx = MLX90614(self.clock, variant=variant, seed=seed)
        self.tof = VL53L0X(self.clock, seed=seed)
        self.mlx.set_scene(object_c=AMBIENT_C, ambient_c=AMBIENT_C)
        self.bus = MachineI2C({0x5A: self.mlx, 0x29: self.tof})
        sensor = {"variant": variant, "distance": "vl53l0x" if with_distance else None}
        cfg, reason = config.validate(
            {"site": "s", "node": "n", "broker": {"host": "h"}, "mode": mode, "sensor": sensor}
        )
        assert reason is None, reason
        self.settings = config.scan_settings(cfg)
        self.scanner = scanner.Scanner(self.clock, self.settings, bus=self.bus)
        self.driver = mlx90614.MLX90614(self.bus)
        self.clock.advance(500)
        self.idle(400)

    def step(self) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.scanner.feed(self.driver.object(), self.driver.ambient())
        self.clock.advance(20)
        return result

    def idle(self, ms: int) -> None:
        for _ in range(ms // 20):
            assert self.step() is None

    def traveller(self, scene: Scene) -> dict[str, Any]:
        self.mlx.set_scene(object_c=scene.object_c, ambient_c=scene.ambient_c, fill=scene.fill)
        self.tof.set_target(scene.distance_mm)
        for _ in range(150):
            result = self.step()
            if result is not None:
                return result
        raise AssertionError("no result in 3 s")


def forehead_at(distance_mm: float) -> Scene:
    return fill.at_distance(Scene(site_for_core(CORE_C), AMBIENT_C), "BCC", distance_mm, fill.target_mm("forehead"))


@pytest.mark.parametrize("share,read_today", ISSUE)
def test_a_forehead_that_does_not_fill_the_view_is_too_far_not_normal(share: float, read_today: float) -> None:
    d = fill.distance_for_fill("BCC", fill.target_mm("forehead"), share)
    scene = forehead_at(d)
    assert scene.fill == pytest.approx(share)
    without = Post(with_distance=False).traveller(scene)
    assert without["verdict"] == "normal" and without["flags"] == []  # what the issue found: still so without one
    assert without["t_core_c"] == pytest.approx(read_today, abs=0.15)
    result = Post(with_distance=True).traveller(scene)
    assert result["verdict"] == "indeterminate" and result["flags"] == ["too_far"] and result["t_core_c"] is None
    assert screening.advice(result["verdict"], result["flags"]).startswith("not inside the marked distance")


def test_the_same_forehead_inside_the_window_is_elevated() -> None:
    post = Post(with_distance=True)
    near, far = post.settings["window_mm"]
    assert (near, far) == (30, 73)
    for d in (35.0, 55.0, far - 3 * (1 + 0.01 * far)):
        result = post.traveller(forehead_at(d))
        assert result["verdict"] == "elevated" and result["flags"] == [], d
        assert result["t_core_c"] == pytest.approx(CORE_C, abs=0.15)
        post.mlx.set_scene(object_c=AMBIENT_C, ambient_c=AMBIENT_C)
        post.tof.set_target(None)
        post.idle(1000)


@pytest.mark.parametrize("where", ["too_close", "nothing_seen", "vcsel_fail", "no_device"])
def test_no_trustworthy_distance_is_too_far(where: str) -> None:
    post = Post(with_distance=True)
    scene = forehead_at(60.0)
    if where == "too_close":
        scene = Scene(scene.object_c, AMBIENT_C, 1.0, 20.0)
    elif where == "nothing_seen":
        scene = Scene(scene.object_c, AMBIENT_C, 1.0, None)
    else:
        post.tof.inject(where)
    result = post.traveller(scene)
    assert result["verdict"] == "indeterminate" and "too_far" in result["flags"]
    assert (post.scanner.gate.errors > 0) == (where == "no_device")


def test_the_gateway_keeps_too_far_when_it_recomputes_the_verdict() -> None:
    t_site = round(site_for_core(CORE_C), 2)
    fields = dict(site="s", node="n", seq=0, boot=0, ts=None, uptime_ms=1, mode="forehead", t_site_c=t_site)
    fields |= dict(t_amb_c=AMBIENT_C, t_core_c=None, verdict="indeterminate", samples=30, duration_ms=600)
    scan = Scan(**fields, flags=("too_far",), retest_of=None, fw="t", cal=CAL["id"])  # type: ignore[arg-type]
    got = Screener(CAL, {}).assess(scan)
    assert got.verdict == "indeterminate" and "too_far" in got.flags and got.t_core_c is None


def test_windows_per_variant_and_the_parts_a_distance_sensor_cannot_gate() -> None:
    """Full-fill distance = target / (2 tan(FOV / 2)), less the ranging tolerance (3 mm + 3 %)."""
    assert round(distance.full_fill_mm("BCC", 50), 1) == 79.3 and distance.window("BCC", 50) == (30, 73)
    assert round(distance.full_fill_mm("DCI", 20), 1) == 229.0 and distance.window("DCI", 20) == (30, 219)
    assert round(distance.full_fill_mm("DCH", 20), 1) == 95.1 and distance.window("DCH", 20) == (30, 89)
    assert round(distance.full_fill_mm("BAA", 50), 1) == 25.0
    base = {"site": "s", "node": "n", "broker": {"host": "h"}}
    cfg, reason = config.validate(base | {"sensor": {"variant": "BAA", "distance": "vl53l0x"}})
    assert cfg is None and reason is not None and reason.startswith("sensor.distance: a BAA (90 deg)")
    cfg, reason = config.validate(base | {"sensor": {"variant": "BCC", "distance": "hc-sr04"}})
    assert cfg is None and reason == "sensor.distance: must be one of vl53l0x, or null"
    cfg, reason = config.validate(base | {"mode": "canthus", "sensor": {"variant": "DCI", "distance": "vl53l0x"}})
    assert reason is None and config.scan_settings(cfg)["window_mm"] == (30, 219)
    cfg, reason = config.validate(base | {"sensor": {"variant": "BCC", "distance": "vl53l0x", "target_mm": 60}})
    assert reason is None and config.scan_settings(cfg)["window_mm"] == (30, 89)
    cfg, reason = config.validate(base | {"sensor": {"variant": "BAA"}})
    assert reason is None and config.scan_settings(cfg)["window_mm"] is None


def test_a_canthus_kiosk_leaning_back_is_too_far() -> None:
    post = Post(with_distance=True, variant="DCI", mode="canthus")
    base = Scene(36.6, AMBIENT_C)
    inside = post.traveller(fill.at_distance(base, "DCI", 200.0, fill.target_mm("canthus")))
    assert inside["verdict"] in ("normal", "elevated") and inside["flags"] == []
    post.mlx.set_scene(object_c=AMBIENT_C, ambient_c=AMBIENT_C)
    post.idle(3000)
    far = fill.at_distance(base, "DCI", 260.0, fill.target_mm("canthus"))
    assert far.fill == pytest.approx((229.0 / 260.0) ** 2, abs=0.01)
    result = post.traveller(far)
    assert result["verdict"] == "indeterminate" and "too_far" in result["flags"]
