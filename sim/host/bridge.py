"""The host end of the MicroPython bridge: serves a HostBoard to sim/host/mp/board.py over local TCP.

One connection, one thread, strictly request/reply (the wire format is in mp/board.py). Each request carries
the firmware's tick; the board's FollowerClock is moved to it before the request runs, so the simulated chip,
the lane and the recorded pins all live on the firmware's clock.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
from collections.abc import Callable

from sim.host.board import FollowerClock, HostBoard

log = logging.getLogger(__name__)
NONE = 255


class BridgeError(RuntimeError):
    """The MicroPython side sent something the bridge does not understand."""


def _bool(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


class BridgeServer:
    def __init__(self, board: HostBoard) -> None:
        if not isinstance(board.clock, FollowerClock):
            raise ValueError("a bridged HostBoard needs a FollowerClock: the firmware owns the time")
        self.board = board
        self.clock: FollowerClock = board.clock
        self.requests = 0
        self.error: BaseException | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="bridge", daemon=True)
        self._lock = threading.Lock()
        self._ops: dict[int, Callable[[bytes], bytes | None]] = {
            ord("r"): self._read_mem,
            ord("w"): lambda p: self._i2c_write(p[0], p[1:], True, mem=True),
            ord("W"): lambda p: self._i2c_write(p[0], p[2:], bool(p[1])),
            ord("R"): self._read_after,
            ord("s"): lambda p: bytes(board.i2c.scan()),
            ord("o"): lambda p: self._out(p[0], p[1]),
            ord("i"): lambda p: bytes((board.inp(p[0]).value(),)),
            ord("v"): self._supply,
            ord("c"): lambda p: _bool(board.link.isconnected()),
            ord("j"): lambda p: _bool(board.link.join()),
            ord("q"): self._rssi,
            ord("n"): lambda p: self._server(board.link.ntp_server()),
            ord("d"): lambda p: self._server(board.link.dns_server()),
            ord("D"): lambda p: self._wdt(struct.unpack("<I", p)[0]),
            ord("f"): self._feed,
            ord("S"): lambda p: board.setup(None if not p else self._cfg),
            ord("B"): self._blink,
            ord("P"): lambda p: _bool(board.power_on_reset()),
        }
        self._cfg: dict[str, object] | None = None

    def configure(self, cfg: dict[str, object] | None) -> None:
        """The node's config, so pin numbers get their names (the firmware only sends numbers)."""
        self._cfg = cfg

    def start(self) -> BridgeServer:
        self._thread.start()
        return self

    def lock(self) -> threading.Lock:
        """Held while a request runs: take it to change the simulated world between two requests."""
        return self._lock

    def close(self) -> None:
        self._listener.close()

    # --- serving
    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                while self._one(conn):
                    pass
            except BaseException as e:  # surfaced to the test through .error, and logged
                self.error = e
                log.exception("bridge: request failed")

    def _one(self, conn: socket.socket) -> bool:
        hdr = _recv(conn, 6)
        if hdr is None:
            return False
        op, tick, n = hdr[0], *struct.unpack_from("<IB", hdr, 1)
        payload = _recv(conn, n) if n else b""
        if payload is None:
            return False
        handler = self._ops.get(op)
        if handler is None:
            raise BridgeError(f"unknown op {op!r}")
        with self._lock:
            self.clock.follow(tick)
            self.requests += 1
            try:
                out = handler(payload)
                status = 0 if out is not None else NONE
            except OSError as e:
                out, status = b"", e.errno or errno.EIO
        body = out or b""
        conn.sendall(bytes((status, len(body))) + body)
        return True

    # --- operations
    def _read_mem(self, p: bytes) -> bytes:
        buf = bytearray(p[2])
        self.board.i2c.readfrom_mem_into(p[0], p[1], buf)
        return bytes(buf)

    def _read_after(self, p: bytes) -> bytes:
        buf = bytearray(p[1])
        self.board.tick()
        self.board.i2c.readfrom_into(p[0], buf)
        return bytes(buf)

    def _i2c_write(self, addr: int, data: bytes, stop: bool, mem: bool = False) -> bytes:
        if mem:
            self.board.i2c.writeto_mem(addr, data[0], data[1:])
        else:
            self.board.i2c.writeto(addr, data, stop)
        return b""

    def _out(self, pin: int, value: int) -> bytes:
        self.board.out_pin(pin).value(value)
        return b""

    def _supply(self, p: bytes) -> bytes | None:
        v = self.board.supply_v()
        return None if v is None else struct.pack("<H", round(v * 1000))

    def _rssi(self, p: bytes) -> bytes | None:
        r = self.board.link.rssi()
        return None if r is None else struct.pack("<b", r)

    def _server(self, addr: tuple[str, int] | None) -> bytes | None:
        """A UDP server of the link (NTP, DNS) on 127.0.0.1: its port."""
        return None if addr is None else struct.pack("<H", addr[1])

    def _wdt(self, timeout_ms: int) -> bytes:
        self.board.wdt(timeout_ms)
        return b""

    def _blink(self, p: bytes) -> bytes:
        self.board.keep_blinking(None)
        return b""

    def _feed(self, p: bytes) -> bytes:
        if self.board.watchdog is not None:
            self.board.watchdog.feed()
        return b""


def _recv(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
