"""`checkpoint-gateway`: run the gateway, export, nodes, alerts, report, check-config, evaluate.

Every command takes --config FILE (or $CHECKPOINT_CONFIG) and --db URL. Errors name the cause and the fix and
exit with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gateway import alerts as alerts_mod
from gateway import backup, export, field, logs, maintenance, provision, push, reference, report, retention, tallies
from gateway import config as config_mod
from gateway.errors import GatewayError
from gateway.notify import commands as notify_commands
from gateway.store import Store, open_store
from gateway.web import commands as web_commands

PROG = "checkpoint-gateway"


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("CHECKPOINT_CONFIG"),
        help="TOML config (default: $CHECKPOINT_CONFIG; see deploy/gateway.example.toml)",
    )
    p.add_argument("--db", metavar="URL", help="database, e.g. sqlite:///var/checkpoint.db (overrides [store] db)")
    return p


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="from this time: YYYY-MM-DD[THH:MM[:SS][+HH:MM]] (report time zone) or Unix ms")
    p.add_argument("--until", help="before this time (same formats)")
    p.add_argument("--site", help="only this site")


def _query_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    """export, nodes, alerts, report: read the database."""
    ex = sub.add_parser("export", parents=common, help="export scans, alerts, quarantined messages or re-checks")
    ex.add_argument("--what", choices=(*export.WHATS, "rechecks"), default="scans",
                    help="rechecks: medics' clinical re-checks as a data set for `evaluate` (study CSV)")  # fmt: skip
    ex.add_argument("--format", choices=export.FORMATS, default="jsonl")
    ex.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    _filters(ex)
    ex.set_defaults(func=_configured(_export))
    nodes = sub.add_parser("nodes", parents=common, help="the fleet: state, last seen, health")
    nodes.add_argument("--site")
    nodes.add_argument("--format", choices=("table", "json"), default="table")
    nodes.set_defaults(func=_configured(_nodes))
    al = sub.add_parser("alerts", parents=common, help="alerts (open ones by default)")
    al.add_argument("--all", action="store_true", help="include resolved alerts")
    al.add_argument("--kind", choices=alerts_mod.KINDS, help="only alerts of this kind")
    al.add_argument("--format", choices=("table", "json"), default="table")
    _filters(al)
    al.set_defaults(func=_configured(_alerts))
    rep = sub.add_parser("report", parents=common, help="a day's (or days') tallies per site or per shift")
    rep.add_argument("--day", required=True, help="YYYY-MM-DD, today, or FIRST..LAST (days in [report] timezone)")
    rep.add_argument("--by", choices=("site", "shift"), default="site", help="shift: each site's shifts (sites set)")
    rep.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rep.set_defaults(func=_configured(_report))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Checkpoint fever-screening gateway.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common()]
    run = sub.add_parser("run", parents=common, help="run the gateway (MQTT in, store, alerts)")
    run.add_argument("--broker", help="mqtt://host:port, mqtts://host:port, or amqp://h1:p1,h2:p2/ (a RabbitMQ"
                     " cluster's members) (overrides [mqtt] broker)")  # fmt: skip
    run.add_argument("--instance", help="client id and status topic name (overrides [gateway] instance)")
    run.add_argument("--share-group", help="subscribe as $share/GROUP/... (several gateway instances)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    run.set_defaults(func=lambda args: _run(_config(args)))
    _query_parsers(sub, common)
    check = sub.add_parser("check-config", parents=common, help="print the effective config, or what is wrong with it")
    check.set_defaults(func=_configured(_check_config))
    pc = sub.add_parser("push-config", parents=common, help="send a node a new config over MQTT")
    push.add_arguments(pc)
    pc.set_defaults(func=_configured(push.run))
    web_commands.register(sub, common, _configured)  # web, users, sites: the console (gateway/web/)
    retention.register(sub, common, _configured)  # retention --older-than DAYS
    maintenance.register(sub, common, _configured)  # maintenance set|list|end: gateway/maintenance.py
    reference.register(sub, common, _configured)  # reference record|list|readings: gateway/reference.py
    backup.register(sub, common, _configured)  # backup --to FILE | --restore FILE: gateway/backup.py
    notify_commands.register(sub, common, _configured)  # notify [--test RECEIVER]: gateway/notify/
    provision.register(sub)  # node keys, broker passwd and ACL, node configs (gateway/provision.py)
    ev = sub.add_parser("evaluate", parents=common, conflict_handler="resolve",
                        help="evaluate screening on a dataset (see docs/screening.md)")  # fmt: skip
    ev.set_defaults(func=lambda args: _evaluate_module().run(args))  # the lab's command: no gateway config
    if argv[:1] == ["evaluate"]:
        _evaluate_module().add_arguments(ev)
    return parser


def _evaluate_module() -> Any:
    """The screening lab's evaluate (lab/evaluate.py), imported only for this command: the service never loads
    the lab."""
    try:
        return importlib.import_module("lab.evaluate")
    except ModuleNotFoundError as e:
        raise GatewayError(f"evaluate needs the screening lab (lab/), not in this install ({e})") from e


def _config(args: argparse.Namespace) -> config_mod.Config:
    overrides = {
        "store.db": args.db,
        "mqtt.broker": getattr(args, "broker", None),
        "gateway.instance": getattr(args, "instance", None),
        "mqtt.share_group": getattr(args, "share_group", None),
        "gateway.log_level": getattr(args, "log_level", None),
    }
    return config_mod.load(args.config, overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.func(args))
    except GatewayError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `export | head`: the reader left; say nothing (Python docs, "Note on SIGPIPE")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # the disk, a file or the network failed under a command: the cause, not a traceback
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1


def _configured(command: Callable[[argparse.Namespace, config_mod.Config], int]) -> Callable[[argparse.Namespace], int]:
    """A command that runs on the effective config (file, environment, flags)."""
    return lambda args: command(args, _config(args))


def _check_config(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    cal = config_mod.load_calibration(cfg.screening)  # checked here too, not first at `run`
    print(json.dumps(config_mod.effective(cfg), indent=2))
    print(f"{PROG}: config valid; calibration {cal['id']!r}", file=sys.stderr)
    return 0


def _run(cfg: config_mod.Config) -> int:
    from gateway import metrics
    from gateway import transport as transports
    from gateway.service import Gateway

    logs.setup(cfg.gateway.log_level)
    config_mod.load_calibration(cfg.screening)  # first: a bad calibration or CA or password file stops us here
    transport = transports.build(cfg)
    store = open_store(cfg.store.db, cfg.store.synchronous, create=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"{PROG}: storing in {store.url}; listening on {transport.describe()}", flush=True)
    try:
        with metrics.serving(cfg.metrics, cfg.store, store) as (metered, counts):  # [metrics] listen: /metrics
            Gateway(cfg, metered, transport, metrics=counts).run(stop)
    finally:
        store.close()
    print(f"{PROG}: stopped", flush=True)
    return 0


@contextlib.contextmanager
def _store(cfg: config_mod.Config) -> Iterator[Store]:
    """The existing database, read by a query command."""
    store = open_store(cfg.store.db, cfg.store.synchronous, create=False)
    try:
        yield store
    finally:
        store.close()


def _export(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    tz = cfg.report.timezone
    since = report.parse_time(args.since, tz, "--since")
    until = report.parse_time(args.until, tz, "--until")
    if args.what == "rechecks":
        return _export_rechecks(args, since, until, cfg)
    with _store(cfg) as store:
        items = export.rows(store, args.what, since, until, args.site)
        if args.out:
            with export.open_out(args.out) as f:
                n = export.write(args.what, args.format, items, f)
            print(f"{PROG}: wrote {n} {args.what} to {args.out}", file=sys.stderr)
        else:
            export.write(args.what, args.format, items, sys.stdout)
    return 0


def _export_rechecks(args: argparse.Namespace, since: int | None, until: int | None, cfg: config_mod.Config) -> int:
    with _store(cfg) as store:
        checks = field.rechecks(store, since, until, args.site)
    if args.out:
        with export.open_out(args.out) as f:
            n = field.write_dataset(checks, f)
        print(f"{PROG}: wrote {n} re-checks to {args.out} (study format; "
              f"checkpoint-gateway evaluate --dataset {args.out} --mode MODE)", file=sys.stderr)  # fmt: skip
    else:
        field.write_dataset(checks, sys.stdout)
    return 0


def _nodes(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    with _store(cfg) as store:
        _print_rows([_asdict(r) for r in store.nodes(args.site)], args.format, _NODE_COLUMNS)
    return 0


def _alerts(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    tz = cfg.report.timezone
    since = report.parse_time(args.since, tz, "--since")
    until = report.parse_time(args.until, tz, "--until")
    with _store(cfg) as store:
        found = store.alerts(since, until, args.site, open_only=not args.all)
    found = [a for a in found if args.kind in (None, a.kind)]
    _print_rows([_asdict(a) for a in found], args.format, _ALERT_COLUMNS)
    return 0


def _report(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    tz = cfg.report.timezone
    days = tallies.days(args.day, tz, int(time.time() * 1000))
    by_shift = args.by == "shift"
    start, _ = report.day_bounds(days[0].isoformat(), tz)
    _, end = report.day_bounds(days[-1].isoformat(), tz)
    with _store(cfg) as store:
        count = tallies.by_shift if by_shift else tallies.by_site
        rows = [row for day in days for row in count(store, day, tz)]
        cases = report.retest_tally(store.scans(start, end, None))
        rechecks = field.rechecks(store, start, end)
    if args.format == "csv":
        sys.stdout.write(tallies.as_csv(rows, by_shift))
    elif args.format == "json":
        sites = [r.as_dict(by_shift) for r in rows]
        loop = field.as_json(rechecks)
        print(json.dumps({"day": args.day, "timezone": tz, "sites": sites, "retest_cases": cases, "field_loop": loop}))
    else:
        print(tallies.table(days, rows, by_shift, tz))
        if cases:
            print(report.retest_table(cases))
        print(field.table(rechecks))
    return 0


_NODE_COLUMNS = ("site", "node", "state", "state_reason", "last_seen", "fw", "config_id", "heap_free", "rssi",
                 "outbox_depth", "outbox_drops", "sensor_errors", "scans")  # fmt: skip
_ALERT_COLUMNS = ("alert_id", "kind", "state", "reason", "site", "node", "seq", "t_core_c", "opened_at",
                  "updated_at")  # fmt: skip


def _asdict(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


def _print_rows(rows: list[dict[str, Any]], fmt: str, cols: Sequence[str]) -> None:
    if fmt == "json":
        for r in rows:
            print(json.dumps(r))
        return
    text = [[("" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) if text else len(c) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))
