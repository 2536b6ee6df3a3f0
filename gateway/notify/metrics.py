"""The notifier's Prometheus metrics (issue 17 item 1): `[metrics] notify_listen = "127.0.0.1:9110"` serves
/metrics for `checkpoint-gateway notify` on a port of its own.

- checkpoint_notify_attempts_total{receiver, result}: every attempt recorded in the outbox (sent, failed,
  cancelled), counted after its record is committed, so it equals the attempts table's rows of this process.
- checkpoint_notify_send_seconds{receiver}: how long a send to the receiver took (Apprise, the network).
- checkpoint_notify_pending{receiver} and checkpoint_notify_oldest_pending_seconds{receiver}: the deliveries
  waiting and the age of the oldest, as the last pass found them (a receiver that is down shows both growing:
  deploy/prometheus/rules.yml alerts on it).
Labels are receiver names from the config, never an address, a token or a person's temperature.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway import metrics

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class NotifyMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.attempts = Counter("checkpoint_notify_attempts", "Delivery attempts by receiver and result (sent,"
                                " failed, cancelled)", ["receiver", "result"], registry=r)  # fmt: skip
        self.send_seconds = Histogram("checkpoint_notify_send_seconds", "Time one send took, by receiver",
                                      ["receiver"], buckets=_SECONDS, registry=r)  # fmt: skip
        self.pending = Gauge("checkpoint_notify_pending", "Deliveries waiting, by receiver (at the last pass)",
                             ["receiver"], registry=r)  # fmt: skip
        self.oldest = Gauge("checkpoint_notify_oldest_pending_seconds", "Age of the oldest delivery waiting, by"
                            " receiver (at the last pass; 0 when none waits)", ["receiver"], registry=r)  # fmt: skip

    def waiting(self, receiver: str, count: int, oldest_s: float) -> None:
        self.pending.labels(receiver).set(count)
        self.oldest.labels(receiver).set(oldest_s)

    def serve(self, listen: str) -> metrics.Server:
        """/metrics on `listen` (host:port; port 0: a free one), on a thread of its own."""
        return metrics.serve_registry(self.registry, listen, "metrics.notify_listen")
