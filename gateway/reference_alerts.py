"""The reference alerts (issue 15 item 3): a node's reference check overdue, or its correction drifted.

`reference_overdue`: an online node whose last reference check (gateway/reference.py; never checked: the time the
running gateway started watching) is older than [alerts] reference_every_h (default one shift, 12 h); resolved
by a newer check. `reference_drift`: the node's last two checks differ by more than DRIFT_LIMIT_C (0.3 C) over
CHECK_RANGE_C (33-41 C, the skin of the living); resolved when a later check agrees with the one before it.
`changes` is the rule (pure); `check_nodes` runs it on the store: the service calls it (ingest.Writer
.check_references) at most once per CHECK_EVERY_MS, and an alert is raised once, not while one of its kind is
open for the node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import firmware
from gateway import alerts
from gateway.store.base import AlertRow, NodeRow, ReferenceRow, Store

_ref: Any = firmware.module("reference")  # untyped MicroPython-subset code, imported by name
OVERDUE, DRIFT = alerts.REFERENCE_OVERDUE, alerts.REFERENCE_DRIFT
DRIFT_LIMIT_C: float = _ref.DRIFT_LIMIT_C
CHECK_RANGE_C: tuple[float, float] = _ref.CHECK_RANGE_C
CHECK_EVERY_MS = 60_000  # a check is a shift apart: a minute late is no news


def drift_c(before: ReferenceRow, after: ReferenceRow) -> float:
    """The largest difference (C) two checks' corrections make over CHECK_RANGE_C."""
    return float(_ref.drift_c(_as_dict(before), _as_dict(after)))


def _as_dict(row: ReferenceRow) -> dict[str, float]:
    return {"gain": row.gain, "offset_c": row.offset_c}


def changes(
    nodes: Sequence[NodeRow],
    history: Mapping[tuple[str, str], Sequence[ReferenceRow]],
    watched_since: int,
    open_alerts: Mapping[tuple[str, str, str], AlertRow],
    now: int,
    every_ms: int,
) -> list[alerts.Change]:
    """The reference alerts the nodes call for. Overdue: an online node whose last check (never checked:
    `watched_since`, the service's start) is older than `every_ms`; resolved by a newer check. Drift: the last
    two checks differ by more than DRIFT_LIMIT_C; resolved when a later check agrees with the one before it.
    Raised once: not while one of the kind is open for the node. `open_alerts`: (kind, site, node) -> alert."""
    out = []
    for n in nodes:
        key = (n.site, n.node)
        checks = history.get(key, ())
        since = checks[-1].checked_at if checks else watched_since
        late = n.state == "online" and _ref.overdue(since, now, every_ms)
        drifted = len(checks) >= 2 and drift_c(checks[-2], checks[-1]) > DRIFT_LIMIT_C
        for kind, now_bad, detail in (
            (OVERDUE, late, _overdue_detail(checks, now, every_ms)),
            (DRIFT, drifted, _drift_detail(checks)),
        ):
            found = open_alerts.get((kind, n.site, n.node))
            if now_bad and found is None:
                out.append(alerts.raise_node(kind, n.site, n.node, "reference", now, detail=detail))
            elif found is not None and not now_bad and (kind == DRIFT or checks):
                out.append(alerts.resolve(found, "checked", now))
    return out


def _overdue_detail(checks: Sequence[ReferenceRow], now: int, every_ms: int) -> str:
    every = f"(a check every {every_ms / 3_600_000:g} h)"
    if not checks:
        return f"never checked against a reference {every}"
    return f"last reference check {(now - checks[-1].checked_at) / 3_600_000:.1f} h ago {every}"


def _drift_detail(checks: Sequence[ReferenceRow]) -> str:
    if len(checks) < 2:
        return ""
    return (f"correction moved {drift_c(checks[-2], checks[-1]):.2f} C between its last two checks (limit "
            f"{DRIFT_LIMIT_C} C over {CHECK_RANGE_C[0]:g}-{CHECK_RANGE_C[1]:g} C)")  # fmt: skip


def check_nodes(store: Store, now: int, every_ms: int, watched_since: int) -> list[alerts.Change]:
    """Judge every node on its reference history and save the alerts that follow, in one transaction."""
    nodes = [n for n in store.nodes() if n.node != alerts.WHOLE_POST]
    history: dict[tuple[str, str], list[ReferenceRow]] = {}
    for row in store.references():
        history.setdefault((row.site, row.node), []).append(row)
    with store.transaction() as tx:
        found = {(k, n.site, n.node): tx.open_alert(k, n.site, n.node) for n in nodes for k in (OVERDUE, DRIFT)}
        done = changes(nodes, history, watched_since, {k: a for k, a in found.items() if a is not None}, now, every_ms)
        return [alerts.save(tx, change) for change in done]
