"""MQTT 3.1.1 packets as bytes: the codec of the node's MQTT client (mqtt.py), without any I/O.

Layouts follow the MQTT 3.1.1 OASIS standard, section 3 (cited per packet below). Tested at the byte level
(tests/firmware/test_mqtt.py, and the same bytes under MicroPython: tests/firmware/mp/net_mqtt_codec.py).
"""

PINGREQ = b"\xc0\x00"  # 3.12
DISCONNECT = b"\xe0\x00"  # 3.14


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
