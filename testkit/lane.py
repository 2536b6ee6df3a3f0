"""A lane at a checkpoint for tests of a node behind the MicroPython bridge: scenes (sim/travellers.py `Scene`,
a traveller's from `scene`) step in front of the sensor one after another.

The sequence is sim/lane.py's (the simulator drives the same one in asyncio); this drives it from the board:
at each sensor transaction (the board's clock, the firmware's own behind the bridge) and at each LED or buzzer
change, from which the verdict the node shows is read. Someone steps in, stays until the node shows a verdict
plus `dwell_ms`, steps away, and the next one comes `gap_ms` later (choose it longer than the sensor takes to
fall back to the ambient: ~0.1 s for BAA, ~0.7 s for DCI).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sim.host.board import HostBoard, PinEvent, VerdictDecoder
from sim.lane import Lane as Front
from sim.mlx90614 import MLX90614
from sim.travellers import Scene

EMPTY_READS = 4  # sensor transactions on the empty lane after the gap before the next one steps in


@dataclass
class Shown:
    traveller: int  # the index of the scene
    verdict: str
    present_tick: int
    shown_tick: int


@dataclass
class Lane:
    board: HostBoard
    chip: MLX90614
    scenes: list[Scene]
    ambient_c: float = 22.0
    dwell_ms: int = 150
    gap_ms: int = 400
    shown: list[Shown] = field(default_factory=list)
    hold_after: int | None = None  # stop after this many scenes until release()
    _next: int = 0
    _empty_reads: int = 0
    _decoder: VerdictDecoder = field(default_factory=VerdictDecoder)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.front: Front[int] = Front(self.chip, self.ambient_c, self.dwell_ms, self.gap_ms)
        self.board.on_tick.append(self.update)
        self.board.on_pin.append(self.on_pin)

    @property
    def done(self) -> bool:
        return self._next >= len(self.scenes) and self.front.empty

    def release(self, hold_after: int | None = None) -> None:
        self.hold_after = hold_after

    def wait_shown(self, count: int, timeout: float) -> list[Shown]:
        """Block until `count` verdicts were shown (TimeoutError otherwise)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.shown) >= count, timeout):
                raise TimeoutError(f"lane: {len(self.shown)} of {count} verdicts shown")
            return list(self.shown)

    def update(self, now: int) -> None:
        if self.front.update(now):
            return
        if now >= self.front.free_at:
            self._empty_reads += 1
        # The next one steps in once the node has read the empty lane a few times after the gap: with a scaled
        # clock a host hiccup can stretch simulated time past the whole gap between two reads, and a node that
        # never saw the lane empty would still be waiting for the last one to leave.
        held = self.hold_after is not None and self._next >= self.hold_after
        if self._next < len(self.scenes) and self._empty_reads > EMPTY_READS and not held:
            self._empty_reads = 0
            self.front.step_in(self._next, self.scenes[self._next], now)
            self._next += 1

    def on_pin(self, ev: PinEvent) -> None:
        verdict = self._decoder.feed(ev)
        who, present_at = self.front.present, self.front.present_at
        if verdict is None or who is None or present_at is None or not self.front.show(ev.tick):
            return
        with self._changed:
            self.shown.append(Shown(who, verdict, present_at, ev.tick))
            self._changed.notify_all()
