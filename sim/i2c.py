"""Simulated I2C buses over SMBus devices: MicroPython's `machine.I2C` and CircuitPython's `busio.I2C`.

Both buses take a mapping of address -> device (the keys say where a part was wired; the bus asks every
device whether it acknowledges an address, so a part whose address was reprogrammed moves with it) and
speak to the devices through one tiny interface, `SMBusDevice`:

    device.max_freq_hz                   fastest SCL the part tolerates (the MLX90614: 100 kHz)
    device.holds_bus() -> bool           SDA held low: every transaction on the bus times out
    device.acks(addr) -> bool            does the part acknowledge this address right now?
    device.read_word(addr, cmd) -> bytes SMBus Read Word: S addr+W cmd Sr addr+R, then LSB, MSB, PEC
    device.write(addr, data)             S addr+W data... P (Write Word: cmd, LSB, MSB, PEC)

A device raises `Nack` when it does not acknowledge a byte. The buses turn that into the OSError the real
ports raise: ENODEV when no device acknowledges the address, EIO when a data byte is not acknowledged (or two
devices answer one address), ETIMEDOUT when SDA is held low. Caveat: the ESP32 hardware I2C port reports every
NACK as ENODEV (ESP_FAIL); the MicroPython software I2C tells the phases apart as we do. A driver must treat
all three as a failed attempt.

SMBus Read Word needs a repeated start: `writeto(addr, bytes([cmd]), False)` then `readfrom_into(addr, buf)`
(or `readfrom_mem_into`, or busio's `writeto_then_readfrom`). A read that does not follow a command written
without a stop gets EIO: the MLX90614 has nothing to answer.

Bus speed: the MLX90614 only works at 10-100 kHz (datasheet, SMBus timing; MicroPython's ESP32 I2C defaults
to 400 kHz). Real parts at 400 kHz give intermittent garbage; the simulated bus refuses to be built faster
than its slowest device allows (ValueError), so a wrong board configuration fails loudly in every test.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from typing import Protocol

ReadableBuffer = bytes | bytearray | memoryview
WritableBuffer = bytearray | memoryview

SMBUS_MIN_FREQ = 10_000
SCAN_RANGE = range(0x08, 0x78)


class Nack(Exception):
    """The device did not acknowledge a byte (`phase` is "address" or "data")."""

    def __init__(self, phase: str, why: str = "") -> None:
        super().__init__(f"NACK in {phase} phase" + (f": {why}" if why else ""))
        self.phase = phase


class SMBusDevice(Protocol):
    max_freq_hz: int

    def holds_bus(self) -> bool: ...

    def acks(self, addr: int) -> bool: ...

    def read_word(self, addr: int, cmd: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...


class _Wire:
    """The shared bus: routing by address, errno mapping, the pending command of a repeated start."""

    def __init__(self, devices: Mapping[int, SMBusDevice], freq: int) -> None:
        self.devices: list[SMBusDevice] = []
        for dev in devices.values():
            if all(dev is not d for d in self.devices):
                self.devices.append(dev)
        slowest = min((d.max_freq_hz for d in self.devices), default=400_000)
        if not SMBUS_MIN_FREQ <= freq <= slowest:
            raise ValueError(f"I2C freq {freq} Hz: the devices on this bus need {SMBUS_MIN_FREQ}-{slowest} Hz")
        self.freq = freq
        self.reads = 0
        self.writes = 0
        self._pending: tuple[int, int] | None = None

    def target(self, addr: int) -> SMBusDevice:
        if any(d.holds_bus() for d in self.devices):
            self._pending = None
            raise OSError(errno.ETIMEDOUT, "I2C bus timeout: SDA held low")
        hits = [d for d in self.devices if d.acks(addr)]
        if not hits:
            self._pending = None
            raise OSError(errno.ENODEV, f"no device acknowledged address 0x{addr:02x}")
        if len(hits) > 1:
            raise OSError(errno.EIO, f"{len(hits)} devices answered address 0x{addr:02x}")
        return hits[0]

    def read_word_into(self, addr: int, cmd: int, buf: WritableBuffer) -> None:
        self.reads += 1
        self._pending = None
        dev = self.target(addr)
        try:
            word = dev.read_word(addr, cmd)
        except Nack as e:
            raise OSError(errno.EIO, str(e)) from e
        # The MLX sends 3 bytes; a master reading more sees the released bus (0xFF).
        for i in range(len(buf)):
            buf[i] = word[i] if i < len(word) else 0xFF

    def write(self, addr: int, data: bytes, stop: bool) -> int:
        self.writes += 1
        self._pending = None
        dev = self.target(addr)
        if not stop and len(data) == 1:
            self._pending = (addr, data[0])  # the command of a Read Word; Sr follows
            return 1
        if data:
            try:
                dev.write(addr, data)
            except Nack as e:
                raise OSError(errno.EIO, str(e)) from e
        return len(data)

    def read_after_command(self, addr: int, buf: WritableBuffer) -> None:
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != addr:
            self.reads += 1
            raise OSError(errno.EIO, "read without a command: SMBus Read Word needs a repeated start")
        self.read_word_into(addr, pending[1], buf)

    def scan(self) -> list[int]:
        found = []
        for addr in SCAN_RANGE:
            try:
                self.target(addr)
            except OSError:
                continue
            found.append(addr)
        return found


class MachineI2C:
    """MicroPython's machine.I2C (ESP32 port) over simulated devices; 100 kHz for the MLX90614."""

    def __init__(self, devices: Mapping[int, SMBusDevice], freq: int = 100_000) -> None:
        self._wire = _Wire(devices, freq)

    @property
    def reads(self) -> int:
        """Read transactions attempted on this bus (tests count driver retries with it)."""
        return self._wire.reads

    @property
    def writes(self) -> int:
        return self._wire.writes

    def scan(self) -> list[int]:
        return self._wire.scan()

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: WritableBuffer, *, addrsize: int = 8) -> None:
        _check_addrsize(addrsize)
        self._wire.read_word_into(addr, memaddr, buf)

    def readfrom_mem(self, addr: int, memaddr: int, nbytes: int, *, addrsize: int = 8) -> bytes:
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
        return bytes(buf)

    def writeto_mem(self, addr: int, memaddr: int, buf: ReadableBuffer, *, addrsize: int = 8) -> None:
        _check_addrsize(addrsize)
        self._wire.write(addr, bytes([memaddr]) + bytes(buf), stop=True)

    def writeto(self, addr: int, buf: ReadableBuffer, stop: bool = True) -> int:
        return self._wire.write(addr, bytes(buf), stop)

    def writevto(self, addr: int, vector: Sequence[ReadableBuffer], stop: bool = True) -> int:
        return self._wire.write(addr, b"".join(bytes(b) for b in vector), stop)

    def readfrom_into(self, addr: int, buf: WritableBuffer, stop: bool = True) -> None:
        self._wire.read_after_command(addr, buf)

    def readfrom(self, addr: int, nbytes: int, stop: bool = True) -> bytes:
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)


class BusioI2C:
    """CircuitPython's busio.I2C over simulated devices (what adafruit_bus_device and Adafruit drivers use).

    As on CircuitPython, every transfer needs the lock (`try_lock()`), else RuntimeError.
    """

    def __init__(self, devices: Mapping[int, SMBusDevice], frequency: int = 100_000) -> None:
        self._wire = _Wire(devices, frequency)
        self._locked = False

    @property
    def reads(self) -> int:
        return self._wire.reads

    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def deinit(self) -> None:
        self._locked = False

    def __enter__(self) -> BusioI2C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.deinit()

    def _need_lock(self) -> None:
        if not self._locked:
            raise RuntimeError("Function requires lock")

    def scan(self) -> list[int]:
        self._need_lock()
        return self._wire.scan()

    def writeto(self, address: int, buffer: ReadableBuffer, *, start: int = 0, end: int | None = None) -> None:
        self._need_lock()
        self._wire.write(address, bytes(buffer)[start:end], stop=True)

    def readfrom_into(self, address: int, buffer: WritableBuffer, *, start: int = 0, end: int | None = None) -> None:
        self._need_lock()
        self._wire.read_after_command(address, memoryview(buffer)[start:end])

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: ReadableBuffer,
        buffer_in: WritableBuffer,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        self._need_lock()
        self._wire.write(address, bytes(buffer_out)[out_start:out_end], stop=False)
        self._wire.read_after_command(address, memoryview(buffer_in)[in_start:in_end])


def _check_addrsize(addrsize: int) -> None:
    if addrsize != 8:
        raise ValueError(f"addrsize={addrsize}: SMBus commands are 8 bits")
