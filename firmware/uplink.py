"""The uplink: Wi-Fi and MQTT, independent of scanning. Publishes the outbox, frees what receipts name.

One asyncio task (`run`): link up with exponential backoff (capped), NTP when online, MQTT connect with a
retained last will (offline on `status`), retained status online, subscriptions to receipt/verdict/config,
then scans from the outbox in seq order, QoS 1, at most `window` without a PUBACK. A record leaves the outbox
only when a receipt {"v":1,"seqs":[...]} names it (a PUBACK is not enough: DESIGN.md, data integrity).
After every reconnect all unfreed records are resent in seq order (the gateway stores by (site, node, seq));
with no receipt for `receipt_timeout_s` while records wait, they are resent as well (the broker may have
dropped them; the wait doubles up to 1 h while none comes). Health goes out every `health_interval_s`
(QoS 0). `kick()` wakes it after an append.

cfg: {"broker": {"host", "port", "tls", "user", "password", "keepalive_s", optional "cafile" (PEM or DER)},
      "prefix", "health_interval_s", optional: "window" (8), "backoff_max_s" (60), "receipt_timeout_s" (120),
      "ntp_interval_s" (3600), "link_timeout_s" (20)}. Without "cafile", TLS encrypts but does not verify the
broker's certificate.
"""

import binascii
import json

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython
    import uasyncio as asyncio  # type: ignore

import mqtt
import record

OFFLINE = b'{"v":1,"state":"offline"}'
_BACKOFF_MS = 1000
_TICK_MS = 1000
_RESEND_CAP_MS = 3600000


def _der(path):
    """The CA certificate in `path` (PEM or DER) as DER: what both MicroPython's mbedTLS and CPython take."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"-----BEGIN"):
        lines = data.split(b"-----END")[0].split(b"\n")[1:]
        data = binascii.a2b_base64(b"".join([x.strip() for x in lines]))
    return data


def _log(*args):
    print("uplink:", *args)


class Uplink:
    def __init__(self, cfg, identity, outbox, clock, link, on_config, on_verdict, health):
        self.cfg = cfg
        self.identity = identity
        self.outbox = outbox
        self.clock = clock
        self.link = link
        self.on_config = on_config
        self.on_verdict = on_verdict
        self.health = health
        self.topic = cfg.get("prefix", "checkpoint/v1") + "/" + identity["site"] + "/" + identity["node"] + "/"
        self.window = cfg.get("window", 8)
        self.connected = False
        self.last_progress_ms = clock.ticks_ms()
        self.counts = {"published": 0, "receipted": 0, "connects": 0, "resends": 0, "errors": 0}
        self._client = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._cursor = -1  # highest seq published on this connection
        self._receipt_ms = 0  # tick of the last receipt (or of a resend)
        self._resend_ms = cfg.get("receipt_timeout_s", 120) * 1000
        self._resend_wait = self._resend_ms  # doubles after each resend without a receipt
        self._health_every = cfg["health_interval_s"] * 1000
        self._ntp_every = cfg.get("ntp_interval_s", 3600) * 1000
        self._health_ms = None
        self._ntp_ms = None
        self._status_due = False
        self._config_error = None
        self._config_crc = None  # last config payload applied: the retained copy comes back at each connect

    def kick(self):
        """The app appended a record: publish it now."""
        self._wake.set()

    def _progress(self):
        self.last_progress_ms = self.clock.ticks_ms()

    def _since(self, tick):
        return self.clock.ticks_diff(self.clock.ticks_ms(), tick)

    async def _pause(self, ms):
        t0 = self.clock.ticks_ms()
        while not self._stopping and self._since(t0) < ms:
            self._progress()
            await self.clock.sleep_ms(min(_TICK_MS, ms - self._since(t0)))

    async def run(self):
        """Forever: link, MQTT session, publish; back off (1 s doubling to backoff_max_s) after failures."""
        backoff = _BACKOFF_MS
        cap = self.cfg.get("backoff_max_s", 60) * 1000
        while not self._stopping:
            self._progress()
            connects = self.counts["connects"]
            try:
                if await self._link_up():
                    self._ntp()
                    await self._session()
            except OSError as e:
                self.counts["errors"] += 1
                _log("broker", self.cfg["broker"]["host"], "unreachable:", repr(e))
            if connects != self.counts["connects"]:
                backoff = _BACKOFF_MS  # the session was up: retry soon
            if not self._stopping:
                await self._pause(backoff)
                backoff = min(backoff * 2, cap)

    async def _link_up(self):
        if self.link.isconnected():
            return True
        ms = self.cfg.get("link_timeout_s", 20) * 1000
        try:
            return bool(await mqtt.timed(self.clock, self.link.connect(), ms, "link"))
        except OSError as e:
            _log("link:", repr(e))
            return False

    def _ntp(self):
        if self._ntp_ms is not None and self._since(self._ntp_ms) < self._ntp_every:
            return
        ms = self.link.ntp_unix_ms()
        if ms is not None:
            self.clock.set_unix_ms(ms)
            self._ntp_ms = self.clock.ticks_ms()

    def _make_client(self):
        b = self.cfg["broker"]
        will = (self.topic + "status", OFFLINE, 1, True)
        cid = "node-" + self.identity["site"] + "-" + self.identity["node"]
        return mqtt.Client(
            self.clock, cid, b["host"], b["port"], b.get("keepalive_s", 60), False, user=b.get("user"),
            password=b.get("password"), ssl=self._ssl(b), will=will, on_message=self._on_message,
            on_puback=self._poke, on_down=self._on_down,
        )  # fmt: skip

    def _ssl(self, b):
        if not b.get("tls"):
            return None
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if b.get("cafile"):
            ctx.load_verify_locations(cadata=_der(b["cafile"]))
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            if hasattr(ctx, "check_hostname"):  # CPython (the simulator); MicroPython has no such attribute
                setattr(ctx, "check_hostname", False)
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def _session(self):
        if self._client is None:
            self._client = self._make_client()
        c = self._client
        await c.connect(resend=False)  # the outbox, not the client, holds what must be resent
        ticker = asyncio.create_task(self._ticker())
        try:
            self._progress()  # each step below may take up to timeout_ms: keep the watchdog informed
            await self._publish_status(c)
            for kind in ("receipt", "verdict", "config"):
                self._progress()
                await c.subscribe(self.topic + kind, 1)
            self.connected = True
            self.counts["connects"] += 1
            self._cursor = -1
            self._receipt_ms = self.clock.ticks_ms()
            self._health_ms = None
            await self._serve(c)
        finally:
            self.connected = False
            ticker.cancel()
            if not self._stopping:
                c.close("session ended", report=False)

    async def _serve(self, c):
        while c.connected and not self._stopping:
            self._progress()
            self._wake.clear()
            if not self.link.isconnected():
                c.close("link down", report=False)
                return
            if self._status_due:
                await self._publish_status(c)
            await self._pump(c)
            if self._health_ms is None or self._since(self._health_ms) >= self._health_every:
                self._health_ms = self.clock.ticks_ms()
                await c.publish(self.topic + "health", self._health_payload(), qos=0)
            self._check_receipts()
            await self._wake.wait()

    async def _ticker(self):
        while True:
            await self.clock.sleep_ms(_TICK_MS)
            self._wake.set()

    async def _pump(self, c):
        """Publish unfreed records after the cursor, oldest first, keeping at most `window` unacked."""
        site, node = self.identity["site"], self.identity["node"]
        while c.connected and len(c.inflight) < self.window:
            recs = self.outbox.pending(self.window - len(c.inflight), self._cursor)
            if not recs:
                return
            for seq, b in recs:
                try:
                    body = record.to_payload(seq, b, site, node)
                except ValueError as e:  # cannot happen for what pack() wrote; never block the queue on it
                    self.counts["errors"] += 1
                    _log("record", seq, "unreadable:", e)
                    self._cursor = seq
                    continue
                await c.publish(self.topic + "scan", body, qos=1)
                self._cursor = seq
                self.counts["published"] += 1

    def _check_receipts(self):
        """Records were published but no receipt came for receipt_timeout_s: publish them again."""
        if self._cursor < 0 or self._since(self._receipt_ms) < self._resend_wait:
            return
        oldest = self.outbox.pending(1)
        if oldest and oldest[0][0] <= self._cursor:
            _log("no receipt for", self._resend_wait // 1000, "s: resending from seq", oldest[0][0])
            self.counts["resends"] += 1
            self._cursor = -1
            self._resend_wait = min(2 * self._resend_wait, _RESEND_CAP_MS)  # gateway down for hours: back off
        self._receipt_ms = self.clock.ticks_ms()

    def _status_payload(self):
        i = self.identity
        s = {"v": 1, "state": "online", "fw": i["fw"], "boot": i["boot"], "config_id": i["config_id"]}
        if self._config_error is not None:
            s["config_error"] = self._config_error
        return json.dumps(s).encode()

    async def _publish_status(self, c):
        self._status_due = False
        await c.publish(self.topic + "status", self._status_payload(), qos=1, retain=True)

    def _health_payload(self):
        h = {}
        try:
            h = dict(self.health())
        except Exception as e:  # the app's figures are optional; ours still go out
            self.counts["errors"] += 1
            _log("health() failed:", repr(e))
        h["v"] = 1
        h["outbox_depth"] = self.outbox.depth
        h["outbox_dropped"] = self.outbox.dropped
        h["rssi"] = self.link.rssi()
        h["uplink"] = self.counts
        return json.dumps(h).encode()

    def _poke(self, _pid=None):
        self._wake.set()

    def _on_down(self, reason):
        _log("mqtt down:", reason)
        self._wake.set()

    def _on_message(self, topic, payload, retained):
        kind = topic[len(self.topic) :]
        try:
            msg = json.loads(payload)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("v") != 1:
            _log("ignored", kind, "message: not a protocol v1 JSON object")
            if kind == "config":
                self._config_done(False, "not a protocol v1 JSON object")
            return
        if kind == "receipt":
            self._receipt(msg.get("seqs"))
        elif kind == "verdict":
            self.on_verdict(msg)
        elif kind == "config":
            crc = binascii.crc32(payload)
            if crc != self._config_crc:
                ok, reason = self.on_config(msg)
                self._config_crc = crc if ok else None
                self._config_done(ok, reason)

    def _config_done(self, ok, reason):
        self._config_error = None if ok else (reason or "rejected")
        self._status_due = True
        self._wake.set()

    def _receipt(self, seqs):
        if not isinstance(seqs, list):
            _log("ignored receipt without a seqs list")
            return
        good = [s for s in seqs if isinstance(s, int) and not isinstance(s, bool) and s >= 0]
        self.outbox.free(good)
        self.counts["receipted"] += len(good)
        self._receipt_ms = self.clock.ticks_ms()
        self._resend_wait = self._resend_ms
        self._wake.set()

    async def stop(self):
        """Publish offline (retained), wait for its PUBACK, DISCONNECT; run() returns."""
        self._stopping = True
        self._wake.set()
        c = self._client
        if c is not None and c.connected:
            try:
                await c.publish(self.topic + "status", OFFLINE, qos=1, retain=True)
                await c.wait_acked(c.timeout_ms)
                await c.disconnect()
            except OSError as e:
                _log("stop:", repr(e))
        self.connected = False
