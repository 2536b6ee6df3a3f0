"""Virtual time for the simulator: an asyncio event loop whose clock moves only when the loop has nothing to do.

`VirtualTimeLoop` is an asyncio.SelectorEventLoop whose `time()` is virtual: whole nanoseconds from 0, moved only
by its selector (`VirtualSelector`) when a select finds nothing ready, and then by the select's timeout, which
is to the next timer. CPU work costs no virtual time, so a run's timers fire at the same virtual moments whatever
the machine's load, and timers due at the same moment run in the order they were set (asyncio's heap leaves
that order to its history, which here depends on when network answers came).

The world outside the loop is real: Mosquitto, the gateway, the NTP and DNS stubs. Before time moves, the
selector waits up to `grace_s` of real time for an answer that may be on its way: after anything was written on
a connection this loop opened, while a connect or a blocked write is under way, and after any socket event.
Answers within the grace take no virtual time; a slower one arrives later in virtual time, so what the nodes
make must not depend on when answers come (docs/simulator.md, "Virtual time"). Otherwise time moves after
`QUIET_S` of real time (a loopback UDP answer is already queued by then).

`held()`: while the simulator waits for a real process (a broker or gateway start, a thread), virtual time stands
still and the loop serves sockets and threads in real time; timers wait. Only for waits that need no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
from collections.abc import Callable, Iterator
from contextvars import Context
from typing import Any, TypeVarTuple

GRACE_S = 0.05  # real seconds an answer may take and still take no virtual time
QUIET_S = 0.001  # real seconds before time moves when nothing is on its way
HELD_POLL_S = 0.05
Ts = TypeVarTuple("Ts")


class VirtualSelector(selectors.BaseSelector):
    """The platform's selector, with virtual time: `select(timeout)` waits in real time only for what may come
    (see the module doc) and, when nothing came, moves `now_ns` by the timeout."""

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self._inner = selectors.DefaultSelector()
        self.grace_s = grace_s
        self.now_ns = 0
        self.holds = 0
        self._busy_until = 0.0  # real (time.monotonic): until then an answer may be on its way
        self._writing: set[int] = set()  # fds waiting to write: a connect or a full send buffer

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._note(self._inner.register(fileobj, events, data))

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = self._inner.unregister(fileobj)
        self._writing.discard(key.fd)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._note(self._inner.modify(fileobj, events, data))

    def _note(self, key: selectors.SelectorKey) -> selectors.SelectorKey:
        if key.events & selectors.EVENT_WRITE:
            self._writing.add(key.fd)
            self.wrote()
        else:
            self._writing.discard(key.fd)
        return key

    def get_map(self) -> Any:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()

    def wrote(self) -> None:
        """Something went out: an answer may come within the grace."""
        self._busy_until = time.monotonic() + self.grace_s

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return self._seen(self._inner.select(0))
        if self.holds:
            return self._seen(self._inner.select(HELD_POLL_S if timeout is None else min(timeout, HELD_POLL_S)))
        if timeout is None:  # no timer at all: only the world can move anything
            return self._seen(self._inner.select(None))
        if self._writing:
            self.wrote()
        wait = max(QUIET_S, self._busy_until - time.monotonic())
        events = self._inner.select(wait)
        if events:
            return self._seen(events)
        self.now_ns += max(1, round(timeout * 1e9))
        return []

    def _seen(self, events: list[tuple[selectors.SelectorKey, int]]) -> list[tuple[selectors.SelectorKey, int]]:
        if events:
            self.wrote()  # its handler may answer, and the answer be answered
        return events


class _Watched:
    """A connection's transport that tells the selector when something is written (an answer may follow);
    everything else goes to the transport as it is (asyncio.StreamWriter uses write, drain's is_closing, close,
    get_extra_info)."""

    def __init__(self, transport: asyncio.Transport, wrote: Callable[[], None]) -> None:
        self._transport = transport
        self._wrote = wrote

    def write(self, data: Any) -> None:
        self._transport.write(data)
        self._wrote()

    def writelines(self, lines: Any) -> None:
        self._transport.writelines(lines)
        self._wrote()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (module doc). `time()` in seconds, `now_ns()` exact."""

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.virtual = VirtualSelector(grace_s)
        self._due: dict[int, list[tuple[asyncio.TimerHandle, Callable[..., Any], tuple[Any, ...], Any]]] = {}
        super().__init__(self.virtual)

    def time(self) -> float:
        return self.virtual.now_ns / 1e9

    def now_ns(self) -> int:
        return self.virtual.now_ns

    def call_at(
        self, when: float, callback: Callable[[*Ts], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.TimerHandle:
        """Timers due at the same nanosecond run in the order they were set: one asyncio timer per nanosecond
        runs them (call_soon, in order); the handle returned cancels one."""
        ns = max(self.virtual.now_ns, round(when * 1e9))
        handle = asyncio.TimerHandle(ns / 1e9, callback, args, self, context)
        due = self._due.get(ns)
        if due is None:
            due = self._due[ns] = []
            super().call_at(ns / 1e9, self._fire, ns)
        due.append((handle, callback, args, context))
        return handle

    def _fire(self, ns: int) -> None:
        for handle, callback, args, context in self._due.pop(ns):
            if not handle.cancelled():
                self.call_soon(callback, *args, context=context)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Virtual time stands still inside (module doc)."""
        self.virtual.holds += 1
        try:
            yield
        finally:
            self.virtual.holds -= 1

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        """The loop's connection, its transport watched for writes (asyncio.open_connection writes through it)."""
        transport, protocol = await super().create_connection(*args, **kwargs)
        return _Watched(transport, self.virtual.wrote), protocol


async def hold_until(loop: asyncio.AbstractEventLoop, done: Callable[[], bool], real_s: float) -> bool:
    """On a VirtualTimeLoop: hold virtual time until `done()` (what the world does, not a timer) or `real_s` real
    seconds; whether it is done. Elsewhere: just `done()`."""
    if not isinstance(loop, VirtualTimeLoop):
        return done()
    deadline = time.monotonic() + real_s
    with loop.held():
        while not done() and time.monotonic() < deadline:
            await asyncio.to_thread(time.sleep, 0.01)  # 10 ms of real time: no timer runs while held
    return done()
