"""Melexis MLX90614 infrared thermometer over SMBus (datasheet rev 13, 2019). 100 kHz only.

Hand it a bus built at 100 kHz: `machine.I2C(0, scl=..., sda=..., freq=100000)`: the part works at 10-100 kHz
(datasheet, SMBus timing) and MicroPython's ESP32 I2C defaults to 400 kHz. Integrity before numbers: every
word is checked (bus, the all-ones pattern of a dead bus, PEC, error flag, power-on value); a failed attempt
is retried `retries` times, then `SensorError(reason)` is raised, never a number. The read path allocates
nothing (preallocated buffers, readfrom_mem_into; `ambient()`/`object()` box their one float result).
See docs/sensor.md.
"""

import errno

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# RAM (datasheet, RAM memory map): T[K] = raw * 0.02; bit 15 of Ta/Tobj is the error flag.
_RAM_TA = const(0x06)
_RAM_TOBJ1 = const(0x07)
_RAM_TOBJ2 = const(0x08)
_ERROR_FLAG = const(0x80)  # bit 15 = bit 7 of the MSB
# EEPROM (datasheet, EEPROM memory map): command = 0x20 | cell.
_EEPROM = const(0x20)
_CELL_EMISSIVITY = const(0x04)  # round(65535 * e), factory 0xFFFF
_CELL_CONFIG1 = const(0x05)  # bits 2..0 IIR, 10..8 FIR
_WRITABLE_CELLS = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0E, 0x0F, 0x19)
_EE_WAIT_MS = const(10)  # datasheet: wait >= 5 ms after an erase or a write; 10 ms is the safe figure
# Other commands (datasheet, SMBus commands).
_CMD_FLAGS = const(0xF0)  # bit 7 EEBUSY, bit 5 EE_DEAD, bit 4 INIT (active low)
_CMD_SLEEP = const(0xFF)

# SensorError reasons: bus (nack, bus_timeout, bus_error), integrity (pec, invalid_ffff), chip state.
REASONS = ("nack", "bus_timeout", "bus_error", "pec", "invalid_ffff", "error_flag", "not_ready")
REASONS += ("eeprom_verify",)
SUPPLY_C_PER_V = 0.6  # datasheet, supply voltage dependence: 0.6 C/V around 3.0 V
# Settling time by config register 1 (datasheet, IIR/FIR settings and settling time; docs/sensor.md): the
# variant's time at the factory setting (IIR 100 %, FIR 1024) times a factor per FIR and per IIR code, anchored
# on the table's span (FIR 128 on a BAA 0.04 s, IIR 13 % on a DCI 7.0 s) and interpolated in between.
FIR_PERCENT = (40, 40, 40, 40, 40, 55, 75, 100)  # FIR codes 0-7 (0-3 "not recommended"); ints: no heap boxes
IIR_PERCENT = (290, 620, 850, 1077, 100, 140, 190, 240)  # IIR codes 0-7: 50 25 17 13 100 80 67 57 %


class SensorError(Exception):
    """The sensor gave no trustworthy reading; `.reason` names why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _crc_table():
    table = bytearray(256)
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table[i] = c
    return bytes(table)


_CRC8 = _crc_table()  # CRC-8 of one byte from crc 0: the PEC of a frame is a chain of lookups


def crc8(data, crc=0):
    """SMBus PEC: CRC-8, polynomial 0x07, init 0 (datasheet, SMBus communication examples)."""
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def celsius(raw):
    """Degrees C from a RAM temperature word (0.02 K per count), exact to the count."""
    return (raw * 2 - 27315) / 100


def compensate_supply(t_c, vdd):
    """Object temperature corrected for the supply voltage: To - (VDD - 3.0) * 0.6."""
    return t_c - (vdd - 3.0) * SUPPLY_C_PER_V


def settle_ms(factory_ms, iir, fir):
    """Time to 90 % of a step (ms) at IIR/FIR codes, for a part settling in `factory_ms` at the factory filter."""
    return (factory_ms * FIR_PERCENT[fir] * IIR_PERCENT[iir] + 5000) // 10000


def _bus_reason(e):
    code = e.args[0] if e.args else None
    return "nack" if code == errno.ENODEV else "bus_timeout" if code == errno.ETIMEDOUT else "bus_error"


class MLX90614:
    """One sensor on an SMBus. The constructor does no I/O."""

    def __init__(self, i2c, address=0x5A, retries=3):
        if not 0 <= address <= 0x7F:
            raise ValueError("SMBus address out of range")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._i2c = i2c
        self._address = address
        self._retries = retries
        self._addr_w = address << 1
        self._rbuf = bytearray(3)  # LSB, MSB, PEC
        self._wbuf = bytearray(3)
        self.error_count = 0  # SensorErrors raised
        self.fault_counts = dict.fromkeys(REASONS, 0)  # failed attempts by reason

    # --- temperatures ---
    def ambient_raw(self):
        return self._read(_RAM_TA, True)

    def object_raw(self):
        return self._read(_RAM_TOBJ1, True)

    def object2_raw(self):  # dual-zone parts (config 1 bit 6); single-zone parts raise error_flag
        return self._read(_RAM_TOBJ2, True)

    def ambient(self):
        return celsius(self._read(_RAM_TA, True))

    def object(self):
        return celsius(self._read(_RAM_TOBJ1, True))

    def object2(self):
        return celsius(self._read(_RAM_TOBJ2, True))

    def flags(self):
        return self._read(_CMD_FLAGS, False) & 0xFF

    # --- Read Word: S addr+W cmd Sr addr+R LSB MSB PEC (datasheet, SMBus communication) ---
    def _read(self, cmd, temperature):
        left = self._retries
        while True:
            reason = self._attempt(cmd, temperature)
            if reason is None:
                return self._rbuf[0] | (self._rbuf[1] << 8)
            self._failed(reason, left)
            left -= 1

    def _failed(self, reason, retries_left):
        self.fault_counts[reason] += 1
        if retries_left <= 0:
            self.error_count += 1
            raise SensorError(reason)

    def _attempt(self, cmd, temperature):
        buf = self._rbuf
        try:
            self._i2c.readfrom_mem_into(self._address, cmd, buf)
        except OSError as e:
            return _bus_reason(e)
        if buf[0] == 0xFF and buf[1] == 0xFF and buf[2] == 0xFF:
            return "invalid_ffff"  # SDA released: a broken bus reads 1037.55 C
        # PEC over addr+W, cmd, addr+R, LSB, MSB (datasheet, PEC calculation).
        crc = _CRC8[_CRC8[_CRC8[_CRC8[self._addr_w] ^ cmd] ^ (self._addr_w | 1)] ^ buf[0]]
        if _CRC8[crc ^ buf[1]] != buf[2]:
            return "pec"
        if temperature:
            if buf[1] & _ERROR_FLAG:
                return "error_flag"
            if buf[0] == 0 and buf[1] == 0:
                return "not_ready"  # RAM power-on value: no conversion yet (first data 0.25 s after POR)
        return None

    # --- EEPROM (datasheet 8.3.3.1, as ESPHome cites it: erase, wait, write, wait, read back) ---
    def read_eeprom(self, cell):
        return self._read(_EEPROM | cell, False)

    def write_eeprom(self, cell, value, sleep_ms):
        """Write a writable cell unless it holds `value` already (then False: 100,000 cycles per cell).

        `sleep_ms(ms)` waits (time.sleep_ms on the board, the simulated clock in tests). A new emissivity or
        configuration takes effect after a power cycle."""
        if cell not in _WRITABLE_CELLS:
            raise ValueError("EEPROM cell not writable")
        if not 0 <= value <= 0xFFFF:
            raise ValueError("EEPROM word out of range")
        if self.read_eeprom(cell) == value:
            return False
        self._write_word(_EEPROM | cell, 0x0000, sleep_ms)  # erase
        self._write_word(_EEPROM | cell, value, sleep_ms)
        if self.read_eeprom(cell) != value:
            self._failed("eeprom_verify", 0)
        return True

    def _write_word(self, cmd, value, sleep_ms):
        buf = self._wbuf
        buf[0] = value & 0xFF
        buf[1] = value >> 8
        crc = _CRC8[_CRC8[_CRC8[self._addr_w] ^ cmd] ^ buf[0]]
        buf[2] = _CRC8[crc ^ buf[1]]  # PEC over addr+W, cmd, LSB, MSB
        left = self._retries
        while True:
            try:
                self._i2c.writeto_mem(self._address, cmd, buf)
                return sleep_ms(_EE_WAIT_MS)
            except OSError as e:
                reason = _bus_reason(e)
            sleep_ms(_EE_WAIT_MS)  # a NACK may mean EEBUSY: let the cell finish
            self._failed(reason, left)
            left -= 1

    def emissivity(self):
        return self.read_eeprom(_CELL_EMISSIVITY) / 65535

    def set_emissivity(self, e, sleep_ms):
        """Store emissivity (0.1-1.0) unless already set; True if written. Effective after a power cycle."""
        if not 0.1 <= e <= 1.0:
            raise ValueError("emissivity must be within 0.1..1.0")
        return self.write_eeprom(_CELL_EMISSIVITY, int(e * 65535 + 0.5), sleep_ms)

    def filter(self):
        """(IIR code, FIR code) from config register 1 (datasheet, config register 1)."""
        cfg = self.read_eeprom(_CELL_CONFIG1)
        return cfg & 0x07, (cfg >> 8) & 0x07

    def set_filter(self, iir, fir, sleep_ms):
        """Store IIR code 0-7 and FIR code 4-7 (0-3 not recommended) unless already set; True if written.
        The part runs it only after a power cycle (firmware/sensorboot.py)."""
        if not 0 <= iir <= 7 or not 4 <= fir <= 7:
            raise ValueError("IIR code must be 0-7 and FIR code 4-7")
        cfg = self.read_eeprom(_CELL_CONFIG1)
        return self.write_eeprom(_CELL_CONFIG1, (cfg & 0xF8F8) | iir | (fir << 8), sleep_ms)

    def sleep(self):
        """Enter sleep mode (3 V parts). Waking needs the pins (SCL high, SDA low >= 33 ms): board.py."""
        pec = _CRC8[_CRC8[self._addr_w] ^ _CMD_SLEEP]
        try:
            self._i2c.writeto(self._address, bytes((_CMD_SLEEP, pec)))
        except OSError as e:
            self._failed(_bus_reason(e), 0)
