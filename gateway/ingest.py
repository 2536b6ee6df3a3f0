"""The writer: one batch of MQTT messages -> one transaction -> what to publish. No MQTT in here.

`Writer.process(batch)` validates each message (gateway/protocol.py), screens scans (gateway/screening.py),
inserts or ignores them by (site, node, seq), quarantines rejects, updates the fleet and the alerts, and
commits once. Only then does the caller publish what it returns (receipts, verdicts, alert events) and
acknowledge the batch to the broker. A crash before the commit loses nothing (the broker redelivers); a crash
after it stores nothing twice (insert-or-ignore) and the receipt is sent again for the redelivered copy.

Every scan is screened and can alert, whatever its storage key: one whose (site, node, seq) is already stored
with another origin (boot, uptime_ms, unit) is an identity clash (a spare unit under a replaced node's name, two
units sharing one name): it is kept in scan_clashes, receipted, screened, alerted under a fever id of its own,
and the clash raises one identity_clash node alert naming both origins. A scan is never refused for its `ts`:
the node's clock is judged (gateway/nodeclock.py), the skew stored with the scan, a clock off by more than
alerts.clock_skew_s raises clock_skew (resolved when a scan's clock is right again) and its scans are filed
under the gateway's own time.

Two clocks are injected: `clock`, wall ms (what is shown and stored), and `monotonic`, ms (every duration: the
sensor-fault window, silence, log rate limits).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import firmware
from gateway import alerts, drift, quarantine, receipts, reference_alerts
from gateway.config import AlertsSection
from gateway.errors import StoreError
from gateway.fleet import TAKEN_OVER_WINDOW_MS, Fleet, Transition
from gateway.logs import RateLimitedLog
from gateway.nodeclock import AHEAD, BEHIND, OK, Judgement, NodeClocks
from gateway.protocol import NODE_KINDS, PROTOCOL_VERSION, Health, Message, Rejection, Scan, Status, Topics, parse
from gateway.screening import Assessment, Screener
from gateway.store.base import AlertEvent, AlertRow, NodeRow, QuarantineRow, ScanRow, Store, Transaction

log = logging.getLogger("gateway.ingest")
contract: Any = firmware.module("contract")  # origin(): which unit a receipt or verdict is for
QUARANTINE_HEAD_BYTES = quarantine.PAYLOAD_HEAD_BYTES
_IDENTIFIER_MAX = 32  # contract.is_identifier
RESOLVED_STATES_MS = 24 * 3_600_000  # alerts resolved this recently get their retained state cleared again
CASE_MS = 24 * 3_600_000  # a retest code names a case of the site opened this recently (codes: a site and a day)
TAKEN_OVER_EVIDENCE = 3  # statuses with one more takeover, within fleet.TAKEN_OVER_WINDOW_MS: two units, one name


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


@dataclass(frozen=True, slots=True)
class _Screened:
    row: ScanRow
    assessment: Assessment
    clock: Judgement | None  # the node's clock as judged on this scan's arrival (None: no ts)


@dataclass
class _Batch:
    # (seq, origin) per node: a receipt names the unit whose scan it stored (two units under one name)
    receipts: defaultdict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    rejected: defaultdict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    verdicts: list[Outgoing] = field(default_factory=list)
    configs: list[Outgoing] = field(default_factory=list)  # pushed configs sent again (resend_configs)
    changes: list[alerts.Change] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    sites: set[str] = field(default_factory=set)  # sites with new scans (the drift monitor's schedule)


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def origin(boot: int, uptime_ms: int, unit: int | None = None) -> int:
    """Which unit made a scan (contract.origin: receipts and verdicts name it); unit 0 or None: a scan that
    carried none (firmware before record layout 4), whose origin is that of its boot and uptime alone."""
    return int(contract.origin(boot, uptime_ms, unit))


def origin_id(boot: int, uptime_ms: int, unit: int | None = None) -> str:
    """A scan's origin in 8 hex digits. Tells apart two scans under one (site, node, seq) (the fever alert id
    of a clashing scan)."""
    return f"{origin(boot, uptime_ms, unit):08x}"


def _payload_origin(payload: bytes) -> int | None:
    """contract.origin of a refused scan whose boot and uptime_ms are readable ints (and its unit, when it is
    one), else None."""
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    boot, up, unit = obj.get("boot"), obj.get("uptime_ms"), obj.get("unit")
    if type(boot) is int and type(up) is int and boot >= 0 and up >= 0:
        return origin(boot, up, unit if type(unit) is int and 0 < unit <= contract.ORIGIN_MAX else None)
    return None


def _unit(unit: int) -> str:
    """A unit as an identity clash names it ("unit 9f3a0c21, "), or nothing for a scan that carried none."""
    return f"unit {unit:08x}, " if unit else ""


def _takeovers_text(count: int | None, boot: int | None) -> str:
    """A node's taken_over as its status says it, for people (an identity_clash alert)."""
    return f"taken_over {count or 0} since boot {boot}"


def _iso(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        monotonic: Callable[[], int] | None = None,
        known: Callable[[str, str], bool] | None = None,
        limits: quarantine.Limiter | None = None,
    ) -> None:
        """`clock`: wall ms; `monotonic`: ms for durations (a unit test without one measures them on `clock`).
        `known(site, node)`: whether the node registry holds that node (None: no registry, every node is
        admitted); a scan, status or health from any other is quarantined as unknown_identity and creates
        nothing else. `limits`: what decides which refused messages keep a row (gateway/quarantine.py)."""
        self._store, self._screener, self._fleet = store, screener, fleet
        self._policy, self._topics, self._clock = policy, topics, clock
        self._monotonic = monotonic or clock
        self._verdict_to_node = verdict_to_node
        self._known = known
        self.limits = limits or quarantine.Limiter(self._monotonic)
        # the longest topic a node can have: longer ones are refused before parse (whose topic cache they would fill)
        self._max_topic = len(topics.prefix.rstrip("/")) + 3 + 2 * _IDENTIFIER_MAX + max(map(len, NODE_KINDS))
        self._faults = alerts.SensorFaultTracker(
            policy.sensor_fault_count, policy.sensor_fault_window_s * 1000, policy.sensor_fault_clear_after
        )
        self._clocks = NodeClocks(policy.clock_skew_s * 1000)
        self._drift = drift.Schedule(drift.CHECK_EVERY_MS, self._monotonic())
        self._watched_since = clock()  # a node never checked against a reference is overdue a shift after this
        self._reference_at = self._monotonic()  # monotonic ms of the last reference check
        # On a broker cluster a retained config stays on the member it was published on (RabbitMQ 3.10): the
        # last pushed config goes again to a node that comes online without it (the service sets this for amqp://)
        self.resend_configs = False
        # windows that ended after this are looked at by check_silence; a day back at start, for one that ended
        # while the gateway was down (a node still offline with no alert gets it; one with an alert is left)
        self._maintenance_checked = clock() - 86_400_000
        self._reject_log = RateLimitedLog(log, 60_000, self._monotonic)
        self._published: list[tuple[str, int]] = []
        self._open_alerts: dict[tuple[str, str, str], AlertRow | None] = {}  # this transaction's (_open_alert)
        self._stale = False  # a transaction failed: the fleet is reloaded from the store before the next one
        self.rejections: defaultdict[str, int] = defaultdict(int)  # reason -> count since start
        self.clashes = 0  # scans kept in scan_clashes since start

    def published(self, events: list[tuple[str, int]]) -> None:
        """Alert events the broker acknowledged: marked in the next transaction."""
        self._published.extend(events)

    def process(self, batch: list[Incoming]) -> Outcome:
        """One transaction for the batch. A StoreError leaves nothing stored and nothing to publish: the caller
        acknowledges nothing and may call again with the same batch (after a storage fault)."""
        now, mono = self._clock(), self._monotonic()
        acc = _Batch()
        parsed = [self._parse(m) for m in batch]
        with self._guard():
            scans = {i: self._screen(p, now) for i, p in enumerate(parsed) if isinstance(p, Scan)}
            with self._store.transaction() as tx:
                is_new = dict(zip(scans, tx.insert_scans([s.row for s in scans.values()]), strict=True))
                for i, (msg, item) in enumerate(zip(batch, parsed, strict=True)):
                    if isinstance(item, Scan):
                        if is_new[i] or not self._clash(tx, item, scans[i], now, mono, acc):
                            self._scan(tx, item, scans[i], is_new[i], now, mono, acc)
                    elif isinstance(item, Status):
                        self._forged(tx, item, self._fleet.refusals(item), now, acc)
                        self._taken_over(tx, item, self._fleet.takeovers(item, mono), now, acc)
                        self._node_transition(tx, self._fleet.on_status(item, now, mono), acc)
                        self._config_again(tx, item, acc)
                    elif isinstance(item, Health):
                        self._clocks.on_health(item.site, item.node, item.uptime_ms, now)
                        self._node_transition(tx, self._fleet.on_health(item, now, mono), acc)
                    elif isinstance(item, Rejection):
                        self._quarantine(tx, msg, item, now, acc)
                marked = self._finish(tx, now)
        del self._published[:marked]
        self._drift.committed(acc.sites)
        return self._outgoing(acc)

    def check_drift(self) -> Outcome:
        """The drift monitor (gateway/drift.py) on each site that committed new scans, at most once a minute per
        site (drift.Schedule): population_drift alerts raised or resolved, a transaction per site, and what to
        publish. It is not part of the verdict, so its failure never stops screening: a site whose check fails
        (a storage fault; logged) is judged again a minute later."""
        now = self._clock()
        acc = _Batch()
        for site in self._drift.due(self._monotonic()):
            try:
                found = drift.check_site(self._store, site, now - drift.SPAN_MS, now)
            except StoreError as e:
                self._reject_log.warning(("drift", site), f"the drift check of site {site} failed ({e}); it is"
                                         " tried again in a minute, screening goes on")  # fmt: skip
                continue
            except Exception:  # a bug in a monitor must not stop screening: logged, the site tried again later
                log.exception("the drift check of site %s failed; tried again in a minute", site)
                continue
            for change in found:
                a = change.alert
                if a.state == alerts.RESOLVED:
                    log.info("%s/%s: back inside its site's level (%s resolved)", site, a.node, a.kind)
                else:
                    log.warning("%s/%s reads apart from its site: %s; check it against a reference", site, a.node,
                                a.detail)  # fmt: skip
                acc.changes.append(change)
            self._drift.done(site)
        return self._outgoing(acc)

    def check_references(self) -> Outcome:
        """reference_overdue and reference_drift (gateway/reference_alerts.py) on every node, at most once per
        reference_alerts.CHECK_EVERY_MS of monotonic time, in a transaction of its own; what to publish. Not part
        of the verdict: a failure (logged) stops nothing and is tried again at the next check."""
        mono = self._monotonic()
        if mono - self._reference_at < reference_alerts.CHECK_EVERY_MS:
            return Outcome()
        self._reference_at = mono
        now, acc = self._clock(), _Batch()
        every_ms = int(self._policy.reference_every_h * 3_600_000)
        try:
            found = reference_alerts.check_nodes(self._store, now, every_ms, self._watched_since)
        except StoreError as e:
            self._reject_log.warning(("reference",), f"the reference check failed ({e}); tried again in a minute")
            return Outcome()
        for change in found:
            a = change.alert
            log.warning("%s/%s: %s %s (%s)", a.site, a.node, a.kind, a.state, a.detail or a.reason)
            acc.changes.append(change)
        return self._outgoing(acc)

    def _parse(self, msg: Incoming) -> Message | Rejection | None:
        """parse(), after two gates: a topic too long to be a node's, and a node not in the registry."""
        if len(msg.topic) > self._max_topic:
            return Rejection("bad_topic")
        item = parse(self._topics.prefix, msg.topic, msg.payload)
        if self._known is None or not isinstance(item, Scan | Status | Health) or self._known(item.site, item.node):
            return item
        return Rejection(quarantine.UNKNOWN_IDENTITY, item.site, item.node)  # no seq: no receipt

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Around a transaction: after a failed one the fleet (changed in memory as messages were read) is
        reloaded from the store, so a retry of the same batch counts nothing twice. Each transaction starts
        knowing no open alerts (_open_alert)."""
        self._open_alerts.clear()
        if self._stale:
            self._fleet.reload(self._store.nodes())
            self._stale = False
        try:
            yield
        except BaseException:
            self._stale = True
            raise

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
                with self._guard(), self._store.transaction() as tx:
                    self._keep(tx, msg, Rejection("internal_error"), self._clock())
                continue
            total.publish += outcome.publish
            total.new += outcome.new
            total.duplicates += outcome.duplicates
            total.rejected += outcome.rejected
        return total

    def check_silence(self) -> Outcome:
        """Nodes silent past alerts.offline_after_s go offline (called periodically by the service)."""
        now, mono = self._clock(), self._monotonic()
        acc = _Batch()
        self._fleet.heard_elsewhere(self._store.nodes(), now, mono)  # several instances share the stream
        transitions = self._fleet.silent(now, mono, self._policy.offline_after_s * 1000)
        ended = any(w.ends_at <= now for w in self._store.maintenance(self._maintenance_checked))
        if transitions or self._published or ended:
            with self._guard(), self._store.transaction() as tx:
                for t in transitions:
                    self._node_transition(tx, t, acc)
                if ended:
                    self._maintenance_over(tx, now, acc)
                marked = self._finish(tx, now)
            del self._published[:marked]
        return self._outgoing(acc)

    def flush_published(self) -> None:
        """Mark what the broker acknowledged since the last transaction (at a clean stop: so the next start
        does not publish those events a second time)."""
        if self._published:
            with self._store.transaction() as tx:
                marked = self._finish(tx, self._clock())
            del self._published[:marked]

    def pending_events(self) -> Outcome:
        """Alert events committed but never acknowledged by the broker (a crash): publish them again."""
        return Outcome(publish=[self._event_out(a, e) for a, e in self._store.unpublished_events()])

    def alert_states(self) -> Outcome:
        """The retained state of every open alert, and a clear for each one resolved in the last day: published
        on every connection to the broker, which may have lost its retained messages (a crash before its
        autosave), so a client that connects later still finds every open alert."""
        since = self._clock() - RESOLVED_STATES_MS
        return Outcome(publish=[self._state_out(a, e) for a, e in self._store.alert_states(since)])

    def _finish(self, tx: Transaction, now: int) -> int:
        """Write the fleet's changes and mark what the broker acknowledged; returns how many marks (dropped
        from the list only once the transaction has committed)."""
        for row in self._fleet.take_dirty():
            tx.save_node(row)
        if self._published:
            tx.mark_published(list(self._published), now)
        return len(self._published)

    def _screen(self, scan: Scan, now: int) -> _Screened:
        a = self._screener.assess(scan)
        judged = self._clocks.on_scan(scan.site, scan.node, scan.boot, scan.uptime_ms, scan.ts, now)
        filed = now if judged is None else judged.filed_at
        row = ScanRow(
            scan.site, scan.node, scan.seq, scan.boot, scan.ts, scan.uptime_ms, scan.mode, scan.t_site_c,
            scan.t_amb_c, scan.t_core_c, scan.verdict, scan.flags, scan.samples, scan.duration_ms,
            scan.retest_of, scan.fw, scan.cal, a.t_core_c, a.verdict, a.flags, a.cal, now, filed,
            None if judged is None else judged.skew_ms,
            code=scan.code, retest_code=scan.retest_code, wait_s=scan.wait_s, ref_gain=scan.ref_gain,
            ref_offset_c=scan.ref_offset_c, unit=scan.unit or 0,
        )  # fmt: skip
        return _Screened(row, a, judged)

    def _scan(self, tx: Transaction, scan: Scan, s: _Screened, new: bool, now: int, mono: int, acc: _Batch) -> None:
        acc.receipts[(scan.site, scan.node)].append((scan.seq, origin(scan.boot, scan.uptime_ms, scan.unit)))
        t = self._fleet.on_scan(scan.site, scan.node, scan.seq, scan.fw, new, now, mono)
        self._node_transition(tx, t, acc)
        if not new:
            acc.outcome.duplicates += 1
            return
        acc.outcome.new += 1
        self._screened(tx, scan, s, "", now, mono, acc)

    def _screened(
        self, tx: Transaction, scan: Scan, s: _Screened, origin: str, now: int, mono: int, acc: _Batch
    ) -> None:
        """The rules for a new scan, stored or clashing (`origin` set): clock, fever, sensor fault, verdict."""
        acc.sites.add(scan.site)
        self._clock_alert(tx, s, now, acc)
        fever = self._scan_alerts(tx, s.row, origin, now, mono, acc)
        a = s.assessment
        if self._verdict_to_node and (a.verdict == "elevated" or a.verdict != scan.verdict or fever):
            acc.verdicts.append(self._verdict_out(s.row, a.threshold_c, fever))

    def _retest_target(self, tx: Transaction, row: ScanRow, origin: str) -> AlertRow | None:
        """The fever alert a retest updates: only when the scan it names is stored from the same unit and boot,
        earlier (after an identity clash a seq may name the other unit's scan: then the retest alerts on its own)."""
        if origin:
            return None
        if row.retest_code is not None and row.retest_of is None:  # a case opened on another node of the site
            case = tx.case_scan(row.site, row.retest_code, row.received_at - CASE_MS)
            return None if case is None else tx.fever_alert_for(row.site, case[0], case[1])
        if row.retest_of is None:
            return None
        target = tx.scan_origin(row.site, row.node, row.retest_of)
        if target is None or target[0] != row.boot or target[1] > row.uptime_ms or target[2] != row.unit:
            return None
        return tx.fever_alert_for(row.site, row.node, row.retest_of)

    def _scan_alerts(
        self, tx: Transaction, row: ScanRow, origin: str, now: int, mono: int, acc: _Batch
    ) -> AlertRow | None:
        """Fever and sensor-fault rules for a new scan; returns the fever alert it raised or updated."""
        fever = self._retest_target(tx, row, origin)
        if fever is not None:
            fever = self._save(tx, alerts.retest(fever, row, now), acc)
        elif row.gateway_verdict == "elevated":
            fever = self._save(tx, alerts.raise_fever(row, now, origin), acc)
        signal = self._faults.on_scan(row.site, row.node, row.gateway_verdict == "invalid", mono)
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
            planned = tx.maintenance_at(t.site, t.node, t.at)
            if planned is not None:  # raised when the window ends if it is still offline (check_silence)
                log.info("node %s/%s offline during planned maintenance (%s): no alert", t.site, t.node, planned.note)
            else:
                log.warning("node %s/%s offline (%s)", t.site, t.node, t.reason)
                self._save(tx, alerts.raise_node(alerts.NODE_OFFLINE, t.site, t.node, t.reason, t.at), acc)
        elif t.after == "online" and open_alert is not None:
            log.info("node %s/%s back online", t.site, t.node)
            self._save(tx, alerts.resolve(open_alert, "back_online", t.at), acc)
        self._post_transition(tx, t, acc)

    def _forged(self, tx: Transaction, status: Status, new: int, now: int, acc: _Batch) -> None:
        """Commands the node refused that the fleet had not seen (Fleet.refusals): someone sent it a forged or
        replayed receipt, verdict or config. A log line each time; one forged_command alert per episode: raised
        when none is open, kept open (no new one, no new event) until a person closes it as handled."""
        if new <= 0:
            return
        why = status.auth_error or "refused"
        log.warning("%s/%s refused %d command(s) sent to it (forged or replayed), %d since its boot %s, the last: %s",
                    status.site, status.node, new, status.auth_refused, status.boot, why)  # fmt: skip
        if tx.open_alert(alerts.FORGED_COMMAND, status.site, status.node) is None:
            detail = f"{status.auth_refused} refused since boot {status.boot}, the last: {why}"
            self._save(tx, alerts.raise_node(alerts.FORGED_COMMAND, status.site, status.node, "auth_refused", now,
                                             detail=detail), acc)  # fmt: skip

    def _taken_over(self, tx: Transaction, status: Status, rises: int, now: int, acc: _Batch) -> None:
        """Evidence of two units under one name before any scan clashes (a unit with a copied config that is on
        but scans nothing, or whose seqs have not met the other's yet): the broker ended the node's session
        TAKEN_OVER_EVIDENCE times within fleet.TAKEN_OVER_WINDOW_MS while its link was up (its statuses'
        `taken_over`, Fleet.takeovers). Raises identity_clash (reason taken_over) when none is open; a broker
        restart ends each session once, so it raises nothing. While one is open, the nodes page shows the count
        beside it (a clash raised by a scan names the count its node's status gave then)."""
        if rises < TAKEN_OVER_EVIDENCE or tx.open_alert(alerts.IDENTITY_CLASH, status.site, status.node) is not None:
            return
        detail = (
            f"the broker ended its session {rises} times in {TAKEN_OVER_WINDOW_MS // 60_000} min while its link was"
            f" up (its status: {_takeovers_text(status.taken_over, status.boot)}): another unit under this name (a"
            " copied config) takes it over, or the broker keeps ending sessions. Find the other unit and give it a"
            " name of its own"
        )
        log.warning("%s/%s: %s", status.site, status.node, detail)
        change = alerts.raise_node(alerts.IDENTITY_CLASH, status.site, status.node, "taken_over", now, detail=detail)
        self._save(tx, change, acc)

    def _config_again(self, tx: Transaction, status: Status, acc: _Batch) -> None:
        """A node online with a config id other than the last one pushed to it (push-config keeps it in the
        store): that config again, QoS 1, not retained, signed at publish like every command (issue 16). Only
        with resend_configs: on Mosquitto the retained config reaches the node at every connect."""
        if not self.resend_configs or status.state != "online":
            return
        pushed = tx.node_config(status.site, status.node)
        if pushed is None or pushed.config_id == status.config_id:
            return
        log.info("%s/%s is online with config %r, not the pushed %r: sending it again", status.site, status.node,
                 status.config_id, pushed.config_id)  # fmt: skip
        acc.configs.append(Outgoing(self._topics.node(status.site, status.node, "config"), pushed.body.encode()))

    def _post_transition(self, tx: Transaction, t: Transition, acc: _Batch) -> None:
        """Every node of the site that is not retired offline (the post's link or power, not one unit): one
        post_offline alert (node alerts.WHOLE_POST), so someone phones the post, raised in the transaction of
        the last node's change; resolved (node_back) when any node of it is back (issue 13 item 5)."""
        post = tx.open_alert(alerts.POST_OFFLINE, t.site, alerts.WHOLE_POST)
        nodes = [n for n in self._fleet.site_nodes(t.site) if self._known is None or self._known(n.site, n.node)]
        dark = nodes and all(n.state == "offline" for n in nodes)
        if t.after == "offline" and post is None and dark and not self._planned(tx, t.site, nodes, t.at):
            names = [n.node for n in nodes]
            log.warning("post %s: all %d nodes offline (%s)", t.site, len(names), ", ".join(names))
            self._save(tx, alerts.raise_post_offline(t.site, names, t.reason, t.at), acc)
        elif t.after == "online" and post is not None:
            log.info("post %s: node %s back online", t.site, t.node)
            self._save(tx, alerts.resolve(post, "node_back", t.at), acc)

    @staticmethod
    def _planned(tx: Transaction, site: str, nodes: list[NodeRow], at: int) -> bool:
        """Every node of the site in a planned maintenance window at `at` (its own or the whole site's)."""
        return all(tx.maintenance_at(site, n.node, at) is not None for n in nodes)

    def _maintenance_over(self, tx: Transaction, now: int, acc: _Batch) -> None:
        """Windows that ended since the last check: a node of one still offline (and in no other window) raises
        its node_offline now (reason maintenance_over), and a post still dark its post_offline."""
        ended = tx.maintenance_ended(self._maintenance_checked, now)
        self._maintenance_checked = now
        for site in sorted({w.site for w in ended}):
            nodes = [n for n in self._fleet.site_nodes(site) if self._known is None or self._known(n.site, n.node)]
            windowed = {w.node for w in ended if w.site == site}
            for n in nodes:
                if not (n.node in windowed or alerts.WHOLE_POST in windowed) or n.state != "offline":
                    continue
                if tx.open_alert(alerts.NODE_OFFLINE, site, n.node) is None and not self._planned(tx, site, [n], now):
                    log.warning("node %s/%s still offline after its maintenance window", site, n.node)
                    self._save(tx, alerts.raise_node(alerts.NODE_OFFLINE, site, n.node, "maintenance_over", now), acc)
            dark = nodes and all(n.state == "offline" for n in nodes)
            post = tx.open_alert(alerts.POST_OFFLINE, site, alerts.WHOLE_POST)
            if dark and post is None and not self._planned(tx, site, nodes, now):
                names = [n.node for n in nodes]
                self._save(tx, alerts.raise_post_offline(site, names, "maintenance_over", now), acc)

    def _open_alert(self, tx: Transaction, kind: str, site: str, node: str) -> AlertRow | None:
        """tx.open_alert, read once per transaction: a rule that runs on every scan (the clock's) reads the
        alerts table once per node and batch, not once per scan. _save forgets what it changes."""
        key = (kind, site, node)
        if key not in self._open_alerts:
            self._open_alerts[key] = tx.open_alert(kind, site, node)
        return self._open_alerts[key]

    def _save(self, tx: Transaction, change: alerts.Change, acc: _Batch) -> AlertRow:
        change = alerts.save(tx, change)
        self._open_alerts.pop((change.alert.kind, change.alert.site, change.alert.node), None)
        acc.changes.append(change)
        return change.alert

    def _clash(self, tx: Transaction, scan: Scan, s: _Screened, now: int, mono: int, acc: _Batch) -> bool:
        """A scan whose (site, node, seq) is stored with another origin (boot, uptime_ms, unit): two units under
        one name (a spare replacing a node, a re-flashed unit, two units sharing a name; a spare with a fresh
        flash may even make its seq at the stored one's boot and uptime: only its unit tells). Insert-or-ignore
        would drop it as a duplicate: it is kept in scan_clashes, receipted, screened and alerted like any scan,
        and the clash raises one identity_clash alert naming both origins. False for a plain resend."""
        stored, row = tx.stored_scan(scan.site, scan.node, scan.seq), s.row
        if stored is None or (stored.boot, stored.uptime_ms, stored.unit) == (row.boot, row.uptime_ms, row.unit):
            return False
        new = tx.insert_clash(row)
        acc.receipts[(scan.site, scan.node)].append((scan.seq, origin(scan.boot, scan.uptime_ms, scan.unit)))
        self._node_transition(tx, self._fleet.on_scan(scan.site, scan.node, scan.seq, scan.fw, False, now, mono), acc)
        if not new:
            acc.outcome.duplicates += 1
            return True
        acc.outcome.new += 1
        self.clashes += 1
        who = f"{scan.site}/{scan.node}"
        both = (
            f"seq {scan.seq} came from two units: stored {_unit(stored.unit)}boot {stored.boot}, fw {stored.fw},"
            f" first seen {_iso(stored.received_at)}; new {_unit(row.unit)}boot {scan.boot}, fw {scan.fw}, first seen"
            f" {_iso(now)}"
        )
        known = self._fleet.get(scan.site, scan.node)
        if known is not None and known.taken_over:  # the client id contest: evidence of the same
            taken = _takeovers_text(known.taken_over, known.boot)
            both += f"; the broker ended its session while its link was up ({taken})"
        if tx.open_alert(alerts.IDENTITY_CLASH, scan.site, scan.node) is None:
            change = alerts.raise_node(alerts.IDENTITY_CLASH, scan.site, scan.node, "seq_reused", now, scan.seq, both)
            self._save(tx, change, acc)
        self._reject_log.warning(
            (who, alerts.IDENTITY_CLASH),
            f"{who}: {both}; both kept (the new one in scan_clashes), screened and alerted. Give each unit a"
            " name of its own (a spare replacing a node: clear its outbox, or name it anew)",
        )
        self._screened(tx, scan, s, origin_id(scan.boot, scan.uptime_ms, scan.unit), now, mono, acc)
        return True

    def _clock_alert(self, tx: Transaction, s: _Screened, now: int, acc: _Batch) -> None:
        """clock_skew: raised when a scan shows the node's clock off by more than the bound, resolved when a
        scan shows it right again (a scan that cannot tell, UNKNOWN or no ts, changes nothing)."""
        judged, row = s.clock, s.row
        if judged is None or judged.state not in (AHEAD, BEHIND, OK):
            return
        open_alert = self._open_alert(tx, alerts.CLOCK_SKEW, row.site, row.node)
        if judged.state == OK:
            if open_alert is not None:
                self._save(tx, alerts.resolve(open_alert, "clock_ok", now, row.seq), acc)
            return
        if open_alert is None:
            detail = (
                f"the node's clock is {judged.state} by {abs(judged.skew_ms) / 1000:.0f} s (scan {row.seq}: ts"
                f" {_iso(row.ts)}, received {_iso(now)}); its scans are filed under the gateway's time"
            )
            log.warning("%s/%s: %s", row.site, row.node, detail)
            change = alerts.raise_node(alerts.CLOCK_SKEW, row.site, row.node, judged.state, now, row.seq, detail)
            self._save(tx, change, acc)

    def _quarantine(self, tx: Transaction, msg: Incoming, rej: Rejection, now: int, acc: _Batch) -> None:
        acc.outcome.rejected += 1
        self.rejections[rej.reason] += 1
        origin = None if rej.seq is None else _payload_origin(msg.payload)
        if rej.site is not None and rej.node is not None and rej.seq is not None and origin is not None:
            acc.rejected[(rej.site, rej.node)].append((rej.seq, origin))  # no origin: not this firmware's scan
        self._keep(tx, msg, rej, now)

    def _keep(self, tx: Transaction, msg: Incoming, rej: Rejection, now: int) -> None:
        """A refused message counted against its source, and its bounded row stored if the limits allow."""
        source, kept = self.limits.admit(quarantine.source_of(msg.topic, rej.site, rej.node), rej.reason)
        tx.count_quarantine(source, rej.reason, kept, now)
        topic = quarantine.topic_head(msg.topic)
        if kept:
            head = msg.payload[: quarantine.PAYLOAD_HEAD_BYTES]
            tx.insert_quarantine(QuarantineRow(now, topic, rej.reason, len(msg.payload), head, rej.site, rej.node))
        self._reject_log.warning(
            (source, rej.reason),
            f"quarantined a message from {source} on {topic!r}: {rej.reason}" + ("" if kept else " (counted only)"),
        )

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
            "origin": origin(row.boot, row.uptime_ms, row.unit),  # the unit whose scan it is
        }
        return Outgoing(self._topics.node(row.site, row.node, "verdict"), _json(body))

    def _event_out(self, alert: AlertRow, event: AlertEvent) -> Outgoing:
        body = _json(alerts.event_payload(alert, event))
        return Outgoing(self._topics.alerts(alert.site), body, event=(event.alert_id, event.n))

    def _state_out(self, alert: AlertRow, event: AlertEvent) -> Outgoing:
        """The alert's retained state on `{prefix}/alerts/{site}/{alert_id}`: its latest event while it is open,
        a zero-length retained publish (which clears it) once it is resolved."""
        topic = f"{self._topics.alerts(alert.site)}/{alert.alert_id}"
        body = b"" if alert.state == alerts.RESOLVED else _json(alerts.event_payload(alert, event))
        return Outgoing(topic, body, retain=True)

    def _outgoing(self, acc: _Batch) -> Outcome:
        out = acc.outcome.publish
        for site, node in list(acc.receipts) + [k for k in acc.rejected if k not in acc.receipts]:
            stored, rejected = (receipts.pairs(named.get((site, node), [])) for named in (acc.receipts, acc.rejected))
            topic = self._topics.node(site, node, "receipt")
            out += [Outgoing(topic, _json(body)) for body in receipts.bodies(stored, rejected)]  # each fits the node
        out += acc.verdicts + acc.configs
        for c in acc.changes:
            out += [self._event_out(c.alert, c.event), self._state_out(c.alert, c.event)]
        return acc.outcome
