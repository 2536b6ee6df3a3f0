"""The running gateway: the transport feeds its inbox; this thread commits batches, then publishes, then acks.

Order per batch: commit (the durable point) -> publish receipts, verdicts and alert events -> PUBACK the
messages. Receipts go out before the PUBACKs so that a crash between the two makes the broker redeliver the
messages, which produces the receipts again; the other order could leave a node without a receipt for a
message the broker no longer holds. Alert events are marked published when the broker acknowledges them; any
left unmarked by a crash are published again at the next start (at least once: clients dedup by alert_id and
event number).

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
from gateway.errors import StoreError
from gateway.fleet import Fleet
from gateway.ingest import Incoming, Outcome, Writer
from gateway.protocol import Topics
from gateway.screening import Screener
from gateway.store.base import Store
from gateway.transport import Transport

log = logging.getLogger("gateway.service")
_POLL_S = 0.1  # how often the loop looks at the stop flag and the clock when idle


def wall_ms() -> int:
    return int(time.time() * 1000)


class Gateway:
    """Constructed without I/O; `run(stop)` connects and works until `stop` is set."""

    def __init__(self, cfg: Config, store: Store, transport: Transport, clock: Callable[[], int] = wall_ms) -> None:
        self.cfg, self.store, self.transport, self.clock = cfg, store, transport, clock
        self.topics = Topics(cfg.mqtt.topic_prefix)
        self._awaiting: dict[int, tuple[str, int]] = {}  # the transport's publish id -> alert event
        self.writer: Writer | None = None
        self.ready = threading.Event()  # set once subscribed (tests and the CLI wait on it)

    def run(self, stop: threading.Event) -> None:
        cfg = self.cfg
        screener = Screener(
            load_calibration(cfg.screening),
            {"forehead": cfg.screening.threshold_forehead_c, "canthus": cfg.screening.threshold_canthus_c},
        )
        fleet = Fleet(self.store.nodes(), self.clock())
        writer = Writer(self.store, screener, fleet, cfg.alerts, self.topics, self.clock, cfg.ingest.verdict_to_node)
        self.writer = writer
        self.transport.start()
        try:
            self._deliver(writer.pending_events(), [])
            self._loop(writer, stop)
            self._drain(writer)
        finally:
            self.transport.stop()
            self.ready.clear()

    def _loop(self, writer: Writer, stop: threading.Event) -> None:
        interval_ms = int(self.cfg.alerts.check_interval_s * 1000)
        next_check = self.clock() + interval_ms
        while not stop.is_set():
            if self.transport.ready.is_set():
                self.ready.set()
            batch = self._take(_POLL_S)
            self._note_published(writer)
            if batch:
                self._deliver(self._process(writer, batch), batch)
            if self.clock() >= next_check:
                next_check = self.clock() + interval_ms
                self._deliver(writer.check_silence(), [])

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
        """On a clean stop, store what already arrived (it is acknowledged; the rest is redelivered later)."""
        while batch := self._take(0):
            self._deliver(self._process(writer, batch), batch)

    def _process(self, writer: Writer, batch: list[Incoming]) -> Outcome:
        try:
            return writer.process(batch)
        except StoreError:
            raise  # the database is unusable: stop; nothing was acknowledged, the broker redelivers
        except Exception:  # a bug on one message: logged, then the batch one by one (Writer.process_each)
            log.exception("a batch of %d messages failed; retrying them one by one", len(batch))
            return writer.process_each(batch)

    def _deliver(self, outcome: Outcome, batch: list[Incoming]) -> None:
        for out in outcome.publish:
            sent = self.transport.publish(out)
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
