"""Clocks for the simulator, with the firmware clock interface (see firmware/clock.py).

`ManualClock` is simulated time that moves only when told to: tests and the simulated MLX90614 use it so
settling times, EEPROM busy windows and power-up delays are exact and no test sleeps. `ScaledClock` runs at a
fixed ratio to real time (the simulator's default); `VirtualClock` reads a virtual-time event loop
(sim/vloop.py), which moves only when no node has anything to do (`checkpoint-sim run --virtual-time`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class TickSource(Protocol):
    """What the simulated devices need from a clock: monotonic milliseconds."""

    def ticks_ms(self) -> int: ...

    def ticks_diff(self, a: int, b: int) -> int: ...


class _SimClock:
    """What both simulated clocks share: non-wrapping ticks and the wall clock an NTP sync sets."""

    def __init__(self) -> None:
        self._sync_tick: int | None = None
        self._sync_unix = 0

    def ticks_ms(self) -> int:
        raise NotImplementedError

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b

    def unix_ms(self) -> int | None:
        if self._sync_tick is None:
            return None
        return self._sync_unix + self.ticks_diff(self.ticks_ms(), self._sync_tick)

    def set_unix_ms(self, ms: int) -> None:
        self._sync_tick = self.ticks_ms()
        self._sync_unix = ms


class ManualClock(_SimClock):
    """Simulated time: `advance(ms)` moves it; `await sleep_ms(ms)` advances it and yields once.

    Single-task code therefore runs in simulated time (a 10 s wait costs nothing). Ticks do not wrap.
    """

    def __init__(self, start_ms: int = 0) -> None:
        super().__init__()
        self._now = start_ms

    def ticks_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError(f"time cannot go backwards (advance {ms} ms)")
        self._now += ms

    async def sleep_ms(self, ms: int) -> None:
        self.advance(ms)
        await asyncio.sleep(0)


class ScaledClock(_SimClock):
    """Simulated time running `speed` times faster than real time (one per simulated node and its chip).

    Many nodes talk real MQTT to a real broker, so simulated time cannot jump: it runs at a fixed ratio to the
    monotonic clock. `sleep_ms(ms)` waits ms / speed real milliseconds. Ticks start at 0 when created.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        super().__init__()
        self.speed = speed
        self._t0 = time.monotonic()

    def ticks_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000 * self.speed)

    def seconds(self) -> float:
        """Simulated seconds since the start."""
        return (time.monotonic() - self._t0) * self.speed

    async def sleep_ms(self, ms: int) -> None:
        await asyncio.sleep(max(0, ms) / 1000 / self.speed)


class VirtualClock(_SimClock):
    """Simulated time read from a virtual-time event loop (sim/vloop.py `VirtualTimeLoop.now_ns`): one per
    simulated node and its chip, ticks from 0 when created. `sleep_ms(ms)` is a timer on that loop, so it must
    be awaited there. `speed` is 1: one second of the loop is one simulated second (how fast that goes in real
    time is whatever the machine gives)."""

    speed = 1.0

    def __init__(self, now_ns: Callable[[], int]) -> None:
        super().__init__()
        self._now_ns = now_ns
        self._t0 = now_ns()

    def ticks_ms(self) -> int:
        return (self._now_ns() - self._t0) // 1_000_000

    def seconds(self) -> float:
        """Simulated seconds since the start."""
        return (self._now_ns() - self._t0) / 1e9

    async def sleep_ms(self, ms: int) -> None:
        await asyncio.sleep(max(0, ms) / 1000)


NodeClock = ScaledClock | VirtualClock  # what a simulated node, its chip and its lane run on
