"""ESP32 wiring: the only firmware module that imports machine and network.

Every other module is handed what it needs (a bus, pins, a clock, a link), so the same source runs on the host
with sim/host/ supplying a board with this interface:

    clock                    firmware clock (clock.py)
    root                     filesystem prefix for config.json, boot.txt and outbox/ ("" on the device)
    setup(cfg)               create the bus and pins from a validated config (None: safe-mode LEDs only)
    i2c                      machine.I2C at 100 kHz: the MLX90614 is an SMBus part (10-100 kHz, datasheet 8.4);
                             MicroPython's ESP32 default of 400 kHz corrupts reads
    out(pin) / inp(pin)      output pin with value(v); input with pull-up (pressed reads 0)
    supply_v()               supply voltage (V) via a 2:1 divider on pins.supply_adc, or None
    wdt(timeout_ms)          the hardware watchdog (cannot be stopped once started)
    link                     Wi-Fi: isconnected(), async connect() -> bool, rssi(), ntp_server() and
                             dns_server() -> (host, port) or None (udp.py does the exchanges,
                             bounded, on the event loop: never ntptime or getaddrinfo, which block it)
    display()                SSD1306 on the same bus if pins.display_addr is set and the driver is installed
    block_ms(ms)             a blocking wait (EEPROM writes and the sensor's re-power at boot only)
    power_on_reset()         True if this boot began with power applied (the sensor on the same supply was
                             re-powered too), not a watchdog, soft or deep-sleep reset
    keep_blinking(ui)        safe mode: keep the blink code going from a timer and return to the REPL
    urandom(n)               n random bytes (the unit's identity at its first boot: health.unit_id)
"""

import time

import clock as clockmod
import machine
import network


class Link:
    """Station-mode Wi-Fi. connect() waits for the join without blocking the loop; backoff is the uplink's."""

    def __init__(self, ssid, password, clock, ntp_host, join_ms=15000):
        self._ssid = ssid
        self._password = password
        self._clock = clock
        self._ntp = (ntp_host, 123) if ntp_host else None
        self._join_ms = join_ms
        self._wlan = network.WLAN(network.STA_IF)

    def isconnected(self):
        return self._wlan.isconnected()

    async def connect(self):
        w = self._wlan
        w.active(True)
        if w.isconnected():
            return True
        try:
            w.connect(self._ssid, self._password)
        except OSError as e:
            print("wifi: connect failed:", e)
            return False
        t0 = self._clock.ticks_ms()
        while self._clock.ticks_diff(self._clock.ticks_ms(), t0) < self._join_ms:
            if w.isconnected():
                return True
            await self._clock.sleep_ms(250)
        w.disconnect()
        return False

    def rssi(self):
        try:
            return self._wlan.status("rssi") if self._wlan.isconnected() else None
        except OSError:
            return None

    def ntp_server(self):
        """config ntp_host, port 123 (None: no time server, scans carry ts null)."""
        return self._ntp

    def dns_server(self):
        """The DNS server DHCP gave, or None."""
        try:
            dns = self._wlan.ifconfig()[3]
        except (OSError, IndexError):
            return None
        return (dns, 53) if dns and dns != "0.0.0.0" else None


class Board:
    def __init__(self):
        self.clock = clockmod.Clock()
        self.root = ""
        self.i2c = None
        self.link = None
        self._cfg = None
        self._adc = None
        self._timer = None

    def setup(self, cfg):
        self._cfg = cfg
        if cfg is None:
            return
        p = cfg["pins"]
        self.i2c = machine.I2C(0, scl=machine.Pin(p["scl"]), sda=machine.Pin(p["sda"]), freq=100000)
        self.link = Link(cfg["wifi"]["ssid"], cfg["wifi"]["password"], self.clock, cfg["ntp_host"])
        if p["supply_adc"] is not None:
            self._adc = machine.ADC(machine.Pin(p["supply_adc"]))
            self._adc.atten(machine.ADC.ATTN_11DB)

    def out(self, pin):
        return machine.Pin(pin, machine.Pin.OUT, value=0)

    def inp(self, pin):
        return machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)

    def supply_v(self):
        if self._adc is None:
            return None
        return self._adc.read_uv() * 2 / 1000000

    def wdt(self, timeout_ms):
        return machine.WDT(timeout=timeout_ms)

    def display(self):
        addr = self._cfg["pins"]["display_addr"] if self._cfg else None
        if addr is None:
            return None
        try:
            import ssd1306  # pyright: ignore[reportMissingImports] (optional: mpremote mip install ssd1306)
        except ImportError:
            print("ui: display configured but the ssd1306 driver is not installed")
            return None
        try:
            return ssd1306.SSD1306_I2C(128, 32, self.i2c, addr=addr)
        except OSError as e:
            print("ui: display not answering:", e)
            return None

    def block_ms(self, ms):
        time.sleep_ms(ms)

    def power_on_reset(self):
        """ESP-IDF reports the EN (reset) button as a power-on too: re-power a kiosk by its supply, not EN."""
        return machine.reset_cause() == machine.PWRON_RESET

    def keep_blinking(self, ui):
        self._timer = machine.Timer(0)
        self._timer.init(period=50, mode=machine.Timer.PERIODIC, callback=lambda t: ui.tick())

    def urandom(self, n):
        """The ESP32's hardware RNG (ESP-IDF esp_random, "Random Number Generation": random with the radio on,
        and from the entropy source the bootloader enables before it)."""
        import os

        return os.urandom(n)


def make():
    return Board()
