"""The node's UDP exchanges on the event loop, never blocking it: DNS for host names and NTP for the wall clock.

`exchange()` sends one request on a non-blocking socket and polls it every POLL_MS on the injected clock,
bounded by a timeout.

DNS (`Resolver`, RFC 1035): why not socket.getaddrinfo for names: on MicroPython it blocks the whole loop
until the resolver answers or gives up (5 s and more with a slow DNS server), and the scan task stops with it.
Here a name is resolved by one A query to the link's DNS server (`link.dns_server()`: the ESP32's from DHCP),
at most `timeout_ms`, on the uplink task only, and the answer is cached: when the server does not answer, the
last address is used. An IP literal needs no query. Without a DNS server (CPython: asyncio resolves off the
loop) names pass through.

NTP (`TimeSync`, RFC 5905 client mode): one exchange with `link.ntp_server()` of at most NTP_TIMEOUT_MS. A
reply sets the clock only if it passes every check, else it is refused and counted (`counts["time_refused"]`,
in health):
  - an answer to our request (its originate timestamp is our transmit timestamp), mode 4 (server),
    version 3 or 4, leap indicator not 3 (the server's clock is not synchronised), stratum 1..15
    (0 is a kiss-o'-death: "go away", with a zero transmit timestamp), a non-zero transmit timestamp;
  - a time inside [FLOOR_MS, CEILING_MS) (this firmware was built after the floor);
  - after the first sync: within MAX_STEP_MS of the node's own running clock, which keeps wall time from
    its monotonic tick between syncs (clock.py); a server that jumps (to 2036, to 2101, by an hour) is not
    followed, unless STEP_CONFIRM replies in a row agree on the step (so a wrong first sync is not kept for
    good; the gateway flags a node clock that is off, docs/protocol.md). Crystal drift is about 0.2 s an hour.
NTP seconds count from 1900 in 32 bits: values with the top bit clear are in the era after 2036-02-07.
"""

import socket
import struct

POLL_MS = 10
_ETIMEDOUT = 110


async def exchange(clock, addr, request, timeout_ms, accept):
    """Send `request` to addr (IP literal, port); the first reply `accept(reply)` turns into something other
    than None, or OSError(ETIMEDOUT) after `timeout_ms` of the clock."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.sendto(request, socket.getaddrinfo(addr[0], addr[1])[0][-1])  # an IP literal: no lookup
        t0 = clock.ticks_ms()
        while clock.ticks_diff(clock.ticks_ms(), t0) < timeout_ms:
            try:
                data = s.recv(576)
            except OSError:  # EAGAIN: nothing yet (or an ICMP error: wait for the timeout all the same)
                data = None
            out = accept(data) if data else None
            if out is not None:
                return out
            await clock.sleep_ms(POLL_MS)
    finally:
        s.close()
    raise OSError(_ETIMEDOUT, "udp: no answer from %s:%d" % (addr[0], addr[1]))


def is_ip(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)


def _query(name, qid):
    q = bytearray(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0))  # recursion desired, one question
    for label in name.split("."):
        q.append(len(label))
        q += label.encode()
    q += b"\x00\x00\x01\x00\x01"  # type A, class IN
    return q


def _skip(b, off):
    """Past a name at `off`: labels up to a zero, or a compression pointer (RFC 1035 4.1.4)."""
    while b[off]:
        if b[off] & 0xC0 == 0xC0:
            return off + 2
        off += b[off] + 1
    return off + 1


def _answer(reply, qid):
    """The first A record of a reply to `qid` as text; "" when the server says there is none; None: not ours."""
    if len(reply) < 12:
        return None
    rid, flags, qd, an = struct.unpack_from("!HHHH", reply)
    if rid != qid or not flags & 0x8000:
        return None
    off = 12
    try:
        for _ in range(qd):
            off = _skip(reply, off) + 4
        for _ in range(an if not flags & 0xF else 0):
            off = _skip(reply, off)
            typ, _cls, _ttl, n = struct.unpack_from("!HHIH", reply, off)
            off += 10
            if typ == 1 and n == 4:
                return "%d.%d.%d.%d" % tuple(reply[off : off + 4])
            off += n
    except (IndexError, ValueError):  # a truncated or malformed reply says nothing
        pass
    return ""


class Resolver:
    def __init__(self, clock, link, timeout_ms=2000):
        self.clock = clock
        self.link = link
        self.timeout_ms = timeout_ms
        self._cache = {}  # name -> the last address it resolved to
        self._qid = 0

    async def resolve(self, host):
        """An address for `host`, from DNS within timeout_ms or from the cache; OSError if neither has one."""
        server = self.link.dns_server() if not is_ip(host) else None
        if server is None:
            return host
        self._qid = (self._qid + 1 + (self.clock.ticks_ms() & 0xFF)) & 0xFFFF
        qid = self._qid
        try:
            ip = await exchange(self.clock, server, _query(host, qid), self.timeout_ms, lambda r: _answer(r, qid))
        except OSError as e:
            ip = self._cache.get(host)
            print("dns:", host, "not resolved (%s)," % e, "using the last address" if ip else "no address")
        if not ip:
            raise OSError(_ETIMEDOUT, "dns: no address for " + host)
        self._cache[host] = ip
        return ip


NTP_TIMEOUT_MS = 1500
MAX_STEP_MS = 60000
STEP_CONFIRM = 3  # replies in a row that must agree on a larger step before the clock takes it
FLOOR_MS = 1735689600000  # 2025-01-01
CEILING_MS = 4102444800000  # 2100-01-01
RETRY_MS = 60000  # after a failed or refused exchange
_NTP_UNIX_S = 2208988800  # 1900-01-01 -> 1970-01-01


def request(nonce):
    """48 bytes: LI 0, version 4, mode 3 (client); `nonce` (8 bytes) as the transmit timestamp."""
    return b"\x23" + bytes(39) + nonce


def reply_ms(reply, nonce):
    """(Unix ms of the server's transmit timestamp, None) or (None, why the reply is refused)."""
    if len(reply) < 48 or reply[24:32] != nonce:
        return None, "not an answer to our request"
    li, vn, mode, stratum = reply[0] >> 6, (reply[0] >> 3) & 7, reply[0] & 7, reply[1]
    if mode != 4 or not 3 <= vn <= 4:
        return None, "mode %d version %d" % (mode, vn)
    if li == 3:
        return None, "server not synchronised (leap indicator 3)"
    if not 1 <= stratum <= 15:
        return None, "stratum %d" % stratum + (" (kiss-o'-death)" if stratum == 0 else "")
    sec, frac = struct.unpack_from("!II", reply, 40)
    if sec == 0 and frac == 0:
        return None, "zero transmit timestamp"
    if not sec & 0x80000000:
        sec += 0x100000000  # era 1
    return (sec - _NTP_UNIX_S) * 1000 + (frac * 1000 >> 32), None


class TimeSync:
    def __init__(self, clock, link, resolver, counts, interval_ms):
        self.clock = clock
        self.link = link
        self.resolver = resolver
        self.counts = counts
        counts["time_refused"] = 0
        self.interval_ms = interval_ms
        self._last = None  # tick of the last exchange tried
        self._wait = 0
        self._step = None  # (step ms, replies in a row that said it): a large step waiting to be confirmed

    def soon(self):
        """Ask the server at the next chance (the simulator's clock_jump fault; a person at the REPL)."""
        self._last = None

    def due(self):
        return self._last is None or self.clock.ticks_diff(self.clock.ticks_ms(), self._last) >= self._wait

    async def run(self):
        """Ask the server if due; set the clock if the answer is plausible. Never raises OSError."""
        server = self.link.ntp_server() if self.due() else None
        if server is None:
            return
        self._last = self.clock.ticks_ms()
        self._wait = RETRY_MS
        try:
            ms, problem = await self._ask(server)
        except OSError as e:
            ms, problem = None, repr(e)
        if ms is not None:
            problem = self._implausible(ms)
        if problem is not None:
            self.counts["time_refused"] += 1
            print("ntp: refused:", problem)
            return
        self.clock.set_unix_ms(ms)
        self._wait = self.interval_ms

    async def _ask(self, server):
        ip = await self.resolver.resolve(server[0])
        t0 = self.clock.ticks_ms()
        nonce = struct.pack("!II", t0 & 0xFFFFFFFF, (t0 * 2654435761) & 0xFFFFFFFF)
        ours = lambda r: r if r[24:32] == nonce else None  # noqa: E731
        reply = await exchange(self.clock, (ip, server[1]), request(nonce), NTP_TIMEOUT_MS, ours)
        ms, problem = reply_ms(reply, nonce)
        if ms is None:
            return None, problem
        return ms + self.clock.ticks_diff(self.clock.ticks_ms(), t0) // 2, None  # half the round trip

    def _implausible(self, ms):
        if not FLOOR_MS <= ms < CEILING_MS:
            return "time %d outside %d..%d" % (ms, FLOOR_MS, CEILING_MS)
        own = self.clock.unix_ms()
        step = 0 if own is None else ms - own
        if abs(step) <= MAX_STEP_MS:
            self._step = None
            return None
        # A larger step is taken only when the server says it STEP_CONFIRM times in a row (a wrong first sync
        # is not kept for good; one bad reply does not move the clock).
        seen = self._step[1] + 1 if self._step is not None and abs(step - self._step[0]) <= MAX_STEP_MS else 1
        self._step = (step, seen)
        if seen < STEP_CONFIRM:
            return "a step of %d ms against the node's own clock (%d of %d replies)" % (step, seen, STEP_CONFIRM)
        self._step = None
        return None
