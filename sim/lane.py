"""One lane in front of one sensor: who stands there, and what the sensor sees.

The sequence is the same whoever drives it: a traveller steps in and the chip's scene becomes theirs
(sim/travellers.py `scene`); they stay until the node shows a verdict, plus `dwell_ms`, or give up after
`give_up_ms` without one (None: they wait for it); they step out and the sensor sees the empty lane in the
same air; the next may step in `gap_ms` later. Time is the driver's milliseconds.

Two drivers: sim/post.py (asyncio, Poisson arrivals, the verdict from the node's observer) and testkit/lane.py
(behind the MicroPython bridge: driven by the sensor's reads, the verdict read from the LEDs and buzzer).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sim.mlx90614 import MLX90614
from sim.travellers import Scene
from sim.vl53l0x import VL53L0X

Who = TypeVar("Who")


class Lane(Generic[Who]):
    """`who` stands for the one in front of the sensor (a traveller, an index): it is handed back in `present`."""

    def __init__(
        self,
        chip: MLX90614,
        ambient_c: float,
        dwell_ms: int,
        gap_ms: int,
        give_up_ms: int | None = None,
        ranger: VL53L0X | None = None,
    ) -> None:
        self.chip = chip
        self.ranger = ranger  # a distance sensor beside the chip: it sees the scene's distance_mm
        self.dwell_ms, self.gap_ms, self.give_up_ms = dwell_ms, gap_ms, give_up_ms
        self.present: Who | None = None
        self.present_at: int | None = None  # None: nobody stands there
        self.shown_at: int | None = None  # when the node showed the present traveller a verdict
        self.free_at = 0  # the next may step in from then on
        self._ambient_c = ambient_c  # the sensor's package (sim/thermal.py)
        self._background_c = ambient_c  # what it sees with nobody there: the site's air
        self._offset_c = 0.0  # the package's gradient error on the object reading
        self._scene: Scene | None = None
        chip.set_scene(object_c=ambient_c, ambient_c=ambient_c)

    def set_air(self, ambient_c: float, background_c: float, offset_c: float = 0.0) -> None:
        """The sensor's package is at `ambient_c` (its gradient puts `offset_c` on the object reading); the empty
        lane is at `background_c`. The scene in front stays."""
        self._ambient_c, self._background_c, self._offset_c = ambient_c, background_c, offset_c
        scene = self._scene
        obj = background_c if scene is None else scene.object_c
        self.chip.set_scene(object_c=obj + offset_c, ambient_c=ambient_c, fill=1.0 if scene is None else scene.fill)

    @property
    def empty(self) -> bool:
        return self.present_at is None

    def step_in(self, who: Who, scene: Scene, now: int) -> None:
        self.chip.set_scene(object_c=scene.object_c + self._offset_c, ambient_c=scene.ambient_c, fill=scene.fill)
        if self.ranger is not None:
            self.ranger.set_target(scene.distance_mm)
        if scene.ambient_c != self._ambient_c:  # a scene with air of its own (a test's): the empty lane too
            self._background_c = scene.ambient_c
        self._ambient_c = scene.ambient_c
        self._scene = scene
        self.present, self.present_at, self.shown_at = who, now, None

    def show(self, now: int) -> bool:
        """The node showed a verdict: whether it was the first for the one standing there (the one that counts)."""
        if self.present_at is None or self.shown_at is not None:
            return False
        self.shown_at = now
        return True

    def leaves_at(self) -> int | None:
        """When the one standing there steps out: the verdict plus the dwell, else when they give up (None:
        nobody there, or waiting for a verdict however long it takes)."""
        if self.shown_at is not None:
            return self.shown_at + self.dwell_ms
        if self.present_at is None or self.give_up_ms is None:
            return None
        return self.present_at + self.give_up_ms

    def update(self, now: int) -> bool:
        """Step out if it is time; whether someone still stands there."""
        at = self.leaves_at()
        if at is not None and now >= at:
            self.step_out(now)
        return self.present_at is not None

    def step_out(self, now: int) -> None:
        self._scene = None
        self.chip.set_scene(object_c=self._background_c + self._offset_c, ambient_c=self._ambient_c)
        if self.ranger is not None:
            self.ranger.set_target(None)
        self.present, self.present_at, self.shown_at = None, None, None
        self.free_at = now + self.gap_ms
