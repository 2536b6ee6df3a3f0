"""`checkpoint-gateway retention [--older-than DAYS]`: forget personal follow-up details past their time, and
scans, alert events, quarantined messages and audit lines older than DAYS, and alerts resolved before it.

Follow-up details (gateway/followup.py) go on every run, [web] followup_days (default 28) after they were
recorded, with or without --older-than: personal data must not outlive its period because a flag was left off a
cron line, and the delete is one indexed statement. Run it daily (docs/console.md), e.g. from cron:
`15 3 * * * checkpoint-gateway retention --config /etc/checkpoint/gateway.toml --older-than 180`.

--older-than: PostgreSQL drops whole months as partitions (instant, no vacuum), so up to a month more than asked
is kept: every month that ends before the cutoff's month begins; the audit log goes to the millisecond. The
history of an alert still open is kept. SQLite: the rows are deleted (the same rule, to the millisecond).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from gateway import config as config_mod
from gateway import followup
from gateway.errors import ConfigError, StoreError
from gateway.store import open_store, sqlite_path

PROG = "checkpoint-gateway"
DAY_MS = 86_400_000
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]
_KEEP_OPEN = "alert_id IN (SELECT alert_id FROM alerts WHERE state <> 'resolved')"


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("retention", parents=common, help="forget follow-up details past [web] followup_days, and"
                       " scans, alert events, quarantine and audit lines older than DAYS")  # fmt: skip
    p.add_argument("--older-than", metavar="DAYS", type=_days, help="e.g. 180 (or 180d); without it only follow-up"
                   " details go")  # fmt: skip
    p.set_defaults(func=configured(run))


def _days(text: str) -> int:
    try:
        days = int(text.removesuffix("d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of days, e.g. 180") from None
    if days < 1:
        raise argparse.ArgumentTypeError("at least 1 day")
    return days


def run(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    now = int(time.time() * 1000)
    days = cfg.web.followup_days
    print(f"followups rows: {forget_followups(cfg.store.db, now, days)} (recorded more than {days} days ago)")
    if args.older_than is None:
        print(f"{PROG}: retention done (follow-up details only: add --older-than DAYS for scans and the rest)",
              file=sys.stderr)  # fmt: skip
        return 0
    gone = forget(cfg.store.db, now - args.older_than * DAY_MS)
    for what, n in gone.items():
        print(f"{what}: {n}")
    print(f"{PROG}: retention done (older than {args.older_than} days)", file=sys.stderr)
    return 0


def forget_followups(url: str, now: int, days: int) -> int:
    """Delete follow-up details recorded more than `days` days before `now` (Unix ms); how many went."""
    store = open_store(url, create=False)  # refuses a missing database, migrates an old one
    try:
        return followup.forget(store, now, days)
    finally:
        store.close()


def forget(url: str, cutoff: int) -> dict[str, int]:
    """What went, by table."""
    path = sqlite_path(url)
    if path is not None:
        open_store(url, create=False).close()  # refuses a missing database, migrates an old one
        return _sqlite(str(path), cutoff)
    from gateway.store.postgres import PostgresStore

    store = open_store(url, create=False)
    if not isinstance(store, PostgresStore):
        raise ConfigError(f"--db {url}: retention knows SQLite and PostgreSQL")
    try:
        gone = store.drop_older_than(cutoff)  # follow-up details of the alerts it deletes go with them (cascade)
        with store.transaction() as tx:
            gone["audit rows"] = tx.forget_audit(cutoff)
        return gone
    finally:
        store.close()


def _sqlite(path: str, cutoff: int) -> dict[str, int]:
    old = "SELECT alert_id FROM alerts WHERE state = 'resolved' AND resolved_at < ?"
    steps = [
        ("scans rows", "DELETE FROM scans WHERE scanned_at < ?"),
        ("scan_clashes rows", "DELETE FROM scan_clashes WHERE scanned_at < ?"),
        ("quarantine rows", "DELETE FROM quarantine WHERE received_at < ?"),
        ("audit rows", "DELETE FROM audit WHERE at < ?"),
        ("alert_events rows", f"DELETE FROM alert_events WHERE at < ? AND NOT {_KEEP_OPEN}"),
        ("", f"DELETE FROM alert_events WHERE alert_id IN ({old})"),
        ("", f"DELETE FROM followups WHERE alert_id IN ({old})"),  # this connection does not enforce the cascade
        ("alerts rows", f"DELETE FROM alerts WHERE alert_id IN ({old})"),
    ]
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        gone = {}
        for what, sql in steps:
            n = conn.execute(sql, (cutoff,)).rowcount
            if what:
                gone[what] = n
        conn.execute("COMMIT")
        return gone
    except sqlite3.Error as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"{path}: retention failed: {e}") from e
    finally:
        conn.close()
