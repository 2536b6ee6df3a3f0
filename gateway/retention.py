"""`checkpoint-gateway retention --older-than DAYS`: forget scans, alert events and quarantined messages older
than that, and resolved alerts resolved before it.

PostgreSQL: whole months go as partitions dropped (instant, no vacuum), so up to a month more than asked is
kept: every month that ends before the cutoff's month begins. The history of an alert still open is kept.
SQLite: the rows are deleted (the same rule, to the millisecond). Run it from cron, e.g. daily.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from gateway import config as config_mod
from gateway.errors import ConfigError, StoreError
from gateway.store import open_store, sqlite_path

PROG = "checkpoint-gateway"
DAY_MS = 86_400_000
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]
_KEEP_OPEN = "alert_id IN (SELECT alert_id FROM alerts WHERE state <> 'resolved')"


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("retention", parents=common, help="forget scans, alert events and quarantine older than DAYS")
    p.add_argument("--older-than", required=True, metavar="DAYS", type=_days, help="e.g. 180 (or 180d)")
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
    cutoff = int(time.time() * 1000) - args.older_than * DAY_MS
    gone = forget(cfg.store.db, cutoff)
    for what, n in gone.items():
        print(f"{what}: {n}")
    print(f"{PROG}: retention done (older than {args.older_than} days)", file=sys.stderr)
    return 0


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
        return store.drop_older_than(cutoff)
    finally:
        store.close()


def _sqlite(path: str, cutoff: int) -> dict[str, int]:
    old = "SELECT alert_id FROM alerts WHERE state = 'resolved' AND resolved_at < ?"
    steps = [
        ("scans rows", "DELETE FROM scans WHERE scanned_at < ?"),
        ("scan_clashes rows", "DELETE FROM scan_clashes WHERE scanned_at < ?"),
        ("quarantine rows", "DELETE FROM quarantine WHERE received_at < ?"),
        ("alert_events rows", f"DELETE FROM alert_events WHERE at < ? AND NOT {_KEEP_OPEN}"),
        ("", f"DELETE FROM alert_events WHERE alert_id IN ({old})"),
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
