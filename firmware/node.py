"""The running node: board, sensor driver, scanner, outbox, ui and uplink wired under one asyncio loop.

Tasks: `scan` (reads the sensor at its output rate, feeds scanner.py, plays the ui; never awaits the network),
`uplink` (uplink.py) and `watchdog`, each under the supervisor (supervisor.py: a crashed task is restarted, the
hardware watchdog is fed only while the scan and the uplink show progress). Nothing here resets the board.

A scan is appended to the outbox (durable; it gets its seq) before anything else, then shown, then the uplink
is kicked, then each of `observers` is called with (seq, result) (seq None if the outbox refused it; the
simulator's hook). The link LED follows the uplink's link state as events (linkstate.py).
"""

import gc

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio  # type: ignore

import app
import button
import health
import mlx90614
import outbox
import record
import scanner
import supervisor
import ui
import uplink
from contract import VERDICTS
from version import FW

HEAP_LOG_EVERY = 100  # scans
FAULT_SHOW_MS = 1000  # an idle sensor failing this long shows the fault pattern
IDLE_SLOWDOWN = 3  # waiting for a traveller: sample every 3rd period (60 ms: well inside the 1.0 s target)
_LEDS = ("green", "amber", "red", "link")
NORMAL, ELEVATED = VERDICTS[:2]
VERDICT_WINDOW_MS = 10000  # a gateway verdict concerns the traveller in front until the next scan or this long


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
        self.observers = []  # fn(seq, result) after each scan is recorded; seq None if the outbox refused it
        self.stats = health.Health(board.clock)
        self.supervisor = supervisor.Supervisor(board.clock)
        self.scan_tick = board.clock.ticks_ms()
        self._fault_since = None

    def setup(self):
        b, cfg = self.board, self._cfg
        b.setup(cfg)
        self._setup_ui(cfg["pins"])
        import sensorboot  # boot only: re-powers the part after an EEPROM write, reads what it runs

        self.sensor, self.settle_ms, self.refusal = sensorboot.start(b, cfg, app.log, self.ui)
        app.unload("sensorboot")
        self.settings["settle_ms"] = self.settle_ms or self.settings["settle_ms"]
        self.boot, unit = health.boot_count(b.root), health.unit_id(b.root, b.urandom)
        self.outbox = outbox.Outbox(b.root + "outbox")
        app.log("boot", self.boot, "outbox", self.outbox.open())
        self.identity = {"site": cfg["site"], "node": cfg["node"], "fw": FW, "boot": self.boot}
        self.identity["config_id"], self.identity["sensor_error"] = self.config_id, self.refusal  # in status
        self.scanner = scanner.Scanner(self.clock, self.settings, self.boot, FW, self.stats.uptime_ms, b.i2c, unit)
        self.scanner.last_seq = self.outbox.next_seq - 1 if self.outbox.next_seq else None
        self.press = button.Button(cfg["scan"]["long_press_ms"])
        up = {"broker": cfg["broker"], "prefix": cfg["prefix"], "health_interval_s": cfg["intervals"]["health_s"]}
        self.uplink = uplink.Uplink(
            up, self.identity, self.outbox, self.clock, b.link, self.on_config, self.on_verdict, self.health
        )
        self.uplink.link_state.listen(self.ui.set_link)  # the link LED changes when the link does
        self._cfg = {}  # the config's bulk is not kept: a push re-reads config.json
        gc.collect()

    def _setup_ui(self, p):
        pins = {}
        for name in _LEDS + ("buzzer",):
            num = p[name if name == "buzzer" else "led_" + name]
            if num is not None:
                pins[name] = self.board.out(num)
        self.ui = ui.UI(self.clock, pins, self.board.display())
        self.button = self.board.inp(p["button"]) if p["button"] is not None else None

    # --- the scan task: sensor -> scanner -> outbox -> ui -> kick; never awaits the network
    async def scan_task(self):
        while True:
            self.step()
            period = self.settings["sample_ms"]
            await self.clock.sleep_ms(period if self.scanner.state == scanner.SCANNING else period * IDLE_SLOWDOWN)

    def step(self):
        now = self.clock.ticks_ms()
        self.scan_tick = now
        if self.refusal is not None:  # the part may run other settings than the scan assumes: no verdict
            return self.ui.keep("repower", "SENSOR: CYCLE POWER")
        ev = None
        if self.button is not None:
            ev = self.press.update(self.button.value() == 0, now, self.clock.ticks_diff)
            if ev == "long" and self.scanner.last_seq is not None:
                self.ui.show("retest")
        fault = t_obj = t_amb = None
        try:
            t_amb, t_obj = self.sensor.ambient(), self.sensor.object()
        except mlx90614.SensorError as e:
            fault = e.reason
        before = self.scanner.state
        result = self.scanner.feed(t_obj, t_amb, self.board.supply_v(), fault, ev)
        if result is not None:
            self.record(result)
        elif self.scanner.state == scanner.SCANNING and before != scanner.SCANNING:
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
            self.scanner.state != scanner.SCANNING
            and self.ui.state in ("idle", "scanning")
            and self.clock.ticks_diff(now, self._fault_since) >= FAULT_SHOW_MS
        ):
            self.ui.show("fault")

    def record(self, result):
        seq = None
        try:
            seq = self.outbox.append(record.pack(result))  # the durable point: before anything else
            self.scanner.last_seq = seq
        except (OSError, ValueError) as e:  # flash full or failing; a flag the record layout lacks
            self.stats.outbox_errors += 1
            app.log("outbox: append failed, scan not recorded:", repr(e))
        self.ui.show_result(result)
        self.uplink.kick(seq, result)
        self.stats.scans += 1
        for fn in self.observers:
            fn(seq, result)
        app.log("scan", seq, result["verdict"], result["t_site_c"], result["t_core_c"], result["flags"])
        if self.stats.scans % HEAP_LOG_EVERY == 0:
            app.log("heap scans=%d free=%s" % (self.stats.scans, app.heap_free()))

    # --- the watchdog task
    async def watchdog_task(self):
        await self.supervisor.watchdog(self.board.wdt(self.wdt_ms), self.wdt_ms // 4, self._progress)

    def _progress(self):
        """(the scan loop sampled within half the WDT timeout, the uplink progressed within its stall limit)."""
        now = self.clock.ticks_ms()
        scan_ok = self.clock.ticks_diff(now, self.scan_tick) < self.wdt_ms // 2
        stall = max(60000, 2000 * self.keepalive_s)
        return scan_ok, self.clock.ticks_diff(now, self.uplink.last_progress_ms) < stall

    # --- messages from the gateway (checked against the contract by the uplink)
    def on_config(self, push):
        """A config pushed on the retained config topic: (True, None) once applied and persisted, else
        (False, reason). The one already running (same id) is acknowledged without touching flash."""
        if push.get("id") == self.config_id:
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
        self.settings["settle_ms"] = self.settle_ms or self.settings["settle_ms"]  # the part's, read at boot
        self.scanner.configure(self.settings)
        self.uplink.cfg["health_interval_s"] = cfg["intervals"]["health_s"]
        self.config_id = self.identity["config_id"] = cfg["config_id"]
        app.log("config: applied", self.config_id)
        return True, None

    def on_verdict(self, msg):
        """The gateway's verdict on a scan, shown only for the traveller in front: docs/firmware.md, "What staff
        see and hear" (agrees; its own pattern; the node's own never silenced; late: quiet notice if idle)."""
        seq, v, t, sc = msg["seq"], msg["verdict"], msg["t_core_c"], self.scanner
        current = sc.current(seq, VERDICT_WINDOW_MS)
        app.log("verdict from gateway:", seq, v, "" if current else "(late: not the traveller in front)")
        line = "GW " + v + (" %.1fC" % t if t is not None else "")
        if not current:
            if self.ui.state == "idle":
                self.ui.show("late", "#%d %s" % (seq, line))
        elif v == sc.last_verdict:
            if v == ELEVATED:
                self.ui.show("agrees", line)
        elif v != NORMAL:
            self.ui.show(v, line)

    def health(self):
        return self.stats.figures(self.scanner.faults, self.board.supply_v(), self.supervisor.restarts, app.heap_free())

    async def run(self):
        asyncio.get_event_loop().set_exception_handler(self.supervisor.on_loop_error)
        self.setup()
        self.ui.idle()
        self.supervisor.spawn("scan", self.scan_task)
        self.supervisor.spawn("uplink", self.uplink.run)
        self.supervisor.spawn("watchdog", self.watchdog_task)
        while True:
            await self.clock.sleep_ms(60000)
