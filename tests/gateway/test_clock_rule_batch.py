"""The clock rule inside one batch: the writer reads a node's open clock_skew alert once per transaction
(Writer._open_alert, for speed: the rule runs on every scan), and what it raises or resolves in the batch is
what the next scan of the batch sees. A clock that goes wrong, then right within one batch: raised once,
resolved once; the alerts table read once per node, and again only after a change (not once per scan)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway import config
from gateway.fleet import Fleet
from gateway.ingest import Incoming, Writer
from gateway.protocol import Topics
from gateway.screening import Screener
from gateway.store import AlertRow, Store, Transaction, open_store
from testkit.node import scan_payload

NOW = 1_767_225_600_000  # the gateway's clock
UPTIME = 60_000  # every scan made a minute after its node's boot, right now
DAY = 86_400_000


class _CountedTx:
    def __init__(self, tx: Transaction, asked: Counter[str]) -> None:
        self.tx, self.asked = tx, asked

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tx, name)

    def open_alert(self, kind: str, site: str, node: str) -> AlertRow | None:
        self.asked[kind] += 1
        return self.tx.open_alert(kind, site, node)


class _Counted:
    """A store whose transactions count open_alert calls by kind (the rest passes through)."""

    def __init__(self, store: Store) -> None:
        self.store, self.asked = store, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.store.transaction() as tx:
            yield _CountedTx(tx, self.asked)


def _scan(node: str, seq: int, off_ms: int) -> Incoming:
    body = scan_payload("bridge", node, seq, ts=NOW + seq + off_ms, uptime_ms=UPTIME + seq)  # booted at NOW - UPTIME
    return Incoming(f"checkpoint/v1/bridge/{node}/scan", json.dumps(body).encode(), seq + 1, 1)


def test_a_clock_wrong_then_right_in_one_batch(tmp_path: Path) -> None:
    store = _Counted(open_store(f"sqlite:///{tmp_path / 'clock.db'}"))
    cfg = config.Config()
    screener = Screener(config.load_calibration(cfg.screening), {})
    writer = Writer(store, screener, Fleet([], 0), cfg.alerts, Topics(), lambda: NOW + 1_000)
    offs = [DAY] * 3 + [0] * 3  # n1's clock: a day ahead, then right
    batch = [_scan("n1", s, off) for s, off in enumerate(offs)] + [_scan("n2", s, 0) for s in range(6)]
    outcome = writer.process(batch)
    events = [json.loads(o.payload) for o in outcome.publish if o.event is not None]
    assert [(e["node"], e["state"], e["reason"]) for e in events] == [
        ("n1", "raised", "ahead"),
        ("n1", "resolved", "clock_ok"),
    ]
    # n1: at its first scan and after each change (the raise, the resolve); n2 (right all along): once
    assert store.asked["clock_skew"] == 3 + 1  # 12 when it was read for every scan
    store.store.close()


def test_a_clock_wrong_right_and_wrong_again_in_one_batch_commits(tmp_path: Path) -> None:
    """The second raise inside one batch (one `now`) would take the first episode's id, kind:site:node:now, whose
    event 1 is stored: the batch failed on alert_events' key, every time it was delivered. Now the second
    episode is a new alert of its own (id + ".2") and every scan of the batch is stored."""
    store = open_store(f"sqlite:///{tmp_path / 'clock.db'}")
    cfg = config.Config()
    screener = Screener(config.load_calibration(cfg.screening), {})
    writer = Writer(store, screener, Fleet([], 0), cfg.alerts, Topics(), lambda: NOW + 1_000)
    offs = [DAY] * 2 + [0] * 2 + [DAY] * 2  # n1's clock: a day ahead, right, a day ahead again
    outcome = writer.process([_scan("n1", s, off) for s, off in enumerate(offs)])
    events = [json.loads(o.payload) for o in outcome.publish if o.event is not None]
    assert [(e["state"], e["reason"]) for e in events] == [("raised", "ahead"), ("resolved", "clock_ok"),
                                                           ("raised", "ahead")]  # fmt: skip
    first, second = events[0]["alert_id"], events[2]["alert_id"]
    assert second == f"{first}.2"
    assert len(list(store.scans(None, None, None))) == 6
    skews = sorted((a.alert_id, a.state) for a in store.alerts(None, None, None) if a.kind == "clock_skew")
    assert skews == [(first, "resolved"), (second, "raised")]
    store.close()
