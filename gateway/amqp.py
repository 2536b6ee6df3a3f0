"""The gateway on a RabbitMQ cluster (AMQP 0-9-1, pika): the transport of gateway/transport.py for `amqp://`.

Nodes speak MQTT to any member of the cluster; RabbitMQ's MQTT plugin publishes what they send to the
`amq.topic` exchange, the MQTT topic turned into a routing key ('/' becomes '.', so
`checkpoint/v1/bridge/n1/scan` is `checkpoint.v1.bridge.n1.scan`). The gateway consumes from one durable
*quorum* queue (`checkpoint-<share_group or "ingest">`, replicated on the members, declared by the gateway),
bound to amq.topic with the routing keys of every node topic (`checkpoint.v1.*.*.scan`, ...): every instance
of the gateway consumes from the same queue, so the queue is the work queue that `$share` is on Mosquitto.

Ack-after-commit, as on MQTT: messages are acknowledged (`basic.ack`, multiple, up to the batch's last delivery
tag) only after the service committed them; a gateway that dies leaves them unacknowledged and the queue gives
them to another consumer (stored nothing twice: insert-or-ignore). `prefetch` bounds what one instance holds.

Receipts, verdicts, alert events and the gateway's status are published to amq.topic under the routing key
of their topic, persistent, with publisher confirms: a confirm puts the publish's id on `acknowledged`. The
nodes' and medics' MQTT subscriptions on any member get them. AMQP has no retained messages: `retain` is
dropped here (the console is where open alerts are found; RabbitMQ 3.10 keeps retained messages per member
anyway, so nothing may depend on one crossing members: docs/scale.md) and there is no last will (the
gateway's status says "online" when it consumes and "offline" at a clean stop).

The broker URL names every member: `amqp://host1:5672,host2:5672,host3:5672/`. On a lost connection the
transport connects to the next member (the quorum queue lives on, with its unacknowledged messages).
`amqps://host1:5671,...` is the same over TLS: each member's certificate verified against mqtt.ca_file (or the
system's CAs) for the name it is reached by, as for mqtts://; a member that fails it is not talked to.

Threads: pika's SelectConnection runs on the transport's own thread. The service's thread only appends to a
queue of operations and wakes the connection's loop (`add_callback_threadsafe`, pika's one thread-safe call);
publishes and acks are carried out in the order they were asked for, publishes asked while disconnected are
sent once connected again (acks of an older connection are dropped: those messages come again).
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import queue
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import pika
from pika.adapters.select_connection import SelectConnection

from gateway.config import Config, mqtt_password
from gateway.errors import ConfigError
from gateway.ingest import Incoming, Outgoing
from gateway.protocol import PROTOCOL_VERSION, Topics

log = logging.getLogger("gateway.amqp")
EXCHANGE = "amq.topic"  # the MQTT plugin's exchange (mqtt.exchange)
DEFAULT_PORT = {"amqp": 5672, "amqps": 5671}
_RECONNECT_S = (0.5, 10.0)  # wait before the next member, and the longest wait after a round of failures


def routing_key(topic: str) -> str:
    """An MQTT topic (or filter) as the MQTT plugin routes it: '/' -> '.', '+' -> '*' ('#' stays)."""
    return topic.replace("/", ".").replace("+", "*")


def topic_of(key: str) -> str:
    return key.replace(".", "/")


def addresses(url: str) -> list[tuple[str, int]]:
    """(host, port) of each member in `amqp://h1:p1,h2:p2/` (a member without a port: 5672, 5671 for amqps).
    ValueError for a URL without one."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    out = []
    for part in filter(None, netloc.split(",")):
        host, _, port = part.rpartition(":") if part.count(":") == 1 else (part, "", "")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"{part!r} is not host:port")
        out.append((host, int(port) if port else DEFAULT_PORT.get(parts.scheme, 5672)))
    if not out:
        raise ValueError("names no broker")
    return out


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Verified TLS to every member: its certificate chains to `ca_file` (PEM; "" = the system's CAs) and names
    the host it is reached by. ConfigError for a CA file that is missing or unreadable."""
    try:
        return ssl.create_default_context(cafile=ca_file or None)  # CERT_REQUIRED, check_hostname
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        what = ca_file or "the system's CA certificates"
        raise ConfigError(f"mqtt.ca_file: cannot use {what} as CA certificates for amqps:// ({e})") from None


def queue_name(cfg: Config) -> str:
    return f"checkpoint-{cfg.mqtt.share_group or 'ingest'}"


def transport(cfg: Config) -> AmqpTransport:
    """The `run` command's transport on a cluster (credentials: mqtt.username and the MQTT password)."""
    # pika says every frame of a close at INFO and a lost member with a traceback at ERROR; what matters is said
    # by this module once, in words ("lost the broker member ...")
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    creds = pika.PlainCredentials(cfg.mqtt.username or "guest", mqtt_password(cfg.mqtt) or "guest")
    context = tls_context(cfg.mqtt.ca_file) if urlsplit(cfg.mqtt.broker).scheme == "amqps" else None
    params = [
        pika.ConnectionParameters(
            host=h,
            port=p,
            credentials=creds,
            heartbeat=cfg.mqtt.keepalive_s,
            connection_attempts=1,
            socket_timeout=5,
            client_properties={"connection_name": cfg.gateway.instance},
            ssl_options=pika.SSLOptions(context, h) if context is not None else None,
        )
        for h, p in addresses(cfg.mqtt.broker)
    ]
    prefetch = 2 * cfg.ingest.max_batch
    return AmqpTransport(params, queue_name(cfg), Topics(cfg.mqtt.topic_prefix), cfg.gateway.instance, prefetch)


class AmqpTransport:
    """Constructed without I/O; `start()` connects on a thread of its own (see the module docstring)."""

    def __init__(
        self, params: Sequence[pika.ConnectionParameters], work_queue: str, topics: Topics, instance: str, prefetch: int
    ) -> None:
        self._params, self.queue, self._topics, self._instance = list(params), work_queue, topics, instance
        self._prefetch = prefetch
        self.inbox: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self.acknowledged: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.gen = 0  # bumped each time a channel starts consuming
        self._ids = itertools.count(1)
        self._ops: collections.deque[Callable[[], None]] = collections.deque()  # asked by the service, in order
        self._conn: SelectConnection | None = None
        self._channel: Any = None  # pika's Channel once it consumes (set and read on the network thread)
        self._confirms: collections.deque[tuple[int, int]] = collections.deque()  # (delivery tag, publish id)
        self._tag = 0
        self._member = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amqp-transport", daemon=True)

    def bindings(self) -> list[str]:
        return [routing_key(t) for t in self._topics.subscriptions()]

    def describe(self) -> str:
        members = ",".join(f"{p.host}:{p.port}" for p in self._params)
        keys = ", ".join(self.bindings())
        return f"amqp://{members}/ as {self._instance!r}, quorum queue {self.queue!r} bound to {keys}"

    def _status(self, state: str) -> Outgoing:
        body = {"v": PROTOCOL_VERSION, "state": state, "instance": self._instance, "pid": os.getpid()}
        return Outgoing(self._topics.gateway_status(self._instance), json.dumps(body).encode())

    # The service's thread.

    def start(self) -> None:
        self._thread.start()

    def publish(self, out: Outgoing) -> int:
        sent = next(self._ids)
        self._ask(lambda: self._publish(out, sent))
        return sent

    def acknowledge(self, batch: Sequence[Incoming]) -> None:
        """One `basic.ack` (multiple) up to the batch's last delivery tag: every earlier message of the channel
        was in this batch or an earlier one (the service takes the inbox in order and acks batches in order)."""
        gen = self.gen
        tags = [m.mid for m in batch if m.gen == gen]
        if tags:
            last = max(tags)
            self._ask(lambda: self._ack(last, gen))

    def stop(self, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        if self.ready.is_set():
            self.publish(self._status("offline"))
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            conn.ioloop.add_callback_threadsafe(self._close)  # after the ops asked before (callbacks run in order)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the AMQP network thread did not end within %g s", timeout)

    def _ask(self, op: Callable[[], None]) -> None:
        self._ops.append(op)
        conn = self._conn
        if conn is not None:
            try:
                conn.ioloop.add_callback_threadsafe(self._run_ops)
            except Exception as e:
                log.debug("could not wake the AMQP loop: %s", e)

    # The network thread.

    def _run(self) -> None:
        wait = _RECONNECT_S[0]
        while not self._stopping.is_set():
            params = self._params[self._member % len(self._params)]
            gen = self.gen
            self._conn = SelectConnection(params, on_open_callback=self._on_open,
                                          on_open_error_callback=self._on_open_error,
                                          on_close_callback=self._on_closed)  # fmt: skip
            self._conn.ioloop.start()  # until _on_closed or _on_open_error stops it
            self._conn, self._channel = None, None
            self.ready.clear()
            if self._stopping.is_set():
                break
            self._member += 1
            if self.gen != gen:
                wait = _RECONNECT_S[0]
            elif self._member % len(self._params) == 0:
                wait = min(wait * 2, _RECONNECT_S[1])  # a whole round of members failed: back off
            self._stopping.wait(wait)

    def _on_open_error(self, conn: Any, error: BaseException) -> None:
        log.warning("cannot reach the broker member %s: %s; trying the next", _where(conn), _why(error))
        conn.ioloop.stop()

    def _on_closed(self, conn: Any, reason: BaseException) -> None:
        if not self._stopping.is_set():
            log.warning("lost the broker member %s (%s); moving to the next", _where(conn), reason)
        conn.ioloop.stop()

    def _on_open(self, conn: Any) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, ch: Any) -> None:
        ch.add_on_close_callback(self._on_channel_closed)
        ch.add_on_cancel_callback(self._on_cancelled)
        self._tag = 0
        self._confirms.clear()
        ch.confirm_delivery(self._on_confirm)
        ch.basic_qos(prefetch_count=self._prefetch)
        ch.queue_declare(self.queue, durable=True, arguments={"x-queue-type": "quorum"})
        for key in self.bindings():
            ch.queue_bind(self.queue, EXCHANGE, routing_key=key)
        ch.basic_consume(self.queue, self._on_message, callback=lambda frame: self._consuming(ch))

    def _on_channel_closed(self, ch: Any, reason: BaseException) -> None:
        self.ready.clear()
        self._channel = None
        if self._stopping.is_set():
            return
        log.error("the broker closed the channel: %s (check the gateway user's permissions on %s and %s)",
                  reason, self.queue, EXCHANGE)  # fmt: skip
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.close()

    def _on_cancelled(self, frame: Any) -> None:
        """The broker cancelled our consumer (the queue deleted or moved): connect again, which declares it again."""
        log.warning("the broker cancelled the consumer on %s; connecting again", self.queue)
        self.ready.clear()
        self._channel = None
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.close()

    def _consuming(self, ch: Any) -> None:
        self.gen += 1
        self._channel = ch
        log.info("consuming from %s on %s", self.queue, _where(self._conn))
        self._publish(self._status("online"), next(self._ids))
        self.ready.set()
        self._run_ops()

    def _on_message(self, ch: Any, method: Any, properties: Any, body: bytes) -> None:
        self.inbox.put(Incoming(topic_of(method.routing_key), body, method.delivery_tag, 1, self.gen))

    def _run_ops(self) -> None:
        while self._channel is not None:
            try:
                op = self._ops.popleft()
            except IndexError:
                return
            op()

    def _publish(self, out: Outgoing, sent: int) -> None:
        ch = self._channel
        if ch is None or not ch.is_open:
            self._ops.appendleft(lambda: self._publish(out, sent))  # sent once connected again
            return
        props = pika.BasicProperties(delivery_mode=2 if out.qos else 1)
        ch.basic_publish(EXCHANGE, routing_key(out.topic), out.payload, props)
        self._tag += 1
        self._confirms.append((self._tag, sent))

    def _ack(self, last: int, gen: int) -> None:
        ch = self._channel
        if ch is not None and ch.is_open and gen == self.gen:
            ch.basic_ack(delivery_tag=last, multiple=True)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        while self._confirms and (self._confirms[0][0] <= method.delivery_tag if method.multiple else
                                  self._confirms[0][0] == method.delivery_tag):  # fmt: skip
            _, sent = self._confirms.popleft()
            if ok:
                self.acknowledged.put(sent)
        if not ok:
            log.warning("the broker refused a publish (nack up to %d: a queue it routes to has no quorum); a"
                        " receipt goes again when the node resends, an alert event at the next start",
                        method.delivery_tag)  # fmt: skip

    def _close(self) -> None:
        self._ops.clear()
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.close()
        elif conn is not None:
            conn.ioloop.stop()


def _why(error: BaseException) -> str:
    """What went wrong, in words: pika keeps the cause (a refused connection, a certificate that did not verify)
    inside its connection errors (`exceptions` of a failed workflow, `exception` of a failed phase, the args of
    the others), not in str()."""
    phase = getattr(error, "exception", None)
    inner = [*getattr(error, "exceptions", ()), *([phase] if isinstance(phase, BaseException) else []),
             *(a for a in error.args if isinstance(a, BaseException))]  # fmt: skip
    if inner:
        return _why(inner[-1])
    return str(error) or type(error).__name__


def _where(conn: Any) -> str:
    params = getattr(conn, "params", None)
    return f"{params.host}:{params.port}" if params is not None else "?"
