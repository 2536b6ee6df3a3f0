"""NTP and DNS servers for simulated nodes: real UDP sockets on 127.0.0.1 that the firmware's own clients
(firmware/timesync.py, firmware/udp.py) talk to, with the faults the simulator injects.

One daemon thread (the hub) serves every stub in the process through a selector, so a simulator with many
nodes runs one thread, not two per node. Each node has its own NTP stub, because its answer is the node's
simulated time (`unix0 + clock.ticks_ms()`), and its own DNS stub.

With virtual time (sim/vloop.py) the stubs are served by the simulator's event loop instead (`LoopHub`): an
answer then leaves at the virtual moment the request arrived, so an NTP answer tells the same time in every run.

Faults: `NtpStub.offset_ms` (clock_jump: the server's time jumps), `NtpStub.reply` ("ok", "kod": stratum 0
with a zero transmit timestamp, "unsynced": leap indicator 3, "silent": no answer); `DnsStub.delay_s` (seconds
before the answer, real or the loop's: dns_slow) and `DnsStub.silent`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import socket
import struct
import threading
import time
from asyncio import AbstractEventLoop
from collections.abc import Callable
from typing import Protocol

NTP_UNIX_S = 2_208_988_800
LOCALHOST = "127.0.0.1"


class _Hub:
    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._later: list[tuple[float, int, socket.socket, bytes, tuple[str, int]]] = []
        self._n = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, sock: socket.socket, handler: Callable[[bytes, tuple[str, int]], None]) -> None:
        with self._lock:
            self._sel.register(sock, selectors.EVENT_READ, handler)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="sim-udp", daemon=True)
                self._thread.start()

    def remove(self, sock: socket.socket) -> None:
        with self._lock:
            self._sel.unregister(sock)
        sock.close()

    def later(self, delay_s: float, sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
        with self._lock:
            heapq.heappush(self._later, (time.monotonic() + delay_s, next(self._n), sock, data, addr))

    def _serve(self) -> None:
        while True:
            with self._lock:
                due = self._later[0][0] - time.monotonic() if self._later else 0.05
            for key, _ in self._sel.select(max(0.0, min(due, 0.05))):
                try:
                    data, addr = key.fileobj.recvfrom(576)  # type: ignore[union-attr]
                except OSError:
                    continue
                key.data(data, addr)
            self._send_due()

    def _send_due(self) -> None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._later or self._later[0][0] > now:
                    return
                _, _, sock, data, addr = heapq.heappop(self._later)
            _send(sock, data, addr)


HUB = _Hub()


class Hub(Protocol):
    """What serves the stubs' sockets: the hub thread (`HUB`) or an event loop (`LoopHub`)."""

    def add(self, sock: socket.socket, handler: Callable[[bytes, tuple[str, int]], None]) -> None: ...

    def remove(self, sock: socket.socket) -> None: ...

    def later(self, delay_s: float, sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None: ...


class LoopHub:
    """The stubs served by an event loop (with virtual time: at the request's virtual moment; `later` in the
    loop's seconds)."""

    def __init__(self, loop: AbstractEventLoop) -> None:
        self._loop = loop

    def add(self, sock: socket.socket, handler: Callable[[bytes, tuple[str, int]], None]) -> None:
        sock.setblocking(False)
        self._loop.add_reader(sock, self._read, sock, handler)

    def _read(self, sock: socket.socket, handler: Callable[[bytes, tuple[str, int]], None]) -> None:
        try:
            data, addr = sock.recvfrom(576)
        except OSError:
            return
        handler(data, addr)

    def remove(self, sock: socket.socket) -> None:
        self._loop.remove_reader(sock)
        sock.close()

    def later(self, delay_s: float, sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
        self._loop.call_later(delay_s, _send, sock, data, addr)


def _send(sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
    with contextlib.suppress(OSError):  # the stub was closed meanwhile
        sock.sendto(data, addr)


class _Stub:
    def __init__(self, hub: Hub = HUB) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.port: int = self.sock.getsockname()[1]
        self.requests = 0
        self.hub = hub
        hub.add(self.sock, self._on)

    @property
    def address(self) -> tuple[str, int]:
        return (LOCALHOST, self.port)

    def _on(self, data: bytes, addr: tuple[str, int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.hub.remove(self.sock)


class NtpStub(_Stub):
    """An NTP server telling `unix_ms()` (+ offset_ms), or a faulty reply."""

    def __init__(self, unix_ms: Callable[[], int], hub: Hub = HUB) -> None:
        super().__init__(hub)
        self.unix_ms = unix_ms
        self.offset_ms = 0
        self.reply = "ok"

    def _on(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        if len(data) < 48 or self.reply == "silent":
            return
        self.sock.sendto(ntp_packet(self.unix_ms() + self.offset_ms, data[40:48], self.reply), addr)


def ntp_packet(unix_ms: int, origin: bytes, kind: str = "ok") -> bytes:
    """A server reply (mode 4, version 4) to a request whose transmit timestamp was `origin`."""
    li, stratum = (3 if kind == "unsynced" else 0), (0 if kind == "kod" else 2)
    sec, ms = divmod(unix_ms, 1000)
    ts = b"\0" * 8 if kind == "kod" else struct.pack("!II", (sec + NTP_UNIX_S) & 0xFFFFFFFF, (ms << 32) // 1000)
    head = bytes((li << 6 | 4 << 3 | 4, stratum, 6, 0xEC)) + bytes(8) + (b"RATE" if kind == "kod" else b"SIM\0")
    return head + ts + origin + ts + ts


class DnsStub(_Stub):
    """A DNS server answering every A question with `answer` (127.0.0.1), after `delay_s`, or never."""

    def __init__(self, answer: str = LOCALHOST, hub: Hub = HUB) -> None:
        super().__init__(hub)
        self.answer = answer
        self.delay_s = 0.0
        self.silent = False

    def _on(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        if len(data) < 17 or self.silent:
            return
        end = data.index(b"\0", 12) + 5  # the question: name, type, class
        reply = data[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + data[12:end]
        reply += b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 60, 4) + socket.inet_aton(self.answer)
        if self.delay_s > 0:
            self.hub.later(self.delay_s, self.sock, reply, addr)
        else:
            self.sock.sendto(reply, addr)
