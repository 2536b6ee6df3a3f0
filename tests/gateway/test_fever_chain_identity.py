"""Issue 10, kind 1: a scan whose (site, node, seq) collides with a stored one is still screened and alerted.

A spare unit replaces node n1 under the same name: the old unit's seqs 0-19 (boot 1) are stored; the spare
starts again at seq 0 (boot 1 too, a fresh uptime, another firmware) and its first five travellers are febrile.
Before the fix the five went to the quarantine as seq_conflict: 0 fever alerts, 0 verdicts. Right: 5 fever
alerts (each with an id of its own: the stored key plus the origin), 5 verdicts naming them, 5 receipts, one
identity_clash alert naming both origins, and the five scans queryable in scan_clashes.
"""

from __future__ import annotations

from typing import Any

from gateway.ingest import origin_id
from testkit.node import scan_payload

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}


def spare_scan(seq: int, **fields: Any) -> dict[str, Any]:
    """The spare unit's scan: seq from 0 again, booted a few seconds ago, its own firmware."""
    return scan_payload("bridge", "n1", seq, boot=1, uptime_ms=8_000 + seq * 1_000, fw="test-2", **fields)


def test_a_spare_unit_under_a_stored_name_raises_every_fever_and_one_clash(start_gateway, nodes, watch) -> None:
    gw = start_gateway()
    alerts = watch("checkpoint/v1/alerts/+")
    old = nodes("bridge", "n1")
    old.send_seqs(range(20))
    assert old.wait_receipts(range(20), timeout=15)
    old.close()  # the unit is swapped out

    spare = nodes("bridge", "n1")
    spare.send([spare_scan(seq, **FEVER) for seq in range(5)])
    assert spare.wait_receipts(range(5), timeout=15)
    assert spare.receipted >= set(range(5)) and spare.rejected == set()

    fevers = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "fever"]
    assert sorted(a.seq for a in fevers if a.seq is not None) == [0, 1, 2, 3, 4]
    assert len({a.alert_id for a in fevers}) == 5
    for a in fevers:
        assert a.seq is not None
        assert a.alert_id == f"fever:bridge:n1:{a.seq}:{origin_id(1, 8_000 + a.seq * 1_000)}"
    verdicts = spare.wait_verdicts(5)
    assert sorted((v["seq"], v["verdict"]) for v in verdicts) == [(s, "elevated") for s in range(5)]
    assert {v["alert_id"] for v in verdicts} == {a.alert_id for a in fevers}

    [clash] = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "identity_clash"]
    assert (clash.state, clash.reason, clash.node, clash.seq) == ("raised", "seq_reused", "n1", 0)
    assert clash.detail is not None
    assert "stored boot 1, fw test-1, first seen 20" in clash.detail
    assert "new boot 1, fw test-2, first seen 20" in clash.detail

    kept = list(gw.store.clashes(None, None, "bridge"))
    assert [(r.seq, r.fw, r.gateway_verdict) for r in kept] == [(s, "test-2", "elevated") for s in range(5)]
    stored = [(r.seq, r.fw, r.gateway_verdict) for r in gw.store.scans(None, None, "bridge")]
    assert stored == [(s, "test-1", "normal") for s in range(20)]  # the old unit's scans stay as they were

    wanted = ("fever", "identity_clash")  # (the swap itself took n1 offline and back: node_offline, resolved)
    raised = [alerts.wait_for(lambda t, b: b["state"] == "raised" and b["kind"] in wanted) for _ in range(6)]
    assert sorted(b["kind"] for _, b in raised) == ["fever"] * 5 + ["identity_clash"]
    assert all(b["node"] == "n1" for _, b in raised)


def test_a_resent_clashing_scan_is_stored_and_alerted_once(start_gateway, nodes) -> None:
    gw = start_gateway()
    node = nodes("bridge", "n1")
    node.send_seqs(range(3))
    assert node.wait_receipts(range(3), timeout=15)
    node.send([spare_scan(1, **FEVER)])
    node.send([spare_scan(1, **FEVER)])  # QoS 1 redelivery, or a resend after a lost receipt
    node.send([spare_scan(2)])  # a normal traveller on the spare: kept, no fever, the clash alert stays one
    node.send_seqs([3])
    assert node.wait_receipts([1, 2, 3], timeout=15)
    assert [(r.seq, r.gateway_verdict) for r in gw.store.clashes(None, None, "bridge")] == [
        (1, "elevated"),
        (2, "normal"),
    ]
    kinds = sorted(a.kind for a in gw.store.alerts(None, None, "bridge"))
    assert kinds == ["fever", "identity_clash"]
    assert gw.gateway.writer is not None and gw.gateway.writer.clashes == 2


def test_a_retest_names_the_scan_of_its_own_boot_only(start_gateway, nodes) -> None:
    """After a clash a seq can name the other unit's scan: a retest links to a fever alert only when the scan
    it names is stored from the same boot and earlier; else it is screened on its own (never hidden)."""
    gw = start_gateway()
    node = nodes("bridge", "n1")
    node.send_seqs([0], **FEVER)  # the old unit's fever at seq 0, boot 1, uptime 60 s
    assert node.wait_receipts([0], timeout=15)
    # Another unit (boot 4) sends seq 5, an elevated retest of "its" seq 0: not the stored traveller's fever.
    node.send([scan_payload("bridge", "n1", 5, boot=4, uptime_ms=9_000, retest_of=0, **FEVER)])
    assert node.wait_receipts([5], timeout=15)
    fevers = sorted((a.seq, a.events) for a in gw.store.alerts(None, None, "bridge") if a.kind == "fever")
    assert fevers == [(0, 1), (5, 1)]
