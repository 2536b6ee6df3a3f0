"""A register-level Melexis MLX90614 (datasheet rev 13, 2019; facts in docs/domain.md §2 and docs/sensor.md).

What the firmware sees over SMBus: Read Word / Write Word with PEC, RAM 0x04-0x08, EEPROM 0x20-0x3F with
its write rules, Read Flags 0xF0, Sleep 0xFF, the power-up delay, the error flag, emissivity, the IIR/FIR
filter as a first-order lag with the datasheet's settling times, noise per variant, and injectable bus
faults. Everything is computed lazily from the injected clock at each transaction: no threads, no real time.

The scene: the sensor sees `fill * object + (1 - fill) * background` (background defaults to the ambient).
That linear mix of temperatures is a radiometric simplification (radiance goes as T^4), good to a few
tenths of a degree for skin against a room, and it is what "the object must fill the field of view" costs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from firmware import module as firmware_module
from sim.clock import TickSource
from sim.i2c import Nack

# --- SMBus commands (datasheet: SMBus commands; RAM and EEPROM memory maps) ---
RAM_RAW_IR1 = 0x04
RAM_RAW_IR2 = 0x05
RAM_TA = 0x06
RAM_TOBJ1 = 0x07
RAM_TOBJ2 = 0x08
EEPROM = 0x20  # command = 0x20 | cell
CMD_FLAGS = 0xF0
CMD_SLEEP = 0xFF

CELL_TO_MAX, CELL_TO_MIN, CELL_PWMCTRL, CELL_TA_RANGE, CELL_EMISSIVITY, CELL_CONFIG1 = range(6)
CELL_ADDRESS = 0x0E
WRITABLE_CELLS = frozenset({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0E, 0x0F, 0x19})

FLAG_EEBUSY = 0x80
FLAG_EE_DEAD = 0x20
FLAG_INIT = 0x10  # active low: 0 while the power-on initialisation runs

POWER_UP_MS = 250  # first valid data 0.25 s after power-up or wake
EEPROM_BUSY_MS = 5  # EEBUSY after a write (datasheet: wait >= 5 ms)
TO_RANGE_C = (-70.01, 382.19)  # 0x7FFF is the largest valid object reading
TA_RANGE_C = (-40.0, 125.0)
ABSOLUTE_ZERO = 273.15
IR_GAIN = 1e-7  # raw IR counts per K^4 of (To^4 - Ta^4): illustrative scale, not the silicon's

# Factory EEPROM as read from production parts: To_max 120 C, To_min -20 C, PWM control, Ta range,
# emissivity 1.0, config 1 = IIR 100% (code 4), FIR 1024 (code 7), gain 12.5, single zone; address cell.
_FACTORY = {0x00: 0x9993, 0x01: 0x62E3, 0x02: 0x0201, 0x03: 0xF71C, 0x04: 0xFFFF, 0x05: 0x9FB4, 0x0E: 0xBE00}
CONFIG_DUAL_ZONE = 0x0040  # config 1 bit 6

# The IIR/FIR table (datasheet, config register 1 and "settling time" table, 0.04-7.0 s over all settings).
# Modelled as settle(variant factory) * FIR factor * IIR factor: FIR 1024 / IIR 100% is the factory setting,
# a shorter FIR is faster (FIR 128 on a BAA gives the table's 0.04 s), a stronger IIR slower (IIR 13% on a DCI
# gives the table's 7.0 s). Intermediate steps are interpolated, not read from the table. One table: the
# driver's (firmware/mlx90614.py), which the node reads the part's settling time from.
_driver: Any = firmware_module("mlx90614")
FIR_FACTOR: dict[int, float] = {code: pc / 100 for code, pc in enumerate(_driver.FIR_PERCENT)}  # 0-3 "not rec."
IIR_FACTOR: dict[int, float] = {code: pc / 100 for code, pc in enumerate(_driver.IIR_PERCENT)}  # 4 = 100%


@dataclass(frozen=True)
class Variant:
    settle_s: float  # settling time at factory filter settings
    noise_c: float  # object noise, C rms, at factory filter settings
    dual_zone: bool = False
    sleep: bool = True  # Sleep mode exists on the 3 V parts only


# Datasheet: BAA 0.10 s, BCC 0.14 s, DCI 0.65 s; noise 0.05 (DAA) to 0.10 C rms (DCH/DCI).
# Assumed (not in the datasheet excerpt): AAA/BBA/DAA settle like BAA; DCH like DCI; BCC noise 0.07.
VARIANTS = {
    "AAA": Variant(0.10, 0.05, sleep=False),
    "BAA": Variant(0.10, 0.05),
    "BBA": Variant(0.10, 0.05, dual_zone=True),
    "BCC": Variant(0.14, 0.07),
    "DAA": Variant(0.10, 0.05),
    "DCH": Variant(0.65, 0.10),
    "DCI": Variant(0.65, 0.10),
}
TA_NOISE_C = 0.02  # assumed
FAULTS: dict[str, dict[str, float]] = {
    "no_device": {},  # NACK on the address
    "bus_noise": {"p": 0.1},  # probability that a transfer has one corrupted byte (bad PEC)
    "stuck_bus": {},  # SDA held low: every transaction on the bus times out
    "ffff_burst": {"n": 3},  # the next n reads return 0xFF 0xFF 0xFF
    "error_flag": {},  # bit 15 set on object reads
    "out_of_range": {"object_c": 400.0},  # the sensor sees an object beyond -70.01..382.19 C
}


def pec(data: Iterable[int]) -> int:
    """SMBus Packet Error Code: CRC-8, polynomial x^8 + x^2 + x + 1 (0x07), init 0, MSB first."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def settling_time_s(variant: str, config1: int) -> float:
    """Time for the object reading to reach 90% of a step, for a variant and config register 1."""
    return VARIANTS[variant].settle_s * FIR_FACTOR[(config1 >> 8) & 7] * IIR_FACTOR[config1 & 7]


def encode(t_c: float, lo: float, hi: float) -> int:
    """RAM word for a temperature: raw = (T + 273.15) / 0.02 (datasheet, temperature calculation).

    Outside the measurable range [lo, hi] the error flag (bit 15) is set: 0xFFFF above, 0x8000 below.
    """
    if t_c > hi:
        return 0xFFFF
    if not lo <= t_c:  # below range, or NaN
        return 0x8000
    return round((t_c + ABSOLUTE_ZERO) / 0.02)


class _Lag:
    """First-order response computed lazily: value(t) = target + (value0 - target) * exp(-(t - t0) / tau)."""

    def __init__(self, value: float, t_ms: int) -> None:
        self.value, self.target, self.t_ms = value, value, t_ms

    def at(self, t_ms: int, tau_ms: float) -> float:
        return self.target + (self.value - self.target) * math.exp(-(t_ms - self.t_ms) / tau_ms)

    def retarget(self, target: float, t_ms: int, tau_ms: float) -> None:
        self.value, self.t_ms, self.target = self.at(t_ms, tau_ms), t_ms, target


class MLX90614:
    """One simulated part. `noise=False` gives exact readings (for comparing drivers on the same chip).

    `gain` and `offset_c`: this unit's calibration error, object reading = gain * true + offset_c (C), as two
    real units differ (docs/sensor.md, "Per-unit gain and offset"). Exact (1, 0) by default; the datasheet's
    accuracy is +-0.5 C over 0-50 C (+-0.2 C at 36-38 C for the medical parts), so a unit within it reads, e.g.,
    gain 1.005 with offset -0.15 C. Reference calibration (firmware/reference.py) measures and undoes them."""

    max_freq_hz = 100_000

    def __init__(
        self,
        clock: TickSource,
        variant: str = "DCI",
        address: int = 0x5A,
        seed: int = 0,
        noise: bool = True,
        gain: float = 1.0,
        offset_c: float = 0.0,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown MLX90614 variant {variant!r} (known: {', '.join(VARIANTS)})")
        if not 0x01 <= address <= 0x7F:
            raise ValueError(f"SMBus address 0x{address:02x} out of range")
        self.variant = variant
        self._spec = VARIANTS[variant]
        self._clock = clock
        self._noise = noise
        self.gain, self.offset_c = gain, offset_c  # this unit's error; set them to model another unit
        self._noise_rng = random.Random(seed)
        self._fault_rng = random.Random(f"{seed}:faults")
        self._eeprom = [random.Random(f"{seed}:eeprom").randrange(0x10000) for _ in range(32)]
        for cell, value in _FACTORY.items():
            self._eeprom[cell] = value
        self._eeprom[CELL_ADDRESS] |= address
        if self._spec.dual_zone:
            self._eeprom[CELL_CONFIG1] |= CONFIG_DUAL_ZONE
        self._writes = [0] * 32
        self._faults: dict[str, dict[str, float]] = {}
        self._object_c, self._object2_c, self._ambient_c = 20.0, 20.0, 20.0
        self._fill, self._background_c = 1.0, 20.0
        self._zones = (_Lag(20.0, 0), _Lag(20.0, 0))
        self._off = False
        self.power_cycle()

    # --- the world around the chip ---
    def set_scene(
        self,
        object_c: float,
        ambient_c: float,
        fill: float = 1.0,
        background_c: float | None = None,
        object2_c: float | None = None,
    ) -> None:
        """What the sensor looks at from now on; its reading follows through the filter lag."""
        if not 0.0 <= fill <= 1.0:
            raise ValueError(f"fill {fill} must be within 0..1")
        now, tau = self._now(), self._tau_ms()
        self._object_c, self._ambient_c, self._fill = object_c, ambient_c, fill
        self._object2_c = object_c if object2_c is None else object2_c
        self._background_c = ambient_c if background_c is None else background_c
        for zone, lag in enumerate(self._zones):
            if self._ready():
                lag.retarget(self._seen_c(zone), now, tau)
            else:  # the filter starts from the first conversion (0.25 s after power-up)
                lag.value = lag.target = self._seen_c(zone)
                lag.t_ms = now

    def power_cycle(self) -> None:
        """Power off and on: EEPROM settings load, the filter restarts, data valid after 0.25 s."""
        self._off = False
        self._asleep = False
        self._emissivity_raw = self._eeprom[CELL_EMISSIVITY]
        self._config1 = self._eeprom[CELL_CONFIG1]
        self._busy_until = self._now()
        self._restart()

    def power(self, on: bool) -> None:
        """The supply switched (a board's sensor_power pin): off, the part answers nothing (its RAM and running
        settings are gone); on again after being off, it starts as at power-up (`power_cycle`)."""
        if not on:
            self._off = True
        elif self._off:
            self.power_cycle()

    @property
    def powered(self) -> bool:
        return not self._off

    def settle_ms(self) -> float:
        """The settling time of the filter the part runs now (config register 1 as loaded at power-up), ms."""
        return settling_time_s(self.variant, self._config1) * 1000.0

    def wake(self) -> None:
        """The wake request (SCL high, SDA low >= 33 ms, done by the board's pins): the address reloads."""
        if self._asleep:
            self._asleep = False
            self._restart()

    def inject(self, kind: str, **params: float) -> None:
        """Start a fault (see FAULTS for the kinds and their parameters, with defaults)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
        unknown = set(params) - set(FAULTS[kind])
        if unknown:
            raise ValueError(f"fault {kind!r} takes {sorted(FAULTS[kind])}, not {sorted(unknown)}")
        merged = {**FAULTS[kind], **params}
        if kind == "out_of_range" and TO_RANGE_C[0] <= merged["object_c"] <= TO_RANGE_C[1]:
            raise ValueError(f"out_of_range needs an object beyond {TO_RANGE_C} C")
        self._faults[kind] = merged

    def clear(self, kind: str | None = None) -> None:
        """End one fault, or all of them."""
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(kind, None)

    def eeprom_write_count(self, cell: int) -> int:
        """Accepted writes (an erase counts as one) to a cell, given as 0x00-0x1F or its command 0x20-0x3F."""
        return self._writes[_cell(cell)]

    def eeprom(self, cell: int) -> int:
        """The stored word, as an EEPROM programmer would read it (no bus involved)."""
        return self._eeprom[_cell(cell)]

    @property
    def asleep(self) -> bool:
        return self._asleep

    # --- SMBusDevice ---
    def holds_bus(self) -> bool:
        return "stuck_bus" in self._faults

    def acks(self, addr: int) -> bool:
        if self._off or self._asleep or "no_device" in self._faults:
            return False
        return addr in (0x00, self._active_address)  # every part also answers 0x00

    def read_word(self, addr: int, cmd: int) -> bytes:
        burst = self._faults.get("ffff_burst")
        if burst is not None:
            burst["n"] -= 1
            if burst["n"] <= 0:
                del self._faults["ffff_burst"]
            return b"\xff\xff\xff"  # the slave let go of SDA: the master clocks in ones
        value = self._register(cmd)
        lsb, msb = value & 0xFF, value >> 8
        out = bytearray((lsb, msb, pec((addr << 1, cmd, (addr << 1) | 1, lsb, msb))))
        self._maybe_corrupt(out)
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        frame = bytearray(data)
        if len(frame) < 2:
            return  # a probe, or a command cut short by a stop: nothing happens
        self._maybe_corrupt(frame)
        cmd = frame[0]
        if cmd == CMD_SLEEP:
            self._sleep(addr, frame)
        elif EEPROM <= cmd <= EEPROM + 0x1F and len(frame) == 4:
            if frame[3] != pec((addr << 1, cmd, frame[1], frame[2])):
                raise Nack("data", "bad PEC: write ignored")
            self._write_cell(cmd & 0x1F, frame[1] | frame[2] << 8)
        else:
            raise Nack("data", f"command 0x{cmd:02x} is not writable")

    # --- inside the chip ---
    def _now(self) -> int:
        return self._clock.ticks_ms()

    def _restart(self) -> None:
        self._powered_at = self._now()
        self._active_address = self._eeprom[CELL_ADDRESS] & 0x7F
        for zone, lag in enumerate(self._zones):
            lag.value = lag.target = self._seen_c(zone)
            lag.t_ms = self._powered_at

    def _ready(self) -> bool:
        return self._clock.ticks_diff(self._now(), self._powered_at) >= POWER_UP_MS

    def _busy(self) -> bool:
        return self._clock.ticks_diff(self._busy_until, self._now()) > 0

    def _tau_ms(self) -> float:
        return settling_time_s(self.variant, self._config1) * 1000.0 / math.log(10.0)

    def _noise_c(self) -> float:
        # Slower filter settings average longer: noise scales with the square root of the bandwidth (assumed).
        slowdown = settling_time_s(self.variant, self._config1) / self._spec.settle_s
        return self._spec.noise_c / math.sqrt(slowdown)

    def _seen_c(self, zone: int) -> float:
        target = self._object2_c if zone else self._object_c
        return self._fill * target + (1.0 - self._fill) * self._background_c

    def _register(self, cmd: int) -> int:
        if RAM_RAW_IR1 <= cmd <= RAM_TOBJ2:
            return self._ram(cmd) if self._ready() else 0x0000  # RAM holds its power-on value until then
        if EEPROM <= cmd <= EEPROM + 0x1F:
            if self._busy():
                raise Nack("data", "EEPROM busy")
            return self._eeprom[cmd & 0x1F]
        if cmd == CMD_FLAGS:
            return (FLAG_EEBUSY if self._busy() else 0) | (FLAG_INIT if self._ready() else 0)
        raise Nack("data", f"no command 0x{cmd:02x}")

    def _ram(self, cmd: int) -> int:
        ta_c = self._ambient_c + (self._noise_rng.gauss(0.0, TA_NOISE_C) if self._noise else 0.0)
        if cmd == RAM_TA:
            return encode(ta_c, *TA_RANGE_C)
        zone = 1 if cmd in (RAM_RAW_IR2, RAM_TOBJ2) else 0
        if zone and not (self._spec.dual_zone and self._config1 & CONFIG_DUAL_ZONE):
            return 0x8000  # no second zone on this part
        seen_c = self._zones[zone].at(self._now(), self._tau_ms())
        if "out_of_range" in self._faults:
            seen_c = self._faults["out_of_range"]["object_c"]
        if cmd in (RAM_RAW_IR1, RAM_RAW_IR2):
            return _raw_ir(seen_c, ta_c)
        to_c = self.gain * self._radiometric(seen_c, ta_c) + self.offset_c  # the unit's own calibration error
        if self._noise:
            to_c += self._noise_rng.gauss(0.0, self._noise_c())
        word = encode(to_c, *TO_RANGE_C)
        return word | 0x8000 if "error_flag" in self._faults else word

    def _radiometric(self, seen_c: float, ta_c: float) -> float:
        """To with the configured emissivity (datasheet, emissivity): e*To^4 + (1-e)*Ta^4 = seen^4."""
        e = self._emissivity_raw / 0xFFFF
        seen4, ta4 = (seen_c + ABSOLUTE_ZERO) ** 4, (ta_c + ABSOLUTE_ZERO) ** 4
        to4 = (seen4 - (1.0 - e) * ta4) / e if e > 0 else math.inf
        return to4**0.25 - ABSOLUTE_ZERO if 0 < to4 < math.inf else math.inf

    def _write_cell(self, cell: int, value: int) -> None:
        if self._busy():
            raise Nack("data", "EEPROM busy")
        if cell not in WRITABLE_CELLS:
            return  # acknowledged and ignored: factory calibration is protected
        old = self._eeprom[cell]
        # Erase is a write of 0x0000; a write over a cell that is not erased stores old AND new (garbled).
        self._eeprom[cell] = 0 if value == 0 else value if old == 0 else old & value
        self._writes[cell] += 1
        self._busy_until = self._now() + EEPROM_BUSY_MS

    def _sleep(self, addr: int, frame: bytearray) -> None:
        if len(frame) != 2 or frame[1] != pec((addr << 1, CMD_SLEEP)):
            raise Nack("data", "sleep command needs its PEC")
        if not self._spec.sleep:
            raise Nack("data", f"{self.variant} is a 5 V part: no sleep mode")
        self._asleep = True

    def _maybe_corrupt(self, frame: bytearray) -> None:
        noise = self._faults.get("bus_noise")
        if noise is not None and self._fault_rng.random() < noise["p"]:
            frame[self._fault_rng.randrange(len(frame))] ^= self._fault_rng.randrange(1, 256)


def _cell(cell: int) -> int:
    if 0x20 <= cell <= 0x3F:
        return cell - 0x20
    if not 0 <= cell <= 0x1F:
        raise ValueError(f"EEPROM cell 0x{cell:02x}: use 0x00-0x1F or the command 0x20-0x3F")
    return cell


def _raw_ir(seen_c: float, ta_c: float) -> int:
    """Raw IR channel, sign and magnitude (bit 15 is the sign here, not an error flag)."""
    counts = round(IR_GAIN * ((seen_c + ABSOLUTE_ZERO) ** 4 - (ta_c + ABSOLUTE_ZERO) ** 4))
    return min(abs(counts), 0x7FFF) | (0x8000 if counts < 0 else 0)
