"""The `report` command's rows (issue 12 item 7): a day or a range of days, per site or per site and shift, as a
table, CSV or JSON.

A day per site counts the calendar day in the report's time zone ([report] timezone), as before. Per shift, each
site's shifts (`sites set --shifts`, gateway/shifts.py) are cut in the site's own zone, and a shift belongs to the
day it starts. `nodes_up` is the nodes online now in every row (the fleet's state, not a history).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import report, shifts
from gateway.errors import ConfigError
from gateway.store import Store
from gateway.store.base import SiteReport, SiteRow

MAX_DAYS = 366


@dataclass(frozen=True)
class Row:
    day: str  # YYYY-MM-DD
    shift: str  # "08-16", or "" for the whole calendar day
    timezone: str  # the zone the day (or shift) is cut in
    tally: SiteReport

    def as_dict(self, by_shift: bool) -> dict[str, object]:
        lead: dict[str, object] = {"day": self.day, "site": self.tally.site}
        if by_shift:
            lead["shift"] = self.shift
        return lead | report.as_dict(self.tally) | {"timezone": self.timezone}


def days(text: str, timezone: str, now_ms: int) -> list[dt.date]:
    """`--day`: YYYY-MM-DD, `today`, or FIRST..LAST (both included, at most MAX_DAYS) -> the days.

    Raises ConfigError naming the problem."""
    first, sep, last = text.partition("..")
    try:
        start = dt.date.fromisoformat(report.resolve_day(first.strip(), timezone, now_ms))
        end = dt.date.fromisoformat(report.resolve_day(last.strip(), timezone, now_ms)) if sep else start
    except ValueError:
        raise ConfigError(
            f"--day {text!r}: expected YYYY-MM-DD, today, or FIRST..LAST (e.g. 2026-12-01..today)"
        ) from None
    if end < start:
        raise ConfigError(f"--day {text!r}: the range ends before it starts")
    if (end - start).days >= MAX_DAYS:
        raise ConfigError(f"--day {text!r}: at most {MAX_DAYS} days at once")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def by_site(store: Store, day: dt.date, timezone: str) -> list[Row]:
    start, end = report.day_bounds(day.isoformat(), timezone)
    return [Row(day.isoformat(), "", timezone, t) for t in store.report(start, end)]


def by_shift(store: Store, day: dt.date, timezone: str) -> list[Row]:
    """Each site's shifts on `day`: the sites known (`sites set`) and any other that scanned that day (the
    report's zone and the default shifts), every shift listed even when nothing was scanned in it."""
    known = {s.site: s for s in store.sites()}
    start, end = report.day_bounds(day.isoformat(), timezone)
    for t in store.report(start, end):
        known.setdefault(t.site, SiteRow(t.site, t.site, "", timezone))
    seen: dict[tuple[int, int], dict[str, SiteReport]] = {}
    rows = []
    for site in sorted(known):
        s = known[site]
        for shift in _shifts(s):
            bounds = shift.bounds(day, s.timezone)
            if bounds not in seen:
                seen[bounds] = {t.site: t for t in store.report(*bounds)}
            rows.append(Row(day.isoformat(), shift.name, s.timezone, seen[bounds].get(site, SiteReport(site))))
    return rows


def _shifts(site: SiteRow) -> list[shifts.Shift]:
    """The site's shifts in the order they begin on a day."""
    try:
        return sorted(shifts.parse(site.shifts), key=lambda s: s.start_h)
    except ValueError as e:  # stored before a check existed, or by hand
        raise ConfigError(f"site {site.site}: {e} (fix it with `sites set {site.site} --shifts ...`)") from None


def table(days: Sequence[dt.date], rows: Sequence[Row], by_shift: bool, timezone: str) -> str:
    """A fixed-width table per day (a day without scans too), a TOTAL line under each; the heading names the
    zones the day is cut in."""
    lead = ("site", "shift") if by_shift else ("site",)
    cols = (*lead, *report.COLUMNS[1:])
    out: list[str] = []
    for day in (d.isoformat() for d in days):
        found = [r.as_dict(by_shift) for r in rows if r.day == day]
        total: dict[str, object] = {c: sum(int(str(r[c])) for r in found) for c in report.COLUMNS[1:]}
        total |= {"site": "TOTAL", "shift": ""}
        zones = sorted({str(r["timezone"]) for r in found} or {timezone})
        widths = {c: max(len(c), *(len(str(r[c])) for r in [*found, total])) for c in cols}
        out.append(f"report for {day} ({', '.join(zones)})")
        out.append("  ".join(c.rjust(widths[c]) for c in cols))
        out += ["  ".join(str(r[c]).rjust(widths[c]) for c in cols) for r in [*found, total]]
    return "\n".join(out)


def as_csv(rows: Sequence[Row], by_shift: bool) -> str:
    """RFC 4180 CSV, a header then one line per day, site (and shift)."""
    buf = io.StringIO()
    lead = ["day", "site", "shift"] if by_shift else ["day", "site"]
    writer = csv.DictWriter(buf, [*lead, *report.COLUMNS[1:], "timezone"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(r.as_dict(by_shift) for r in rows)
    return buf.getvalue()
