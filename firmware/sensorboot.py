"""The sensor at boot: its EEPROM settings written, the part re-powered so it runs them, its settling time read.

The MLX90614 loads emissivity and config register 1 (IIR/FIR filter) from EEPROM only at power-up (datasheet,
EEPROM; Melexis application note "SMBus communication with MLX90614": after a write, turn the supply off and
on). Until then it runs its old filter, and a scan fitted to the new settling time reads low (issue 10 kind 6:
a DCI canthus kiosk's 36.5 C canthus read 0.85 C low, "normal" instead of "elevated").

- With `pins.sensor_power` (an output switching the part's supply, high = on; the bus pull-ups on the same
  switched rail, or the part is fed through SDA/SCL) the node re-powers the part at every boot: off OFF_MS,
  on, POWER_UP_MS to the first data. Whatever its EEPROM holds, it runs.
- Without it, a write means the part runs its old settings until the whole node loses power: the node refuses
  to screen (REPOWER_NEEDED). A marker file is written before the EEPROM is, so a write cut short and a soft
  reset (watchdog, crash) keep the refusal; only a power-on reset of the board, which re-powers the sensor on
  the same supply, clears it (board.power_on_reset()).

The settling time the scanner fits is then derived from config register 1 as read back from the part (the
driver's IIR/FIR table), not taken from the config. Loaded at boot only, then unloaded (node.py).
"""

import distance
import mlx90614
from shape import SETTLE_MS

OFF_MS = 100  # supply off: the datasheet names no minimum; 100 ms drains the 100 nF decoupling (assumed)
POWER_UP_MS = 250  # datasheet: first valid data 0.25 s after power-up
MARKER = "sensor_repower"  # beside config.json while the part may run other settings than its EEPROM holds
REPOWER_NEEDED = "sensor_repower_needed: new sensor EEPROM settings run only after its power is cycled"


def start(board, cfg, log, ui):
    """(driver, settle_ms or None if the part could not be read, refusal or None) for a validated config. A node
    without a distance sensor says at boot, in its log and on its display, how near staff must hold it."""
    s, pins, hold = cfg["sensor"], cfg["pins"], distance.hold_mm(cfg)
    if hold is not None:  # it cannot know the distance (issue 10 kind 12): the staff must keep it
        log("distance: no distance sensor: hold the", cfg["mode"], "within", hold, "mm of the sensor")
        ui.text("HOLD WITHIN\n%d mm\nno distance\nsensor" % hold)
    pin = None if pins["sensor_power"] is None else board.out(pins["sensor_power"])
    marker = board.root + MARKER
    if _exists(marker) and (pin is not None or board.power_on_reset()):
        _remove(marker)  # the part is powered from off at this boot: it runs what its EEPROM holds
    if pin is not None:
        repower(board, pin)
    sensor = mlx90614.MLX90614(board.i2c, s["address"], 3)
    settle = None
    try:
        runs = sensor.filter()  # what it runs: no write since it was powered from off (else the marker)
        if _write(sensor, s, runs, board, marker if pin is None else None, log) and pin is not None:
            repower(board, pin)
            runs = sensor.filter()
        settle = mlx90614.settle_ms(SETTLE_MS[s["variant"]], runs[0], runs[1])
        log("sensor: runs IIR", runs[0], "FIR", runs[1], "settling", settle, "ms")
    except mlx90614.SensorError as e:
        log("sensor: not answering at boot (" + e.reason + "): settling from the config, not the part")
    if settle is not None and s["settle_ms"] is not None and s["settle_ms"] != settle:
        log("sensor: settle_ms", s["settle_ms"], "configured; the part's", settle, "used")
    if not _exists(marker):
        return sensor, settle, None
    log("sensor: NOT SCREENING:", REPOWER_NEEDED)
    return sensor, settle, REPOWER_NEEDED


def _write(sensor, s, runs, board, marker, log):
    """Write the configured EEPROM settings the part does not hold (IIR/FIR); True if anything was written.
    `marker`: the file to create first when the node cannot re-power the part (None: it can)."""
    if s["iir"] is None or runs == (s["iir"], s["fir"]):
        return False
    if marker is not None:
        with open(marker, "w") as f:
            f.write("1")
    sensor.set_filter(s["iir"], s["fir"], board.block_ms)
    log("sensor: filter", s["iir"], s["fir"], "written to EEPROM")
    return True


def repower(board, pin):
    """Power the part off and on, and wait for its first data (the scan loop has not started: a blocking
    wait, as the EEPROM writes)."""
    pin.value(0)
    board.block_ms(OFF_MS)
    pin.value(1)
    board.block_ms(POWER_UP_MS)


def _exists(path):
    try:
        open(path).close()
        return True
    except OSError:
        return False


def _remove(path):
    import os

    os.remove(path)
