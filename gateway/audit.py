"""The audit log (issue 12 item 2: who, when, what, from where), beside the alert events.

A person's action on an alert is already an alert event with its actor and address (gateway/alerts.py); this
table holds the rest: logins (ok and refused; never the password, and a refused login names an account only if
it exists, since a mistyped password often lands in the user-name field), logouts, account changes and site
changes from the CLI (actor "cli:<OS user>"), and follow-up details recorded or looked at (never the details).

`checkpoint-gateway audit [--since T] [--until T] [--action A]` lists it, times local with the zone named.
`checkpoint-gateway retention --older-than DAYS` forgets it with the scans.
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from gateway import config as config_mod
from gateway import report
from gateway.store import open_store
from gateway.store.base import AuditRow, Transaction
from gateway.web.i18n import Zones

ACTIONS = (
    "login",  # target: the account; detail: page or api
    "login_refused",  # target: the account if it exists; detail: why (wrong_password, unknown_user, ...)
    "logout",
    "user_add",  # target: the account; detail: role, sites, county (never the password)
    "user_disable",
    "user_reset_password",
    "site_set",  # target: the site; detail: name, county, time zone, shifts
    "followup_recorded",  # target: the alert
    "followup_viewed",  # target: the alert
    "maintenance_set",  # target: site/node (or site/*); detail: the window and the note
    "maintenance_ended",  # target: site/node; detail: the window's new end
    "reference_recorded",  # target: site/node; detail: gain, offset, the points, the config that carries them
)
COLUMNS = ("at", "actor", "action", "target", "address", "detail")
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]


def record(tx: Transaction, at: int, actor: str, action: str, target: str = "", address: str = "",
           detail: str = "") -> None:  # fmt: skip
    """One audit line in the caller's transaction (so it stands or falls with the change it describes)."""
    if action not in ACTIONS:
        raise ValueError(f"audit action {action!r}: one of {', '.join(ACTIONS)}")
    tx.record_audit(AuditRow(at, actor, action, target, address, detail))


def cli_actor() -> str:
    """ "cli:<OS user>" for a change made with checkpoint-gateway, "cli" when the OS does not say who."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("audit", parents=common, help="the audit log: logins, account and site changes, who looked"
                       " at follow-up details (docs/security.md)")  # fmt: skip
    p.add_argument("--since", default="today", help="from this time: today (default), YYYY-MM-DD[THH:MM[:SS]]"
                   " in [report] timezone, or Unix ms")  # fmt: skip
    p.add_argument("--until", help="before this time (same forms; default: now)")
    p.add_argument("--action", choices=ACTIONS, help="only this kind of line")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=configured(run))


def run(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    tz = cfg.report.timezone
    now = int(time.time() * 1000)
    if args.since == "today":
        since: int | None = report.day_bounds("today", tz, now)[0]
    else:
        since = report.parse_time(args.since, tz, "--since")
    until = report.parse_time(args.until, tz, "--until")
    store = open_store(cfg.store.db, cfg.store.synchronous, create=False)
    try:
        rows = [r for r in store.audit(since, until) if args.action in (None, r.action)]
    finally:
        store.close()
    if args.format == "json":
        for r in rows:
            print(json.dumps({**{c: getattr(r, c) for c in COLUMNS}, "local": Zones(tz).show(r.at, None)}))
    else:
        print(table(rows, tz))
    return 0


def table(rows: Iterable[AuditRow], zone: str) -> str:
    """The lines as an aligned text table, `at` as local time with the zone named; a line when there are none."""
    zones = Zones(zone)
    text = [[zones.show(r.at, None), r.actor, r.action, r.target, r.address, r.detail] for r in rows]
    if not text:
        return f"no audit lines in that time (times in {zone})"
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip() for t in text]
    return "\n".join(lines)
