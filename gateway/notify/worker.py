"""`checkpoint-gateway notify`: route, remind, escalate and send, from the outbox, losing nothing.

One pass (`Notifier.step`):
1. Reminders and escalation (in one transaction): an open alert nobody acknowledged gets its K-th reminder
   every repeat_min after it opened (only the latest one is kept pending), and once escalate_min has passed an
   `escalated` event by the actor "notifier" (saved like a medic's, so its notification is in the outbox too).
2. Routing (same transaction): each new notification becomes one pending delivery per receiver its route names.
3. Sending, receiver by receiver, oldest first. Each delivery is sent, then its attempt recorded in a
   transaction of its own: a crash between the two sends that one message again (the only duplicate, with the
   same ref). A failure stops that receiver for this pass and retries its oldest delivery after retry_first_s,
   doubling to retry_max_s, for as long as it takes; the rest wait behind it, so order holds. A backlog longer
   than summary_after (after a failure) starts with a summary line. A reminder of an alert acknowledged or
   resolved meanwhile is cancelled, not sent.

Times are the injected wall clock (ms): they are stored (due, attempt times) and shown in messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from gateway import alerts
from gateway.errors import ConfigError, StoreError
from gateway.logs import RateLimitedLog
from gateway.notify import messages, routing, urls
from gateway.notify.messages import NOTIFIER, Context
from gateway.notify.metrics import NotifyMetrics
from gateway.notify.outbox import CANCELLED, SENT, Delivery, Outbox
from gateway.notify.send import Sender, redact_apprise_logs
from gateway.notify.settings import NotifySection, Receiver
from gateway.store.base import AlertEvent, AlertRow, Store, Transaction
from gateway.web.i18n import Zones

log = logging.getLogger("gateway.notify")
_BATCH = 500  # notifications routed, deliveries read per receiver, per pass
_ERROR_CHARS = 500


class Notifier:
    def __init__(
        self,
        store: Store,
        settings: NotifySection,
        sender: Sender,
        clock: Callable[[], int],
        console_url: str = "",
        default_zone: str = "UTC",
        environ: Mapping[str, str] | None = None,
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self._store, self._settings, self._sender, self._clock = store, settings, sender, clock
        self._console_url, self._default_zone, self._environ = console_url, default_zone, environ
        self.redactor = urls.redactor(settings.receivers.values(), environ)
        redact_apprise_logs(self.redactor)
        self._store_log = RateLimitedLog(log, 60_000, clock)
        self.metrics = metrics  # gateway/notify/metrics.py, when [metrics] notify_listen is set

    def run(self, stop: threading.Event) -> None:
        """Passes every poll_interval_s until `stop` is set; a storage fault is logged and the pass tried again."""
        while not stop.is_set():
            try:
                self.step()
            except StoreError as e:
                self._store_log.warning("store", f"notifier: {e}; trying again")
            stop.wait(self._settings.poll_interval_s)

    def step(self) -> int:
        """One pass (see the module docstring); returns how many deliveries were tried."""
        now = self._clock()
        with self._store.transaction() as tx:
            ob = tx.outbox()
            self._timers(tx, ob, now)
            self._route(tx, ob, now)
            waiting = ob.waiting()
            if self.metrics is not None:
                for name in sorted(set(self._settings.receivers) | set(waiting)):
                    first = ob.pending(name, 1)
                    age_s = max(0, now - first[0].created_at) / 1000 if first else 0.0
                    self.metrics.waiting(name, ob.count_pending(name), age_s)
        return sum(self._deliver(name) for name in waiting)

    def test(self, name: str) -> str | None:
        """Send a test message to one receiver: None when it took it, else the (redacted) error."""
        receiver = self._settings.receivers.get(name)
        if receiver is None:
            known = ", ".join(sorted(self._settings.receivers)) or "none"
            return f"no receiver {name!r} in [notify.receivers] (known: {known})"
        try:
            url, secrets = urls.resolve(receiver, self._environ)
        except ConfigError as e:
            return str(e)
        self.redactor.add(secrets)
        err = self._sender.send(url, *messages.test_message(self._context(receiver)))
        return None if err is None else self.redactor.clean(err)

    def _timers(self, tx: Transaction, ob: Outbox, now: int) -> None:
        for alert_id, kind, site in ob.unacknowledged():
            timing = self._settings.timing_for(site, kind)
            if not timing.repeat_min and not timing.escalate_min:
                continue
            alert = tx.alert(alert_id)
            if alert is None:
                continue
            age = now - alert.opened_at
            if timing.escalate_min and alert.state == alerts.RAISED and age >= timing.escalate_min * 60_000:
                note = f"not acknowledged within {timing.escalate_min:g} min"
                change = alerts.escalate(alert, NOTIFIER, "", note, now)
                if tx.update_alert(change.alert, change.event, seen_events=alert.events):
                    log.warning("%s escalated: %s", alert_id, note)
                    alert = change.alert
            k = int(age // (timing.repeat_min * 60_000)) if timing.repeat_min else 0
            if k >= 1 and ob.add_reminder(alert, k, now):
                log.info("%s: reminder %d (not acknowledged)", alert_id, k)

    def _route(self, tx: Transaction, ob: Outbox, now: int) -> None:
        for note in ob.unrouted(_BATCH):
            alert = tx.alert(note.alert_id)
            event = ob.event(note.alert_id, note.n)
            names: list[str] = []
            if alert is not None and event is not None:
                state = alert.state if note.reminder else event.state
                names = routing.receivers_for(self._settings.routes, alert.kind, alert.site, state)
            ob.route(note, names, now)
            if not names:
                log.info("%s: no route matches; kept, not sent", note.notification_id)

    def _deliver(self, name: str) -> int:
        """Send what is due to one receiver, oldest first, until one fails; returns how many were tried."""
        with self._store.transaction() as tx:
            pending = tx.outbox().pending(name, _BATCH)
            total = tx.outbox().count_pending(name)
        receiver = self._settings.receivers.get(name)
        if not pending or pending[0].due_at > self._clock():
            return 0
        if receiver is None:
            for d in pending:
                self._record(d, CANCELLED, f"receiver {name!r} is no longer in [notify.receivers]")
            return 0
        try:
            url, secrets = urls.resolve(receiver, self._environ)
        except ConfigError as e:
            self._failed(pending[0], str(e))
            return 1
        self.redactor.add(secrets)
        ctx = self._context(receiver)
        if pending[0].attempts and total > self._settings.summary_after:
            err = self._sender.send(url, *messages.summary(total, pending[0].created_at, None, ctx))
            if err is not None:
                self._failed(pending[0], err)
                return 1
        tried = 0
        for d in pending:
            tried += 1
            if not self._deliver_one(d, url, ctx):
                break
        return tried

    def _deliver_one(self, d: Delivery, url: str, ctx: Context) -> bool:
        """Send one delivery and record it; False when it failed (the receiver waits)."""
        found = self._load(d)
        if found is None:
            self._record(d, CANCELLED, "the alert is no longer stored")
            return True
        alert, event = found
        if d.reminder and (alert.acknowledged_at is not None or alert.state == alerts.RESOLVED):
            self._record(d, CANCELLED, f"{alert.state} before the reminder was sent")
            return True
        now = self._clock()
        ctx = Context(ctx.locale, ctx.form, ctx.console_url, ctx.site_names, ctx.zones, now)
        started = time.perf_counter()
        err = self._sender.send(url, *messages.render(alert, event, d.reminder, d.notification_id, ctx))
        if self.metrics is not None:
            self.metrics.send_seconds.labels(d.receiver).observe(time.perf_counter() - started)
        if err is not None:
            self._failed(d, err)
            return False
        self._record(d, SENT, None)
        log.info("sent %s to %s", d.notification_id, d.receiver)
        return True

    def _load(self, d: Delivery) -> tuple[AlertRow, AlertEvent] | None:
        alert = self._store.alert(d.alert_id)
        events = [e for e in self._store.alert_events(d.alert_id) if e.n == d.n]
        return (alert, events[0]) if alert is not None and events else None

    def _failed(self, d: Delivery, err: str) -> None:
        attempts = d.attempts + 1
        wait_s = min(self._settings.retry_first_s * 2 ** (attempts - 1), self._settings.retry_max_s)
        text = self.redactor.clean(err)[:_ERROR_CHARS]
        log.warning("%s to %s failed (attempt %d, next in %.0f s): %s", d.notification_id, d.receiver, attempts,
                    wait_s, text)  # fmt: skip
        self._record(d, "failed", text, self._clock() + int(wait_s * 1000))

    def _record(self, d: Delivery, result: str, error: str | None, retry_at: int | None = None) -> None:
        with self._store.transaction() as tx:
            tx.outbox().record(d, self._clock(), result, error, retry_at)
        if self.metrics is not None:  # committed: counted
            self.metrics.attempts.labels(d.receiver, result).inc()

    def _context(self, receiver: Receiver) -> Context:
        sites = self._store.sites()
        zones = Zones(self._default_zone, [(s.site, s.timezone) for s in sites])
        names = {s.site: s.name for s in sites if s.name}
        return Context(receiver.locale, receiver.form, self._console_url, names, zones, self._clock())
