"""A small MQTT 3.1.1 client over asyncio streams: MicroPython asyncio on the ESP32, CPython asyncio in sim/.

Why not umqtt.simple: it blocks on QoS 1 and sends no keepalive pings (docs/domain.md section 7). This
client never blocks the caller's loop: connect, CONNACK, SUBACK and every write run under a timeout taken from
the injected clock (clock.timed), and a reader task takes packets as they come. QoS 1 publishes are tracked by packet id
until their PUBACK (`inflight`) and resent with DUP after a reconnect. A PINGREQ goes out every keepalive/2;
no answer within keepalive/2 means the link is dead: the client closes it and calls `on_down(reason)`.
The packets themselves are packet.py's; the reading half (packets in, keepalive) is mqttread.py's.
"""

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython
    import uasyncio as asyncio  # type: ignore

import mqttread
from clock import timed
from packet import DISCONNECT, connect_packet, publish_packet, subscribe_packet

_ENOTCONN = 107
_REFUSED = ("", "bad protocol version", "client id rejected", "server unavailable", "bad user name or password")
_REFUSED += ("not authorised",)


class MQTTError(OSError):
    """A protocol failure (connection refused, malformed packet); an OSError like every network fault."""


class Client:
    """One MQTT session at a time; `connect()` again after `on_down` to reconnect (inflight is kept)."""

    def __init__(self, clock, client_id, host, port=1883, keepalive_s=60, clean_session=True, **kw):
        """kw: user, password, ssl (an SSLContext), will (topic, payload, qos, retain), timeout_ms (10000),
        on_message(topic, payload, retain), on_puback(pid), on_down(reason), max_packet (8192), resolve (async
        host -> address, udp.Resolver's: a name must never reach MicroPython's blocking getaddrinfo)."""
        self.clock = clock
        self.client_id = client_id
        self.host = host
        self.port = port
        self.keepalive_s = max(1, keepalive_s)
        self.clean_session = clean_session
        self.kw = kw
        self.timeout_ms = kw.get("timeout_ms", 10000)
        self.max_packet = kw.get("max_packet", 8192)
        self.connected = False
        self.error = None  # why the last connection ended
        self.inflight = {}  # pid -> (topic, payload, retain): QoS 1 publishes without a PUBACK yet
        self.callback_errors = 0
        self.pings = 0
        self._pid = 0
        self._r = self._w = None
        self._lock = asyncio.Lock()
        self._tasks = []
        self.subacks = {}  # pid -> [Event, granted qos]
        self.idle = asyncio.Event()
        self.ping_out = None  # tick a PINGREQ went out, None once anything came back

    def _next_pid(self):
        while True:
            self._pid = self._pid % 0xFFFF + 1
            if self._pid not in self.inflight and self._pid not in self.subacks:
                return self._pid

    async def connect(self, resend=True):
        """Open the connection, send CONNECT, wait for CONNACK, resend inflight with DUP (or forget it when
        not `resend`). Returns the session-present flag. Raises OSError (MQTTError: refused) in timeout_ms."""
        self.close("reconnect", report=False)
        if not resend:
            self.inflight.clear()
        ack = await self._open()
        if ack[0] != 0x20 or ack[3] != 0:
            self.close("refused", report=False)
            raise MQTTError("mqtt: connection refused: " + (_REFUSED[ack[3]] if ack[3] < 6 else str(ack[3])))
        self.connected = True
        self.error = None
        self.ping_out = None
        self._tasks = [
            asyncio.create_task(mqttread.read_loop(self, self._r)),
            asyncio.create_task(mqttread.keepalive(self)),
        ]
        for pid in list(self.inflight):
            topic, payload, retain = self.inflight[pid]
            await self.send(publish_packet(topic, payload, 1, retain, pid, dup=True))
        return bool(ack[2] & 1)

    async def _open(self):
        """TCP (TLS) connection, CONNECT out: the 4 bytes of the CONNACK (3.2)."""
        kw = self.kw
        opts = {"ssl": kw["ssl"], "server_hostname": self.host} if kw.get("ssl") else {}
        t = self.timeout_ms
        addr = await kw["resolve"](self.host) if kw.get("resolve") else self.host
        self._r, self._w = await timed(self.clock, asyncio.open_connection(addr, self.port, **opts), t, "tcp")
        user, password = kw.get("user"), kw.get("password")
        pkt = connect_packet(self.client_id, self.clean_session, self.keepalive_s, kw.get("will"), user, password)
        try:
            await self._write(pkt)
            return await timed(self.clock, self._r.readexactly(4), t, "connack")
        except EOFError:
            self.close("closed", report=False)
            raise OSError(_ENOTCONN, "mqtt: closed before CONNACK")
        except OSError:
            self.close("connack", report=False)
            raise

    async def publish(self, topic, payload, qos=0, retain=False):
        """Send one message; QoS 1 returns its packet id at once (tracked in `inflight` until PUBACK)."""
        if not self.connected:
            raise OSError(_ENOTCONN, "mqtt: not connected")
        pid = 0
        if qos:
            pid = self._next_pid()
            self.inflight[pid] = (topic, payload, retain)
        await self.send(publish_packet(topic, payload, 1 if qos else 0, retain, pid))
        return pid

    async def subscribe(self, topic, qos=1):
        """Subscribe and wait for the SUBACK; returns the granted QoS. MQTTError if the broker refuses."""
        if not self.connected:
            raise OSError(_ENOTCONN, "mqtt: not connected")
        pid = self._next_pid()
        waiter = self.subacks[pid] = [asyncio.Event(), None]
        try:
            await self.send(subscribe_packet(pid, topic, qos))
            await timed(self.clock, waiter[0].wait(), self.timeout_ms, "suback")
        finally:
            self.subacks.pop(pid, None)
        if not self.connected:
            raise OSError(_ENOTCONN, "mqtt: connection lost")
        if waiter[1] is None or waiter[1] & 0x80:
            raise MQTTError("mqtt: subscription refused: " + topic)
        return waiter[1]

    async def wait_acked(self, ms):
        """True once every QoS 1 publish has its PUBACK; False after `ms` of the clock or on a lost link."""
        t0 = self.clock.ticks_ms()
        while self.inflight and self.connected:
            left = ms - self.clock.ticks_diff(self.clock.ticks_ms(), t0)
            if left <= 0:
                return False
            self.idle.clear()  # set again by the PUBACK that empties `inflight`, or by close()
            try:
                await timed(self.clock, self.idle.wait(), left, "puback")
            except OSError:
                return False
        return not self.inflight

    async def disconnect(self):
        """Clean DISCONNECT (the broker sends no last will) and close; on_down is not called."""
        if self.connected:
            self.connected = False  # the broker closing the socket now is no news
            try:
                await self._write(DISCONNECT)
            except OSError:
                pass  # closing anyway
        self.close("disconnected", report=False)

    def close(self, reason, report=True):
        """Drop the connection now (no DISCONNECT); calls on_down(reason) if it was up and `report`."""
        was = self.connected
        self.connected = False
        if was:
            self.error = reason
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        self._tasks = []
        if self._w is not None:
            try:
                self._w.close()
                if hasattr(self._w, "s"):  # MicroPython: Stream.close() is a no-op, the socket must go now
                    self._w.s.close()
            except OSError:
                pass  # already gone
        self._r = self._w = None
        for w in self.subacks.values():
            w[0].set()
        self.idle.set()
        cb = self.kw.get("on_down")
        if was and report and cb is not None:
            cb(reason)

    async def _write(self, pkt):
        async with self._lock:
            if self._w is None:
                raise OSError(_ENOTCONN, "mqtt: not connected")
            self._w.write(pkt)
            await timed(self.clock, self._w.drain(), self.timeout_ms, "write")

    async def send(self, pkt):
        """Write one packet; a failure closes the connection (on_down) and raises."""
        try:
            await self._write(pkt)
        except OSError as e:
            self.close("write: " + str(e))
            raise
