"""The field loop (issue 15, item 5): from medics' clinical re-checks, per node and per site, the bias of the
IR estimate against the clinical reading, its spread, the false-alarm share and the field PPV.

A re-check is a medic's clinical reading on an alert (an alert event with reason "recheck", its method and
reading_c; gateway/alerts.py); an alert re-checked more than once counts once, with its last reading. The IR
estimate is the alert's t_core_c, else the scan's gateway estimate. Fever = clinical >= `FEVER_C` (37.3 C,
China's line). False-alarm share = elevated scans whose clinical reading is below it, over elevated scans;
field PPV is its complement over the same scans. Both are None when nothing elevated was re-checked.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from gateway.store.base import AlertEvent, AlertRow, ScanRow, Store

FEVER_C = 37.3  # China's line for fever, clinical reading (C)
CLOCKS_MS = 3_600_000  # events read from this long before the first scan arrived: the console's clock may differ
STUDY_SITE_COLUMNS = {
    "forehead": "T_FH_Max",
    "canthus": "canthiMax",
}  # columns of the study file (lab/dataset.py SITE_COLUMNS)
FIELDS = ("n", "bias_c", "sd_c", "elevated", "false_alarm_share", "ppv")


@dataclass(frozen=True)
class Recheck:
    site: str
    node: str
    mode: str
    t_site_c: float  # the node's site reading (C)
    t_amb_c: float  # the node's sensor ambient (C)
    t_core_c: float  # the IR estimate shown (C)
    elevated: bool  # the scan's verdict was elevated
    clinical_c: float  # the medic's clinical thermometer (C)


def summary(rechecks: Sequence[Recheck], fever_c: float = FEVER_C) -> dict[str, Any]:
    """{n, bias_c: mean of (IR - clinical) in C, sd_c: its sample SD (None below 2), elevated,
    false_alarm_share, ppv (None if nothing elevated)}."""
    n = len(rechecks)
    d = [r.t_core_c - r.clinical_c for r in rechecks]
    bias = sum(d) / n if n else None
    spread = math.sqrt(sum((x - bias) ** 2 for x in d) / (n - 1)) if n > 1 and bias is not None else None
    elevated = [r for r in rechecks if r.elevated]
    true = sum(1 for r in elevated if r.clinical_c >= fever_c)
    return {
        "n": n,
        "bias_c": bias,
        "sd_c": spread,
        "elevated": len(elevated),
        "false_alarm_share": (len(elevated) - true) / len(elevated) if elevated else None,
        "ppv": true / len(elevated) if elevated else None,
    }


def _grouped(rechecks: Sequence[Recheck], key: Callable[[Recheck], str], fever_c: float) -> dict[str, dict[str, Any]]:
    names = sorted({key(r) for r in rechecks})
    return {name: summary([r for r in rechecks if key(r) == name], fever_c) for name in names}


def by_node(rechecks: Sequence[Recheck], fever_c: float = FEVER_C) -> dict[str, dict[str, Any]]:
    """`summary` per "site/node", sorted by name."""
    return _grouped(rechecks, lambda r: f"{r.site}/{r.node}", fever_c)


def by_site(rechecks: Sequence[Recheck], fever_c: float = FEVER_C) -> dict[str, dict[str, Any]]:
    """`summary` per site, sorted by name."""
    return _grouped(rechecks, lambda r: r.site, fever_c)


def rechecks(store: Store, start: int | None, end: int | None, site: str | None = None) -> list[Recheck]:
    """The re-checks of the alerts whose scan was made in [start, end) (Unix ms, the scan's time, as the day's
    tallies count them; None: unbounded), of one site or all, one per alert (its last), from the store's alert
    events. The IR estimate is the alert's t_core_c, else the scan's gateway estimate; neither: left out."""
    scans: dict[tuple[str, str, int | None], ScanRow] = {
        (s.site, s.node, s.seq): s for s in store.scans(start, end, site)
    }
    if not scans:
        return []
    last: dict[str, tuple[AlertRow, AlertEvent]] = {}
    since = min(s.received_at for s in scans.values()) - CLOCKS_MS  # an alert's events follow its scan's arrival
    for alert, event in store.events_since(since):
        if event.reason == "recheck" and event.reading_c is not None and (alert.site, alert.node, alert.seq) in scans:
            last[alert.alert_id] = (alert, event)
    out = []
    for alert, event in sorted(last.values(), key=lambda p: (p[1].at, p[0].alert_id)):
        scan = scans[(alert.site, alert.node, alert.seq)]
        estimate = alert.t_core_c if alert.t_core_c is not None else scan.gateway_t_core_c
        if estimate is None or event.reading_c is None:
            continue
        out.append(Recheck(
            alert.site, alert.node, scan.mode,
            math.nan if scan.t_site_c is None else scan.t_site_c,
            math.nan if scan.t_amb_c is None else scan.t_amb_c,
            estimate, scan.gateway_verdict == "elevated", event.reading_c,
        ))  # fmt: skip
    return out


def write_dataset(rechecks: Sequence[Recheck], f: IO[str]) -> int:
    """The re-checks as CSV in the study's format (three header lines, round 1 only, the site reading under its
    mode's column, the clinical reading as `aveOralM`), which `checkpoint-gateway evaluate` reads; returns the
    rows written."""
    cols = ["SubjectID", *[c + "1" for c in STUDY_SITE_COLUMNS.values()], "aveOralM", "T_atm"]
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["", "Round 1:"] + [""] * (len(cols) - 2))
    w.writerow([""] * len(cols))
    w.writerow(cols)
    for i, r in enumerate(rechecks):
        sites = [f"{r.t_site_c}" if mode == r.mode else "" for mode in STUDY_SITE_COLUMNS]
        w.writerow([f"{r.site}/{r.node}/{i}", *sites, f"{r.clinical_c}", f"{r.t_amb_c}"])
    return len(rechecks)


def as_json(rechecks: Sequence[Recheck]) -> dict[str, Any]:
    """{fever_c, sites: {site: summary}, nodes: {"site/node": summary}}."""
    return {"fever_c": FEVER_C, "sites": by_site(rechecks), "nodes": by_node(rechecks)}


def _cell(col: str, v: Any) -> str:
    if v is None:
        return "-"
    if col in ("false_alarm_share", "ppv"):
        return f"{100 * v:.0f}%"
    if col == "bias_c":
        return f"{v:+.2f}"
    return f"{v:.2f}" if col == "sd_c" else str(v)


def rows(rechecks: Sequence[Recheck]) -> list[dict[str, str]]:
    """Per site, then per "site/node": {where, *FIELDS} as text (bias signed, C; shares in %; "-" for None)."""
    found = [{"where": k} | v for k, v in [*by_site(rechecks).items(), *by_node(rechecks).items()]]
    return [{c: _cell(c, r[c]) for c in ("where", *FIELDS)} for r in found]


def table(rechecks: Sequence[Recheck]) -> str:
    """Per site, then per node: n, bias and SD (C, IR - clinical), elevated re-checked, false-alarm share, PPV."""
    cols = ("where", *FIELDS)
    cells = rows(rechecks)
    widths = {c: max(len(c), *(len(x[c]) for x in cells)) if cells else len(c) for c in cols}
    lines = [f"field loop: clinical re-checks (IR - clinical; fever = clinical >= {FEVER_C} C)"]
    lines.append("  ".join(c.rjust(widths[c]) for c in cols))
    lines += ["  ".join(x[c].rjust(widths[c]) for c in cols) for x in cells]
    if not cells:
        lines.append("no re-checks recorded on this day")
    return "\n".join(lines)
