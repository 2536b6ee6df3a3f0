"""What the pages show, as plain values: the alert board, an alert's history, the fleet, the day's sheet."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gateway import alerts, field, report, tallies
from gateway.store.base import AlertEvent, AlertRow, MaintenanceRow, NodeRow, SiteReport, Store
from gateway.web.auth import Visitor
from gateway.web.i18n import Zones

DAY_MS = 86_400_000
SHEET_COLUMNS = ("site", "screened", "elevated", "retests", "rechecked", "confirmed", "cleared", "referred",
                 "monitored", "turned_back", "indeterminate", "invalid", "nodes_up")  # fmt: skip


@dataclass(frozen=True)
class AlertView:
    alert: AlertRow
    status: str  # active_unack | active_ack | escalated | cleared_unack | cleared_ack
    opened: str  # local time, zone named
    open_min: int
    acts: bool  # the visitor may act on it


def status_key(alert: AlertRow) -> str:
    active, acked = alerts.status(alert)
    if active and alert.state == alerts.ESCALATED:
        return "escalated"
    return ("active_" if active else "cleared_") + ("ack" if acked else "unack")


def view(a: AlertRow, visitor: Visitor, zones: Zones, now: int) -> AlertView:
    end = a.resolved_at if a.resolved_at is not None else now
    return AlertView(a, status_key(a), zones.show(a.opened_at, a.site), max(0, (end - a.opened_at) // 60_000),
                     visitor.acts_on(a.site))  # fmt: skip


def board(
    store: Store, visitor: Visitor, zones: Zones, now: int, site: str = "", kind: str = ""
) -> tuple[list[AlertView], list[AlertView]]:
    """(open, closed in the last 24 h): open fevers first, the oldest unacknowledged on top."""
    wanted = [a for a in store.alerts(None, None, site or None, open_only=True)]
    wanted += [a for a in store.alerts(now - DAY_MS, None, site or None) if a.state == alerts.RESOLVED]
    wanted = [a for a in wanted if visitor.sees(a.site) and (not kind or a.kind == kind)]
    open_ = [a for a in wanted if a.state != alerts.RESOLVED]
    open_.sort(key=lambda a: (a.kind != alerts.FEVER, a.acknowledged_at is not None, a.opened_at, a.alert_id))
    closed = sorted((a for a in wanted if a.state == alerts.RESOLVED), key=lambda a: -(a.resolved_at or 0))
    return [view(a, visitor, zones, now) for a in open_], [view(a, visitor, zones, now) for a in closed]


def describe(event: AlertEvent, t: Callable[[str], str]) -> str:
    """One event in words: its reason, and the reading, method or note it carries."""
    parts = [t(event.reason)]
    if event.method is not None and event.reading_c is not None:
        parts.append(f"{t(event.method)} {event.reading_c:.1f} °C")
    elif event.t_core_c is not None:
        parts.append(f"{event.t_core_c:.1f} °C")
    if event.seq is not None:
        parts.append(f"seq {event.seq}")
    if event.note:
        parts.append(f"“{event.note}”")
    return " · ".join(parts)


def rechecks(events: Iterable[AlertEvent]) -> int:
    return sum(1 for e in events if e.method is not None)


def unhealthy(n: NodeRow) -> bool:
    """A node that needs someone: a refused config, scans it dropped, sensor errors, commands it refused, or
    sessions the broker ended under it (another unit with its name?)."""
    return (n.config_error is not None or bool(n.outbox_drops) or bool(n.sensor_errors) or bool(n.auth_refused)
            or bool(n.taken_over))  # fmt: skip


def forged(store: Store, visitor: Visitor) -> dict[tuple[str, str], AlertRow]:
    """The open forged_command alert of each node the visitor sees, by (site, node): shown on the nodes page
    after the node's own count is gone (a reboot counts from 0), until a person closes it."""
    return node_alerts(store, visitor, alerts.FORGED_COMMAND)


def node_alerts(store: Store, visitor: Visitor, kind: str) -> dict[tuple[str, str], AlertRow]:
    """The open alert of `kind` of each node the visitor sees, by (site, node) (forged_command, identity_clash:
    closed by people, so the nodes page names them beside the node's own counts)."""
    return {(a.site, a.node): a for a in store.alerts(None, None, None, open_only=True)
            if a.kind == kind and visitor.sees(a.site)}  # fmt: skip


def nodes(store: Store, visitor: Visitor) -> list[NodeRow]:
    """Offline first, then unhealthy ones, then by site and node."""
    rows = [n for n in store.nodes() if visitor.sees(n.site)]
    return sorted(rows, key=lambda n: (n.state == "online", not unhealthy(n), n.site, n.node))


def windows(store: Store, visitor: Visitor, now: int) -> dict[tuple[str, str], MaintenanceRow]:
    """The current or next maintenance window of each node the visitor sees, by (site, node); a window for a
    whole post is under (site, "*") (gateway/maintenance.py)."""
    out: dict[tuple[str, str], MaintenanceRow] = {}
    for w in store.maintenance(now):
        if visitor.sees(w.site):
            out.setdefault((w.site, w.node), w)
    return out


def sheet(store: Store, visitor: Visitor, zones: Zones, day: str, now: int) -> list[SiteReport]:
    """The day's tallies of every site the visitor sees, each site's day in its own zone."""
    by_zone: dict[str, list[SiteReport]] = {}
    names = {s.site for s in store.sites()} | {n.site for n in store.nodes()}
    wanted = sorted(s for s in names if visitor.sees(s))
    out = []
    for site in wanted:
        zone = zones.name(site)
        if zone not in by_zone:
            start, end = report.day_bounds(report.resolve_day(day, zone, now), zone)
            by_zone[zone] = store.report(start, end)
        out.append(next((r for r in by_zone[zone] if r.site == site), SiteReport(site)))
    return out


def shift_sheet(store: Store, visitor: Visitor, zones: Zones, day: str) -> list[dict[str, object]]:
    """The day's tallies per site and shift (gateway/tallies.py) of the sites the visitor sees, each site's shifts
    in its own zone; SHEET_COLUMNS plus "shift"."""
    rows = tallies.by_shift(store, dt.date.fromisoformat(day), zones.default)
    return [r.as_dict(by_shift=True) for r in rows if visitor.sees(r.tally.site)]


@dataclass(frozen=True)
class Hourly:
    """One site's day by local hour: `hours` is 24 (scans, fevers) pairs, hour 0 first; `peak` the most scans in
    an hour (the chart's scale, at least 1). A day of a daylight-saving change puts its repeated hour in one bar."""

    site: str
    zone: str
    hours: list[tuple[int, int]]
    peak: int


def hourly(store: Store, visitor: Visitor, zones: Zones, day: str) -> list[Hourly]:
    """Scans and fevers (first scans the gateway judged elevated) per local hour of the day, per site seen."""
    out = []
    for site in sorted({s.site for s in store.sites()} | {n.site for n in store.nodes()}):
        if not visitor.sees(site):
            continue
        counts = [[0, 0] for _ in range(24)]
        for scan in store.scans(*report.day_bounds(day, zones.name(site)), site):
            bar = counts[zones.local(scan.scanned_at, site).hour]
            bar[0] += 1
            bar[1] += scan.retest_of is None and scan.gateway_verdict == "elevated"
        hours = [(n, f) for n, f in counts]
        out.append(Hourly(site, zones.name(site), hours, max(1, *(n for n, _ in hours))))
    return out


FIELD_COLUMNS = ("where", *field.FIELDS)


def field_sheet(store: Store, visitor: Visitor, zones: Zones, day: str, now: int) -> list[dict[str, str]]:
    """The field loop (gateway/field.py) of the sites the visitor sees, each site's day in its own zone: per
    site, then per node, FIELD_COLUMNS as display text (C, shares in %, "-" when there is nothing to show)."""
    by_zone: dict[str, list[field.Recheck]] = {}
    checks: list[field.Recheck] = []
    for site in sorted({s.site for s in store.sites()} | {n.site for n in store.nodes()}):
        if not visitor.sees(site):
            continue
        zone = zones.name(site)
        if zone not in by_zone:
            by_zone[zone] = field.rechecks(store, *report.day_bounds(report.resolve_day(day, zone, now), zone))
        checks += [r for r in by_zone[zone] if r.site == site]
    return field.rows(checks)


def sheet_csv(rows: Iterable[SiteReport]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHEET_COLUMNS)
    for r in rows:
        w.writerow([getattr(r, c) for c in SHEET_COLUMNS])
    return buf.getvalue()
