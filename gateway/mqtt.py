"""The gateway's MQTT link (paho-mqtt 2.x): a persistent session, QoS 1, acknowledgements by hand.

The network thread only puts messages on the inbox queue (never blocks: Mosquitto drops QoS 1 messages for a
slow client past its queue limit). The writer thread acknowledges a batch with `ack_all()` (one write for all
its PUBACKs) after the batch is committed, and publishes through `publish()`. The gateway's own availability
is a retained status on `{prefix}/gateway/{instance}/status` with a last will.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import MqttSection
from gateway.ingest import Incoming, Outgoing
from gateway.logs import redact_url
from gateway.protocol import PROTOCOL_VERSION, Topics

log = logging.getLogger("gateway.mqtt")
_INFLIGHT = 1000  # our own QoS 1 publishes (receipts, verdicts, alerts) in flight at once
_PUBACK = struct.Struct("!BBH")  # MQTT 3.1.1 PUBACK: type 0x40, remaining length 2, message id


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """TCP_NODELAY: receipts, verdicts, alerts and PUBACKs are small packets written back to back; with Nagle
    each one after the first waits for the broker's delayed ACK (about 40 ms on Linux)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as e:
        log.warning("could not set TCP_NODELAY on the broker connection: %s", e)


class Link:
    def __init__(
        self,
        cfg: MqttSection,
        instance: str,
        topics: Topics,
        inbox: queue.SimpleQueue[Incoming],
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._cfg, self._instance, self._topics, self._inbox = cfg, instance, topics, inbox
        self._on_published = on_published
        self._client: Any = None
        self.gen = 0  # connection generation: bumped on every CONNACK
        self.subscribed = False
        parts = urlsplit(cfg.broker)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.tls = parts.scheme == "mqtts"

    @property
    def status_topic(self) -> str:
        return self._topics.gateway_status(self._instance)

    def subscriptions(self) -> list[str]:
        share = f"$share/{self._cfg.share_group}/" if self._cfg.share_group else ""
        return [share + t for t in self._topics.subscriptions()]

    def describe(self) -> str:
        return f"{redact_url(self._cfg.broker)} as {self._instance!r}, topics {', '.join(self.subscriptions())}"

    def _status(self, state: str) -> bytes:
        body = {"v": PROTOCOL_VERSION, "state": state, "instance": self._instance, "pid": os.getpid()}
        return json.dumps(body).encode()

    def start(self, password: str | None = None) -> None:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._instance,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        c.max_inflight_messages_set(_INFLIGHT)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 10)
        c.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        if self._cfg.username:
            c.username_pw_set(self._cfg.username, password)
        if self.tls:
            c.tls_set(ca_certs=self._cfg.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_socket_open = _no_delay
        self._client = c
        c.connect_async(self.host, self.port, keepalive=self._cfg.keepalive_s)
        c.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s (check mqtt.username and the password)",
                      redact_url(self._cfg.broker), reason)  # fmt: skip
            return
        self.gen += 1
        log.info("connected to %s (session present: %s)", redact_url(self._cfg.broker), flags.session_present)
        client.subscribe([(t, 1) for t in self.subscriptions()])

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        refused = [t for t, r in zip(self.subscriptions(), reasons, strict=False) if r.is_failure]
        if refused:
            log.error("broker refused the subscriptions %s: check the gateway user's ACL", ", ".join(refused))
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        self.subscribed = True

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._inbox.put(Incoming(msg.topic, msg.payload, msg.mid, msg.qos, self.gen))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if self._on_published is not None:
            self._on_published(mid)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.subscribed = False
        if reason.is_failure:
            log.warning("lost the broker (%s); reconnecting", reason)

    def publish(self, out: Outgoing) -> int:
        """Queue a publish; returns its message id (for on_published)."""
        info = self._client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain)
        return int(info.mid)

    def ack(self, msg: Incoming) -> None:
        """PUBACK one message, on the connection it came in on (else the broker redelivers it: harmless)."""
        if msg.qos > 0 and msg.gen == self.gen:
            self._client.ack(msg.mid, msg.qos)

    def ack_all(self, msgs: list[Incoming]) -> None:
        """PUBACK a batch, each message on the connection it came in on, as one write to the socket.

        paho's `ack()` queues every 4-byte PUBACK as its own packet: one wake-up of the network thread and one
        send() (one TCP segment, with TCP_NODELAY) per message, about a third of the gateway's CPU under load.
        Here the PUBACKs of a batch are concatenated and queued as one packet (`Client._packet_queue`, paho
        2.2.0 as pinned in pyproject.toml); the broker reads the same PUBACKs from the stream.
        """
        gen = self.gen
        mids = [m.mid for m in msgs if m.qos == 1 and m.gen == gen]
        for m in msgs:
            if m.qos == 2:
                self.ack(m)
        if mids:
            blob = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            self._client._packet_queue(mqtt.PUBACK, blob, 0, 0)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish our own offline status (a clean disconnect sends no will), then disconnect."""
        if self._client is None:
            return
        if self._client.is_connected():
            info = self._client.publish(self.status_topic, self._status("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as e:
                log.warning("could not publish the offline status: %s", e)
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None
