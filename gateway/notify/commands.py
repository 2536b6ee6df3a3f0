"""`checkpoint-gateway notify`: the notifier's own process (docs/notifications.md says why), and
`notify --test RECEIVER` to try one route's receiver."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from gateway import config as config_mod
from gateway import logs, metrics
from gateway.store import open_store

PROG = "checkpoint-gateway"
Configured = Callable[[Callable[[argparse.Namespace, config_mod.Config], int]], Callable[[argparse.Namespace], int]]


def register(sub: Any, common: list[argparse.ArgumentParser], configured: Configured) -> None:
    p = sub.add_parser("notify", parents=common, help="send alert notifications (docs/notifications.md)")
    p.add_argument("--test", metavar="RECEIVER", help="send a test message to this receiver and exit")
    p.add_argument("--once", action="store_true", help="one pass (remind, route, send what is due), then exit")
    p.set_defaults(func=configured(_notify))


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _notify(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from gateway.notify.send import Sender
    from gateway.notify.worker import Notifier

    logs.setup(cfg.gateway.log_level)
    store = open_store(cfg.store.db, cfg.store.synchronous, create=True)
    sender = Sender(cfg.notify.send_timeout_s)
    from gateway.notify.metrics import NotifyMetrics

    notify_metrics = NotifyMetrics() if cfg.metrics.notify_listen and not (args.test or args.once) else None
    notifier = Notifier(store, cfg.notify, sender, _wall_ms, cfg.web.public_url, cfg.report.timezone,
                        metrics=notify_metrics)  # fmt: skip
    try:
        if args.test:
            err = notifier.test(args.test)
            print(f"{PROG}: {args.test}: " + ("sent" if err is None else f"not sent: {err}"), flush=True)
            return 0 if err is None else 1
        if args.once:
            print(f"{PROG}: tried {notifier.step()} deliveries", flush=True)
            return 0
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        names = ", ".join(sorted(cfg.notify.receivers)) or "none (see [notify.receivers])"
        print(f"{PROG}: notifying from {store.url}; receivers: {names}", flush=True)
        exposed = metrics.announced(notify_metrics, cfg.metrics.notify_listen, "notifier")
        try:
            notifier.run(stop)
        finally:
            if exposed is not None:
                exposed.stop()
    finally:
        store.close()
    print(f"{PROG}: notifier stopped", file=sys.stderr, flush=True)
    return 0
