"""sim/vloop.py: the virtual-time event loop `checkpoint-sim run --virtual-time` runs on.

Real sockets and threads stand for the world outside the loop (the broker, the gateway). What is asserted is
virtual time, which is exact; real time is never asserted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from sim.clock import VirtualClock
from sim.host.udp import LoopHub, NtpStub
from sim.scenario import ScenarioError, parse
from sim.vloop import VirtualTimeLoop, hold_until


def run(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, Any]]) -> Any:
    loop = VirtualTimeLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(main(loop))


def test_time_jumps_to_the_next_timer_exactly() -> None:
    async def main(loop: VirtualTimeLoop) -> list[float]:
        clock = VirtualClock(loop.now_ns)
        seen = []
        for ms in (20, 20, 60, 3_600_000):
            await clock.sleep_ms(ms)
            seen.append(clock.ticks_ms())
        return [*seen, loop.time()]

    assert run(main) == [20, 40, 100, 3_600_100, 3600.1]


def test_timers_due_at_one_moment_run_in_the_order_they_were_set() -> None:
    async def main(loop: VirtualTimeLoop) -> list[int]:
        order: list[int] = []
        for i in range(50):  # set in an order asyncio's heap would not keep: later ones due earlier first
            loop.call_later(1.0 + (i % 7) * 0.001, order.append, i)
        cancelled = loop.call_later(1.0, order.append, -1)
        cancelled.cancel()
        await asyncio.sleep(2)
        return order

    order = run(main)
    assert -1 not in order
    for k in range(7):
        due = [i for i in order if i % 7 == k]
        assert due == sorted(due)  # one moment: first set, first run
    assert [i % 7 for i in order] == sorted(i % 7 for i in order)  # the moments in time order


def echo_server() -> tuple[socket.socket, threading.Thread]:
    """A TCP echo server on a thread of its own: the real world, which answers in real time."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(100):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_an_answer_within_the_grace_takes_no_virtual_time() -> None:
    listener, thread = echo_server()

    async def main(loop: VirtualTimeLoop) -> list[float]:
        ticker = loop.create_task(asyncio.sleep(0.001))  # a timer 1 ms ahead: time could move at once
        reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        at = []
        for payload in (b"scan", b"receipt"):
            writer.write(payload)
            await writer.drain()
            await reader.readexactly(len(payload))
            at.append(loop.time())
        writer.close()
        await ticker
        return [*at, loop.time()]

    try:
        assert run(main) == [0.0, 0.0, 0.001]
    finally:
        listener.close()
        thread.join(5)


def test_held_time_stands_still_while_the_world_works() -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, bool]:
        ticker = loop.create_task(asyncio.sleep(0.001))
        with loop.held():
            await asyncio.to_thread(time.sleep, 0.2)  # a process starting
        during = loop.time()
        flag = threading.Event()
        threading.Timer(0.1, flag.set).start()
        done = await hold_until(loop, flag.is_set, 30.0)
        await ticker
        return during, loop.time(), done

    assert run(main) == (0.0, 0.001, True)


def test_an_ntp_stub_on_the_loop_answers_with_the_virtual_moment_it_was_asked() -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[int, float]:
        clock = VirtualClock(loop.now_ns)
        await clock.sleep_ms(1234)
        stub = NtpStub(lambda: 1_000_000 + clock.ticks_ms(), LoopHub(loop))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.sendto(bytes(48), stub.address)
        await clock.sleep_ms(10)  # the firmware's poll (firmware/udp.py)
        reply = s.recv(576)
        s.close()
        stub.close()
        seconds = int.from_bytes(reply[40:44], "big") - 2_208_988_800
        fraction = int.from_bytes(reply[44:48], "big")
        return seconds * 1000 + round(fraction * 1000 / 2**32), loop.time()

    assert run(main) == (1_001_234, 1.244)  # the request's moment


def test_the_scenario_chooses_the_clock_and_refuses_others() -> None:
    assert parse({}).clock == "scaled"  # the default stays real time times speed
    assert parse({"clock": "virtual"}).clock == "virtual"
    with pytest.raises(ScenarioError, match=r"scenario.clock: 'warp' is not one of \('scaled', 'virtual'\)"):
        parse({"clock": "warp"})
