"""Time for the firmware, injected everywhere so tests and the simulator can move it.

Every firmware module takes a clock object with this interface instead of calling `time` directly:

    ticks_ms() -> int            monotonic milliseconds (wraps on MicroPython: compare with ticks_diff)
    ticks_diff(a, b) -> int      a - b in ms, wrap-safe
    await sleep_ms(ms)           yield to the event loop for ms milliseconds
    unix_ms() -> int or None     wall clock, Unix ms UTC, or None until NTP has set it
    set_unix_ms(ms)              record a wall-clock sync (NTP, checked by udp.TimeSync) at the current tick

Between syncs the wall clock runs on the monotonic tick. `Clock.unix_ms()` moves its sync point forward at
every call, so the ESP32's wrapping ticks (ticks_diff is right only within about 6 days) never lose it: the
node reads it at every scan and the uplink at least hourly.

`timed(clock, coro, ms, what)` bounds an await by such a clock. `Clock` works on the ESP32, on the MicroPython
unix port and under CPython. The simulator supplies its own clock with the same methods (simulated time).
"""

import time

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython
    import uasyncio as asyncio  # type: ignore

_HAS_TICKS = hasattr(time, "ticks_ms")
_ETIMEDOUT = 110


async def timed(clock, coro, ms, what):
    """Await `coro`, cancelling it after `ms` of `clock`: OSError(ETIMEDOUT, what + ": timed out") then."""
    task = asyncio.create_task(coro)
    fired = [False]

    async def guard():
        await clock.sleep_ms(ms)
        fired[0] = True
        task.cancel()

    g = asyncio.create_task(guard())
    try:
        return await task
    except asyncio.CancelledError:
        if fired[0]:
            raise OSError(_ETIMEDOUT, what + ": timed out")
        raise
    finally:
        g.cancel()
        if not task.done():
            task.cancel()


class Clock:
    def __init__(self):
        self._sync_tick = None
        self._sync_unix = 0

    def ticks_ms(self):
        if _HAS_TICKS:
            return time.ticks_ms()  # type: ignore[attr-defined]
        return int(time.monotonic() * 1000)  # type: ignore[attr-defined]

    def ticks_diff(self, a, b):
        if _HAS_TICKS:
            return time.ticks_diff(a, b)  # type: ignore[attr-defined]
        return a - b

    async def sleep_ms(self, ms):
        await asyncio.sleep(ms / 1000)

    def unix_ms(self):
        if self._sync_tick is None:
            return None
        now = self.ticks_ms()
        self._sync_unix += self.ticks_diff(now, self._sync_tick)
        self._sync_tick = now
        return self._sync_unix

    def set_unix_ms(self, ms):
        self._sync_tick = self.ticks_ms()
        self._sync_unix = ms
