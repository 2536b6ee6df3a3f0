"""The writer: one batch of MQTT messages -> one transaction -> what to publish. No MQTT in here.

`Writer.process(batch)` validates each message (gateway/protocol.py), screens scans (gateway/screening.py),
inserts or ignores them by (site, node, seq), quarantines rejects, updates the fleet and the alerts, and
commits once. Only then does the caller publish what it returns (receipts, verdicts, alert events) and
acknowledge the batch to the broker. A crash before the commit loses nothing (the broker redelivers); a crash
after it stores nothing twice (insert-or-ignore) and the receipt is sent again for the redelivered copy.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway import alerts
from gateway.config import AlertsSection
from gateway.errors import StoreError
from gateway.fleet import Fleet, Transition
from gateway.logs import RateLimitedLog
from gateway.protocol import PROTOCOL_VERSION, Health, Rejection, Scan, Status, Topics, parse
from gateway.screening import Assessment, Screener
from gateway.store.base import AlertEvent, AlertRow, QuarantineRow, ScanRow, Store, Transaction

log = logging.getLogger("gateway.ingest")
QUARANTINE_HEAD_BYTES = 256


@dataclass(slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    gen: int = 0  # the MQTT connection it came in on (an ack only makes sense on that connection)


@dataclass(slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    event: tuple[str, int] | None = None  # the alert event it publishes, marked published on PUBACK


@dataclass
class Outcome:
    """What a batch (or a silence check) came to: what to publish once it is committed, and the counts."""

    publish: list[Outgoing] = field(default_factory=list)
    new: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass
class _Batch:
    receipts: defaultdict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    rejected: defaultdict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    verdicts: list[Outgoing] = field(default_factory=list)
    changes: list[alerts.Change] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Writer:
    def __init__(
        self,
        store: Store,
        screener: Screener,
        fleet: Fleet,
        policy: AlertsSection,
        topics: Topics,
        clock: Callable[[], int],
        verdict_to_node: bool = True,
    ) -> None:
        self._store, self._screener, self._fleet = store, screener, fleet
        self._policy, self._topics, self._clock = policy, topics, clock
        self._verdict_to_node = verdict_to_node
        self._faults = alerts.SensorFaultTracker(
            policy.sensor_fault_count, policy.sensor_fault_window_s * 1000, policy.sensor_fault_clear_after
        )
        self._reject_log = RateLimitedLog(log, 60_000, clock)
        self._published: list[tuple[str, int]] = []
        self.rejections: defaultdict[str, int] = defaultdict(int)  # reason -> count since start

    def published(self, events: list[tuple[str, int]]) -> None:
        """Alert events the broker acknowledged: marked in the next transaction."""
        self._published.extend(events)

    def process(self, batch: list[Incoming]) -> Outcome:
        now = self._clock()
        acc = _Batch()
        parsed = [parse(self._topics.prefix, m.topic, m.payload) for m in batch]
        scans = {i: self._row(p, now) for i, p in enumerate(parsed) if isinstance(p, Scan)}
        with self._store.transaction() as tx:
            is_new = dict(zip(scans, tx.insert_scans([row for row, _ in scans.values()]), strict=True))
            for i, (msg, item) in enumerate(zip(batch, parsed, strict=True)):
                if isinstance(item, Scan):
                    if not is_new[i] and self._seq_conflict(tx, msg, item, now, acc):
                        continue
                    self._scan(tx, item, scans[i], is_new[i], now, acc)
                elif isinstance(item, Status):
                    self._node_transition(tx, self._fleet.on_status(item, now), acc)
                elif isinstance(item, Health):
                    self._node_transition(tx, self._fleet.on_health(item, now), acc)
                elif isinstance(item, Rejection):
                    self._quarantine(tx, msg, item, now, acc)
            self._finish(tx, now)
        return self._outgoing(acc)

    def process_each(self, batch: list[Incoming]) -> Outcome:
        """One message per transaction, after `process` failed on a batch for a reason that is not the store's
        (a bug): the message that still fails goes to quarantine as internal_error, the others are stored."""
        total = Outcome()
        for msg in batch:
            try:
                outcome = self.process([msg])
            except StoreError:
                raise
            except Exception:  # a bug must not turn one message into a crash loop; logged and counted
                log.exception("processing a message on %r failed; quarantined as internal_error", msg.topic)
                self.rejections["internal_error"] += 1
                with self._store.transaction() as tx:
                    head = msg.payload[:QUARANTINE_HEAD_BYTES]
                    tx.insert_quarantine(
                        QuarantineRow(self._clock(), msg.topic, "internal_error", len(msg.payload), head)
                    )
                continue
            total.publish += outcome.publish
            total.new += outcome.new
            total.duplicates += outcome.duplicates
            total.rejected += outcome.rejected
        return total

    def check_silence(self) -> Outcome:
        """Nodes silent past alerts.offline_after_s go offline (called periodically by the service)."""
        now = self._clock()
        acc = _Batch()
        transitions = self._fleet.silent(now, self._policy.offline_after_s * 1000)
        if transitions or self._published:
            with self._store.transaction() as tx:
                for t in transitions:
                    self._node_transition(tx, t, acc)
                self._finish(tx, now)
        return self._outgoing(acc)

    def pending_events(self) -> Outcome:
        """Alert events committed but never acknowledged by the broker (a crash): publish them again."""
        return Outcome(publish=[self._event_out(a, e) for a, e in self._store.unpublished_events()])

    def _finish(self, tx: Transaction, now: int) -> None:
        for row in self._fleet.take_dirty():
            tx.save_node(row)
        if self._published:
            tx.mark_published(self._published, now)
            self._published = []

    def _row(self, scan: Scan, now: int) -> tuple[ScanRow, Assessment]:
        a = self._screener.assess(scan)
        row = ScanRow(
            scan.site, scan.node, scan.seq, scan.boot, scan.ts, scan.uptime_ms, scan.mode, scan.t_site_c,
            scan.t_amb_c, scan.t_core_c, scan.verdict, scan.flags, scan.samples, scan.duration_ms,
            scan.retest_of, scan.fw, scan.cal, a.t_core_c, a.verdict, a.flags, a.cal, now,
            scan.ts if scan.ts is not None else now,
        )  # fmt: skip
        return row, a

    def _scan(
        self,
        tx: Transaction,
        scan: Scan,
        screened: tuple[ScanRow, Assessment],
        new: bool,
        now: int,
        acc: _Batch,
    ) -> None:
        row, a = screened
        acc.receipts[(scan.site, scan.node)].append(scan.seq)
        self._node_transition(tx, self._fleet.on_scan(scan.site, scan.node, scan.seq, scan.fw, new, now), acc)
        if not new:
            acc.outcome.duplicates += 1
            return
        acc.outcome.new += 1
        fever = self._scan_alerts(tx, row, now, acc)
        if self._verdict_to_node and (a.verdict == "elevated" or a.verdict != scan.verdict or fever):
            acc.verdicts.append(self._verdict_out(row, a.threshold_c, fever))

    def _scan_alerts(self, tx: Transaction, row: ScanRow, now: int, acc: _Batch) -> AlertRow | None:
        """Fever and sensor-fault rules for a new scan; returns the fever alert it raised or updated."""
        fever = None
        if row.retest_of is not None:
            fever = tx.fever_alert_for(row.site, row.node, row.retest_of)
        if fever is not None:
            fever = self._save(tx, alerts.retest(fever, row, now), acc)
        elif row.gateway_verdict == "elevated":
            fever = self._save(tx, alerts.raise_fever(row, now), acc)
        signal = self._faults.on_scan(row.site, row.node, row.gateway_verdict == "invalid", now)
        if signal is not None:
            fault = tx.open_alert(alerts.SENSOR_FAULT, row.site, row.node)
            if signal == "raise" and fault is None:
                why = "repeated_sensor_faults"
                self._save(tx, alerts.raise_node(alerts.SENSOR_FAULT, row.site, row.node, why, now, row.seq), acc)
            elif signal == "clear" and fault is not None:
                self._save(tx, alerts.resolve(fault, "valid_scans", now, row.seq), acc)
        return fever

    def _node_transition(self, tx: Transaction, t: Transition | None, acc: _Batch) -> None:
        if t is None:
            return
        open_alert = tx.open_alert(alerts.NODE_OFFLINE, t.site, t.node)
        if t.after == "offline" and t.before == "online" and open_alert is None:
            log.warning("node %s/%s offline (%s)", t.site, t.node, t.reason)
            self._save(tx, alerts.raise_node(alerts.NODE_OFFLINE, t.site, t.node, t.reason, t.at), acc)
        elif t.after == "online" and open_alert is not None:
            log.info("node %s/%s back online", t.site, t.node)
            self._save(tx, alerts.resolve(open_alert, "back_online", t.at), acc)

    def _save(self, tx: Transaction, change: alerts.Change, acc: _Batch) -> AlertRow:
        tx.save_alert(change.alert, change.event)
        acc.changes.append(change)
        return change.alert

    def _seq_conflict(self, tx: Transaction, msg: Incoming, scan: Scan, now: int, acc: _Batch) -> bool:
        """A seq already stored with another origin (boot, uptime): the node reused a seq (a re-flashed or
        replaced unit under the same name, a damaged outbox). Insert-or-ignore would drop it silently: it is
        kept whole in the quarantine as seq_conflict, and receipted so the node does not resend it forever."""
        stored = tx.scan_origin(scan.site, scan.node, scan.seq)
        if stored is None or stored == (scan.boot, scan.uptime_ms):
            return False
        tx.insert_quarantine(
            QuarantineRow(now, msg.topic, "seq_conflict", len(msg.payload), msg.payload, scan.site, scan.node)
        )
        acc.outcome.rejected += 1
        self.rejections["seq_conflict"] += 1
        acc.receipts[(scan.site, scan.node)].append(scan.seq)
        who = f"{scan.site}/{scan.node}"
        self._reject_log.warning(
            (who, "seq_conflict"),
            f"{who} sent seq {scan.seq} again with another origin (boot {scan.boot}, stored boot {stored[0]}): "
            "kept in the quarantine as seq_conflict; check whether the node was re-flashed or replaced",
        )
        return True

    def _quarantine(self, tx: Transaction, msg: Incoming, rej: Rejection, now: int, acc: _Batch) -> None:
        head = msg.payload[:QUARANTINE_HEAD_BYTES]
        tx.insert_quarantine(QuarantineRow(now, msg.topic, rej.reason, len(msg.payload), head, rej.site, rej.node))
        acc.outcome.rejected += 1
        self.rejections[rej.reason] += 1
        if rej.site is not None and rej.node is not None and rej.seq is not None:
            acc.rejected[(rej.site, rej.node)].append(rej.seq)
        who = f"{rej.site}/{rej.node}" if rej.site else "?"
        self._reject_log.warning((who, rej.reason), f"quarantined a message from {who} on {msg.topic!r}: {rej.reason}")

    def _verdict_out(self, row: ScanRow, threshold_c: float, fever: AlertRow | None) -> Outgoing:
        body = {
            "v": PROTOCOL_VERSION,
            "seq": row.seq,
            "verdict": row.gateway_verdict,
            "t_core_c": row.gateway_t_core_c,
            "flags": list(row.gateway_flags),
            "cal": row.gateway_cal,
            "threshold_c": threshold_c,
            "alert_id": fever.alert_id if fever is not None else None,
        }
        return Outgoing(self._topics.node(row.site, row.node, "verdict"), _json(body))

    def _event_out(self, alert: AlertRow, event: AlertEvent) -> Outgoing:
        body = _json(alerts.event_payload(alert, event))
        return Outgoing(self._topics.alerts(alert.site), body, event=(event.alert_id, event.n))

    def _outgoing(self, acc: _Batch) -> Outcome:
        out = acc.outcome.publish
        for (site, node), seqs in acc.receipts.items():
            body: dict[str, Any] = {"v": PROTOCOL_VERSION, "seqs": sorted(set(seqs))}
            rejected = acc.rejected.pop((site, node), None)
            if rejected:
                body["rejected"] = sorted(set(rejected))
            out.append(Outgoing(self._topics.node(site, node, "receipt"), _json(body)))
        for (site, node), seqs in acc.rejected.items():
            body = {"v": PROTOCOL_VERSION, "seqs": [], "rejected": sorted(set(seqs))}
            out.append(Outgoing(self._topics.node(site, node, "receipt"), _json(body)))
        out += acc.verdicts
        out += [self._event_out(c.alert, c.event) for c in acc.changes]
        return acc.outcome
