"""`checkpoint-sim run`: turn options into a scenario, run it, print the summary (human, or JSON last line)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sim.broker import BrokerError
from sim.run import Options, Simulation
from sim.scenario import Scenario, ScenarioError, Site, load

HUMAN_KEYS = (
    ("travellers", "travellers arrived"),
    ("scans_made", "scans made by nodes"),
    ("scans_stored", "scans stored by the gateway"),
    ("lost", "lost (must be 0)"),
    ("duplicates", "stored twice (must be 0)"),
    ("febrile", "febrile travellers (ground truth)"),
    ("febrile_flagged", "febrile and flagged elevated"),
    ("false_alarms", "elevated but not febrile"),
    ("indeterminate", "indeterminate (retest)"),
    ("invalid", "invalid (sensor fault)"),
    ("alerts", "fever alerts"),
    ("latency_p50_ms", "scan to alert p50, ms"),
    ("latency_p99_ms", "scan to alert p99, ms"),
    ("quarantined", "messages quarantined"),
    ("scans_per_s", "scans per real second"),
)


def scenario_from(args: argparse.Namespace) -> Scenario:
    scenario = load(args.scenario) if args.scenario else Scenario()
    if args.sites is not None or args.nodes_per_site is not None:
        n_sites = args.sites if args.sites is not None else len(scenario.sites)
        per = args.nodes_per_site if args.nodes_per_site is not None else 2
        if not 1 <= n_sites <= 100 or not 1 <= per <= 1000:
            raise ScenarioError("--sites must be 1-100 and --nodes-per-site 1-1000")
        if scenario.faults:
            raise ScenarioError("--sites/--nodes-per-site replace the scenario's nodes: its faults name nodes")
        template = scenario.sites[0]
        sites = tuple(replace(template, name=f"post-{i + 1}", nodes=per) for i in range(n_sites))
        scenario = replace(scenario, sites=sites)
    if args.ambient is not None or args.mode is not None:
        scenario = replace(scenario, sites=tuple(_site_override(s, args) for s in scenario.sites))
    return scenario.with_options(
        duration_s=args.duration,
        speed=args.speed,
        seed=args.seed,
        rate_per_min=args.rate,
        fever_prevalence=args.fever_prevalence,
    )


def _site_override(site: Site, args: argparse.Namespace) -> Site:
    return replace(
        site,
        ambient_c=site.ambient_c if args.ambient is None else args.ambient,
        mode=site.mode if args.mode is None else args.mode,
    )


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    width = max(len(label) for _, label in HUMAN_KEYS)
    for key, label in HUMAN_KEYS:
        print(f"  {label:<{width}}  {summary.get(key)}")
    print(f"  gateway database: {summary['db']}")
    print(f"  the day's tallies: checkpoint-gateway report --db {summary['db']} --day {summary['day']}")
    print(f"  fever alerts:      checkpoint-gateway alerts --db {summary['db']}")
    if as_json:
        print(json.dumps(summary, separators=(",", ":")))


def main(args: argparse.Namespace) -> int:
    try:
        scenario = scenario_from(args)
        sim = Simulation(Options(scenario, Path(args.workdir), args.broker, args.db))
        summary = sim.run()
    except (ScenarioError, BrokerError) as e:
        print(f"checkpoint-sim run: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("checkpoint-sim run: interrupted; broker, gateway and nodes stopped", file=sys.stderr)
        return 130
    print_summary(summary, args.json)
    return 0 if summary["lost"] == 0 and summary["duplicates"] == 0 else 1
