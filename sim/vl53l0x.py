"""A register-level ST VL53L0X time-of-flight sensor (I2C 0x29), beside the MLX90614 on the simulated bus.

What a driver relies on (ST's VL53L0X API, UM2039 and vl53l0x_device.h / vl53l0x_api.c; the datasheet
DocID029104 gives the figures: 25 deg field of view, ranging up to 2 m, 1.2 m in the default mode):
8-bit register index with auto-increment; model id 0xEE at 0xC0; the private page behind 0xFF = 0x01 that
holds the stop variable at 0x91; SYSRANGE_START (0x00) = 0x01 starts a single-shot measurement that ends one
timing budget later (33 ms, the API's default); RESULT_INTERRUPT_STATUS (0x13) bits 2..0 then read 0x04
until SYSTEM_INTERRUPT_CLEAR (0x0B) is written; RESULT_RANGE_STATUS (0x14) is a 12-byte block: the device
range status in bits 6..3 of its first byte (11 = range complete), the signal rate at +6 (9.7 fixed point),
the range in mm at +10 (big-endian).

The world: `set_target(mm)` is what stands in front (None: nothing within reach). Beyond MAX_RANGE_MM the
part reports status 4 (MSRC no target) with 8190 mm; below MIN_RANGE_MM status 10 (min clip) with the clip
distance; the numbers that come with a failed status are what real parts send and a driver must never use.
Noise by distance: sd = 1 mm + 1 % of the distance (assumed; the datasheet gives accuracy as a percentage per
ranging profile). Faults: `no_device` (NACK), `vcsel_fail` (status 1, hardware fail, with a plausible range).
Not modelled: the static init and calibrations (accepted, ignored), continuous and timed modes, the GPIO pin,
crosstalk, ambient light, reflectance.
"""

from __future__ import annotations

import random

from sim.clock import TickSource

ADDRESS = 0x29
MODEL_ID = 0xEE
TIMING_BUDGET_MS = 33
MIN_RANGE_MM = 30  # assumed (below it the range is clipped and flagged)
MAX_RANGE_MM = 1200  # datasheet, default ranging profile
NO_TARGET_MM = 8190
STATUS_RANGE_COMPLETE = 11
STATUS_NO_TARGET = 4  # VL53L0X_DEVICEERROR_MSRCNOTARGET
STATUS_MIN_CLIP = 10  # VL53L0X_DEVICEERROR_MINCLIP
STATUS_VCSEL = 1  # VL53L0X_DEVICEERROR_VCSELCONTINUITYTESTFAILURE
FAULTS = ("no_device", "vcsel_fail")

SYSRANGE_START = 0x00
RESULT_INTERRUPT_STATUS = 0x13
RESULT_RANGE_STATUS = 0x14
SYSTEM_INTERRUPT_CLEAR = 0x0B
PAGE_SELECT = 0xFF
STOP_VARIABLE = 0x91
BLOCK = 12  # bytes a read returns from the register it starts at (auto-increment)


def noise_sd_mm(distance_mm: float) -> float:
    """The model's ranging noise (1 sd) at a distance."""
    return 1.0 + 0.01 * distance_mm


class VL53L0X:
    """One simulated part on an injected clock; seeded noise."""

    max_freq_hz = 400_000

    def __init__(self, clock: TickSource, address: int = ADDRESS, seed: int = 0, model_id: int = MODEL_ID) -> None:
        self._clock = clock
        self.address = address
        self._rng = random.Random(f"{seed}:vl53l0x")
        self._regs: dict[tuple[int, int], int] = {(0, 0xC0): model_id, (0, 0xC1): 0xAA, (0, 0xC2): 0x10}
        self._regs[(1, STOP_VARIABLE)] = 0x3C
        self._page = 0
        self._target: float | None = None
        self._done_at: int | None = None  # the running measurement's end
        self._pending = False  # a result waits (interrupt status set)
        self._result = bytes(BLOCK)
        self.faults: set[str] = set()
        self.starts = 0

    # --- the world
    def set_target(self, distance_mm: float | None) -> None:
        """What stands in front, mm from the sensor (None: nothing within reach)."""
        self._target = distance_mm

    def inject(self, kind: str) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
        self.faults.add(kind)

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self.faults.clear()
        else:
            self.faults.discard(kind)

    def register(self, reg: int, page: int = 0) -> int:
        """A register's stored value, as a debugger would read it (no bus involved)."""
        return self._page if reg == PAGE_SELECT else self._regs.get((page, reg), 0)

    # --- SMBusDevice
    def holds_bus(self) -> bool:
        return False

    def acks(self, addr: int) -> bool:
        return addr == self.address and "no_device" not in self.faults

    def read_word(self, addr: int, cmd: int) -> bytes:
        self._settle()
        return bytes(self._reg(cmd + i) for i in range(BLOCK))

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        self._settle()
        for i, value in enumerate(data[1:]):
            self._write(data[0] + i, value)

    # --- inside
    def _reg(self, reg: int) -> int:
        if self._page == 0 and reg == RESULT_INTERRUPT_STATUS:
            return 0x04 if self._pending else 0x00
        if self._page == 0 and RESULT_RANGE_STATUS <= reg < RESULT_RANGE_STATUS + BLOCK:
            return self._result[reg - RESULT_RANGE_STATUS]
        if reg == PAGE_SELECT:
            return self._page
        return self._regs.get((self._page, reg & 0xFF), 0)

    def _write(self, reg: int, value: int) -> None:
        if reg == PAGE_SELECT:
            self._page = value & 0x01
        elif self._page == 0 and reg == SYSRANGE_START:
            if value & 0x01:
                self.starts += 1
                self._done_at = self._clock.ticks_ms() + TIMING_BUDGET_MS
        elif self._page == 0 and reg == SYSTEM_INTERRUPT_CLEAR:
            if value & 0x01:
                self._pending = False
        else:
            self._regs[(self._page, reg & 0xFF)] = value

    def _settle(self) -> None:
        """Finish the running measurement if its timing budget has passed."""
        if self._done_at is not None and self._clock.ticks_ms() >= self._done_at:
            self._done_at = None
            self._result = self._measure()
            self._pending = True

    def _measure(self) -> bytes:
        d = self._target
        if "vcsel_fail" in self.faults:
            status, mm = STATUS_VCSEL, round(d) if d is not None else 0
        elif d is None or d > MAX_RANGE_MM:
            status, mm = STATUS_NO_TARGET, NO_TARGET_MM
        elif d < MIN_RANGE_MM:
            status, mm = STATUS_MIN_CLIP, 20
        else:
            status, mm = STATUS_RANGE_COMPLETE, max(0, round(self._rng.gauss(d, noise_sd_mm(d))))
        rate = 0 if status != STATUS_RANGE_COMPLETE else min(0xFFFF, int(128 * 40 * (100 / max(d or 1, 10)) ** 2))
        out = bytearray(BLOCK)
        out[0] = status << 3
        out[6], out[7] = rate >> 8, rate & 0xFF  # signal rate, MCPS in 9.7 fixed point (illustrative)
        out[10], out[11] = mm >> 8, mm & 0xFF
        return bytes(out)
