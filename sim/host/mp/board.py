"""The board for the firmware under the real MicroPython interpreter here: hardware over a bridge.

MicroPython imports this module as `board` (sim/host/mp comes first on sys.path), in place of the ESP32
firmware/board.py, with the same interface. Every bus transaction, pin write and Wi-Fi question goes over a
blocking local TCP socket to sim/host/bridge.py, where a HostBoard owns the simulated MLX90614, the pins and
the link. Blocking is faithful: an I2C transaction blocks the ESP32 too.

Time: the firmware owns the clock, a `ScaledClock` running `speed` times real time (1,000 scans need not take
1,000 s). Each request carries the firmware's tick, so the simulated chip sees the firmware's time.

Wire format (little endian): request = op (1 byte), tick (u32 ms), payload length (1 byte), payload;
reply = status (1 byte: 0 ok, else an errno raised as OSError, 255 = none), length (1 byte), payload.
"""

import os
import socket
import struct
import time

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio  # type: ignore

import clock as clockmod

_US = hasattr(time, "ticks_us")
NONE = 255


class ScaledClock(clockmod.Clock):
    """Real time times `speed`, in ms; ticks do not wrap (the host runs are short)."""

    def __init__(self, speed=1):
        clockmod.Clock.__init__(self)
        self.speed = speed
        self._us = 0
        self._last = self._now_us()

    def _now_us(self):
        if _US:
            return time.ticks_us()  # type: ignore[attr-defined]
        return time.monotonic_ns() // 1000  # type: ignore[attr-defined]

    def ticks_ms(self):
        now = self._now_us()
        self._us += time.ticks_diff(now, self._last) if _US else now - self._last  # type: ignore
        self._last = now
        return self._us * self.speed // 1000

    def ticks_diff(self, a, b):
        return a - b

    async def sleep_ms(self, ms):
        await asyncio.sleep(ms / self.speed / 1000)


class Pin:
    def __init__(self, board, num):
        self._b = board
        self._num = num

    def value(self, v=None):
        if v is None:
            return self._b.call(ord("i"), bytes((self._num,)))[0]
        self._b.call(ord("o"), bytes((self._num, 1 if v else 0)))
        return None


class Board:
    """The board interface of firmware/board.py; to save heap it is also the bus (`i2c`), the Wi-Fi `link`
    and the watchdog, each a few methods forwarding over the socket."""

    def __init__(self, port, speed, root=""):
        self.clock = ScaledClock(speed)
        self.root = root
        self.i2c = self
        self.link = self
        self._s = socket.socket()
        self._s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        self._req = bytearray(64)
        self._hdr = bytearray(2)

    def call(self, op, payload=b""):
        n = len(payload)
        r = self._req
        r[0] = op
        struct.pack_into("<IB", r, 1, self.clock.ticks_ms() & 0xFFFFFFFF, n)
        r[6 : 6 + n] = payload
        self._s.send(memoryview(r)[: 6 + n])
        self._read_into(self._hdr)
        status, m = self._hdr[0], self._hdr[1]
        data = bytearray(m)
        if m:
            self._read_into(data)
        if status == NONE:
            return None
        if status:
            raise OSError(status)
        return data

    def _read_into(self, buf):
        got = 0
        mv = memoryview(buf)
        while got < len(buf):
            k = self._s.readinto(mv[got:])
            if not k:
                raise OSError(104)  # ECONNRESET: the host went away
            got += k

    # machine.I2C: the calls firmware/mlx90614.py makes
    def readfrom_mem_into(self, addr, memaddr, buf):
        buf[:] = self.call(ord("r"), bytes((addr, memaddr, len(buf))))

    def writeto_mem(self, addr, memaddr, buf):
        self.call(ord("w"), bytes((addr, memaddr)) + bytes(buf))

    # the Wi-Fi link
    def isconnected(self):
        return self.call(ord("c"))[0] == 1

    async def connect(self):
        return self.call(ord("j"))[0] == 1

    def rssi(self):
        r = self.call(ord("q"))
        return None if r is None else struct.unpack("<b", r)[0]

    def ntp_server(self):
        return self._server(ord("n"))

    def dns_server(self):
        return self._server(ord("d"))

    def _server(self, op):
        """The host's NTP or DNS stub (sim/host/udp.py): the firmware's own clients talk real UDP to it."""
        r = self.call(op)
        return None if r is None else ("127.0.0.1", struct.unpack("<H", r)[0])

    # the watchdog
    def wdt(self, timeout_ms):
        self.call(ord("D"), struct.pack("<I", timeout_ms))
        return self

    def feed(self):
        self.call(ord("f"))

    # the rest of the board interface
    def setup(self, cfg):
        self.call(ord("S"), b"" if cfg is None else b"1")

    def out(self, pin):
        return Pin(self, pin)

    inp = out

    def supply_v(self):
        r = self.call(ord("v"))
        return None if r is None else struct.unpack("<H", r)[0] / 1000

    def display(self):
        return None

    def block_ms(self, ms):
        """Block for `ms` of the firmware's time (time.sleep_ms on the ESP32): at 20x a 10 ms EEPROM wait is
        0.5 ms here, which ms // speed rounded to nothing (the part was still busy when read back)."""
        end = self.clock.ticks_ms() + ms
        while self.clock.ticks_ms() < end:
            time.sleep_us(1000 // self.clock.speed + 1)  # type: ignore[attr-defined]

    def power_on_reset(self):
        return self.call(ord("P"))[0] == 1

    def keep_blinking(self, ui):
        self.call(ord("B"))

    def urandom(self, n):
        return os.urandom(n)


def make():
    """The board named by the environment: CHECKPOINT_BRIDGE_PORT, CHECKPOINT_SPEED."""
    return Board(int(os.getenv("CHECKPOINT_BRIDGE_PORT")), int(os.getenv("CHECKPOINT_SPEED") or "1"))
