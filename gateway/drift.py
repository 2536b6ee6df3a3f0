"""The lane baseline as a drift monitor (issue 15, item 4): per node, the trimmed mean of its last WINDOW
usable site readings; a node whose level departs from the median of its site's other nodes by more than
BOUND_C is named. Not part of the verdict: it says "check this unit" (docs/screening.md, "Drift monitor").

`check_site` raises and resolves the node alert (kind DRIFT, alerts.POPULATION_DRIFT) on the scans a site stored
in the last SPAN_MS. The service calls it (ingest.Writer.check_drift) for a site that committed new scans, at
most once per site per CHECK_EVERY_MS of its monotonic clock (`Schedule`).

BOUND_C is measured in the lab (lab/drift.py `level_sd`, tests/lab/test_drift.py): 4 SDs of a 30-reading
trimmed mean of the study's honest canthus readings, 4 x 0.08 C = 0.33 C.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gateway import alerts
from gateway.store.base import AlertRow, ScanRow, Store

WINDOW = 30  # readings per node, at least
TRIM = 0.2  # share cut from each end, as the lane baseline does
BOUND_SDS = 4.0
BOUND_C = 0.33  # BOUND_SDS x the lab's level SD (C)
DRIFT = alerts.POPULATION_DRIFT
SPAN_MS = 6 * 3_600_000  # the readings judged: a shift's; older ones are another crowd in another room
# At most one check per site per minute: check_site reads the site's last SPAN_MS of scans (a query of thousands
# of rows at a busy post) and a level moves by one reading in WINDOW, so a check per batch (hundreds a second
# under load) would repeat the same answer at a query each; a drift that built over hours is not news a minute
# sooner.
CHECK_EVERY_MS = 60_000


def trimmed_mean(xs: Sequence[float], trim: float = TRIM) -> float:
    """Mean of `xs` (C) without the lowest and highest `trim` share; all of them when that would leave none."""
    s = sorted(xs)
    cut = int(len(s) * trim)
    kept = s[cut : len(s) - cut] if len(s) > 2 * cut else s
    return sum(kept) / len(kept)


def node_level(readings: Sequence[float], window: int = WINDOW) -> float | None:
    """The node's population level (C): the trimmed mean of its last `window` readings; None with fewer."""
    if len(readings) < window:
        return None
    return trimmed_mean(readings[-window:])


def drifting(levels: Mapping[str, float | None], bound_c: float = BOUND_C) -> dict[str, float]:
    """Nodes whose level departs from the median of the site's other nodes by more than `bound_c`, with the
    departure (C, + = reads high). A node without a level (too few readings) is neither judged nor a reference."""
    known = {n: v for n, v in levels.items() if v is not None}
    out = {}
    for node, level in known.items():
        others = sorted(v for n, v in known.items() if n != node)
        if not others:
            continue
        mid = len(others) // 2
        median = others[mid] if len(others) % 2 else (others[mid - 1] + others[mid]) / 2
        if abs(level - median) > bound_c:
            out[node] = level - median
    return out


def site_levels(scans: Iterable[ScanRow], window: int = WINDOW) -> dict[str, dict[str, float | None]]:
    """{site: {node: level}} from scans in time order: usable readings only (a site reading, and a first scan
    whose gateway verdict is not invalid; retests would count a traveller twice)."""
    readings: dict[str, dict[str, list[float]]] = {}
    for s in scans:
        if s.t_site_c is None or s.retest_of is not None or s.gateway_verdict == "invalid":
            continue
        readings.setdefault(s.site, {}).setdefault(s.node, []).append(s.t_site_c)
    return {site: {n: node_level(r, window) for n, r in nodes.items()} for site, nodes in readings.items()}


def changes(
    site: str,
    levels: Mapping[str, float | None],
    open_alerts: Mapping[str, AlertRow],
    now: int,
    bound_c: float = BOUND_C,
) -> list[alerts.Change]:
    """The node alerts (kind DRIFT) a site's levels call for: raised on a node beyond the bound without an open
    one (its detail gives the departure in C), resolved ("back_inside") on a node with an open one that is back
    inside. `open_alerts`: node -> its open DRIFT alert. Nodes without a level are left as they are."""
    beyond = drifting(levels, bound_c)
    out = []
    for node in sorted(levels):
        if node in beyond and node not in open_alerts:
            detail = f"level {beyond[node]:+.2f} C from the site's other nodes (bound {bound_c:.2f} C)"
            out.append(alerts.raise_node(DRIFT, site, node, "beyond_bound", now, detail=detail))
        elif node not in beyond and node in open_alerts and levels[node] is not None:
            out.append(alerts.resolve(open_alerts[node], "back_inside", now))
    return out


def check_site(store: Store, site: str, since: int, now: int) -> list[alerts.Change]:
    """Judge one site on its scans stored since `since` (Unix ms) and save the alerts that follow, in one
    transaction; returns them. Raises StoreError as the store does."""
    scans = sorted(store.scans(since, None, site), key=lambda s: (s.scanned_at, s.node, s.seq))
    levels = site_levels(scans).get(site, {})
    with store.transaction() as tx:
        found = {node: tx.open_alert(DRIFT, site, node) for node in levels}
        done = changes(site, levels, {n: a for n, a in found.items() if a is not None}, now)
        return [alerts.save(tx, change) for change in done]


class Schedule:
    """Which sites to judge now: those with scans committed since their last check, each at most once per
    `every_ms` of monotonic time, counted from `start` (the gateway's start) and then from its last check.
    In memory: after a restart a site is judged again a minute after its first committed scan."""

    def __init__(self, every_ms: int, start: int) -> None:
        self._every_ms, self._start = every_ms, start
        self._new: set[str] = set()  # sites with scans committed since their last check
        self._last: dict[str, int] = {}  # site -> monotonic ms of its last check

    def committed(self, sites: Iterable[str]) -> None:
        """Sites whose new scans a transaction has just committed."""
        self._new.update(sites)

    def due(self, mono: int) -> list[str]:
        """The sites to judge at `mono` (ms), by name; each counts as checked now (call `done` once judged: a
        site whose check failed stays due after another `every_ms`)."""
        out = sorted(s for s in self._new if mono - self._last.get(s, self._start) >= self._every_ms)
        for site in out:
            self._last[site] = mono
        return out

    def done(self, site: str) -> None:
        self._new.discard(site)
