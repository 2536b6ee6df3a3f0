"""The county's daily tallies per site, the retest cases (issue 14), and the time arguments of the CLI."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Iterable
from typing import Any

from gateway.errors import ConfigError
from gateway.store.base import ScanRow, SiteReport

COLUMNS = (
    "site",
    "screened",
    "elevated",
    "confirmed",
    "indeterminate",
    "invalid",
    "normal",
    "retests",
    "nodes_up",
    "rechecked",
    "cleared",
    "referred",
    "monitored",
    "turned_back",
)


def resolve_day(day: str, timezone: str, now_ms: int) -> str:
    """`today` (in the zone) as YYYY-MM-DD; any other text unchanged."""
    if day != "today":
        return day
    return dt.datetime.fromtimestamp(now_ms / 1000, zoneinfo.ZoneInfo(timezone)).date().isoformat()


def day_bounds(day: str, timezone: str, now_ms: int | None = None) -> tuple[int, int]:
    """[start, end) of a calendar day (YYYY-MM-DD or `today`) in the given zone, as Unix ms."""
    if day == "today":
        day = resolve_day(day, timezone, int(time.time() * 1000) if now_ms is None else now_ms)
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise ConfigError(f"--day {day!r}: expected YYYY-MM-DD or today") from None
    tz = zoneinfo.ZoneInfo(timezone)
    start = dt.datetime.combine(date, dt.time(), tz)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def parse_time(text: str | None, timezone: str, flag: str) -> int | None:
    """An ISO date or date-time (naive = the report time zone) or Unix ms, as Unix ms."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][+HH:MM] or Unix ms") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return int(when.timestamp() * 1000)


def as_dict(r: SiteReport) -> dict[str, object]:
    return {c: getattr(r, c) for c in COLUMNS}


def table(day: str, reports: Iterable[SiteReport], timezone: str = "") -> str:
    """A fixed-width table with a total line; the heading names the day's zone."""
    rows = [as_dict(r) for r in reports]
    total: dict[str, object] = {c: sum(int(str(r[c])) for r in rows) for c in COLUMNS[1:]}
    total["site"] = "TOTAL"
    widths = {c: max(len(c), *(len(str(r[c])) for r in [*rows, total])) for c in COLUMNS}
    lines = [
        f"report for {day}" + (f" ({timezone})" if timezone else ""),
        "  ".join(c.rjust(widths[c]) for c in COLUMNS),
    ]
    for r in [*rows, total]:
        lines.append("  ".join(str(r[c]).rjust(widths[c]) for c in COLUMNS))
    return "\n".join(lines)


RETEST_COLUMNS = (
    "site", "cases", "elevated_cases", "indeterminate_cases", "retested", "then_normal", "then_elevated",
    "then_indeterminate", "never_retested",
)  # fmt: skip


def retest_tally(rows: Iterable[ScanRow]) -> list[dict[str, Any]]:
    """Per site: cases opened (an elevated or indeterminate scan with a code), how many were retested (a later
    scan on any node of the site naming the code) and the last retest's verdict, and how many indeterminate
    ones never were (an elevated case is the medic's: its outcome is in the day's tallies).
    A code given again later opens a new case: later retests belong to it."""
    cases: dict[tuple[str, int], dict[str, Any]] = {}
    opened: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: (r.received_at, r.site, r.node, r.seq)):
        if r.retest_code is None and r.code is not None and r.gateway_verdict in ("elevated", "indeterminate"):
            case: dict[str, Any] = {"site": r.site, "verdict": r.gateway_verdict, "outcome": None}
            cases[(r.site, r.code)] = case
            opened.append(case)
        elif r.retest_code is not None and (r.site, r.retest_code) in cases:
            cases[(r.site, r.retest_code)]["outcome"] = r.gateway_verdict
    out: dict[str, dict[str, Any]] = {}
    for case in opened:
        t = out.setdefault(case["site"], dict.fromkeys(RETEST_COLUMNS, 0) | {"site": case["site"]})
        t["cases"] += 1
        t[case["verdict"] + "_cases"] += 1
        if case["outcome"] is None:  # an elevated case goes to the medic's thermometer, not back to a scanner
            t["never_retested"] += case["verdict"] == "indeterminate"
        else:
            t["retested"] += 1
            if case["outcome"] in ("normal", "elevated", "indeterminate"):
                t["then_" + case["outcome"]] += 1
    return [out[site] for site in sorted(out)]


def retest_table(tallies: list[dict[str, Any]]) -> str:
    """The retest cases as a fixed-width table (a case: indeterminate or elevated with a code)."""
    widths = {c: max(len(c), *(len(str(t[c])) for t in tallies)) for c in RETEST_COLUMNS}
    lines = ["retest cases (by code, any node of the site)", "  ".join(c.rjust(widths[c]) for c in RETEST_COLUMNS)]
    lines += ["  ".join(str(t[c]).rjust(widths[c]) for c in RETEST_COLUMNS) for t in tallies]
    return "\n".join(lines)
