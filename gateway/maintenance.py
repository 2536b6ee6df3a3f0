"""`checkpoint-gateway maintenance`: planned maintenance windows (issue 12 item 5).

A coordinator marks a node, or a whole post (`--node` left out: every node of the site), as planned down for a
span of time: a node that goes offline inside the window raises no node_offline alert, a post whose nodes are all
inside windows no post_offline, so nobody is paged for a planned power cut or a unit in the workshop. When the
window ends, a node still offline raises its alert then (reason maintenance_over; gateway/ingest.py). The nodes
page of the console shows the window; every window set or ended is an audit line.

    maintenance set SITE [--node NODE] --until WHEN [--from WHEN] --note TEXT
    maintenance list
    maintenance end SITE [--node NODE]      (now: its alerts come back at the next check)

WHEN: YYYY-MM-DD[THH:MM[:SS]] in [report] timezone (or with its own offset), or Unix ms. A window is at most
MAX_DAYS long (longer outages are planned again, so that none is forgotten).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

from gateway import alerts, audit, report
from gateway import config as config_mod
from gateway.errors import ConfigError
from gateway.protocol import is_identifier
from gateway.store import Store, open_store
from gateway.store.base import MaintenanceRow
from gateway.web.i18n import Zones

MAX_DAYS = 14
NOTE_MAX = 200
PROG = "checkpoint-gateway maintenance"
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("maintenance", parents=common, help="planned maintenance windows: no offline alerts inside")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("set", help="plan a window for a node or a whole post")
    add.add_argument("site")
    add.add_argument("--node", default=alerts.WHOLE_POST, help="one node (default: every node of the site)")
    add.add_argument("--from", dest="start", help="start (default: now)")
    add.add_argument("--until", required=True, help="end: YYYY-MM-DD[THH:MM] ([report] timezone) or Unix ms")
    add.add_argument("--note", required=True, help="why, for the people who see it (e.g. power cut 02:00-04:00)")
    add.set_defaults(func=configured(_set))
    verbs.add_parser("list", help="current and planned windows").set_defaults(func=configured(_list))
    end = verbs.add_parser("end", help="end the current window of a node or post now")
    end.add_argument("site")
    end.add_argument("--node", default=alerts.WHOLE_POST)
    end.set_defaults(func=configured(_end))


def window(args: argparse.Namespace, tz: str, now: int) -> MaintenanceRow:
    """The window `set` asks for; ConfigError naming what is wrong."""
    if not is_identifier(args.site) or not (args.node == alerts.WHOLE_POST or is_identifier(args.node)):
        raise ConfigError(f"{args.site}/{args.node}: site and node names are [a-z0-9][a-z0-9-]{{0,31}}")
    start = report.parse_time(args.start, tz, "--from") if args.start else now
    end = report.parse_time(args.until, tz, "--until")
    if start is None or end is None or end <= max(start, now):
        raise ConfigError(f"--until {args.until!r}: the window must end after it starts and after now")
    if end - start > MAX_DAYS * 86_400_000:
        raise ConfigError(f"a window is at most {MAX_DAYS} days: plan a longer outage again before it ends")
    note = args.note.strip()
    if not note or len(note) > NOTE_MAX:
        raise ConfigError(f"--note: say why, in at most {NOTE_MAX} characters")
    return MaintenanceRow(args.site, args.node, start, end, note, audit.cli_actor(), now)


def _opened(cfg: config_mod.Config) -> contextlib.closing[Store]:
    return contextlib.closing(open_store(cfg.store.db, cfg.store.synchronous, create=False))


def _list(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    zones = Zones(cfg.report.timezone)
    with _opened(cfg) as store:
        rows = store.maintenance(int(time.time() * 1000))
    for w in rows:
        print(f"{w.site}/{w.node}\t{zones.show(w.starts_at, None)} .. {zones.show(w.ends_at, None)}\t"
              f"{w.note}\t({w.created_by})")  # fmt: skip
    print(f"{PROG}: {len(rows)} current or planned window(s)")
    return 0


def _set(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    zones, now = Zones(cfg.report.timezone), int(time.time() * 1000)
    with _opened(cfg) as store:
        row = window(args, cfg.report.timezone, now)
        span = f"{zones.show(row.starts_at, None)} .. {zones.show(row.ends_at, None)}"
        with store.transaction() as tx:
            tx.save_maintenance(row)
            audit.record(
                tx, now, row.created_by, "maintenance_set", f"{row.site}/{row.node}", "", f"{span}: {row.note}"
            )
    print(f"{PROG}: {row.site}/{row.node} planned down {span}: no offline alerts inside")
    return 0


def _end(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    zones, now = Zones(cfg.report.timezone), int(time.time() * 1000)
    with _opened(cfg) as store, store.transaction() as tx:
        current = tx.maintenance_at(args.site, args.node, now)
        if current is None or current.node != args.node:
            raise ConfigError(f"no current window for {args.site}/{args.node} (see: {PROG} list)")
        current.ends_at = now
        tx.save_maintenance(current)
        audit.record(tx, now, audit.cli_actor(), "maintenance_ended", f"{args.site}/{args.node}", "",
                     f"ended {zones.show(now, None)}")  # fmt: skip
    print(f"{PROG}: {args.site}/{args.node}: window ended now; a node still offline raises its alert")
    return 0
