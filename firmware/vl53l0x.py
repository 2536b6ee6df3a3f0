"""ST VL53L0X time-of-flight distance sensor, single-shot ranging in mm with its range status. I2C, 0x29.

Hand it the bus the MLX90614 is on (100 kHz suits both: the VL53L0X takes up to 400 kHz). Non-blocking:
`start()` begins one single-shot measurement (about 33 ms with the default timing budget), `ready()` says
whether it is done, `read()` returns the distance in mm or None, with the device's range status in `status`.
A status other than "range complete" is no distance, never a number (the part also reports 8190 or 8191 mm
when it sees nothing: that is not a distance either). A bus error is `RangeError(reason)`.

The registers are not in the VL53L0X datasheet (ST DocID029104); they are in ST's VL53L0X API (user manual
UM2039 and its source, vl53l0x_device.h / vl53l0x_api.c / vl53l0x_api_core.c), which every public driver
follows (Pololu's, Adafruit's). Left out here (docs/sensor.md, "Distance"): the API's static init (the tuning
table), SPAD management and the VHV/phase reference calibration, which a production driver performs once at
boot on real silicon; the simulated part (sim/vl53l0x.py) ranges without them.
"""

import errno

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# Registers (vl53l0x_device.h).
_SYSRANGE_START = const(0x00)  # write 0x01: single-shot ranging (VL53L0X_StartMeasurement)
_SYSTEM_INTERRUPT_CONFIG_GPIO = const(0x0A)  # 0x04: interrupt on a new sample ready
_SYSTEM_INTERRUPT_CLEAR = const(0x0B)
_RESULT_INTERRUPT_STATUS = const(0x13)  # bits 2..0 non-zero: a result is waiting
_RESULT_RANGE_STATUS = const(0x14)  # 12 bytes: status, ..., range mm at +10 (big-endian)
_GPIO_HV_MUX_ACTIVE_HIGH = const(0x84)
_I2C_STANDARD_MODE = const(0x88)
_VHV_CONFIG_PAD_SCL_SDA_EXTSUP_HV = const(0x89)  # bit 0: 2V8 I/O (VL53L0X_DataInit, USE_I2C_2V8)
_POWER_MANAGEMENT = const(0x80)
_PAGE_SELECT = const(0xFF)
_STOP_VARIABLE = const(0x91)  # on the private page; read at init, written back before each start
_MODEL_ID = const(0xC0)
_MODEL_ID_VALUE = const(0xEE)
RANGE_COMPLETE = 11  # the device range status of a good measurement (VL53L0X_DEVICEERROR_RANGECOMPLETE)
NO_TARGET_MM = 8190  # reported with a failed status when nothing is seen: never a distance
# The API's PAL range status from the device's (VL53L0X_get_pal_range_status): 0-15 -> name.
_PAL = ("none", "hardware_fail", "hardware_fail", "hardware_fail", "signal_fail", "none", "phase_fail", "none")
_PAL += ("min_range_fail", "phase_fail", "min_range_fail", "valid", "none", "none", "none", "none")
REASONS = ("nack", "bus_timeout", "bus_error", "wrong_id")


class RangeError(Exception):
    """The distance sensor did not answer as a VL53L0X; `.reason` names why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _bus_reason(e):
    code = e.args[0] if e.args else None
    return "nack" if code == errno.ENODEV else "bus_timeout" if code == errno.ETIMEDOUT else "bus_error"


def status_name(device_status):
    """The API's name for a device range status 0-15 ("valid" only for range complete)."""
    return _PAL[device_status & 0x0F]


class VL53L0X:
    """One sensor. The constructor does no I/O; `init()` does (once, at boot)."""

    Error = RangeError  # what its methods raise, for callers that do not import this module

    def __init__(self, i2c, address=0x29):
        if not 0 <= address <= 0x7F:
            raise ValueError("I2C address out of range")
        self._i2c = i2c
        self._address = address
        self._b1 = bytearray(1)
        self._res = bytearray(12)
        self._stop = 0
        self.status = None  # the last device range status (0-15), None before a read
        self.errors = 0  # RangeErrors raised

    def _rd(self, reg):
        try:
            self._i2c.readfrom_mem_into(self._address, reg, self._b1)
        except OSError as e:
            self.errors += 1
            raise RangeError(_bus_reason(e))
        return self._b1[0]

    def _wr(self, reg, value):
        self._b1[0] = value
        try:
            self._i2c.writeto_mem(self._address, reg, self._b1)
        except OSError as e:
            self.errors += 1
            raise RangeError(_bus_reason(e))

    def _private(self, first):
        """Enter (first) or leave the private page around the stop variable (VL53L0X_DataInit / StartMeasurement)."""
        if first:
            self._wr(_POWER_MANAGEMENT, 0x01)
            self._wr(_PAGE_SELECT, 0x01)
            self._wr(_SYSRANGE_START, 0x00)
        else:
            self._wr(_SYSRANGE_START, 0x01)
            self._wr(_PAGE_SELECT, 0x00)
            self._wr(_POWER_MANAGEMENT, 0x00)

    def init(self):
        """Check the model id, set 2V8 I/O and standard I2C mode, keep the stop variable, interrupt on a new
        sample (VL53L0X_DataInit, VL53L0X_SetGpioConfig). RangeError if the part is absent or not a VL53L0X."""
        if self._rd(_MODEL_ID) != _MODEL_ID_VALUE:
            self.errors += 1
            raise RangeError("wrong_id")
        self._wr(_VHV_CONFIG_PAD_SCL_SDA_EXTSUP_HV, self._rd(_VHV_CONFIG_PAD_SCL_SDA_EXTSUP_HV) | 0x01)
        self._wr(_I2C_STANDARD_MODE, 0x00)
        self._private(True)
        self._stop = self._rd(_STOP_VARIABLE)
        self._private(False)
        self._wr(_SYSTEM_INTERRUPT_CONFIG_GPIO, 0x04)
        self._wr(_GPIO_HV_MUX_ACTIVE_HIGH, self._rd(_GPIO_HV_MUX_ACTIVE_HIGH) & ~0x10)  # active low
        self._wr(_SYSTEM_INTERRUPT_CLEAR, 0x01)

    def start(self):
        """Begin one single-shot measurement (VL53L0X_StartMeasurement: the stop variable first)."""
        self._private(True)
        self._wr(_STOP_VARIABLE, self._stop)
        self._private(False)
        self._wr(_SYSRANGE_START, 0x01)

    def ready(self):
        """True once the measurement started by `start()` has a result (VL53L0X_GetMeasurementDataReady)."""
        return self._rd(_RESULT_INTERRUPT_STATUS) & 0x07 != 0

    def read(self):
        """The finished measurement: mm, or None when its status is not range complete (then `status` says
        why: status_name(status)). Clears the interrupt (VL53L0X_GetRangingMeasurementData, ClearInterruptMask)."""
        buf = self._res
        try:
            self._i2c.readfrom_mem_into(self._address, _RESULT_RANGE_STATUS, buf)
        except OSError as e:
            self.errors += 1
            raise RangeError(_bus_reason(e))
        self._wr(_SYSTEM_INTERRUPT_CLEAR, 0x01)
        self.status = (buf[0] & 0x78) >> 3
        mm = (buf[10] << 8) | buf[11]
        if self.status != RANGE_COMPLETE or mm >= NO_TARGET_MM:
            return None
        return mm
