"""Commands from the gateway, authenticated end to end: HMAC-SHA256 (RFC 2104) with the node's own key, and a
counter that must increase, so neither a broker account nor the broker itself can forge or replay a receipt
(which deletes scans), a verdict (shown to staff) or a config (which changes how the node screens).

Wire form (docs/protocol.md, "Signed downlink"): the gateway writes the JSON object with a `ctr` field, then
appends the MAC as the last member, `,"sig":"<64 hex digits>"}`. The MAC is over the topic, a newline, and
the payload as it was before `sig` was appended (its bytes, not a re-encoding: MicroPython and CPython write
floats differently):
    sig = HMAC-SHA256(key, topic + "\\n" + payload_without_sig)
`ctr` (int): receipts and verdicts must carry one above the last accepted; a config one above the last
applied config's (its retained copy, the same ctr, comes back at every connect and is ignored). Both counters
are persisted (`Guard`), so a reboot does not reopen a replay. MicroPython subset: hashlib.sha256 only.
"""

import hashlib

SIG_HEAD = b',"sig":"'
SIG_LEN = len(SIG_HEAD) + 64 + 2  # the appended member: ,"sig":"<64 hex>"}
_BLOCK = 64  # SHA-256's block size, bytes (RFC 2104 section 2: B)
CONFIG = "config"


def hmac_sha256(key, msg):
    """RFC 2104 HMAC with SHA-256: H(K ^ opad, H(K ^ ipad, msg))."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes([b ^ 0x36 for b in key]))
    inner.update(msg)
    outer = hashlib.sha256(bytes([b ^ 0x5C for b in key]))
    outer.update(inner.digest())
    return outer.digest()


def _hex(b):
    return "".join(["%02x" % x for x in b]).encode()


def seal(key, topic, payload):
    """`payload` (a JSON object's bytes, ending with "}") with its MAC appended as the last member."""
    if payload[-1:] != b"}":
        raise ValueError("seal: not a JSON object")
    mac = _hex(hmac_sha256(key, topic.encode() + b"\n" + payload))
    return payload[:-1] + SIG_HEAD + mac + b'"}'


def _same(a, b):
    """Compare two MACs in time independent of where they differ."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


def verify(key, topic, payload):
    """None if `payload` carries a valid MAC for `topic` under `key`, else why not."""
    if len(payload) <= SIG_LEN or payload[-SIG_LEN : -SIG_LEN + len(SIG_HEAD)] != SIG_HEAD or payload[-2:] != b'"}':
        return "unsigned"
    signed = payload[:-SIG_LEN] + b"}"
    want = _hex(hmac_sha256(key, topic.encode() + b"\n" + signed))
    return None if _same(want, payload[-66:-2]) else "bad_signature"


class Guard:
    """The node's check of every downlink message: MAC and counter. `path`: a small file holding the two
    counters (last accepted, last applied config), replaced atomically at every accepted message."""

    def __init__(self, key_hex, path):
        self.key = bytes([int(key_hex[i : i + 2], 16) for i in range(0, len(key_hex), 2)])
        self.path = path
        self.last, self.config = self._load()

    def _load(self):
        try:
            with open(self.path) as f:
                parts = f.read().split()
            return int(parts[0]), int(parts[1])
        except (OSError, ValueError, IndexError):
            return 0, 0  # a new node: the first message is fresh

    def _save(self):
        import os

        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (self.last, self.config))
        os.rename(tmp, self.path)

    def signed(self, topic, payload):
        """None if the payload's MAC is right (checked before the payload is even parsed), else why not."""
        return verify(self.key, topic, payload)

    def fresh(self, kind, msg):
        """None to act on the signed, checked message `msg` (its counter is recorded), "" to ignore it quietly
        (the same message again: a QoS 1 redelivery, the retained config at a connect), else why it is refused."""
        ctr = msg.get("ctr")
        if not isinstance(ctr, int) or isinstance(ctr, bool):
            return "no_counter"
        last = self.config if kind == CONFIG else self.last
        if ctr == last:
            return ""
        if ctr < last:
            return "replay"
        if kind == CONFIG:
            self.config = ctr
        else:
            self.last = ctr
        self._save()
        return None
