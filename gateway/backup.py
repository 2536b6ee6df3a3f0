"""`checkpoint-gateway backup --to FILE` and `backup --restore FILE`: the SQLite database, online.

The backup is SQLite's online backup API (sqlite3.Connection.backup, https://www.sqlite.org/backup.html) in one
step: it reads the database in one read transaction, so the copy is the database as it was at one commit, while
the gateway keeps writing (WAL: a reader never blocks the writer). The copy is written beside FILE and renamed
over it when it is whole and passes `PRAGMA integrity_check`, so a crash never leaves half a backup under FILE.

Restore (the gateway, console and notifier stopped): the backup's pages are copied into the configured database
by the same API, then the migrations run (a backup from an older release is brought up to date). On PostgreSQL
use pg_dump and pg_restore (docs/operations.md).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway import config as config_mod
from gateway.errors import GatewayError
from gateway.store import open_store, sqlite_path

PROG = "checkpoint-gateway"
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("backup", parents=common, help="copy the SQLite database while the gateway runs, or restore")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", metavar="FILE", type=Path, help="write a consistent copy here (replaced when whole)")
    what.add_argument("--restore", metavar="FILE", type=Path, help="replace the database with this backup (stopped)")
    p.set_defaults(func=configured(_command))


def _database(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise GatewayError(f"backup: {url} is not SQLite: use pg_dump / pg_restore for PostgreSQL (docs/operations.md)")
    return path


def backup(url: str, to: Path) -> int:
    """Copy the database at `url` to `to`; returns the number of scans in the copy."""
    source = _database(url)
    if not source.is_file():
        raise GatewayError(f"backup: no database at {source}")
    partial = to.with_name(to.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one commit's state
            scans = _checked(dst, partial)
        finally:
            dst.close()
            src.close()
        os.replace(partial, to)
    except sqlite3.Error as e:
        partial.unlink(missing_ok=True)
        raise GatewayError(f"backup: copying {source} to {to} failed: {e}") from None
    return scans


def _checked(conn: sqlite3.Connection, path: Path) -> int:
    result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise GatewayError(f"backup: {path} failed its integrity check: {result}")
    return int(conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])


def restore(url: str, backup_file: Path) -> int:
    """Replace the database at `url` with `backup_file`'s content (migrated); returns its number of scans."""
    target = _database(url)
    try:
        src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            _checked(src, backup_file)
            target.parent.mkdir(parents=True, exist_ok=True)
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as e:
        raise GatewayError(f"backup: restoring {backup_file} into {target} failed: {e}") from None
    store = open_store(url, create=False)  # the migrations, to this release's schema
    store.close()
    conn = sqlite3.connect(target)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0])
    finally:
        conn.close()


def _command(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    if args.to is not None:
        n = backup(cfg.store.db, args.to)
        print(f"{PROG}: backed up {cfg.store.db} to {args.to} ({n} scans)", file=sys.stderr)
    else:
        n = restore(cfg.store.db, args.restore)
        print(f"{PROG}: restored {args.restore} into {cfg.store.db} ({n} scans)", file=sys.stderr)
    return 0
