"""The gateway on an MQTT broker (paho-mqtt 2.x): one factory for paho clients, and the service's transport.

`client()` builds every paho client the gateway uses (`run`, `push-config`): the broker URL (mqtt:// or
mqtts://), the credentials (gateway.config.mqtt_password: environment or password file), TLS with
CERT_REQUIRED and the configured CA file.

`MqttTransport` (gateway/transport.py) is a persistent session at QoS 1 with acknowledgements by hand. It runs
paho on a network thread of its own through paho's public external-loop API (`socket()`, `want_write()`,
`loop_read()`, `loop_write()`, `loop_misc()`, `on_socket_register_write`) instead of `loop_start()`: the
service's thread only queues packets (publishes, `ack()`s), and the network thread writes everything queued
with one `loop_write()`, corked (TCP_CORK), so the PUBACKs of a committed batch leave in one TCP segment
instead of one wake-up of paho's thread and one segment per message (a third of the gateway's CPU under load,
docs/benchmarks.md). The network thread only puts messages on the inbox (it never blocks: Mosquitto drops
QoS 1 messages for a slow client past its queue limit). The gateway's own availability is a retained status
on `{prefix}/gateway/{instance}/status` with a last will.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import Config, MqttSection, mqtt_password
from gateway.errors import ConfigError
from gateway.ingest import Incoming, Outgoing
from gateway.logs import redact_url
from gateway.protocol import PROTOCOL_VERSION, Topics

log = logging.getLogger("gateway.mqtt")
_INFLIGHT = 1000  # our own QoS 1 publishes (receipts, verdicts, alerts) in flight at once
_TICK_S = 1.0  # the network thread's longest wait: keepalive and the stop flag are looked at this often
_READ_BURST = 64  # packets read between two select() calls at most
_RECONNECT_S = (1.0, 10.0)  # first and longest wait between connection attempts
_CORK = getattr(socket, "TCP_CORK", None)  # Linux; elsewhere the queued packets go out as they are written


def broker_address(cfg: MqttSection) -> tuple[str, int]:
    parts = urlsplit(cfg.broker)
    return parts.hostname or "127.0.0.1", parts.port or (8883 if parts.scheme == "mqtts" else 1883)


def client(cfg: MqttSection, client_id: str, *, session: bool = False, manual_ack: bool = False) -> mqtt.Client:
    """A paho client for the configured broker (MQTT 3.1.1), credentials and TLS set; not connected.

    `session`: a persistent session (clean_session=False) so the broker keeps QoS 1 messages while we are away.
    ConfigError (naming the file) for a password file or CA file that cannot be read."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not session,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if cfg.username:
        c.username_pw_set(cfg.username, mqtt_password(cfg))
    if urlsplit(cfg.broker).scheme == "mqtts":
        if cfg.ca_file and not Path(cfg.ca_file).is_file():
            raise ConfigError(f"mqtt.ca_file: no such file {cfg.ca_file} (the CA certificate of the broker, PEM)")
        try:
            c.tls_set(ca_certs=cfg.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            what = cfg.ca_file or "the system's CA certificates"
            raise ConfigError(f"mqtt.ca_file: cannot use {what} as CA certificates: {e}") from None
    return c


def transport(cfg: Config) -> MqttTransport:
    """The `run` command's transport: a persistent session named after the gateway instance."""
    c = client(cfg.mqtt, cfg.gateway.instance, session=True, manual_ack=True)
    return MqttTransport(c, cfg.mqtt, cfg.gateway.instance, Topics(cfg.mqtt.topic_prefix))


def _no_delay(sock: Any) -> None:
    """TCP_NODELAY: receipts, verdicts, alerts and PUBACKs are small packets written back to back; with Nagle
    each one after the first waits for the broker's delayed ACK (about 40 ms on Linux)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as e:
        log.warning("could not set TCP_NODELAY on the broker connection: %s", e)


def _cork(sock: Any, on: bool) -> None:
    """TCP_CORK (tcp(7)): while set, the kernel only sends full segments; clearing it sends what is held."""
    if _CORK is not None:
        with contextlib.suppress(OSError, AttributeError):  # closed by the write itself (DISCONNECT), or not TCP
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, int(on))


class MqttTransport:
    """Constructed without I/O from a client made by `client()`; `start()` connects on a thread of its own."""

    def __init__(self, client: mqtt.Client, cfg: MqttSection, instance: str, topics: Topics) -> None:
        self._client, self._cfg, self._instance, self._topics = client, cfg, instance, topics
        self.inbox: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self.acknowledged: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.gen = 0  # connection generation: bumped on every accepted CONNACK
        self._packets = 0  # messages and PUBACKs read (the network thread's own count)
        self._batch = threading.Lock()  # held while a batch's PUBACKs are queued, so one write carries them all
        self._stopping = threading.Event()
        self._wake_r: socket.socket  # a socket pair (made by start): the service's thread wakes the network thread
        self._wake_w: socket.socket
        self._thread = threading.Thread(target=self._run, name="mqtt-transport", daemon=True)

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

    def start(self) -> None:
        c = self._client
        c.max_inflight_messages_set(_INFLIGHT)
        c.max_queued_messages_set(0)
        c.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_socket_open = lambda client, userdata, sock: _no_delay(sock)
        # Set, paho queues a packet and calls this instead of writing from the caller's thread: only the
        # network thread touches the socket.
        c.on_socket_register_write = lambda client, userdata, sock: self._wake()
        host, port = broker_address(self._cfg)
        c.connect_async(host, port, keepalive=self._cfg.keepalive_s)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread.start()

    def publish(self, out: Outgoing) -> int:
        """Queue a publish; returns its message id (put on `acknowledged` when the broker has it)."""
        return int(self._client.publish(out.topic, out.payload, qos=out.qos, retain=out.retain).mid)

    def acknowledge(self, batch: Sequence[Incoming]) -> None:
        """PUBACK a committed batch, each message on the connection it came in on (else the broker redelivers
        it: harmless). Queued after the publishes before it, written by the network thread in one go."""
        gen = self.gen
        with self._batch:
            for m in batch:
                if m.qos > 0 and m.gen == gen:
                    self._client.ack(m.mid, m.qos)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish our own offline status (a clean disconnect sends no will), then disconnect."""
        if not self._thread.is_alive():
            return
        if self.ready.is_set():
            info = self._client.publish(self.status_topic, self._status("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as e:
                log.warning("could not publish the offline status: %s", e)
        self._stopping.set()
        self._client.disconnect()
        self._wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the MQTT network thread did not end within %g s", timeout)
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a wake-up already pending (the pair is full), or we are stopping
            self._wake_w.send(b"\0")

    # The network thread.

    def _run(self) -> None:
        wait = _RECONNECT_S[0]
        while not self._stopping.is_set():
            gen = self.gen
            try:
                self._client.reconnect()
            except (OSError, ValueError) as e:
                log.warning("cannot reach the broker %s: %s; retrying in %g s", redact_url(self._cfg.broker), e, wait)
            else:
                self._serve()
            if self.gen != gen:
                wait = _RECONNECT_S[0]  # it was up: the next attempt starts from the shortest wait again
            if not self._stopping.wait(wait):
                wait = min(wait * 2, _RECONNECT_S[1])
        sock = self._client.socket()
        if sock is not None:
            sock.close()  # stop() gave up waiting for the DISCONNECT to be written

    def _serve(self) -> None:
        """Until the connection closes (lost, refused, or our DISCONNECT written)."""
        c = self._client
        stop_by = None
        while (sock := c.socket()) is not None:
            if self._stopping.is_set():
                stop_by = stop_by or time.monotonic() + _TICK_S
                if time.monotonic() > stop_by:
                    return
            buffered = getattr(sock, "pending", lambda: 0)()  # TLS: bytes decrypted already, select cannot see them
            wait = 0.0 if buffered else _TICK_S
            readable, _, _ = select.select([sock, self._wake_r], [sock] if c.want_write() else [], [], wait)
            if self._wake_r in readable:
                self._wake_r.recv(4096)
            if sock in readable or buffered:
                self._read(c)
            if c.want_write() and c.socket() is sock:
                with self._batch:
                    _cork(sock, True)
                    c.loop_write()
                    _cork(sock, False)
            c.loop_misc()

    def _read(self, c: mqtt.Client) -> None:
        """Up to _READ_BURST packets while they keep coming (paho's `loop_read()` reads one packet of QoS 1 per
        call): one select() per burst instead of one per message. A packet that calls back nothing (PINGRESP)
        ends the burst early; the next select() sees what is left."""
        for _ in range(_READ_BURST):
            before = self._packets
            if c.loop_read() != mqtt.MQTT_ERR_SUCCESS or self._packets == before:
                return

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
        self.ready.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._packets += 1
        self.inbox.put(Incoming(msg.topic, msg.payload, msg.mid, msg.qos, self.gen))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._packets += 1
        self.acknowledged.put(mid)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.ready.clear()
        if reason.is_failure:
            log.warning("lost the broker (%s); reconnecting", reason)
