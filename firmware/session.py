"""The node's MQTT session: connect with a retained last will, retained status online, subscriptions.

One `Session` per node, reused across reconnects: `open()` connects (CONNECT with the will: offline, retained,
on the status topic), publishes the retained status (online, fw, boot, config_id and the last config_error)
and subscribes to every downlink topic of the contract. `stop()` ends it cleanly (offline published and
acknowledged, then DISCONNECT); `drop()` ends it as a power cut does (the socket closed without DISCONNECT, so
the broker publishes the will). What must be resent is the outbox's business, not the client's.

Two units under one name (a copied config) share one client id, and with the production broker's
use_username_as_clientid one account: whatever the firmware does, each CONNECT ends the other's session. A
session the broker ends while the link is up (MQTT 3.1.1 gives no reason) is counted as `taken_over` (in status)
and each one in a row doubles the wait before the next attempt (`retry_ms`), so the two settle at one takeover
per backoff_max_s each instead of one a second; the gateway's identity_clash alert names both units.

broker: {"host", "port", "tls", "cafile" (PEM or DER), "user", "password", "keepalive_s"}. With "tls" the
broker must show a certificate signed by the CA in "cafile" for the name in "host" (CERT_REQUIRED and the host
name checked, docs/security.md); otherwise `open()` raises `Refused` before a byte of CONNECT (and so the
password) is written, and `refused` says why (the uplink logs it, the link LED shows it). TLS without a CA is
refused outright: encryption to whoever answers protects nothing.
"""

import binascii

import contract
import message
import mqtt
import mqttread

ONLINE, OFFLINE = contract.STATES
_ERROR_MAX = 200  # contract.STATUS config_error


def _der(path):
    """The CA certificate in `path` (PEM or DER) as DER: what both MicroPython's mbedTLS and CPython take."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"-----BEGIN"):
        lines = data.split(b"-----END")[0].split(b"\n")[1:]
        data = binascii.a2b_base64(b"".join([x.strip() for x in lines]))
    return data


class Refused(OSError):
    """The broker failed verification (certificate, host name) or TLS has no CA: nothing was sent to it."""


def _ssl(b):
    """The TLS context for the broker: its certificate verified against broker.cafile and its host name checked
    (server_hostname, set by mqtt.py); None without TLS."""
    if not b.get("tls"):
        return None
    if not b.get("cafile"):
        raise Refused("broker.tls needs broker.cafile: not connecting to an unverified broker")
    import ssl

    try:
        der = _der(b["cafile"])
    except OSError as e:
        raise Refused("cannot read broker.cafile " + b["cafile"] + ": " + str(e))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CPython: check_hostname is on by default with this protocol
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=der)
    return ctx


def _verify_failure(e):
    """Why the TLS handshake refused the broker, or None if `e` is not a verification failure. MicroPython's
    mbedTLS raises ValueError ("The certificate is not correctly signed by the trusted CA", "... Common Name (CN)
    does not match ..."); CPython raises ssl.SSLCertVerificationError (an OSError)."""
    if isinstance(e, ValueError):
        return str(e).strip() or "certificate verification failed"
    if type(e).__name__ == "SSLCertVerificationError":
        return str(getattr(e, "verify_message", "") or e)
    return None


def members(b):
    """[(host, port)] of a checked broker config (config.py): each of broker.hosts ("host" or "host:port", port
    default broker.port), else broker.host alone."""
    out = []
    for h in b.get("hosts") or [b["host"]]:
        host, _, port = h.partition(":")
        out.append((host, int(port) if port else b["port"]))
    return out


class Session:
    def __init__(self, broker, prefix, identity, clock, **callbacks):
        """callbacks: on_message(topic, payload, retain), on_puback(pid), on_down(reason), as mqtt.Client's."""
        self.broker = broker
        self.identity = identity
        self.clock = clock
        self.prefix = prefix
        self.config_error = None  # why the last pushed config was refused, reported in status
        self.refused = None  # why the broker failed verification at the last attempt (None: it did not)
        self.auth_refused = 0  # downlink messages refused for their signature or counter (auth.py)
        self.auth_error = None  # the last such reason, reported in status with the count
        self.taken_over = 0  # sessions the broker ended while the link was up (another unit with this id?)
        self._lost = 0  # of those, in a row
        self._opened = 0  # tick the session opened
        self._callbacks = callbacks
        self.client = None
        self.members = members(broker)  # [(host, port)]: broker.hosts, or broker.host alone
        self.member = 0  # the one connected to, or tried next

    def topic(self, kind):
        return contract.topic(self.prefix, self.identity["site"], self.identity["node"], kind)

    @property
    def connected(self):
        return self.client is not None and self.client.connected

    def will(self):
        """(topic, payload) of the last will: status offline, published by the broker when the node is gone."""
        return self.topic("status"), message.encode(contract.STATUS, {"v": contract.VERSION, "state": OFFLINE})

    def where(self):
        return "%s:%d" % self.members[self.member % len(self.members)]

    def next_member(self):
        """After a failed attempt, the next member of broker.hosts (round robin; a client of its own, whose
        host name TLS checks). What must be resent is the outbox's: every unreceipted record goes again."""
        if len(self.members) > 1:
            self.close("moving")
            self.client = None
            self.member += 1
            print("session: moving to broker member", self.where())

    def _make_client(self):
        b = self.broker
        will = self.will()
        cid = "node-" + self.identity["site"] + "-" + self.identity["node"]
        host, port = self.members[self.member % len(self.members)]
        return mqtt.Client(
            self.clock, cid, host, port, b.get("keepalive_s", 60), False, user=b.get("user"),
            password=b.get("password"), ssl=_ssl(b), will=will + (1, True), **self._callbacks,
        )  # fmt: skip

    async def open(self, progress):
        """Connect, status online, subscribe; `progress()` is called between the steps (each may take up to
        the client's timeout)."""
        try:
            if self.client is None:
                self.client = self._make_client()
            await self.client.connect(resend=False)  # the outbox, not the client, holds what must be resent
        except (OSError, ValueError) as e:
            why = e.args[0] if isinstance(e, Refused) else _verify_failure(e)
            if why is None:
                raise
            self.refused = why
            print("session: broker", self.where(), "refused, not connecting:", why)
            raise Refused(why)
        self.refused = None
        self._opened = self.clock.ticks_ms()
        c = self.client
        progress()
        await self.publish_status()
        for kind in contract.DOWNLINK:
            progress()
            await c.subscribe(self.topic(kind), 1)

    def status(self, state=ONLINE):
        i = self.identity
        s = {"v": contract.VERSION, "state": state}
        if state == ONLINE:
            s["fw"], s["boot"], s["config_id"] = i["fw"], i["boot"], i["config_id"]
            if self.config_error is not None:
                s["config_error"] = self.config_error[:_ERROR_MAX]
            if i.get("sensor_error"):
                s["sensor_error"] = i["sensor_error"]  # the node refuses to screen (node.py)
            if self.taken_over:
                s["taken_over"] = self.taken_over
            if self.auth_refused:
                s["auth_refused"] = self.auth_refused
                s["auth_error"] = (self.auth_error or "refused")[:_ERROR_MAX]
        return message.encode(contract.STATUS, s)

    async def publish_status(self, state=ONLINE):
        if self.client is not None:
            await self.client.publish(self.topic("status"), self.status(state), qos=1, retain=True)

    def retry_ms(self, base_ms, max_ms):
        """The wait before connecting again after a session that was up: `base_ms`, doubled for each session in
        a row the broker ended (taken over), up to `max_ms`; a session that lasted 2 x max_ms ends the run."""
        c = self.client
        if (
            c is None
            or c.error != mqttread.CLOSED
            or self.clock.ticks_diff(self.clock.ticks_ms(), self._opened) > 2 * max_ms
        ):
            self._lost = 0
            return base_ms
        self.taken_over += 1
        self._lost += 1
        print("session: taken over", self.taken_over, "times: another unit under this name?")
        return min(base_ms << (self._lost - 1), max_ms)

    def close(self, reason):
        """Drop the connection (no DISCONNECT) without calling on_down."""
        if self.client is not None:
            self.client.close(reason, report=False)

    def drop(self):
        """The power is gone: the socket closes without DISCONNECT, so the broker publishes the will."""
        if self.client is not None:
            self.client.close("power cut")

    async def stop(self):
        """Publish offline (retained), wait for its PUBACK, DISCONNECT."""
        c = self.client
        if c is not None and c.connected:
            await self.publish_status(OFFLINE)
            await c.wait_acked(c.timeout_ms)
            await c.disconnect()
