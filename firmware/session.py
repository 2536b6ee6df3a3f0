"""The node's MQTT session: connect with a retained last will, retained status online, subscriptions.

One `Session` per node, reused across reconnects: `open()` connects (CONNECT with the will: offline, retained,
on the status topic), publishes the retained status (online, fw, boot, config_id and the last config_error)
and subscribes to every downlink topic of the contract. `stop()` ends it cleanly (offline published and
acknowledged, then DISCONNECT); `drop()` ends it as a power cut does (the socket closed without DISCONNECT, so
the broker publishes the will). What must be resent is the outbox's business, not the client's.

broker: {"host", "port", "tls", "user", "password", "keepalive_s", optional "cafile" (PEM or DER)}. Without
"cafile", TLS encrypts but does not verify the broker's certificate.
"""

import binascii

import contract
import message
import mqtt

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


def _ssl(b):
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


class Session:
    def __init__(self, broker, prefix, identity, clock, **callbacks):
        """callbacks: on_message(topic, payload, retain), on_puback(pid), on_down(reason), as mqtt.Client's."""
        self.broker = broker
        self.identity = identity
        self.clock = clock
        self.prefix = prefix
        self.config_error = None  # why the last pushed config was refused, reported in status
        self._callbacks = callbacks
        self.client = None

    def topic(self, kind):
        return contract.topic(self.prefix, self.identity["site"], self.identity["node"], kind)

    @property
    def connected(self):
        return self.client is not None and self.client.connected

    def will(self):
        """(topic, payload) of the last will: status offline, published by the broker when the node is gone."""
        return self.topic("status"), message.encode(contract.STATUS, {"v": contract.VERSION, "state": OFFLINE})

    def _make_client(self):
        b = self.broker
        will = self.will()
        cid = "node-" + self.identity["site"] + "-" + self.identity["node"]
        return mqtt.Client(
            self.clock, cid, b["host"], b["port"], b.get("keepalive_s", 60), False, user=b.get("user"),
            password=b.get("password"), ssl=_ssl(b), will=will + (1, True), **self._callbacks,
        )  # fmt: skip

    async def open(self, progress):
        """Connect, status online, subscribe; `progress()` is called between the steps (each may take up to
        the client's timeout)."""
        if self.client is None:
            self.client = self._make_client()
        c = self.client
        await c.connect(resend=False)  # the outbox, not the client, holds what must be resent
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
        return message.encode(contract.STATUS, s)

    async def publish_status(self, state=ONLINE):
        if self.client is not None:
            await self.client.publish(self.topic("status"), self.status(state), qos=1, retain=True)

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
