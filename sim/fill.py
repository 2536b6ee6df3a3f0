"""How much of an MLX90614's field of view a traveller's target fills at a distance, and the scene it makes.

The view is a cone of full angle FOV (the datasheet's figure per package option: 90, 35, 12, 10 or 5 deg;
firmware/distance.py `FOV_DEG`, docs/domain.md §2.7); at distance d it covers a spot of diameter
2 d tan(FOV / 2). The target is a disc of `target_mm` across, facing the sensor on its axis: the forehead
(50 mm by default) or the warm region at the inner canthus (20 mm), firmware/distance.py `TARGET_MM`. It fills
the view wholly while the spot is no larger than it, beyond that the share (target / spot)^2 of the spot's
area. The sensor then sees `fill * target + (1 - fill) * background` (sim/mlx90614.py; the background is the
room). Simplifications (docs/sensor.md, "Distance"): uniform responsivity inside the cone and none outside
(the datasheet's FOV is where the responsivity falls to 50 %, so a real part sees a little beyond it and
reads a little lower than this model), a flat target, no hair or eyebrows in the spot, no off-axis aim.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from firmware import module as firmware_module
from sim.travellers import Scene

_distance: Any = firmware_module("distance")


def fov_deg(variant: str) -> float:
    return float(_distance.fov_deg(variant))


def spot_mm(variant: str, distance_mm: float) -> float:
    """Diameter of the field of view at a distance: 2 d tan(FOV / 2)."""
    return 2 * distance_mm * math.tan(math.radians(fov_deg(variant)) / 2)


def target_mm(mode: str) -> float:
    """The default target size for a mode (firmware/distance.py `TARGET_MM`)."""
    return float(_distance.TARGET_MM[mode])


def fill(variant: str, target: float, distance_mm: float) -> float:
    """Share of the field of view the target covers: 1 up to the full-fill distance, then (target / spot)^2."""
    if distance_mm < 0 or target <= 0:
        raise ValueError("distance must be >= 0 and the target larger than 0")
    spot = spot_mm(variant, distance_mm)
    return 1.0 if spot <= target else (target / spot) ** 2


def full_fill_mm(variant: str, target: float) -> float:
    """The farthest distance at which the target fills the whole view."""
    return target / (2 * math.tan(math.radians(fov_deg(variant)) / 2))


def distance_for_fill(variant: str, target: float, share: float) -> float:
    """The distance (mm) at which the target fills `share` (0 < share <= 1) of the view."""
    if not 0 < share <= 1:
        raise ValueError("share must be within (0, 1]")
    return full_fill_mm(variant, target) / math.sqrt(share)


def at_distance(scene: Scene, variant: str, distance_mm: float, target: float) -> Scene:
    """The scene of a target `target` mm across standing `distance_mm` from a `variant` part: fill and distance."""
    return replace(scene, fill=fill(variant, target, distance_mm), distance_mm=distance_mm)


def seen_c(scene: Scene) -> float:
    """What the sensor reads of the scene once settled (the linear mix of sim/mlx90614.py, background = ambient)."""
    return scene.fill * scene.object_c + (1 - scene.fill) * scene.ambient_c
