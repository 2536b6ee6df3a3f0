"""A small MQTT 3.1.1 client over asyncio streams: MicroPython asyncio on the ESP32, CPython asyncio in sim/.

Why not umqtt.simple: it blocks on QoS 1 and sends no keepalive pings (DOMAIN.md). This client never blocks
the caller's loop: connect, CONNACK, SUBACK and every write run under a timeout taken from the injected clock,
and a reader task takes packets as they come. QoS 1 publishes are tracked by packet id until their PUBACK
(`inflight`) and resent with DUP after a reconnect. A PINGREQ goes out every keepalive/2; no answer within
keepalive/2 means the link is dead: the client closes it and calls `on_down(reason)`.
Packet layouts follow the MQTT 3.1.1 OASIS standard, section 3 (cited per packet below).
"""

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython
    import uasyncio as asyncio  # type: ignore

_ETIMEDOUT = 110
_ENOTCONN = 107
PINGREQ = b"\xc0\x00"  # 3.12
DISCONNECT = b"\xe0\x00"  # 3.14
_REFUSED = (
    "",
    "bad protocol version",
    "client id rejected",
    "server unavailable",
    "bad user name or password",
)
_REFUSED += ("not authorised",)


class MQTTError(OSError):
    """A protocol failure (connection refused, malformed packet); an OSError like every network fault."""


def remaining_length(n):
    """2.2.3: 7 bits a byte, low first, high bit = more; at most 4 bytes."""
    if n < 0 or n > 268435455:
        raise ValueError("mqtt: remaining length out of range: " + str(n))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 0xFFFF:
        raise ValueError("mqtt: string longer than 65535 bytes")
    return bytes((len(b) >> 8, len(b) & 0xFF)) + b


def _packet(first, body):
    return bytes((first,)) + remaining_length(len(body)) + body


def connect_packet(client_id, clean_session=True, keepalive_s=60, will=None, user=None, password=None):
    """3.1: `will` is (topic, payload, qos, retain) or None."""
    flags = 0x02 if clean_session else 0
    body = _str(client_id)
    if will is not None:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
        body += _str(will[0]) + _str(will[1])
    if user is not None:
        flags |= 0x80
        body += _str(user)
    if password is not None:
        flags |= 0x40
        body += _str(password)
    head = b"\x00\x04MQTT\x04" + bytes((flags, keepalive_s >> 8, keepalive_s & 0xFF))
    return _packet(0x10, head + body)


def publish_packet(topic, payload, qos=0, retain=False, pid=0, dup=False):
    """3.3: the packet id is present only for QoS > 0."""
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = _str(topic) + (bytes((pid >> 8, pid & 0xFF)) if qos else b"") + bytes(payload)
    return _packet(first, body)


def subscribe_packet(pid, topic, qos=1):
    """3.8: fixed header flags are 0b0010."""
    return _packet(0x82, bytes((pid >> 8, pid & 0xFF)) + _str(topic) + bytes((qos,)))


def puback_packet(pid):
    """3.4"""
    return bytes((0x40, 2, pid >> 8, pid & 0xFF))


def parse_publish(first, body):
    """3.3 -> (topic, payload, qos, retain, pid); pid is 0 for QoS 0."""
    n = (body[0] << 8) | body[1]
    topic = bytes(body[2 : 2 + n]).decode()
    qos = (first >> 1) & 3
    i = 2 + n
    pid = 0
    if qos:
        pid = (body[i] << 8) | body[i + 1]
        i += 2
    return topic, bytes(body[i:]), qos, bool(first & 1), pid


async def timed(clock, coro, ms, what):
    """Await `coro`, cancelling it after `ms` of the injected clock: OSError(ETIMEDOUT) then."""
    task = asyncio.create_task(coro)
    fired = [False]

    async def guard():
        await clock.sleep_ms(ms)
        fired[0] = True
        task.cancel()

    g = asyncio.create_task(guard())
    try:
        return await task
    except asyncio.CancelledError:
        if fired[0]:
            raise OSError(_ETIMEDOUT, what + ": timed out")
        raise
    finally:
        g.cancel()
        if not task.done():
            task.cancel()


class Client:
    """One MQTT session at a time; `connect()` again after `on_down` to reconnect (inflight is kept)."""

    def __init__(self, clock, client_id, host, port=1883, keepalive_s=60, clean_session=True, **kw):
        """kw: user, password, ssl (an SSLContext), will (topic, payload, qos, retain), timeout_ms (10000),
        on_message(topic, payload, retain), on_puback(pid), on_down(reason), max_packet (8192)."""
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
        self._subacks = {}  # pid -> [Event, granted qos]
        self._idle = asyncio.Event()
        self._ping_out = None  # tick a PINGREQ went out, None once anything came back

    def _next_pid(self):
        while True:
            self._pid = self._pid % 0xFFFF + 1
            if self._pid not in self.inflight and self._pid not in self._subacks:
                return self._pid

    async def connect(self, resend=True):
        """Open the connection, send CONNECT, wait for CONNACK, resend inflight with DUP (or forget it when
        not `resend`). Returns the session-present flag. Raises OSError (MQTTError: refused) in timeout_ms."""
        self.close("reconnect", report=False)
        if not resend:
            self.inflight.clear()
        kw = self.kw
        opts = {"ssl": kw["ssl"], "server_hostname": self.host} if kw.get("ssl") else {}
        t = self.timeout_ms
        opening = asyncio.open_connection(self.host, self.port, **opts)
        self._r, self._w = await timed(self.clock, opening, t, "tcp")
        user, password = kw.get("user"), kw.get("password")
        pkt = connect_packet(self.client_id, self.clean_session, self.keepalive_s, kw.get("will"), user, password)
        try:
            await self._write(pkt)
            ack = await timed(self.clock, self._r.readexactly(4), t, "connack")
        except EOFError:
            self.close("closed", report=False)
            raise OSError(_ENOTCONN, "mqtt: closed before CONNACK")
        except OSError:
            self.close("connack", report=False)
            raise
        if ack[0] != 0x20 or ack[3] != 0:
            self.close("refused", report=False)
            raise MQTTError("mqtt: connection refused: " + (_REFUSED[ack[3]] if ack[3] < 6 else str(ack[3])))
        self.connected = True
        self.error = None
        self._ping_out = None
        self._tasks = [asyncio.create_task(self._read_loop(self._r)), asyncio.create_task(self._keepalive())]
        for pid in list(self.inflight):
            topic, payload, retain = self.inflight[pid]
            await self._send(publish_packet(topic, payload, 1, retain, pid, dup=True))
        return bool(ack[2] & 1)

    async def publish(self, topic, payload, qos=0, retain=False):
        """Send one message; QoS 1 returns its packet id at once (tracked in `inflight` until PUBACK)."""
        if not self.connected:
            raise OSError(_ENOTCONN, "mqtt: not connected")
        pid = 0
        if qos:
            pid = self._next_pid()
            self.inflight[pid] = (topic, payload, retain)
        await self._send(publish_packet(topic, payload, 1 if qos else 0, retain, pid))
        return pid

    async def subscribe(self, topic, qos=1):
        """Subscribe and wait for the SUBACK; returns the granted QoS. MQTTError if the broker refuses."""
        if not self.connected:
            raise OSError(_ENOTCONN, "mqtt: not connected")
        pid = self._next_pid()
        waiter = self._subacks[pid] = [asyncio.Event(), None]
        try:
            await self._send(subscribe_packet(pid, topic, qos))
            await timed(self.clock, waiter[0].wait(), self.timeout_ms, "suback")
        finally:
            self._subacks.pop(pid, None)
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
            self._idle.clear()  # set again by the PUBACK that empties `inflight`, or by close()
            try:
                await timed(self.clock, self._idle.wait(), left, "puback")
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
        for w in self._subacks.values():
            w[0].set()
        self._idle.set()
        cb = self.kw.get("on_down")
        if was and report and cb is not None:
            cb(reason)

    async def _write(self, pkt):
        async with self._lock:
            if self._w is None:
                raise OSError(_ENOTCONN, "mqtt: not connected")
            self._w.write(pkt)
            await timed(self.clock, self._w.drain(), self.timeout_ms, "write")

    async def _send(self, pkt):
        try:
            await self._write(pkt)
        except OSError as e:
            self.close("write: " + str(e))
            raise

    async def _read_loop(self, r):
        try:
            while True:
                first = (await r.readexactly(1))[0]
                n = 0
                for shift in (0, 7, 14, 21):
                    b = (await r.readexactly(1))[0]
                    n |= (b & 0x7F) << shift
                    if not b & 0x80:
                        break
                body = await r.readexactly(n) if n <= self.max_packet else None
                if body is None:
                    await self._skip(r, first, n)
                    continue
                self._ping_out = None
                await self._dispatch(first, body)
        except (OSError, EOFError, ValueError, IndexError) as e:
            self.close("read: " + (repr(e) if not isinstance(e, EOFError) else "closed by broker"))

    async def _skip(self, r, first, n):
        print("mqtt: dropping a packet of", n, "bytes (max_packet", self.max_packet, ")")
        head = await r.readexactly(min(n, 256))
        n -= len(head)
        while n:
            n -= len(await r.readexactly(min(n, 256)))
        self._ping_out = None
        if first >> 4 == 3 and (first >> 1) & 3:
            k = ((head[0] << 8) | head[1]) + 2
            await self._send(puback_packet((head[k] << 8) | head[k + 1]))

    async def _dispatch(self, first, body):
        kind = first >> 4
        if kind == 3:  # PUBLISH
            topic, payload, qos, retain, pid = parse_publish(first, body)
            cb = self.kw.get("on_message")
            if cb is not None:
                try:
                    cb(topic, payload, retain)
                except Exception as e:  # a bad handler must not kill the session; counted and logged
                    self.callback_errors += 1
                    print("mqtt: on_message failed:", repr(e))
            if qos:
                await self._send(puback_packet(pid))
        elif kind == 4:  # PUBACK
            pid = (body[0] << 8) | body[1]
            if self.inflight.pop(pid, None) is not None and self.kw.get("on_puback") is not None:
                self.kw["on_puback"](pid)
            if not self.inflight:
                self._idle.set()
        elif kind == 9:  # SUBACK
            w = self._subacks.get((body[0] << 8) | body[1])
            if w is not None:
                w[1] = body[2]
                w[0].set()

    async def _keepalive(self):
        half = self.keepalive_s * 500
        last_ping = self.clock.ticks_ms()
        while self.connected:
            await self.clock.sleep_ms(max(100, half // 4))
            now = self.clock.ticks_diff
            t = self.clock.ticks_ms()
            if self._ping_out is not None and now(t, self._ping_out) > half:
                self.close("no PINGRESP within " + str(half) + " ms")
                return
            if now(t, last_ping) >= half:
                last_ping = t
                if self._ping_out is None:
                    self._ping_out = t
                self.pings += 1
                try:
                    await self._send(PINGREQ)
                except OSError:
                    return  # _send closed and reported it
