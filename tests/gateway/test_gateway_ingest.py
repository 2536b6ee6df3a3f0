"""Ingest against a real Mosquitto: each scan stored once, receipts name what is stored, verdicts go back."""

from __future__ import annotations

import json

import pytest

from gateway import config
from gateway.fleet import Fleet
from gateway.ingest import Incoming, Writer
from gateway.protocol import Scan, Topics
from gateway.screening import Assessment, Screener
from gateway.store import open_store
from testkit.node import NodePublisher, scan_payload


def test_duplicates_are_stored_once_and_receipts_name_them(start_gateway, nodes) -> None:
    gw = start_gateway()
    node: NodePublisher = nodes("bridge", "n1")
    node.send_seqs(range(50))
    assert node.wait_receipts(range(50), timeout=15)
    first_round = len(node.receipts)
    node.send_seqs([3, 7, 7, 49])  # QoS 1 duplicates, and a node resending after a lost receipt
    node.send_seqs([50])
    assert node.wait_receipts([50], timeout=15)
    later = sorted({s for r in node.receipts[first_round:] for s in r["seqs"]})
    assert later == [3, 7, 49, 50]  # the duplicates are receipted again (stored), nothing else
    stored = [(r.node, r.seq) for r in gw.store.scans(None, None, "bridge")]
    assert stored == [("n1", s) for s in range(51)]
    assert gw.store.nodes("bridge")[0].scans == 51
    assert node.rejected == set()


def test_gateway_verdict_is_authoritative_and_sent_back_when_it_differs(start_gateway, nodes) -> None:
    gw = start_gateway()
    node = nodes("bridge", "n2")
    # The node claims "normal" for a reading whose ambient is below any calibration's range: the gateway
    # recomputes the condition flags and says indeterminate (retest), never normal.
    node.send_seqs([0], t_amb_c=-5.0, t_site_c=33.0, verdict="normal", flags=[])
    verdict = node.wait_verdicts(1)[0]
    assert (verdict["seq"], verdict["verdict"]) == (0, "indeterminate")
    assert "cold_ambient" in verdict["flags"]
    row = next(iter(gw.store.scans(None, None, "bridge")))
    assert (row.verdict, row.gateway_verdict) == ("normal", "indeterminate")
    assert row.gateway_cal == verdict["cal"]


class _BuggyScreener(Screener):
    """Fault injection: screening crashes on one seq (stands for any bug a message could trigger)."""

    def assess(self, scan: Scan) -> Assessment:
        if scan.seq == 2:
            raise KeyError("bug")
        return super().assess(scan)


def test_a_message_that_trips_a_bug_is_quarantined_and_the_rest_are_stored(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'bug.db'}")
    cfg = config.Config()
    screener = _BuggyScreener(config.load_calibration(cfg.screening), {})
    writer = Writer(store, screener, Fleet([], 0), cfg.alerts, Topics(), lambda: 1_000)
    batch = [
        Incoming("checkpoint/v1/bridge/n1/scan", json.dumps(scan_payload("bridge", "n1", s)).encode(), s, 1)
        for s in range(4)
    ]
    with pytest.raises(KeyError):
        writer.process(batch)  # the batch fails as a whole: nothing half-stored
    assert list(store.scans(None, None, None)) == []
    result = writer.process_each(batch)
    assert [r.seq for r in store.scans(None, None, None)] == [0, 1, 3]
    assert [(q.reason, q.topic) for q in store.quarantine(None, None, None)] == [
        ("internal_error", "checkpoint/v1/bridge/n1/scan")
    ]
    assert result.new == 3 and writer.rejections["internal_error"] == 1
    store.close()


def test_a_reused_seq_is_kept_as_a_clash_not_dropped_as_a_duplicate(start_gateway, nodes) -> None:
    """A unit re-flashed or replaced under the same name starts its seqs again: insert-or-ignore would throw its
    new scans away as duplicates. They are kept in scan_clashes, receipted, and the stored rows stay
    (tests/gateway/test_fever_chain_identity.py: they are screened and alerted too)."""
    gw = start_gateway()
    node: NodePublisher = nodes("bridge", "n2")
    node.send_seqs(range(3))
    assert node.wait_receipts(range(3), timeout=15)
    before = [(r.seq, r.boot, r.uptime_ms, r.t_site_c) for r in gw.store.scans(None, None, "bridge")]
    replaced = scan_payload("bridge", "n2", 1, boot=1, uptime_ms=5_000, t_site_c=35.9)
    node.send([replaced])
    node.send_seqs([1])  # a plain resend of the stored scan 1: a duplicate, not a clash
    node.send_seqs([3])
    assert node.wait_receipts([1, 3], timeout=15)
    after = [(r.seq, r.boot, r.uptime_ms, r.t_site_c) for r in gw.store.scans(None, None, "bridge")]
    assert after[:3] == before and [r[0] for r in after] == [0, 1, 2, 3]
    clashes = [(r.seq, r.boot, r.uptime_ms, r.t_site_c) for r in gw.store.clashes(None, None, "bridge")]
    assert clashes == [(1, 1, 5_000, 35.9)]
    assert list(gw.store.quarantine(None, None, "bridge")) == []
