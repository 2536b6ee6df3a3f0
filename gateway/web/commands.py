"""`checkpoint-gateway web`, `users` and `sites`: the console's process and its accounts and sites.

Passwords come from a prompt, a file (--password-file) or $CHECKPOINT_USER_PASSWORD, never from argv (it
shows in `ps` and shell history).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import socket
import sys
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway import audit, metrics, shifts
from gateway import config as config_mod
from gateway.errors import ConfigError
from gateway.store import Store, open_store
from gateway.store.base import SiteRow, UserRow

PROG = "checkpoint-gateway"
PASSWORD_ENV = "CHECKPOINT_USER_PASSWORD"
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    web = sub.add_parser("web", parents=common, help="serve the web console (docs/console.md)")
    web.add_argument("--host", help="address to bind (overrides [web] host; default 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (overrides [web] port; 0 = any free port)")
    web.set_defaults(func=configured(_web))
    _users_parser(sub, common, configured)
    _sites_parser(sub, common, configured)
    audit.register(sub, common, configured)  # audit [--since T]: logins, account and site changes (gateway/audit.py)


def _users_parser(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    users = sub.add_parser("users", parents=common, help="console accounts: add, list, disable, reset-password")
    verbs = users.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser(
        "add", help="a new account (password from a prompt, --password-file or $" + PASSWORD_ENV + ")"
    )
    add.add_argument("username")
    add.add_argument("--role", choices=("medic", "coordinator", "admin"), required=True)
    add.add_argument("--sites", default="", help="comma-separated site ids (a medic's posts)")
    add.add_argument("--county", default="", help="a coordinator's county: every site of it")
    add.add_argument("--locale", choices=("", "zh-CN", "en"), default="", help="default: the browser's")
    add.add_argument("--password-file", metavar="FILE")
    add.set_defaults(func=configured(_user_change(_add)))
    verbs.add_parser("list", help="every account").set_defaults(func=configured(_users_list))
    for verb, change in (("disable", _disable), ("reset-password", _reset_password)):
        p = verbs.add_parser(verb, help=f"{verb} an account (ends its sessions)")
        p.add_argument("username")
        if verb == "reset-password":
            p.add_argument("--password-file", metavar="FILE")
        p.set_defaults(func=configured(_user_change(change)))


def _sites_parser(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    sites = sub.add_parser("sites", parents=common, help="sites: name, county, time zone (set, list)")
    sverbs = sites.add_subparsers(dest="verb", required=True, metavar="VERB")
    sset = sverbs.add_parser("set", help="add or change a site")
    sset.add_argument("site")
    sset.add_argument("--timezone", required=True, help="IANA name, e.g. Asia/Shanghai")
    sset.add_argument("--name", default="")
    sset.add_argument("--county", default="")
    sset.add_argument("--shifts", default="", help=f"e.g. {shifts.DEFAULT} (the default): the day sheet's shifts")
    sset.set_defaults(func=configured(_site_set))
    sverbs.add_parser("list", help="every site").set_defaults(func=configured(_sites_list))


def _web(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    import uvicorn

    from gateway import logs
    from gateway.web.app import create_app
    from gateway.web.auth import load_secret
    from gateway.web.metrics import ConsoleMetrics

    logs.setup(cfg.gateway.log_level)
    host = args.host or cfg.web.host
    port = cfg.web.port if args.port is None else args.port
    store = open_store(cfg.store.db, cfg.store.synchronous, create=True)
    secret = load_secret(Path(cfg.web.session_secret_file))
    console_metrics = ConsoleMetrics() if cfg.metrics.console_listen else None
    app = create_app(store, secret, cfg.report.timezone, cfg.web.session_hours, cfg.web.poll_interval_s,
                     metrics=console_metrics)  # fmt: skip
    try:
        sock = socket.create_server((host, port))  # bound before we say where: a test reads the port here
    except OSError as e:
        raise ConfigError(f"web: cannot listen on {host}:{port}: {e.strerror}") from None
    bound = sock.getsockname()[1]
    print(f"{PROG}: console on http://{host}:{bound}/ (database {store.url})", flush=True)
    exposed = metrics.announced(console_metrics, cfg.metrics.console_listen, "console")
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=cfg.gateway.log_level, access_log=False, timeout_graceful_shutdown=2)
    )
    try:
        server.run(sockets=[sock])
    finally:
        if exposed is not None:
            exposed.stop()
        store.close()
    print(f"{PROG}: console stopped", flush=True)
    return 0


def _password(file: str | None) -> str:
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").rstrip("\n")
        except OSError as e:
            raise ConfigError(f"--password-file {file}: {e.strerror}") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise ConfigError(f"no password: use --password-file FILE or ${PASSWORD_ENV} (never the command line)")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def _opened(cfg: config_mod.Config) -> contextlib.closing[Store]:
    return contextlib.closing(open_store(cfg.store.db, cfg.store.synchronous, create=True))


def _users_list(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    with _opened(cfg) as store:
        for u in store.users():
            state = "disabled" if u.disabled else "active"
            print(f"{u.username}\t{u.role}\tsites={u.sites}\tcounty={u.county}\t{state}")
    return 0


UserChange = Callable[[argparse.Namespace, UserRow | None, int], UserRow]


def _add(args: argparse.Namespace, user: UserRow | None, now: int) -> UserRow:
    from gateway.web.auth import hash_password

    if user is not None:
        raise ConfigError(f"user {args.username!r} exists: use reset-password or disable")
    sites = ",".join(s.strip() for s in args.sites.split(",") if s.strip())
    hashed = hash_password(_password(args.password_file))
    return UserRow(args.username, args.role, hashed, sites, args.county, args.locale, 0, now, now)


def _existing(args: argparse.Namespace, user: UserRow | None) -> UserRow:
    if user is None:
        raise ConfigError(f"no user {args.username!r} (checkpoint-gateway users list)")
    return user


def _disable(args: argparse.Namespace, user: UserRow | None, now: int) -> UserRow:
    user = _existing(args, user)
    user.disabled = 1
    return user


def _reset_password(args: argparse.Namespace, user: UserRow | None, now: int) -> UserRow:
    from gateway.web.auth import hash_password

    user = _existing(args, user)
    user.password_hash, user.password_changed_at = hash_password(_password(args.password_file)), now
    return user


def _user_change(change: UserChange) -> Callable[[argparse.Namespace, config_mod.Config], int]:
    """users add|disable|reset-password: `change` makes the account's new row (add: from none), which is saved
    with an audit line; a change to an existing account ends its sessions."""

    def run(args: argparse.Namespace, cfg: config_mod.Config) -> int:
        now = int(time.time() * 1000)
        with _opened(cfg) as store:
            before = store.user(args.username)
            user = change(args, before, now)
            detail = "" if before is not None else f"role={user.role} sites={user.sites} county={user.county}"
            action = "user_" + args.verb.replace("-", "_")
            with store.transaction() as tx:
                tx.save_user(user)
                if before is not None:
                    tx.delete_sessions(username=user.username)
                audit.record(tx, now, audit.cli_actor(), action, user.username, "", detail)
        print(f"{PROG}: user {user.username}: {args.verb} done", file=sys.stderr)
        return 0

    return run


def _sites_list(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    with _opened(cfg) as store:
        for s in store.sites():
            print(f"{s.site}\t{s.name}\tcounty={s.county}\t{s.timezone}\tshifts={s.shifts or shifts.DEFAULT}")
    return 0


def _site_set(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    with _opened(cfg) as store:
        try:
            zoneinfo.ZoneInfo(args.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"--timezone {args.timezone!r}: not a known time zone (e.g. Asia/Shanghai)") from None
        try:
            shifts.parse(args.shifts)
        except ValueError as e:
            raise ConfigError(f"--shifts: {e}") from None
        row = SiteRow(args.site, args.name or args.site, args.county, args.timezone, args.shifts.strip())
        detail = f"name={row.name} county={row.county} timezone={row.timezone} shifts={row.shifts or shifts.DEFAULT}"
        with store.transaction() as tx:
            tx.save_site(row)
            audit.record(tx, int(time.time() * 1000), audit.cli_actor(), "site_set", row.site, "", detail)
    print(f"{PROG}: site {args.site}: saved ({args.timezone}, shifts {args.shifts.strip() or shifts.DEFAULT})",
          file=sys.stderr)  # fmt: skip
    return 0
