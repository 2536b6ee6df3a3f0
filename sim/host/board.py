"""A firmware board (the interface in firmware/board.py) made of simulated parts, for CPython.

Pins are recorded: every output write is kept as a `PinEvent` (tick, pin name, value), so tests and the
simulator see exactly what staff would have seen on the LEDs and heard from the buzzer. The Wi-Fi link is a
`HostLink` that faults can cut. The clock is whatever the caller hands in: a ManualClock or a scaled clock in
the simulator, a `FollowerClock` (the firmware's own time) behind the MicroPython bridge.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from firmware import module as firmware_module
from sim.host.udp import DnsStub, NtpStub
from sim.i2c import MachineI2C, ReadableBuffer, SMBusDevice, WritableBuffer

LED_NAMES = ("green", "amber", "red")
SENSOR_POWER = "sensor_power"  # the pin whose level powers the simulated parts that have a supply (power(on))
# What the LEDs show at the moment a verdict pattern starts (the buzzer's first beep): see firmware/ui.py.
VERDICT_LEDS = {
    ("green",): "normal",
    ("red",): "elevated",
    ("amber",): "indeterminate",
    ("amber", "red"): "invalid",
}
DEFAULT_UNIX_MS = 1_768_464_000_000  # 2026-01-15 08:00 UTC: what the simulated NTP reports at tick 0


class Clock(Protocol):
    def ticks_ms(self) -> int: ...

    def ticks_diff(self, a: int, b: int) -> int: ...


class FollowerClock:
    """The firmware's time as last reported over the bridge: simulated parts see the firmware's clock."""

    def __init__(self) -> None:
        self.now = 0

    def follow(self, tick: int) -> None:
        self.now = max(self.now, tick)

    def ticks_ms(self) -> int:
        return self.now

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b


@dataclass(frozen=True)
class PinEvent:
    tick: int
    pin: str
    value: int


class OutPin:
    def __init__(self, board: HostBoard, name: str) -> None:
        self._board = board
        self.name = name
        self._v = 0

    def value(self, v: int | None = None) -> int:
        if v is None:
            return self._v
        self._v = 1 if v else 0
        self._board.record(self.name, self._v)
        return self._v


class InPin:
    """An input with pull-up: reads 1 unless the host holds it low (`HostBoard.set_input`)."""

    def __init__(self, board: HostBoard, name: str) -> None:
        self._board = board
        self.name = name

    def value(self) -> int:
        return self._board.inputs.get(self.name, 1)


class HostLink:
    """Wi-Fi as the firmware sees it. `cut()` takes the access point away; `restore()` brings it back.

    Its NTP and DNS servers are real UDP stubs on 127.0.0.1 (sim/host/udp.py), started when the firmware first
    asks for them: `ntp` tells the node's simulated time (`unix_ms_at_zero` + ticks), `dns` answers 127.0.0.1.
    Faults reach them there (clock_jump, ntp_bad_reply, dns_slow). `close()` stops them.
    """

    def __init__(self, clock: Clock, rssi: int = -58, unix_ms_at_zero: int | None = DEFAULT_UNIX_MS) -> None:
        self._clock = clock
        self.available = True
        self.joined = False
        self.joins = 0
        self._rssi = rssi
        self._unix0 = unix_ms_at_zero
        self._ntp: NtpStub | None = None
        self._dns: DnsStub | None = None
        self._attached = False

    def isconnected(self) -> bool:
        return self.available and self.joined

    async def connect(self) -> bool:
        return self.join()

    def join(self) -> bool:
        self.joins += 1
        self.joined = self.available
        return self.joined

    def rssi(self) -> int | None:
        return self._rssi if self.isconnected() else None

    @property
    def ntp(self) -> NtpStub:
        if self._ntp is None:
            unix0 = self._unix0 if self._unix0 is not None else DEFAULT_UNIX_MS
            self._ntp = NtpStub(lambda: unix0 + self._clock.ticks_ms())
            self._ntp.reply = "ok" if self._unix0 is not None else "silent"
        return self._ntp

    @property
    def dns(self) -> DnsStub:
        if self._dns is None:
            self._dns = DnsStub()
        return self._dns

    def attach(self, ntp: NtpStub, dns: DnsStub) -> None:
        """Serve from stubs that outlive this link (a simulated node's, across its reboots)."""
        self.close()
        self._ntp, self._dns = ntp, dns
        self._attached = True

    def ntp_server(self) -> tuple[str, int] | None:
        return self.ntp.address if self.isconnected() else None

    def dns_server(self) -> tuple[str, int] | None:
        return self.dns.address if self.isconnected() else None

    def close(self) -> None:
        for stub in (self._ntp, self._dns):
            if stub is not None and not self._attached:
                stub.close()
        self._ntp = self._dns = None

    def cut(self) -> None:
        self.available = False
        self.joined = False

    def restore(self) -> None:
        self.available = True


class HostWDT:
    """The hardware watchdog: records feeds; `expired()` says whether it would have reset the board."""

    def __init__(self, clock: Clock, timeout_ms: int) -> None:
        self._clock = clock
        self.timeout_ms = timeout_ms
        self.feeds = 0
        self.last_feed = clock.ticks_ms()
        self.longest_gap_ms = 0

    def feed(self) -> None:
        now = self._clock.ticks_ms()
        self.longest_gap_ms = max(self.longest_gap_ms, self._clock.ticks_diff(now, self.last_feed))
        self.last_feed = now
        self.feeds += 1

    def expired(self) -> bool:
        return self._clock.ticks_diff(self._clock.ticks_ms(), self.last_feed) > self.timeout_ms


class HostI2C(MachineI2C):
    """machine.I2C over simulated devices that tells listeners the time before each transaction."""

    def __init__(self, devices: Mapping[int, SMBusDevice], board: HostBoard) -> None:
        super().__init__(devices, 100_000)
        self._board = board

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: WritableBuffer, *, addrsize: int = 8) -> None:
        self._board.tick()
        super().readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)

    def writeto_mem(self, addr: int, memaddr: int, buf: ReadableBuffer, *, addrsize: int = 8) -> None:
        self._board.tick()
        super().writeto_mem(addr, memaddr, buf, addrsize=addrsize)

    def writeto(self, addr: int, buf: ReadableBuffer, stop: bool = True) -> int:
        self._board.tick()
        return super().writeto(addr, buf, stop)


@dataclass
class HostBoard:
    """The board interface of firmware/board.py over simulated parts (CPython)."""

    clock: Any
    root: str
    devices: Mapping[int, SMBusDevice]
    supply: float | None = None
    link: HostLink = field(init=False)
    i2c: HostI2C = field(init=False)
    events: list[PinEvent] = field(default_factory=list)
    inputs: dict[str, int] = field(default_factory=dict)
    watchdog: HostWDT | None = None
    cold_boot: bool = True  # power_on_reset(): False for a board restarted by its watchdog or in software
    safe_mode_shown: bool = False
    on_tick: list[Callable[[int], None]] = field(default_factory=list)
    on_pin: list[Callable[[PinEvent], None]] = field(default_factory=list)
    urandom: Callable[[int], bytes] = os.urandom  # the simulator's is seeded: one seed, one run
    _names: dict[int, str] = field(default_factory=dict)
    _outs: dict[int, OutPin] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.root and not self.root.endswith("/"):
            self.root += "/"
        self.link = HostLink(self.clock)
        self.i2c = HostI2C(self.devices, self)

    def setup(self, cfg: dict[str, Any] | None) -> None:
        pins = (cfg or firmware_module("config").DEFAULTS)["pins"]
        self._names = {num: name.removeprefix("led_") for name, num in pins.items() if isinstance(num, int)}

    def name(self, pin: int) -> str:
        return self._names.get(pin, f"gpio{pin}")

    def out(self, pin: int) -> OutPin:
        if pin not in self._outs:
            self._outs[pin] = OutPin(self, self.name(pin))
        return self._outs[pin]

    out_pin = out

    def inp(self, pin: int) -> InPin:
        return InPin(self, self.name(pin))

    def supply_v(self) -> float | None:
        return self.supply

    def wdt(self, timeout_ms: int) -> HostWDT:
        self.watchdog = HostWDT(self.clock, timeout_ms)
        return self.watchdog

    def display(self) -> None:
        return None

    def block_ms(self, ms: int) -> None:
        advance = getattr(self.clock, "advance", None)
        if advance is not None:
            advance(ms)

    def power_on_reset(self) -> bool:
        return self.cold_boot

    def keep_blinking(self, ui: Any) -> None:
        self.safe_mode_shown = True

    # --- the host's side
    def tick(self) -> None:
        now = self.clock.ticks_ms()
        for f in self.on_tick:
            f(now)

    def record(self, name: str, value: int) -> None:
        if name == SENSOR_POWER:  # the switch in the sensors' supply (pins.sensor_power)
            for device in self.devices.values():
                power = getattr(device, "power", None)
                if power is not None:
                    power(bool(value))
        ev = PinEvent(self.clock.ticks_ms(), name, value)
        self.events.append(ev)
        for f in self.on_pin:
            f(ev)

    def set_input(self, name: str, value: int) -> None:
        self.inputs[name] = value

    def level(self, name: str) -> int:
        """The pin's current output level."""
        for ev in reversed(self.events):
            if ev.pin == name:
                return ev.value
        return 0

    def leds(self) -> tuple[str, ...]:
        return tuple(n for n in LED_NAMES if self.level(n))

    def verdicts_shown(self) -> list[tuple[int, str]]:
        """(tick, verdict) for every verdict pattern started on the LEDs and buzzer, in order."""
        decoder = VerdictDecoder()
        out: list[tuple[int, str]] = []
        for ev in self.events:
            verdict = decoder.feed(ev)
            if verdict is not None:
                out.append((ev.tick, verdict))
        return out


class VerdictDecoder:
    """Recognises a verdict pattern from pin events: its first beep, with the LEDs it lights (firmware/ui.py).

    The later beeps of the same pattern do not count (no LED changed since the previous beep). The "retest"
    pattern reads as indeterminate; "agrees" and "late" (a gateway's verdict) have no beep and are not read.
    """

    def __init__(self) -> None:
        self._state: dict[str, int] = {}
        self._leds_changed = True

    def feed(self, ev: PinEvent) -> str | None:
        if ev.pin in LED_NAMES and self._state.get(ev.pin, 0) != ev.value:
            self._leds_changed = True
        self._state[ev.pin] = ev.value
        if ev.pin != "buzzer" or not ev.value or not self._leds_changed:
            return None
        self._leds_changed = False
        return VERDICT_LEDS.get(tuple(n for n in LED_NAMES if self._state.get(n)))
