"""The running node: board, sensor driver, scan, outbox, ui and uplink wired under one asyncio loop.

Tasks: `scan` (reads the sensor at its output rate, feeds scan.py, plays the ui; never awaits the network),
`uplink` (uplink.py), `watchdog` (feeds the hardware WDT only while both show progress). Each runs under a
supervisor that logs a crash and restarts the task; a global asyncio exception handler logs whatever else
escapes. Nothing here resets the board: the hardware watchdog is the last resort.

A result is appended to the outbox (durable; it gets its seq) before anything else, then shown, then the
uplink is kicked.
"""

import gc

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio  # type: ignore

import app
import mlx90614
import outbox
import record
import scan
import ui
import uplink

FW = "0.1.0"
HEAP_LOG_EVERY = 100  # scans
FAULT_SHOW_MS = 1000  # an idle sensor failing this long shows the fault pattern
IDLE_SLOWDOWN = 3  # waiting for a traveller: sample every 3rd period (60 ms: well inside the 1.0 s target)


class Node:
    def __init__(self, board, cfg, settings):
        """cfg: a validated config (config.py); settings: config.scan_settings(cfg). No I/O here."""
        self.board = board
        self.clock = board.clock
        self._cfg = cfg  # until setup(); afterwards only the figures below are kept
        self.settings = settings
        self.config_id = cfg["config_id"]
        self.wdt_ms = cfg["intervals"]["wdt_ms"]
        self.keepalive_s = cfg["broker"]["keepalive_s"]
        self.scans = 0
        self.restarts = 0
        self.outbox_errors = 0
        self.wdt_feeds = 0
        self._up = 0
        self._up_t = board.clock.ticks_ms()
        self.scan_tick = self._up_t
        self._fault_since = None
        self._factories = {}

    def uptime_ms(self):
        now = self.clock.ticks_ms()
        self._up += self.clock.ticks_diff(now, self._up_t)
        self._up_t = now
        return self._up

    def _boot_count(self):
        import os

        path = self.board.root + "boot.txt"
        try:
            with open(path) as f:
                n = int(f.read()) + 1
        except (OSError, ValueError):
            n = 1
        with open(path + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(path + ".tmp", path)
        return n

    def setup(self):
        b, cfg = self.board, self._cfg
        b.setup(cfg)
        p = cfg["pins"]
        pins = {}
        for name in ("green", "amber", "red", "link", "buzzer"):
            num = p[name if name == "buzzer" else "led_" + name]
            if num is not None:
                pins[name] = b.out(num)
        self.ui = ui.UI(self.clock, pins, b.display())
        self.button = b.inp(p["button"]) if p["button"] is not None else None
        s = cfg["sensor"]
        self.sensor = mlx90614.MLX90614(b.i2c, s["address"], 3)
        if s["iir"] is not None:
            wrote = self.sensor.set_filter(s["iir"], s["fir"], b.block_ms)
            app.log("sensor: filter", s["iir"], s["fir"], "written" if wrote else "already set")
        self.boot = self._boot_count()
        self.outbox = outbox.Outbox(b.root + "outbox")
        app.log("boot", self.boot, "outbox", self.outbox.open())
        self.identity = {
            "site": cfg["site"],
            "node": cfg["node"],
            "fw": FW,
            "boot": self.boot,
            "config_id": self.config_id,
        }
        self.scan = scan.Scan(self.clock, self.settings, self.boot, FW, self.uptime_ms)
        self.scan.last_seq = self.outbox.next_seq - 1 if self.outbox.next_seq else None
        self.press = scan.Button(cfg["scan"]["long_press_ms"])
        up = {"broker": cfg["broker"], "prefix": cfg["prefix"], "health_interval_s": cfg["intervals"]["health_s"]}
        self.uplink = uplink.Uplink(
            up, self.identity, self.outbox, self.clock, b.link, self.on_config, self.on_verdict, self.health
        )
        self._cfg = {}  # the config's bulk is not kept: a push re-reads config.json
        gc.collect()

    # --- the scan task: sensor -> scan -> outbox -> ui -> kick; never awaits the network
    async def scan_task(self):
        n = 0
        while True:
            self.step()
            n += 1
            if n % 25 == 0:
                self._show_link()
            period = self.settings["sample_ms"]
            await self.clock.sleep_ms(period if self.scan.state == scan.SCANNING else period * IDLE_SLOWDOWN)

    def step(self):
        now = self.clock.ticks_ms()
        self.scan_tick = now
        ev = None
        if self.button is not None:
            ev = self.press.update(self.button.value() == 0, now, self.clock.ticks_diff)
            if ev == "long" and self.scan.last_seq is not None:
                self.ui.show("retest")
        fault = t_obj = t_amb = None
        try:
            t_amb = self.sensor.ambient()
            t_obj = self.sensor.object()
        except mlx90614.SensorError as e:
            fault = e.reason
        before = self.scan.state
        result = self.scan.feed(t_obj, t_amb, self.board.supply_v(), fault, ev)
        if result is not None:
            self.record(result)
        elif self.scan.state == scan.SCANNING and before != scan.SCANNING:
            self.ui.show("scanning")
        self._fault_ui(fault, now)
        self.ui.tick()

    def _fault_ui(self, fault, now):
        if fault is None:
            self._fault_since = None
            if self.ui.state == "fault":
                self.ui.idle()
        elif self._fault_since is None:
            self._fault_since = now
        elif (
            self.scan.state != scan.SCANNING
            and self.ui.state in ("idle", "scanning")
            and self.clock.ticks_diff(now, self._fault_since) >= FAULT_SHOW_MS
        ):
            self.ui.show("fault")

    def record(self, result):
        seq = None
        try:
            seq = self.outbox.append(record.pack(result))  # the durable point: before anything else
            self.scan.last_seq = seq
        except (OSError, ValueError) as e:  # flash full or failing; a flag the record layout lacks
            self.outbox_errors += 1
            app.log("outbox: append failed, scan not recorded:", repr(e))
        self.ui.show_result(result)
        self.uplink.kick()
        self.scans += 1
        app.log("scan", seq, result["verdict"], result["t_site_c"], result["t_core_c"], result["flags"])
        if self.scans % HEAP_LOG_EVERY == 0:
            app.log("heap scans=%d free=%s" % (self.scans, app.heap_free()))

    def _show_link(self):
        if self.uplink.connected:
            state = ui.LINK_UP
        elif self.board.link is not None and self.board.link.isconnected():
            state = ui.LINK_WIFI
        else:
            state = ui.LINK_DOWN
        if state != self.ui.link:
            self.ui.set_link(state)

    # --- the watchdog task
    async def watchdog_task(self):
        wdt = self.board.wdt(self.wdt_ms)
        stalled = False
        while True:
            now = self.clock.ticks_ms()
            scan_ok = self.clock.ticks_diff(now, self.scan_tick) < self.wdt_ms // 2
            up_stall = max(60000, 2000 * self.keepalive_s)
            up_ok = self.clock.ticks_diff(now, self.uplink.last_progress_ms) < up_stall
            if scan_ok and up_ok:
                wdt.feed()
                self.wdt_feeds += 1
                stalled = False
            elif not stalled:
                stalled = True
                app.log("watchdog: not feeding (scan ok %s, uplink ok %s)" % (scan_ok, up_ok))
            await self.clock.sleep_ms(self.wdt_ms // 4)

    # --- messages from the gateway
    def on_config(self, push):
        """A config pushed on the retained config topic: (True, None) once applied and persisted, else
        (False, reason). The one already running (same id) is acknowledged without touching flash."""
        if isinstance(push, dict) and push.get("id") == self.config_id:
            return True, None
        try:
            return self._apply_push(push)
        finally:
            app.unload("config", "calibration")

    def _apply_push(self, push):
        import config

        path = self.board.root + app.CONFIG_FILE
        cfg, reason = config.load(path)
        if cfg is not None:
            cfg, reason = config.merge_push(cfg, push)
        if cfg is None:
            app.log("config: refused:", reason)
            return False, reason
        try:
            config.save(cfg, path)
        except OSError as e:
            return False, "cannot persist: " + str(e)
        self.settings = config.scan_settings(cfg)
        self.scan.configure(self.settings)
        self.uplink.cfg["health_interval_s"] = cfg["intervals"]["health_s"]
        self.config_id = self.identity["config_id"] = cfg["config_id"]
        app.log("config: applied", self.config_id)
        return True, None

    def on_verdict(self, msg):
        app.log("verdict from gateway:", msg.get("seq"), msg.get("verdict"))
        if msg.get("verdict") == "elevated":
            t = msg.get("t_core_c")
            self.ui.show("confirmed", ("%.1fC " % t if isinstance(t, (int, float)) else "") + "FEVER")

    def health(self):
        return {
            "uptime_ms": self.uptime_ms(),
            "heap_free": app.heap_free(),
            "sensor_errors": self.scan.faults,
            "supply_v": self.board.supply_v(),
            "fw": FW,
            "scans": self.scans,
            "task_restarts": self.restarts,
            "outbox_errors": self.outbox_errors,
        }

    # --- supervision
    def spawn(self, name, factory):
        self._factories[name] = factory
        asyncio.create_task(self._supervise(name))

    async def _supervise(self, name):
        while True:
            try:
                await self._factories[name]()
                app.log("task", name, "returned")
                return
            except Exception as e:  # restart the task, never the board; the WDT covers real hangs
                self.restarts += 1
                app.log("task", name, "crashed:", repr(e), "- restarting")
            await self.clock.sleep_ms(1000)

    def on_loop_error(self, loop, context):
        self.restarts += 1
        app.log("asyncio:", context.get("message"), repr(context.get("exception")))

    async def run(self):
        asyncio.get_event_loop().set_exception_handler(self.on_loop_error)
        self.setup()
        self.ui.idle()
        self.spawn("scan", self.scan_task)
        self.spawn("uplink", self.uplink.run)
        self.spawn("watchdog", self.watchdog_task)
        while True:
            await self.clock.sleep_ms(60000)
