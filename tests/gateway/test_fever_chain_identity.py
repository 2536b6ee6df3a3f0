"""Issue 10, kind 1: a scan whose (site, node, seq) collides with a stored one is still screened and alerted.

A spare unit replaces node n1 under the same name: the old unit's seqs 0-19 (boot 1) are stored; the spare
starts again at seq 0 (boot 1 too, a fresh uptime, another firmware) and its first five travellers are febrile.
Before the fix the five went to the quarantine as seq_conflict: 0 fever alerts, 0 verdicts. Right: 5 fever
alerts (each with an id of its own: the stored key plus the origin), 5 verdicts naming them, 5 receipts, one
identity_clash alert naming both origins, and the five scans queryable in scan_clashes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from firmware import module as firmware_module
from gateway.ingest import origin_id
from sim.clock import ManualClock
from testkit.micropython import ESP32_HEAP, compile_firmware, interpreters
from testkit.node import scan_payload

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}
NODE_PROGRAM = str(Path(__file__).resolve().parents[1] / "firmware/mp/net_uplink_node.py")
RUN_MS = 30_000  # each unit runs this long (its own clock), scanning for the first 5 s
MAX_CONNECTS = 8  # in RUN_MS; a retry a second after each takeover made 15
contract = firmware_module("contract")


def origin_of(scan: dict[str, Any]) -> int:
    return int(contract.origin(scan["boot"], scan["uptime_ms"], scan.get("unit")))


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


def test_a_spare_at_the_first_units_boot_and_uptime_is_told_apart_by_its_unit(start_gateway, nodes) -> None:
    """Issue 10 kind 1: a spare with a fresh flash boots as boot 1 like the unit it replaces, and may make its seq
    k at the uptime the first unit made its seq k (the simulator's virtual time does it every time: room-1 seq 1
    at 8,260 ms from both). Before, the gateway took it for a resend: receipted and dropped, a fever lost. Each
    unit's scans carry its unit (drawn at its flash's first boot), in the node's own record bytes here."""
    record = firmware_module("record")
    gw = start_gateway()
    units = {"first": 0x1234ABCD, "spare": 0x9E3779B9}
    made = {}
    for name, unit in units.items():
        node = nodes("bridge", "n1")
        scans = []
        for seq in range(3):
            scan = {k: v for k, v in spare_scan(seq, **FEVER).items() if k not in ("v", "site", "node", "seq")}
            scans.append(json.loads(record.to_payload(seq, record.pack(dict(scan, unit=unit)), "bridge", "n1")))
        node.send(scans)
        assert node.wait_receipts(range(3), timeout=15)
        made[name] = {(s["seq"], origin_of(s)) for s in scans}
        named = {(seq, o) for r in node.receipts for seq, o in zip(r["seqs"], r["origins"], strict=True)}
        assert made[name] <= named  # each unit's receipt names its own scans
        node.close()

    assert {(r.seq, r.unit) for r in gw.store.scans(None, None, "bridge")} == {(s, units["first"]) for s in range(3)}
    assert {(r.seq, r.unit) for r in gw.store.clashes(None, None, "bridge")} == {(s, units["spare"]) for s in range(3)}
    fevers = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "fever"]
    assert len(fevers) == len({a.alert_id for a in fevers}) == 6  # both units' travellers alerted
    for seq in range(3):
        assert f"fever:bridge:n1:{seq}:{origin_id(1, 8_000 + seq * 1_000, units['spare'])}" in {
            a.alert_id for a in fevers
        }
    [clash] = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "identity_clash"]
    assert (
        clash.detail is not None and "unit 1234abcd, boot 1" in clash.detail and "unit 9e3779b9, boot 1" in clash.detail
    )


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


def run_units(port: int, tmp_path: Path, units: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The real firmware's uplink under MicroPython (tests/firmware/mp/net_uplink_node.py), one process per unit,
    all at once, each to its end: what it recorded (seq -> scan), the verdicts it took, its final figures."""
    procs = {}
    for name, opts in units.items():
        given = {"dir": str(tmp_path / name), "port": port, "linkdown": str(tmp_path / "linkdown"), **opts}
        (tmp_path / f"{name}.json").write_text(json.dumps(given))
        command = [
            *interpreters(ESP32_HEAP)["micropython"],
            NODE_PROGRAM,
            str(compile_firmware()),
            str(tmp_path / f"{name}.json"),
        ]
        procs[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    out = {}
    for name, proc in procs.items():
        lines = proc.communicate(timeout=180)[0].splitlines()
        [end] = [ln for ln in lines if ln.startswith(("done ", "timeout "))] or [f"none {lines[-5:]!r}"]
        assert end.startswith("done "), f"{name}: {end}"
        out[name] = {
            "scans": {int(ln.split()[1]): json.loads(ln.split(" ", 2)[2]) for ln in lines if ln.startswith("rec ")},
            "verdicts": [json.loads(ln.split(" ", 1)[1]) for ln in lines if ln.startswith("verdict ")],
            "figures": json.loads(end.split(" ", 1)[1]),
        }
    return out


def test_two_live_units_sharing_one_name_lose_no_scan_and_alert_every_fever(
    start_gateway, private_broker, tmp_path: Path
) -> None:
    """Issue 10 kind 1, its second input: two live units with one name and one config (a config copied onto a
    second unit), each scanning febrile travellers, on one broker with the real gateway. Before, a receipt named
    only seqs, so unit A's receipt for seq 3 freed unit B's record 3 before B's copy was stored (4 of 10 fevers
    never alerted), a verdict reached the wrong unit, and the two took the one client id's session from each
    other every second (15 connects each in 30 s)."""
    gw = start_gateway()
    common = {"site": "bridge", "node": "n1", "n": 10, "interval_ms": 500, "fever": True, "receipt_timeout_s": 2,
              "backoff_max_s": 60, "run_ms": RUN_MS, "deadline_ms": RUN_MS}  # fmt: skip
    units = run_units(private_broker.port, tmp_path, {"a": dict(common, boot=7), "b": dict(common, boot=8)})

    made = {(s["seq"], s["boot"], s["uptime_ms"]) for u in units.values() for s in u["scans"].values()}
    assert len(made) == 20
    stored = {(r.seq, r.boot, r.uptime_ms) for r in gw.store.scans(None, None, "bridge")}
    kept = {(r.seq, r.boot, r.uptime_ms) for r in gw.store.clashes(None, None, "bridge")}
    assert made - (stored | kept) == set()  # every scan of both units is queryable
    assert all(u["figures"]["depth"] == 0 for u in units.values())  # and each freed only when its own was stored

    fevers = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "fever"]
    assert len(fevers) == len({a.alert_id for a in fevers}) == 20  # every febrile scan alerted, once
    [clash] = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "identity_clash"]
    assert clash.detail is not None and "boot 7" in clash.detail and "boot 8" in clash.detail

    assert sum(len(u["verdicts"]) for u in units.values()) > 0
    for u in units.values():  # a unit shows only the gateway's verdicts on its own scans
        own = {seq: origin_of(s) for seq, s in u["scans"].items()}
        assert all(v["origin"] == own[v["seq"]] for v in u["verdicts"])
        # the client id contest backs off: each takeover in a row doubles the wait (1, 2, 4, 8, 16 s in 30 s)
        assert u["figures"]["counts"]["connects"] <= MAX_CONNECTS, u["figures"]["counts"]
        assert u["figures"]["counts"].get("taken_over", 0) >= 1


def unit_status(boot: int, taken_over: int) -> bytes:
    """The status a unit publishes at connect, built by the firmware's session.py, with its takeovers."""
    identity = {"site": "bridge", "node": "n1", "fw": "test-1", "boot": boot, "config_id": "c0"}
    s = firmware_module("session").Session({"host": "b", "port": 1883}, contract.PREFIX, identity, ManualClock())
    s.taken_over = taken_over
    return bytes(s.status())


def test_sessions_taken_over_again_and_again_raise_one_identity_clash(start_gateway, nodes) -> None:
    """Issue 10 kind 1: a unit with a copied config that scans nothing (or whose seqs have not met the other's)
    clashes with no scan, but the two take the one client id's session from each other: each status after a
    takeover counts one more (taken_over). Three within ten minutes raise identity_clash (taken_over), which
    names them; a broker restart (one each) raises nothing; a scan clash later names the count in its alert."""
    gw = start_gateway()
    n1, n2 = nodes("bridge", "n1"), nodes("bridge", "n2")
    for node, seq, payloads in (
        (n2, 0, [unit_status(3, 1), unit_status(3, 1)]),  # a broker restart, the retained status again
        (n1, 0, [unit_status(7, 1), unit_status(8, 1), unit_status(7, 1)]),  # two units' statuses: 2 rises
    ):
        for payload in payloads:
            node.publish_raw(payload, kind="status")
        node.send_seqs([seq])
        assert node.wait_receipts([seq], timeout=15)
    assert [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "identity_clash"] == []
    assert {n.node: n.taken_over for n in gw.store.nodes()} == {"n1": 1, "n2": 1}

    n1.publish_raw(unit_status(7, 2), kind="status")  # the third rise: evidence
    n1.publish_raw(unit_status(8, 2), kind="status")  # and more: the alert stays one
    n1.send_seqs([1])
    assert n1.wait_receipts([1], timeout=15)
    [clash] = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "identity_clash"]
    assert (clash.node, clash.reason, clash.state) == ("n1", "taken_over", "raised")
    assert clash.detail is not None and clash.detail.startswith("the broker ended its session 3 times in 10 min")
    assert "(its status: taken_over 2 since boot 7)" in clash.detail

    spare = nodes("bridge", "n2")
    spare.publish_raw(unit_status(3, 2), kind="status")  # n2's takeover since its restart: named by a scan clash
    spare.send([scan_payload("bridge", "n2", 0, boot=9, uptime_ms=5_000)])
    assert spare.wait_receipts([0], timeout=15)
    [other] = [a for a in gw.store.alerts(None, None, "bridge") if a.kind == "identity_clash" and a.node == "n2"]
    assert other.reason == "seq_reused" and other.detail is not None
    assert other.detail.endswith("the broker ended its session while its link was up (taken_over 2 since boot 3)")
