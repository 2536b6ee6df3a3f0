"""The simulated medic (issue 14, item 6): every open fever alert is taken through the console's lifecycle, as a
medic at the post would: acknowledged, re-checked with a clinical thermometer (oral: the traveller's true core
temperature from ground truth less ORAL_BELOW_CORE_C, plus the thermometer's error) and resolved with an outcome.

The medic acts through the same functions the console's pages and JSON API use (gateway.alerts: acknowledge,
recheck, resolve_by, written with the alert's event counter, so a change made meanwhile by anyone else wins and
this medic leaves that alert alone). Outcome: "referred" (to a fever clinic) when the thermometer reads at or
above REFER_C, China's screening line (docs/screening.md), else "cleared". Seeded per alert: the same run, the
same readings.

    medic = Medic(seed)
    tally = medic.round(store, travellers, now_ms)   # {"rechecked": n, "referred": n, "cleared": n, ...}
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from gateway import alerts
from gateway.store.base import AlertRow, Store
from sim.travellers import ORAL_BELOW_CORE_C, Traveller

ACTOR = "medic:sim"
ADDRESS = "simulator"
METHOD = "oral"
THERMOMETER_SD_C = 0.1  # a clinical oral thermometer's error (assumed; ISO 80601-2-56 allows +-0.3 C max)
REFER_C = 37.3


class Medic:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def reading_c(self, alert_id: str, traveller: Traveller) -> float:
        """The thermometer's reading for this traveller, C, to 0.1 as a clinical thermometer shows it."""
        rng = random.Random(f"{self.seed}:{alert_id}:thermometer")
        return round(traveller.core_c - ORAL_BELOW_CORE_C + rng.gauss(0.0, THERMOMETER_SD_C), 1)

    def round(self, store: Store, travellers: Mapping[tuple[str, str, int], Traveller], now: int) -> dict[str, Any]:
        """Handle every open fever alert whose scan has a traveller (`travellers`: (site, node, seq) -> who).
        Returns counts: rechecked, referred, cleared, febrile_cleared (a febrile traveller the thermometer
        cleared), healthy_referred, and skipped (no traveller behind the scan, or someone else moved it)."""
        tally = dict.fromkeys(("rechecked", "referred", "cleared", "febrile_cleared", "healthy_referred", "skipped"), 0)
        for alert in store.alerts(None, None, None, open_only=True):
            if alert.kind != alerts.FEVER:
                continue
            who = None if alert.seq is None else travellers.get((alert.site, alert.node, alert.seq))
            if who is None or not self._handle(store, alert.alert_id, who, now):
                tally["skipped"] += 1
                continue
            reading = self.reading_c(alert.alert_id, who)
            outcome = "referred" if reading >= REFER_C else "cleared"
            tally["rechecked"] += 1
            tally[outcome] += 1
            tally["febrile_cleared"] += who.febrile and outcome == "cleared"
            tally["healthy_referred"] += (not who.febrile) and outcome == "referred"
        return tally

    def _handle(self, store: Store, alert_id: str, who: Traveller, now: int) -> bool:
        """Acknowledge, re-check and resolve one alert, each step a change of its own (as a medic's three taps);
        False as soon as a step finds the alert moved on (another medic) or refuses it."""
        reading = self.reading_c(alert_id, who)
        for step in ("acknowledge", "recheck", "resolve"):
            with store.transaction() as tx:
                alert = tx.alert(alert_id)
                if alert is None or alert.state == alerts.RESOLVED:
                    return False
                try:
                    change = _step(step, alert, reading, now)
                except alerts.Refused:
                    return False
                if change is not None and not tx.update_alert(change.alert, change.event, seen_events=alert.events):
                    return False
        return True


def _step(step: str, alert: AlertRow, reading: float, now: int) -> alerts.Change | None:
    if step == "acknowledge":
        return alerts.acknowledge(alert, ACTOR, ADDRESS, now) if alert.acknowledged_at is None else None
    if step == "recheck":
        return alerts.recheck(alert, ACTOR, ADDRESS, METHOD, reading, now + 1)
    outcome = "referred" if reading >= REFER_C else "cleared"
    return alerts.resolve_by(alert, ACTOR, ADDRESS, outcome, "", 1, now + 2)
