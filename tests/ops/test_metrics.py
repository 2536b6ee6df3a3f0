"""Prometheus metrics (gateway/metrics.py): /metrics scraped over HTTP after a short run of the real service
loop (an in-memory broker, a real SQLite store, an injected clock) equals what the database holds; every
metric name the Grafana dashboard and the Prometheus alert rules use exists in that scrape."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import config as config_mod
from gateway import metrics
from gateway.notify.metrics import NotifyMetrics
from gateway.service import Gateway
from gateway.store import open_store
from gateway.web.metrics import ConsoleMetrics
from testkit.gateway import FakeClock
from testkit.node import scan_payload
from testkit.transport import MemoryTransport

REPO = Path(__file__).resolve().parents[2]
NODES = ("lane-1", "lane-2", "lane-3")


def _run(tmp_path: Path) -> tuple[str, Path]:
    """A short run: three nodes' statuses and health, 30 scans of which some febrile, 6 resent, 4 garbage
    messages, one node's last will. Returns the scrape's text and the database file."""
    db = tmp_path / "gateway.db"
    cfg = config_mod.load(None, environ={}, overrides={"store.db": f"sqlite:///{db}", "metrics.listen": "127.0.0.1:0"})
    store = open_store(cfg.store.db)
    clock, transport, stop = FakeClock(), MemoryTransport(), threading.Event()
    clock.advance(90_000)  # the scans below were taken 60..90 s ago: their ingest lag
    with metrics.serving(cfg.metrics, cfg.store, store) as (metered, counts):
        assert counts is not None and counts.server is not None
        gw = Gateway(cfg, metered, transport, clock, clock.monotonic, metrics=counts)
        thread = threading.Thread(target=gw.run, args=(stop,), daemon=True)
        thread.start()
        assert gw.ready.wait(10)
        sent = []
        for i, node in enumerate(NODES):
            sent.append(transport.deliver(f"checkpoint/v1/bridge/{node}/status", {"v": 1, "state": "online"}))
            health = {"v": 1, "outbox_depth": 3 + i, "outbox_drops": i, "outbox_errors": 0, "sensor_errors": 0}
            sent.append(transport.deliver(f"checkpoint/v1/bridge/{node}/health", health))
        for seq in range(10):
            for node in NODES:
                hot = {"t_site_c": 36.4} if seq % 4 == 3 else {}
                sent.append(
                    transport.deliver(f"checkpoint/v1/bridge/{node}/scan", scan_payload("bridge", node, seq, **hot))
                )
        for seq in (1, 2):  # resent: duplicates
            for node in NODES:
                sent.append(transport.deliver(f"checkpoint/v1/bridge/{node}/scan", scan_payload("bridge", node, seq)))
        sent.append(transport.deliver("checkpoint/v1/bridge/lane-1/scan", b"{not json"))
        sent.append(transport.deliver("checkpoint/v1/bridge/lane-1/scan", {"v": 1, "seq": 99}))
        sent.append(
            transport.deliver("checkpoint/v1/bridge/lane-2/scan", scan_payload("bridge", "lane-2", 50, mode="x"))
        )
        sent.append(transport.deliver("checkpoint/v1/bridge/lane-2/scan", b"x" * 5000))
        sent.append(transport.deliver("checkpoint/v1/bridge/lane-3/status", {"v": 1, "state": "offline"}))  # its will
        transport.wait_acked(sent)
        with urllib.request.urlopen(f"http://127.0.0.1:{counts.server.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        stop.set()
        thread.join(10)
    store.close()
    return text, db


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[tuple[str, tuple[Any, ...]], float], Path]]:
    text, db = _run(tmp_path_factory.mktemp("metrics"))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    yield samples, db


def _value(samples: dict[tuple[str, tuple[Any, ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_the_counters_equal_the_database(scraped: Any) -> None:
    samples, db = scraped
    stored = _rows(db, "SELECT COUNT(*) FROM scans")[0][0]
    assert stored == 30
    assert _value(samples, "checkpoint_scans_stored_total") == stored
    assert _value(samples, "checkpoint_scans_duplicate_total") == 6
    quarantined = dict(_rows(db, "SELECT reason, COUNT(*) FROM quarantine GROUP BY reason"))
    assert sum(quarantined.values()) == 4
    for reason, n in quarantined.items():
        assert _value(samples, "checkpoint_messages_quarantined_total", reason=reason) == n, reason
    events = _rows(db, "SELECT a.kind, e.state, COUNT(*) FROM alert_events e JOIN alerts a USING (alert_id)"
                       " GROUP BY a.kind, e.state")  # fmt: skip
    assert ("fever", "raised", 6) in events and ("node_offline", "raised", 1) in events
    for kind, state, n in events:
        assert _value(samples, "checkpoint_alert_events_total", kind=kind, state=state) == n, (kind, state)


def test_the_gauges_read_the_database(scraped: Any) -> None:
    samples, db = scraped
    assert _value(samples, "checkpoint_store_up") == 1
    for state, n in _rows(db, "SELECT state, COUNT(*) FROM nodes GROUP BY state"):
        assert _value(samples, "checkpoint_nodes", state=state) == n, state
    assert _value(samples, "checkpoint_nodes", state="offline") == 1
    for kind, n in _rows(db, "SELECT kind, COUNT(*) FROM alerts WHERE state <> 'resolved' GROUP BY kind"):
        assert _value(samples, "checkpoint_alerts_open", kind=kind) == n, kind
    for site, node, depth, drops in _rows(db, "SELECT site, node, outbox_depth, outbox_drops FROM nodes"):
        assert _value(samples, "checkpoint_node_outbox_depth", site=site, node=node) == depth
        assert _value(samples, "checkpoint_node_outbox_drops", site=site, node=node) == drops


def test_the_histograms_count_every_batch_and_scan(scraped: Any) -> None:
    samples, _ = scraped
    batches = _value(samples, "checkpoint_batch_messages_count")
    assert batches >= 1 and _value(samples, "checkpoint_commit_seconds_count") == batches
    assert _value(samples, "checkpoint_batch_messages_sum") == 3 * 2 + 30 + 6 + 4 + 1  # every message, once
    assert _value(samples, "checkpoint_ingest_lag_seconds_count") == 30  # each stored scan's clock was right
    assert 30 * 80 <= _value(samples, "checkpoint_ingest_lag_seconds_sum") <= 30 * 90  # taken 80-90 s before


def _promql_names(text: str) -> set[str]:
    return set(re.findall(r"\bcheckpoint_[a-z_]+\b", text))


def _dashboard_exprs() -> list[str]:
    board = json.loads((REPO / "deploy/grafana/checkpoint.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def _declared(registry: Any) -> set[str]:
    """The sample names a registry's metrics give once they have a value (a labelled family shows none before)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {f.name + s for f in registry.collect() for s in suffixes.get(f.type, ("",))}


def test_every_metric_the_dashboard_and_the_alert_rules_use_is_scraped(scraped: Any) -> None:
    samples, _ = scraped
    names = {name for name, _ in samples}  # the gateway's, from its scrape
    names |= _declared(ConsoleMetrics().registry) | _declared(NotifyMetrics().registry)  # the other two processes
    exprs = _dashboard_exprs()
    rules = (REPO / "deploy/prometheus/rules.yml").read_text()
    used = _promql_names(" ".join(exprs)) | _promql_names(rules)
    assert len(exprs) >= 8 and len(_promql_names(rules)) >= 5
    assert sorted(used - names) == []
