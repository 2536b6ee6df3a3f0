"""A lane at a checkpoint for tests of a node behind the MicroPython bridge: travellers step in front of the
sensor one after another.

Event-driven like the real queue: a traveller steps in (the chip's scene changes), stays until the node shows
a verdict (recognised from the LEDs and buzzer) plus `dwell_ms`, steps away, and the next one comes `gap_ms`
later (choose it longer than the sensor takes to fall back to the ambient: ~0.1 s for BAA, ~0.7 s for DCI).
Time is the board's clock, read at each sensor transaction, so it works the same in simulated time in-process
and behind the MicroPython bridge (where the clock is the firmware's own).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sim.host.board import HostBoard, PinEvent, VerdictDecoder

EMPTY_READS = 4  # sensor transactions on the empty lane after the gap before the next traveller steps in


@dataclass(frozen=True)
class Traveller:
    """What the sensor sees while this traveller stands in front of it (see sim/mlx90614.py set_scene)."""

    object_c: float
    ambient_c: float = 22.0
    fill: float = 1.0
    leave_after_ms: int | None = None  # steps away this soon whatever the node shows (an impatient traveller)


@dataclass
class Shown:
    traveller: int
    verdict: str
    present_tick: int
    shown_tick: int


@dataclass
class Lane:
    board: HostBoard
    chip: Any
    travellers: list[Traveller]
    ambient_c: float = 22.0
    dwell_ms: int = 150
    gap_ms: int = 400
    shown: list[Shown] = field(default_factory=list)
    hold_after: int | None = None  # stop after this many travellers until release()
    _i: int = -1
    _present_at: int | None = None
    _shown_at: int | None = None
    _next_at: int = 0
    _empty_reads: int = 0
    _decoder: VerdictDecoder = field(default_factory=VerdictDecoder)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.chip.set_scene(object_c=self.ambient_c, ambient_c=self.ambient_c)
        self.board.on_tick.append(self.update)
        self.board.on_pin.append(self.on_pin)

    @property
    def done(self) -> bool:
        return self._i >= len(self.travellers) - 1 and self._present_at is None

    def release(self, hold_after: int | None = None) -> None:
        self.hold_after = hold_after

    def wait_shown(self, count: int, timeout: float) -> list[Shown]:
        """Block until `count` verdicts were shown (TimeoutError otherwise)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.shown) >= count, timeout):
                raise TimeoutError(f"lane: {len(self.shown)} of {count} verdicts shown")
            return list(self.shown)

    def update(self, now: int) -> None:
        if self._present_at is None:
            held = self.hold_after is not None and self._i + 1 >= self.hold_after
            if now >= self._next_at:
                self._empty_reads += 1
            # The next one steps in once the node has read the empty lane a few times after the gap: with a
            # scaled clock a host hiccup can stretch simulated time past the whole gap between two reads, and
            # a node that never saw the lane empty would still be waiting for the last traveller to leave.
            if self._i + 1 < len(self.travellers) and self._empty_reads > EMPTY_READS and not held:
                self._empty_reads = 0
                self._i += 1
                t = self.travellers[self._i]
                self.chip.set_scene(object_c=t.object_c, ambient_c=t.ambient_c, fill=t.fill)
                self._present_at, self._shown_at = now, None
            return
        t = self.travellers[self._i]
        leave = self._shown_at is not None and now - self._shown_at >= self.dwell_ms
        if t.leave_after_ms is not None and now - self._present_at >= t.leave_after_ms:
            leave = True
        if leave:
            self.chip.set_scene(object_c=t.ambient_c, ambient_c=t.ambient_c)
            self._present_at = None
            self._next_at = now + self.gap_ms

    def on_pin(self, ev: PinEvent) -> None:
        verdict = self._decoder.feed(ev)
        if verdict is None or self._present_at is None or self._shown_at is not None:
            return
        self._shown_at = ev.tick
        with self._changed:
            self.shown.append(Shown(self._i, verdict, self._present_at, ev.tick))
            self._changed.notify_all()
