"""Test support for the notifier: alerts raised and acted on through the same store calls the gateway's batch and
the console use, a Notifier on a FakeClock, and the outbox read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import alerts
from gateway.notify.send import Sender
from gateway.notify.settings import NotifySection, parse
from gateway.notify.worker import Notifier
from gateway.store import Store
from gateway.store.base import AlertRow, ScanRow
from testkit.gateway import FakeClock

SITE, POST, ZONE = "g7-km12", "G7 京藏高速 12 公里卡点", "Asia/Shanghai"
CONSOLE = "https://console.county.example"


def scan_row(seq: int, node: str = "n1", t_core: float = 38.6, site: str = SITE, at: int = 0) -> ScanRow:
    return ScanRow(site, node, seq, 1, at, 60_000, "forehead", 37.1, 24.0, t_core, "elevated", (), 12, 900, None,
                   "fw", "cal", t_core, "elevated", (), "cal", at, at)  # fmt: skip


def raise_fever(store: Store, clock: FakeClock, seq: int, node: str = "n1", t_core: float = 38.6) -> AlertRow:
    """A fever alert saved as the gateway's batch saves it (tx.save_alert)."""
    change = alerts.raise_fever(scan_row(seq, node, t_core, at=clock()), clock())
    with store.transaction() as tx:
        tx.save_alert(change.alert, change.event)
    return change.alert


def act(store: Store, alert_id: str, action: Callable[[AlertRow], alerts.Change]) -> AlertRow:
    """A person's action saved as the console saves it (tx.update_alert against the event counter read)."""
    with store.transaction() as tx:
        alert = tx.alert(alert_id)
        if alert is None:
            raise KeyError(alert_id)
        change = action(alert)
        if not tx.update_alert(change.alert, change.event, seen_events=alert.events):
            raise RuntimeError(f"{alert_id} changed under the test")
    return change.alert


def settings(toml: dict[str, Any]) -> NotifySection:
    return parse(toml, "test")


def notifier(store: Store, section: NotifySection, clock: FakeClock, environ: dict[str, str] | None = None) -> Notifier:
    return Notifier(store, section, Sender(5.0), clock, CONSOLE, "UTC", environ or {})


def deliveries(store: Store) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return tx.outbox().deliveries()


def attempts(store: Store) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return tx.outbox().attempts()
