"""The uplink: Wi-Fi and MQTT, independent of scanning. Publishes the outbox, frees what receipts name.

One asyncio task (`run`): Wi-Fi up with backoff, NTP when online and hourly (udp.py: plausible time only),
the MQTT session (session.py; the broker's name resolved by udp.Resolver, bounded, never blocking), the outbox
pump (pump.py) under the receipt policy (receipts.py), health every `health_interval_s` (QoS 0, health.py).
After every reconnect all unfreed records are resent in seq order (the gateway stores by (site, node, seq)).

It waits for events, never on a fixed tick: `kick()` after an append, a PUBACK, a receipt, a pushed config,
a change of the link state (linkstate.py: DOWN, WIFI, UP; the UI's link LED listens to `link_state` too);
between them for the next deadline (health, receipt timeout, the watchdog's heartbeat); downlink.py checks input.

cfg: {"broker": {...} (session.py), "prefix", "health_interval_s", optional: "window" (8), "backoff_max_s"
(60), "receipt_timeout_s" (120), "ntp_interval_s" (3600), "link_timeout_s" (20)}.
"""

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython
    import uasyncio as asyncio  # type: ignore

import contract
import downlink
import health
import pump
import receipts
import session
import udp
from clock import timed
from linkstate import DOWN, REFUSED, UP, WIFI, LinkState

SCAN, STATUS, HEALTH = contract.UPLINK
_BACKOFF_MS = 1000
HEARTBEAT_MS = 20000  # progress at least this often; the node's watchdog allows max(60 s, 2 x keepalive)


def _log(*args):
    print("uplink:", *args)


class Uplink:
    def __init__(self, cfg, identity, outbox, clock, link, on_config, on_verdict, health):
        """link: the board's Wi-Fi; on_config(msg) -> (ok, reason), on_verdict(msg): checked messages
        (downlink.py); health() -> the node's figures (health.py)."""
        self.cfg = cfg
        self.outbox = outbox
        self.clock = clock
        self.link = link
        self.health = health
        self.last_progress_ms = clock.ticks_ms()
        self.counts = {"published": 0, "receipted": 0, "connects": 0, "resends": 0, "errors": 0}
        prefix = cfg.get("prefix", contract.PREFIX)
        resolver = udp.Resolver(clock, link)
        self.session = session.Session(
            cfg["broker"], prefix, identity, clock, on_message=self._on_message, on_puback=self._poke,
            on_down=self._on_down, resolve=resolver.resolve,
        )  # fmt: skip
        self.timesync = udp.TimeSync(clock, link, resolver, self.counts, cfg.get("ntp_interval_s", 3600) * 1000)
        self._wake = asyncio.Event()  # anything for the session loop to do
        self.receipts = receipts.Receipts(outbox, clock, cfg.get("receipt_timeout_s", 120) * 1000, self.counts)
        self.pump = pump.Pump(outbox, self.session.topic(SCAN), identity, cfg.get("window", 8), self.counts,
                              self.receipts.sent)  # fmt: skip
        self.downlink = downlink.Downlink(
            self.session.topic(""), self.receipts, self.session, on_config, on_verdict, self._wake
        )
        self._retry = asyncio.Event()  # Wi-Fi is back (or stop()): no need to wait out the backoff
        self._stopping = False
        self._health_ms = None
        self.link_state = LinkState()
        self.link_state.listen(self._on_link)

    @property
    def identity(self):
        return self.session.identity

    @property
    def connected(self):
        return self.link_state.state == UP

    def kick(self, seq=None, scan=None):
        """The node appended a record (`seq`, holding `scan`): publish it now."""
        self.downlink.made(seq, scan)  # a verdict is shown only for this unit's own scan of a seq
        self._wake.set()

    def _progress(self):
        self.last_progress_ms = self.clock.ticks_ms()

    def _since(self, tick):
        return self.clock.ticks_diff(self.clock.ticks_ms(), tick)

    async def _wait(self, event, ms):
        """Until `event` is set or `ms` have passed (at most a heartbeat), showing progress either side."""
        self._progress()
        try:
            await timed(self.clock, event.wait(), max(0, min(ms, HEARTBEAT_MS)), "wait")
        except OSError:
            pass  # the deadline came first
        self._progress()

    async def run(self):
        """Until stop(): Wi-Fi, MQTT session, publish; back off (1 s doubling to backoff_max_s) after failures."""
        watch = asyncio.create_task(self.link_state.watch(self.link, self.clock))
        backoff, most = _BACKOFF_MS, self.cfg.get("backoff_max_s", 60) * 1000
        try:
            while not self._stopping:
                connects = self.counts["connects"]
                await self._attempt()
                if connects != self.counts["connects"]:  # the session was up: soon, unless it was taken over
                    backoff = self.session.retry_ms(_BACKOFF_MS, most)
                    self.counts["taken_over"] = self.session.taken_over
                await self._pause(backoff)
                backoff = min(backoff * 2, most)
        finally:
            watch.cancel()

    async def _pause(self, ms):
        t0 = self.clock.ticks_ms()
        self._retry.clear()
        while not self._stopping and not self._retry.is_set() and self._since(t0) < ms:
            await self._wait(self._retry, ms - self._since(t0))

    async def _attempt(self):
        try:
            if await self._link_up():
                await self.timesync.run()
                await self._session()
        except OSError as e:
            self.counts["errors"] += 1
            _log("broker", self.session.where(), "unreachable:", repr(e))
            if self.session.refused is not None:
                self.link_state.set(REFUSED)  # the link LED blinks fast: the broker is not who it should be
            self.session.next_member()  # a cluster: the next member (each attempt backs off as before)

    async def _link_up(self):
        self._progress()
        up = self.link.isconnected()
        if not up:
            try:
                up = bool(
                    await timed(self.clock, self.link.connect(), self.cfg.get("link_timeout_s", 20) * 1000, "link")
                )
            except OSError as e:
                _log("link:", repr(e))
        if self.link_state.state != UP:
            self.link_state.set(WIFI if up else DOWN)
        return up

    async def _session(self):
        try:
            await self.session.open(self._progress)
            self.counts["connects"] += 1
            self.pump.rewind()
            self.receipts.restart()
            self._health_ms = None
            self.link_state.set(UP)
            await self._serve(self.session.client)
        finally:
            self.link_state.set(WIFI if self.link.isconnected() else DOWN)
            if not self._stopping:
                self.session.close("session ended")

    async def _serve(self, c):
        while c.connected and not self._stopping:
            self._progress()
            self._wake.clear()
            if self.downlink.status_due:
                self.downlink.status_due = False
                await self.session.publish_status()
            await self.pump.run(c)
            again = self.receipts.due(self.pump.cursor)
            if again is not None:
                self.pump.resend(*again)
                continue
            await self.timesync.run()
            ms = await self._health(c)
            due = self.receipts.due_in(self.pump.cursor)
            await self._wait(self._wake, ms if due is None else min(ms, due))

    async def _health(self, c):
        """Publish health if it is due; ms until it is due again."""
        every = self.cfg["health_interval_s"] * 1000
        if self._health_ms is not None and self._since(self._health_ms) < every:
            return every - self._since(self._health_ms)
        self._health_ms = self.clock.ticks_ms()
        await c.publish(self.session.topic(HEALTH), self._health_payload(), qos=0)
        return every

    def _health_payload(self):
        own = {"outbox_depth": self.outbox.depth, "outbox_drops": self.outbox.dropped, "rssi": self.link.rssi()}
        own["uplink"] = self.counts
        problems = []
        payload = health.payload(self.health, own, problems)
        for p in problems:
            self.counts["errors"] += 1
            _log("health:", p)
        return payload

    def _on_message(self, topic, payload, retained):
        self.downlink.on_message(topic, payload, retained)

    def _poke(self, _pid=None):
        self._wake.set()

    def _on_down(self, reason):
        _log("mqtt down:", reason)
        self._wake.set()

    def _on_link(self, state):
        if state == DOWN:
            self.session.close("link down")  # no DISCONNECT: the broker publishes the will
        elif state == WIFI:
            self._retry.set()
        self._wake.set()

    async def stop(self):
        """Publish offline (retained), wait for its PUBACK, DISCONNECT; run() returns."""
        self._stopping = True
        self._wake.set()
        self._retry.set()
        try:
            await self.session.stop()
        except OSError as e:
            _log("stop:", repr(e))
        self.link_state.set(WIFI if self.link.isconnected() else DOWN)

    def drop(self):
        """The power is gone: the socket closes without DISCONNECT (the broker publishes the will)."""
        self._stopping = True
        self._wake.set()
        self._retry.set()
        self.session.drop()
