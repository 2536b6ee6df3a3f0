"""Supervision: every task restarted after a crash, a global asyncio exception handler, the hardware watchdog.

Nothing here resets the board as error handling: a crashed task is logged and started again after a second;
the hardware watchdog (intervals.wdt_ms) is fed only while the node reports progress, so only a real hang
resets the node (and the outbox keeps every scan across it).
"""

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio  # type: ignore

RESTART_PAUSE_MS = 1000


def _log(*args):
    print(*args)


class Supervisor:
    def __init__(self, clock):
        self.clock = clock
        self.restarts = 0  # crashed tasks and errors the loop handler saw (health: task_restarts)
        self.wdt_feeds = 0
        self._factories = {}

    def spawn(self, name, factory):
        """Run `factory()` (a coroutine function) as a task, again after every crash."""
        self._factories[name] = factory
        asyncio.create_task(self._supervise(name))

    async def _supervise(self, name):
        while True:
            try:
                await self._factories[name]()
                _log("task", name, "returned")
                return
            except Exception as e:  # restart the task, never the board; the WDT covers real hangs
                self.restarts += 1
                _log("task", name, "crashed:", repr(e), "- restarting")
            await self.clock.sleep_ms(RESTART_PAUSE_MS)

    def on_loop_error(self, loop, context):
        self.restarts += 1
        _log("asyncio:", context.get("message"), repr(context.get("exception")))

    async def watchdog(self, wdt, period_ms, progress):
        """Feed `wdt` every `period_ms` while `progress()` says (scan ok, uplink ok); log once when it stops."""
        stalled = False
        while True:
            scan_ok, up_ok = progress()
            if scan_ok and up_ok:
                wdt.feed()
                self.wdt_feeds += 1
                stalled = False
            elif not stalled:
                stalled = True
                _log("watchdog: not feeding (scan ok %s, uplink ok %s)" % (scan_ok, up_ok))
            await self.clock.sleep_ms(period_ms)
