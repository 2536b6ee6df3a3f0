"""What the service needs from a broker connection: messages in, publishes out, acknowledgements after commit.

The service (gateway/service.py) is handed a transport and never builds one. `gateway.mqtt.MqttTransport` is
the one on a real broker (paho), `gateway.amqp.AmqpTransport` the one on a RabbitMQ cluster (pika), chosen by
the broker URL's scheme (`build`); testkit/transport.py has one in memory that drives the service loop in unit
tests. A second broker transport (a cluster) implements this too.

Threads: the transport fills `inbox` and `acknowledged` from its own network thread; the service calls
`publish`, `acknowledge`, `start` and `stop` from its one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from gateway.ingest import Incoming, Outgoing

if TYPE_CHECKING:
    from gateway.config import Config


class Transport(Protocol):
    inbox: queue.SimpleQueue[Incoming]
    """Messages from nodes, in arrival order, not yet acknowledged to the broker."""
    acknowledged: queue.SimpleQueue[int]
    """Ids returned by `publish` whose QoS 1 publish the broker acknowledged."""
    ready: threading.Event
    """Set while connected and subscribed (cleared when the connection is lost)."""

    def start(self) -> None:
        """Connect in the background (and keep reconnecting); returns at once."""

    def publish(self, out: Outgoing) -> int:
        """Queue a publish; the id comes back on `acknowledged` once the broker has it."""

    def acknowledge(self, batch: Sequence[Incoming]) -> None:
        """Acknowledge a committed batch to the broker, after every publish queued before it.

        A message that came in on an earlier connection is skipped: the broker redelivers it, and the
        redelivered copy is stored nothing twice (insert-or-ignore) and acknowledged then."""

    def stop(self) -> None:
        """Say offline (the gateway's retained status), disconnect, end the network thread."""

    def describe(self) -> str:
        """Where it connects and what it subscribes to, for the log (no credentials)."""


def build(cfg: Config) -> Transport:
    """The `run` command's transport: `mqtt://`/`mqtts://` -> MQTT (Mosquitto, `$share`), `amqp://`/`amqps://`
    -> AMQP (a RabbitMQ cluster's quorum work queue). ConfigError for unreadable credential or CA files."""
    if cfg.mqtt.broker.startswith(("amqp://", "amqps://")):
        from gateway import amqp

        return amqp.transport(cfg)
    from gateway import mqtt

    return mqtt.transport(cfg)
