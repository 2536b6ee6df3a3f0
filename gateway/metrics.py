"""Prometheus metrics of the gateway (prometheus-client): `[metrics] listen = "127.0.0.1:9108"` serves /metrics.

Three sources, each exact for what it counts:
- What a transaction committed (`Metrics.metered(store)` wraps the store): scans stored (and the lag from the
  node's clock to storage), scans kept as identity clashes, messages quarantined by reason, alert events by
  kind and state. A rolled-back transaction (a storage fault, retried later) counts nothing, so each counter
  equals the rows the database gained while the process ran (tests/ops/test_metrics.py scrapes and compares).
- The service loop (`Metrics.batch`, `storage_fault`): messages per batch, the time a batch takes from being
  taken off the inbox to its commit, duplicates, storage faults.
- The database at scrape time (`StoreCollector`, on a read connection of its own): nodes by state, open alerts
  by kind, and what each node last reported in its health (outbox depth, drops, errors, sensor errors) with the
  age of its last message.

The names are used by deploy/prometheus/rules.yml and deploy/grafana/checkpoint.json (a test checks that
each exists). No person's temperature is ever a metric or a label; labels are kinds, states, reasons, sites
and nodes only. The console (gateway/web/metrics.py) and the notifier (gateway/notify/metrics.py) serve metrics
of their own, each on its own port (`[metrics] console_listen`, `notify_listen`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway import alerts
from gateway.config import MetricsSection, StoreSection
from gateway.errors import ConfigError, StoreError
from gateway.ingest import Outcome
from gateway.store import open_store
from gateway.store.base import AlertEvent, AlertRow, QuarantineRow, ScanRow, Store, Transaction

log = logging.getLogger("gateway.metrics")
NODE_STATES = ("online", "offline", "unknown")
ALERT_KINDS = alerts.KINDS
_LAG_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 7 * 86_400)
_COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000)


@dataclass
class _Committed:
    """What one transaction wrote, applied to the counters only once it committed."""

    lags_s: list[float] = field(default_factory=list)
    stored: int = 0
    clashed: int = 0
    quarantined: Tally[str] = field(default_factory=Tally)
    events: Tally[tuple[str, str]] = field(default_factory=Tally)


class _MeteredTransaction:
    """A transaction that notes what it writes; everything else is the backend's own."""

    def __init__(self, tx: Transaction, noted: _Committed) -> None:
        self._tx, self._noted = tx, noted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def insert_scans(self, rows: list[ScanRow]) -> list[bool]:
        new = self._tx.insert_scans(rows)
        for row, is_new in zip(rows, new, strict=True):
            if is_new:
                self._noted.stored += 1
                if row.ts is not None and row.scanned_at == row.ts:  # the node's clock was judged right
                    self._noted.lags_s.append(max(0, row.received_at - row.ts) / 1000)
        return new

    def insert_clash(self, row: ScanRow) -> bool:
        new = self._tx.insert_clash(row)
        self._noted.clashed += int(new)
        return new

    def insert_quarantine(self, row: QuarantineRow) -> None:
        self._tx.insert_quarantine(row)
        self._noted.quarantined[row.reason] += 1

    def save_alert(self, alert: AlertRow, event: AlertEvent) -> None:
        self._tx.save_alert(alert, event)
        self._noted.events[(alert.kind, event.state)] += 1

    def update_alert(self, alert: AlertRow, event: AlertEvent, seen_events: int) -> bool:
        saved = self._tx.update_alert(alert, event, seen_events)
        if saved:
            self._noted.events[(alert.kind, event.state)] += 1
        return saved


class _MeteredStore:
    """The store with metered transactions (a tested adapter: tests/ops/test_metrics.py)."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store, self._metrics = store, metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        noted = _Committed()
        with self._store.transaction() as tx:
            yield cast(Transaction, _MeteredTransaction(tx, noted))
        self._metrics.committed(noted)  # reached only after the backend's COMMIT


class Metrics:
    """The gateway's counters and histograms on a registry of its own; `serve(listen)` starts /metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.scans_stored = Counter("checkpoint_scans_stored", "Scans committed to the database", registry=r)
        self.scans_duplicate = Counter(
            "checkpoint_scans_duplicate", "Scans received again (resent) and receipted, not stored twice", registry=r
        )
        self.scans_clashed = Counter(
            "checkpoint_scans_clashed", "Scans kept as identity clashes (two units under one name)", registry=r
        )
        self.quarantined = Counter(
            "checkpoint_messages_quarantined", "Messages quarantined, by reason", ["reason"], registry=r
        )
        self.alert_events = Counter(
            "checkpoint_alert_events", "Alert events committed, by alert kind and the state entered", ["kind", "state"],
            registry=r,
        )  # fmt: skip
        self.storage_faults = Counter(
            "checkpoint_storage_faults", "Batches held by a storage fault (retried)", registry=r
        )
        self.commit_seconds = Histogram(
            "checkpoint_commit_seconds", "Time from taking a batch off the inbox to its commit",
            buckets=_COMMIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_messages = Histogram(
            "checkpoint_batch_messages", "Messages per committed batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.ingest_lag = Histogram(
            "checkpoint_ingest_lag_seconds", "From the scan on the node (its clock judged right) to its commit",
            buckets=_LAG_BUCKETS, registry=r,
        )  # fmt: skip
        self.server: Server | None = None  # set by serve()

    def metered(self, store: Store) -> Store:
        """The store whose committed transactions count here."""
        return cast(Store, _MeteredStore(store, self))

    def read_from(self, reader: Store, clock: Callable[[], int]) -> None:
        """Gauges read from the database at each scrape (`reader`: a store of this collector's own)."""
        self.registry.register(StoreCollector(reader, clock))

    def committed(self, noted: _Committed) -> None:
        self.scans_stored.inc(noted.stored)
        self.scans_clashed.inc(noted.clashed)
        for lag in noted.lags_s:
            self.ingest_lag.observe(lag)
        for reason, n in noted.quarantined.items():
            self.quarantined.labels(reason).inc(n)
        for (kind, state), n in noted.events.items():
            self.alert_events.labels(kind, state).inc(n)

    def batch(self, messages: int, seconds: float, outcome: Outcome) -> None:
        """The service loop committed a batch of `messages` in `seconds`."""
        self.batch_messages.observe(messages)
        self.commit_seconds.observe(seconds)
        self.scans_duplicate.inc(outcome.duplicates)

    def storage_fault(self) -> None:
        self.storage_faults.inc()

    def serve(self, listen: str) -> Server:
        """/metrics on `listen` (host:port; port 0 = a free one), on a thread of its own."""
        self.server = serve_registry(self.registry, listen, "metrics.listen")
        return self.server


class Serves(Protocol):
    def serve(self, listen: str) -> Server: ...


def announced(owner: Serves | None, listen: str, what: str) -> Server | None:
    """A process's /metrics server started and said where on stdout (`what`: console, notifier), or None when
    its metrics are off (`owner` None)."""
    if owner is None:
        return None
    server = owner.serve(listen)
    print(f"checkpoint-gateway: {what} metrics on http://{listen.rpartition(':')[0]}:{server.port}/metrics", flush=True)
    return server


def serve_registry(registry: CollectorRegistry, listen: str, key: str) -> Server:
    """/metrics of `registry` on `listen` (host:port; port 0 = a free one), on a thread of its own; ConfigError
    naming the config `key` when it cannot listen there."""
    host, _, port = listen.rpartition(":")
    try:
        server, thread = start_http_server(int(port), host.strip("[]"), registry=registry)
    except OSError as e:
        raise ConfigError(f"{key}: cannot listen on {listen}: {e.strerror}") from None
    return Server(server, thread)


@dataclass
class Server:
    """The running /metrics endpoint."""

    server: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class StoreCollector(Collector):
    """Gauges read at scrape time from a read connection of its own (never the writer's)."""

    def __init__(self, reader: Store, clock: Callable[[], int]) -> None:
        self._reader, self._clock = reader, clock
        self._lock = threading.Lock()  # scrapes may come on several threads; one connection

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("checkpoint_store_up", "1 when the database could be read at this scrape")
        try:
            with self._lock:
                nodes = self._reader.nodes()
                open_alerts = self._reader.alerts(None, None, None, open_only=True)
        except StoreError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _fleet(nodes, self._clock())
        by_kind = Tally(a.kind for a in open_alerts)
        g = GaugeMetricFamily("checkpoint_alerts_open", "Alerts not resolved, by kind", labels=["kind"])
        for kind in sorted(set(ALERT_KINDS) | set(by_kind)):
            g.add_metric([kind], by_kind[kind])
        yield g


def _fleet(nodes: list[Any], now: int) -> Iterator[Metric]:
    by_state = Tally(n.state for n in nodes)
    g = GaugeMetricFamily("checkpoint_nodes", "Nodes by state as the gateway knows them", labels=["state"])
    for state in sorted(set(NODE_STATES) | set(by_state)):
        g.add_metric([state], by_state[state])
    yield g
    reported = {
        "outbox_depth": "Records in the node's outbox not yet receipted (its last health)",
        "outbox_drops": "Records the node lost to a full outbox (its count, last health)",
        "outbox_errors": "Scans the node's outbox refused to store (its count, last health)",
        "sensor_errors": "Sensor errors the node counted (last health)",
    }
    for name, text in reported.items():
        g = GaugeMetricFamily(f"checkpoint_node_{name}", text, labels=["site", "node"])
        for n in nodes:
            value = getattr(n, name)
            if value is not None:
                g.add_metric([n.site, n.node], value)
        yield g
    g = GaugeMetricFamily(
        "checkpoint_node_silence_seconds", "Since the gateway last heard the node", labels=["site", "node"]
    )
    for n in nodes:
        if n.last_seen is not None:
            g.add_metric([n.site, n.node], max(0, now - n.last_seen) / 1000)
    yield g


def wall_ms() -> int:
    return int(time.time() * 1000)


@contextlib.contextmanager
def serving(cfg: MetricsSection, db: StoreSection, store: Store) -> Iterator[tuple[Store, Metrics | None]]:
    """The `run` command's metrics: (the metered store, the metrics) while /metrics is served, or (the store as it
    is, None) when `[metrics] listen` is empty."""
    if not cfg.listen:
        yield store, None
        return
    metrics = Metrics()
    reader = open_store(db.db, db.synchronous, create=False)  # gauges read on a connection of their own
    metrics.read_from(reader, wall_ms)
    try:
        server = metrics.serve(cfg.listen)
    except ConfigError:
        reader.close()
        raise
    log.info("metrics on http://%s:%d/metrics", cfg.listen.rpartition(":")[0], server.port)
    try:
        yield metrics.metered(store), metrics
    finally:
        server.stop()
        reader.close()
