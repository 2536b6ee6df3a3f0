"""The running gateway: the transport feeds its inbox; this thread commits batches, then publishes, then acks.

Order per batch: commit (the durable point) -> publish receipts, verdicts and alert events -> PUBACK the
messages. Receipts go out before the PUBACKs so that a crash between the two makes the broker redeliver the
messages, which produces the receipts again; the other order could leave a node without a receipt for a
message the broker no longer holds. Alert events are marked published when the broker acknowledges them; any
left unmarked by a crash are published again at the next start (at least once: clients dedup by alert_id and
event number).

Every open alert also has a retained state on `{prefix}/alerts/{site}/{alert_id}` (cleared by a zero-length
retained publish when it is resolved), published again on every connection to the broker: a medic's client
that connects later finds every open alert, even after the broker lost its retained messages.

A storage fault (disk full, I/O error, read-only database, a lock: gateway.errors.StorageFault) acknowledges
and receipts nothing: the batch is held, the fault logged with what to do, the write retried with backoff,
and the gateway resumes by itself when the store takes it (the broker keeps what is not acknowledged). A
read-only database is refused at start.

After committed batches the loop runs the drift monitor (Writer.check_drift: a site with new scans, at most once
a minute per site on the monotonic clock, in transactions of its own; gateway/drift.py); it is not part of the
verdict, and a failure of it stops nothing. So are the reference alerts (Writer.check_references: once a minute,
every node; gateway/reference_alerts.py).

Two clocks are injected: `clock` (wall ms: shown and stored) and `monotonic` (ms: every duration here, the
silence check, the backoff, the drift monitor's minute).

The transport (gateway/transport.py) is handed in: `gateway.mqtt.transport(cfg)` on a broker, an in-memory
one in unit tests (testkit/transport.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from gateway.config import Config, load_calibration
from gateway.errors import StorageFault, StoreError
from gateway.fleet import Fleet
from gateway.homeassistant import announcer
from gateway.ingest import Incoming, Outcome, Writer
from gateway.logs import RateLimitedLog
from gateway.metrics import Metrics
from gateway.protocol import Topics
from gateway.quarantine import Limiter
from gateway.screening import Screener
from gateway.signing import Signer, load_registry, stored_signer
from gateway.store.base import Store
from gateway.transport import Transport

log = logging.getLogger("gateway.service")
_POLL_S = 0.1  # how often the loop looks at the stop flag and the clock when idle
_RETRY_MS = (500, 15_000)  # first and longest wait between two tries of a write after a storage fault


def wall_ms() -> int:
    return int(time.time() * 1000)


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Gateway:
    """Constructed without I/O; `run(stop)` connects and works until `stop` is set."""

    def __init__(
        self,
        cfg: Config,
        store: Store,
        transport: Transport,
        clock: Callable[[], int] = wall_ms,
        monotonic: Callable[[], int] = monotonic_ms,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: counts batches and faults (gateway/metrics.py; its `metered(store)` counts what commits)."""
        self.cfg, self.store, self.transport = cfg, store, transport
        self.metrics = metrics
        self.clock, self.monotonic = clock, monotonic
        self.topics = Topics(cfg.mqtt.topic_prefix)
        self._awaiting: dict[int, tuple[str, int]] = {}  # the transport's publish id -> alert event
        self._held: list[Incoming] = []  # a batch a storage fault kept from being stored: tried again
        self._retry_at = 0  # monotonic ms
        self._retry_ms = _RETRY_MS[0]
        self._fault_since: int | None = None
        self._fault_log = RateLimitedLog(log, 60_000, monotonic)
        self._connected = False  # the transport was ready at the last look (alert states published)
        self.writer: Writer | None = None
        self.signer = Signer(None, cfg.mqtt.topic_prefix, clock)  # run() loads the registry (gateway.registry)
        self.ready = threading.Event()  # set once subscribed (tests and the CLI wait on it)

    def run(self, stop: threading.Event) -> None:
        cfg = self.cfg
        self.store.check_writable()  # a read-only database: refused now with the fix, not on the first scan
        screener = Screener(
            load_calibration(cfg.screening),
            {"forehead": cfg.screening.threshold_forehead_c, "canthus": cfg.screening.threshold_canthus_c},
        )
        fleet = Fleet(self.store.nodes(), self.monotonic())
        registry = load_registry(cfg.gateway.registry)  # None (no registry: tests, the demo): every node admitted
        limits = Limiter.stored(self.store.quarantine_sources(), self.monotonic)
        writer = Writer(self.store, screener, fleet, cfg.alerts, self.topics, self.clock, cfg.ingest.verdict_to_node,
                        self.monotonic, registry.known if registry else None, limits)  # fmt: skip
        writer.resend_configs = cfg.mqtt.broker.startswith(("amqp://", "amqps://"))  # retained stays on one member
        self.writer = writer
        self._ha = announcer(cfg, self.clock, self.monotonic)  # None unless [homeassistant] enabled
        self.signer = stored_signer(registry, cfg.mqtt.topic_prefix, cfg.gateway.instance, self.store, self.clock)
        self.transport.start()
        try:
            self._deliver(writer.pending_events(), [])
            self._loop(writer, stop)
            self._drain(writer)
        finally:
            self.transport.stop()
            self.ready.clear()
        self._note_published(writer)  # what the broker acknowledged up to the stop is not published again
        try:
            writer.flush_published()
        except StoreError as e:
            log.warning("could not mark the last alert events published (%s): they are published again at start", e)

    def _loop(self, writer: Writer, stop: threading.Event) -> None:
        interval_ms = int(self.cfg.alerts.check_interval_s * 1000)
        next_check = self.monotonic() + interval_ms
        while not stop.is_set():
            self._watch_connection(writer)
            if self._held:
                stop.wait(max(0, self._retry_at - self.monotonic()) / 1000)  # the backoff; a stop ends it
                batch, self._held = self._held, []
            else:
                batch = self._take(_POLL_S)
            self._note_published(writer)
            if batch:
                outcome = self._stored(writer, batch)
                if outcome is not None:
                    self._deliver(outcome, batch)
            if self.monotonic() >= next_check and not self._held:
                next_check = self.monotonic() + interval_ms
                outcome = self._stored(writer, [])
                if outcome is not None:
                    self._deliver(outcome, [])
                if self._ha is not None:
                    self._deliver(self._ha.step(self.store), [])
            if not self._held:  # the drift monitor after committed batches (at most once a minute per site)
                self._deliver(writer.check_drift(), [])
                self._deliver(writer.check_references(), [])  # reference alerts, at most once a minute

    def _watch_connection(self, writer: Writer) -> None:
        """On every (re)connection: publish every open alert's retained state (the broker may have lost it)."""
        if not self.transport.ready.is_set():
            self._connected = False
            return
        self.ready.set()
        if not self._connected:
            try:
                states = writer.alert_states()
            except StoreError as e:
                self._fault_log.warning("alert-states", f"cannot read the open alerts to publish them: {e}")
                return
            self._connected = True
            self._deliver(states, [])
            if self._ha is not None:  # Home Assistant's discovery, again: the broker may have lost it
                self._ha.reconnected()
                self._deliver(self._ha.step(self.store), [])

    def _stored(self, writer: Writer, batch: list[Incoming]) -> Outcome | None:
        """The batch processed (a silence check when empty), or None after a storage fault: the batch is held,
        acknowledged to nobody, and tried again after a backoff."""
        started = time.perf_counter()  # a measurement for people (commit latency), not a duration of the logic
        try:
            outcome = self._process(writer, batch) if batch else writer.check_silence()
        except StorageFault as e:
            if self.metrics is not None:
                self.metrics.storage_fault()
            now = self.monotonic()
            if self._fault_since is None:
                self._fault_since = now
                log.error("cannot store: %s. Nothing is acknowledged or receipted until it is stored (the broker and"
                          " the nodes keep every message); retrying by itself", e)  # fmt: skip
            else:
                self._fault_log.warning("storage-fault", f"still cannot store ({len(batch)} messages held): {e}")
            self._held = batch
            self._retry_at = now + self._retry_ms
            self._retry_ms = min(self._retry_ms * 2, _RETRY_MS[1])
            return None
        if self._fault_since is not None:
            held_s = (self.monotonic() - self._fault_since) / 1000
            log.warning("storing again after %.1f s of storage faults; nothing was lost", held_s)
            self._fault_since, self._retry_ms = None, _RETRY_MS[0]
        if self.metrics is not None and batch:
            self.metrics.batch(len(batch), time.perf_counter() - started, outcome)
        return outcome

    def _take(self, timeout: float) -> list[Incoming]:
        try:
            first = self.transport.inbox.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        limit = self.cfg.ingest.max_batch
        while len(batch) < limit:
            try:
                batch.append(self.transport.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _drain(self, writer: Writer) -> None:
        """On a clean stop, store what already arrived (it is acknowledged; the rest is redelivered later).
        Not during a storage fault: then nothing more is acknowledged, the broker keeps it all."""
        while not self._held and (batch := self._take(0)):
            outcome = self._stored(writer, batch)
            if outcome is not None:
                self._deliver(outcome, batch)

    def _process(self, writer: Writer, batch: list[Incoming]) -> Outcome:
        try:
            return writer.process(batch)
        except StoreError:
            raise  # a storage fault is retried (_stored); another store error stops: the broker redelivers
        except Exception:  # a bug on one message: logged, then the batch one by one (Writer.process_each)
            log.exception("a batch of %d messages failed; retrying them one by one", len(batch))
            return writer.process_each(batch)

    def _deliver(self, outcome: Outcome, batch: list[Incoming]) -> None:
        for out in outcome.publish:
            sent = self.transport.publish(self.signer.seal(out))
            if out.event is not None:
                self._awaiting[sent] = out.event
        if batch:
            self.transport.acknowledge(batch)

    def _note_published(self, writer: Writer) -> None:
        done = []
        while True:
            try:
                sent = self.transport.acknowledged.get_nowait()
            except queue.Empty:
                break
            event = self._awaiting.pop(sent, None)
            if event is not None:
                done.append(event)
        if done:
            writer.published(done)
