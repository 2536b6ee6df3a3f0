"""The end-of-run summary: what the nodes recorded, what the gateway stored, and who the travellers really were.

Pure functions over plain rows, so the checks are the same whether rows come from an export file or a test.
- `scans_made`: results the nodes appended to their outboxes (a scan torn by a power cut mid-write was never
  made: the node never showed it);
- `scans_stored`: distinct (site, node, seq) in the gateway's export; `lost` = made but not stored;
  `duplicates` = export rows beyond one per key; `invented` = stored but never made by a node;
- `febrile_flagged`: febrile travellers whose stored, authoritative verdict is elevated; `false_alarms`:
  elevated verdicts for travellers who were not febrile;
- `alerts`: fever alerts in the gateway's export; `alerts_missing` / `alerts_extra` compare them with the
  stored elevated scans (one alert each); latency is from the node recording the scan to the alert arriving
  on the alerts topic.
- the cold post (issue 14), over travellers (a traveller's final verdict is the gateway's on their last scan,
  retests included): `definitive_share` (leave with normal or elevated), `retests` (retest scans),
  `never_retested` (leave indeterminate), `febrile_called_normal`, `normal_outside_conditions` (normal verdicts
  on readings whose true conditions were outside the calibration's: must be 0), `sensitivity` / `specificity`
  over definitive travellers; the same per site in `by_site`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sim.post import RecordedScan

Key = tuple[str, str, int]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    i = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[i]


def _same(made: RecordedScan, row: dict[str, Any]) -> bool:
    same_t = made.t_site_c == row["t_site_c"] or (
        made.t_site_c is not None and row["t_site_c"] is not None and abs(made.t_site_c - row["t_site_c"]) < 0.006
    )  # the wire carries hundredths
    return made.verdict == row["verdict"] and same_t and set(made.flags) == set(row["flags"])


def _ratio(n: int, d: int) -> float | None:
    return None if d == 0 else round(n / d, 4)


def outcomes(made: dict[Any, RecordedScan], stored: dict[Key, dict[str, Any]]) -> dict[str, Any]:
    """The cold post's figures over travellers (module doc), from the gateway's verdicts on their scans."""
    final: dict[tuple[str, str, int], tuple[int, str, bool]] = {}  # traveller -> (visit, verdict, febrile)
    retests = outside_normal = 0
    for k, r in sorted(made.items()):
        if r.traveller is None or k not in stored:
            continue
        verdict = stored[k]["gateway_verdict"]
        retests += r.visit > 0
        outside_normal += r.outside and verdict == "normal"
        who = (r.site, r.node, r.traveller.id)
        if who not in final or final[who][0] <= r.visit:
            final[who] = (r.visit, verdict, r.traveller.febrile)
    definitive = [(v, f) for _, v, f in final.values() if v in ("normal", "elevated")]
    febrile = [v for v, f in definitive if f]
    healthy = [v for v, f in definitive if not f]
    return {
        "definitive_share": _ratio(len(definitive), len(final)),
        "retests": retests,
        "never_retested": sum(1 for _, v, _ in final.values() if v == "indeterminate"),
        "febrile_called_normal": sum(1 for _, v, f in final.values() if f and v == "normal"),
        "normal_outside_conditions": outside_normal,
        "sensitivity": _ratio(febrile.count("elevated"), len(febrile)),
        "specificity": _ratio(healthy.count("normal"), len(healthy)),
    }


def summarise(
    results: Iterable[RecordedScan],
    scans: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    quarantine: list[dict[str, Any]],
    alert_seen_at: dict[Key, float],
) -> dict[str, Any]:
    recorded = [r for r in results if r.seq is not None]
    made = {(r.site, r.node, r.seq): r for r in recorded}
    reused = len(recorded) - len(made)  # a node gave two scans one seq: the gateway keeps only the first
    counts = Counter((s["site"], s["node"], int(s["seq"])) for s in scans)
    stored = {(s["site"], s["node"], int(s["seq"])): s for s in scans}
    # Stored under the key but not what the node recorded (another scan with the same seq won).
    differ = sum(1 for k, r in made.items() if k in stored and not _same(r, stored[k]))
    elevated_keys = {k for k, s in stored.items() if s["gateway_verdict"] == "elevated"}
    fever_alerts = Counter(
        (a["site"], a["node"], int(a["seq"])) for a in alerts if a["kind"] == "fever" and a["seq"] is not None
    )
    febrile = [r for r in made.values() if r.traveller is not None and r.traveller.febrile]
    flagged = [r for k, r in made.items() if k in elevated_keys and r.traveller is not None]
    latencies = [(alert_seen_at[k] - made[k].at) * 1000 for k in elevated_keys if k in alert_seen_at and k in made]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    sites = sorted({k[0] for k in made})
    by_site = {site: outcomes({k: r for k, r in made.items() if k[0] == site}, stored) for site in sites}
    node_verdicts = Counter(r.verdict for r in made.values())
    gateway_verdicts = Counter(s["gateway_verdict"] for s in stored.values())
    return {
        "scans_made": len(made),
        "scans_stored": len(stored),
        "lost": len(set(made) - set(stored)) + reused + differ,
        "seq_reused": reused,
        "duplicates": sum(n - 1 for n in counts.values()),
        "invented": len(set(stored) - set(made)),
        "travellers_scanned": sum(1 for r in made.values() if r.traveller is not None),
        "febrile_scanned": len({(r.site, r.node, r.traveller.id) for r in febrile if r.traveller is not None}),
        "febrile_flagged": sum(1 for r in flagged if r.traveller is not None and r.traveller.febrile),
        "false_alarms": sum(1 for r in flagged if r.traveller is not None and not r.traveller.febrile),
        "elevated": len(elevated_keys),
        "indeterminate": gateway_verdicts.get("indeterminate", 0),
        "invalid": gateway_verdicts.get("invalid", 0),
        "verdicts_node": dict(sorted(node_verdicts.items())),
        "verdicts_gateway": dict(sorted(gateway_verdicts.items())),
        "verdict_mismatches": sum(
            1 for k, s in stored.items() if k in made and made[k].verdict != s["gateway_verdict"]
        ),
        "alerts": sum(fever_alerts.values()),
        "alerts_missing": len(elevated_keys - set(fever_alerts)),
        "alerts_extra": sum(n for k, n in fever_alerts.items() if k not in elevated_keys)
        + sum(n - 1 for n in fever_alerts.values() if n > 1),
        "alerts_all": len(alerts),
        "quarantined": len(quarantine),
        "latency_p50_ms": None if p50 is None else round(p50, 1),
        "latency_p99_ms": None if p99 is None else round(p99, 1),
        **outcomes(made, stored),
        "by_site": by_site,
    }
