"""The reading half of the MQTT client (mqtt.py): packets from the broker, and the keepalive.

A reader task takes packets as they come: PUBLISH goes to `on_message` (and is PUBACKed for QoS 1), PUBACK
frees `inflight`, SUBACK wakes `subscribe()`. A packet over `max_packet` is skipped (and acknowledged), never
buffered. A PINGREQ goes out every keepalive/2; no answer within keepalive/2 closes the connection.
Functions over an mqtt.Client `c`, whose state (inflight, kw, clock, close, _send) they use.
"""

from packet import PINGREQ, parse_publish, puback_packet

CLOSED = "read: closed by broker"  # the broker ended the connection (MQTT 3.1.1 gives no reason)


async def read_loop(c, r):
    try:
        while True:
            first = (await r.readexactly(1))[0]
            n = 0
            for shift in (0, 7, 14, 21):
                b = (await r.readexactly(1))[0]
                n |= (b & 0x7F) << shift
                if not b & 0x80:
                    break
            body = await r.readexactly(n) if n <= c.max_packet else None
            if body is None:
                await skip(c, r, first, n)
                continue
            c.ping_out = None
            await dispatch(c, first, body)
    except (OSError, EOFError, ValueError, IndexError) as e:
        c.close(CLOSED if isinstance(e, EOFError) else "read: " + repr(e))


async def skip(c, r, first, n):
    print("mqtt: dropping a packet of", n, "bytes (max_packet", c.max_packet, ")")
    head = await r.readexactly(min(n, 256))
    n -= len(head)
    while n:
        n -= len(await r.readexactly(min(n, 256)))
    c.ping_out = None
    if first >> 4 == 3 and (first >> 1) & 3:
        k = ((head[0] << 8) | head[1]) + 2
        await c.send(puback_packet((head[k] << 8) | head[k + 1]))


async def dispatch(c, first, body):
    kind = first >> 4
    if kind == 3:  # PUBLISH
        topic, payload, qos, retain, pid = parse_publish(first, body)
        cb = c.kw.get("on_message")
        if cb is not None:
            try:
                cb(topic, payload, retain)
            except Exception as e:  # a bad handler must not kill the session; counted and logged
                c.callback_errors += 1
                print("mqtt: on_message failed:", repr(e))
        if qos:
            await c.send(puback_packet(pid))
    elif kind == 4:  # PUBACK
        pid = (body[0] << 8) | body[1]
        if c.inflight.pop(pid, None) is not None and c.kw.get("on_puback") is not None:
            c.kw["on_puback"](pid)
        if not c.inflight:
            c.idle.set()
    elif kind == 9:  # SUBACK
        w = c.subacks.get((body[0] << 8) | body[1])
        if w is not None:
            w[1] = body[2]
            w[0].set()


async def keepalive(c):
    half = c.keepalive_s * 500
    last_ping = c.clock.ticks_ms()
    while c.connected:
        await c.clock.sleep_ms(max(100, half // 4))
        now = c.clock.ticks_diff
        t = c.clock.ticks_ms()
        if c.ping_out is not None and now(t, c.ping_out) > half:
            c.close("no PINGRESP within " + str(half) + " ms")
            return
        if now(t, last_ping) >= half:
            last_ping = t
            if c.ping_out is None:
                c.ping_out = t
            c.pings += 1
            try:
                await c.send(PINGREQ)
            except OSError:
                return  # _send closed and reported it
