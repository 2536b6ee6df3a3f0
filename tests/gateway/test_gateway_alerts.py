"""Alerts through a real broker: fever with retest dedup, node_offline by last will and by silence,
sensor_fault; each on the alerts topic and in the store, with every state change kept."""

from __future__ import annotations

import json
import subprocess
import sys

from testkit.gateway import REPO, FakeClock, run_cli
from testkit.node import NodePublisher

FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "t_core_c": 39.5, "verdict": "elevated"}


def test_elevated_scan_raises_one_alert_and_retests_update_it(start_gateway, nodes, watch, db_url) -> None:
    gw = start_gateway()
    alerts = watch("checkpoint/v1/alerts/#")
    node = nodes("bridge", "n1")
    node.send_seqs([1, 2])  # normal travellers: no alert
    node.send_seqs([3], **FEVER)
    node.send_seqs([3], **FEVER)  # a QoS 1 duplicate of the elevated scan: still one alert
    topic, raised = alerts.wait_for(lambda t, b: b["kind"] == "fever")
    assert topic == "checkpoint/v1/alerts/bridge"
    assert (raised["state"], raised["reason"], raised["seq"], raised["event"]) == ("raised", "elevated", 3, 1)
    assert raised["t_core_c"] > 37.5
    verdicts = node.wait_verdicts(1)
    assert verdicts[0]["seq"] == 3 and verdicts[0]["verdict"] == "elevated"
    assert verdicts[0]["alert_id"] == raised["alert_id"]

    node.send_seqs([4], retest_of=3, **FEVER)  # the medic's retest confirms
    _, confirmed = alerts.wait_for(lambda t, b: b["event"] == 2)
    assert (confirmed["alert_id"], confirmed["state"], confirmed["reason"]) == (
        raised["alert_id"],
        "raised",
        "retest_confirmed",
    )
    node.send_seqs([5], retest_of=4)  # a later IR retest is normal: an event, never a resolution (issue 12)
    _, cleared = alerts.wait_for(lambda t, b: b["event"] == 3)
    assert (cleared["alert_id"], cleared["state"], cleared["reason"]) == (
        raised["alert_id"],
        "raised",
        "retest_normal",
    )
    assert node.wait_receipts(range(1, 6))
    assert {b["alert_id"] for _, b in alerts.drain()} == {raised["alert_id"]}

    out = run_cli("export", "--what", "alerts", "--format", "jsonl", "--db", db_url)
    assert out.returncode == 0, out.stderr
    exported = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(exported) == 1
    assert (exported[0]["alert_id"], exported[0]["kind"], exported[0]["state"]) == (
        raised["alert_id"],
        "fever",
        "raised",
    )
    assert exported[0]["confirmed_at"] is not None and exported[0]["events"] == 3
    events = gw.store.alert_events(raised["alert_id"])
    assert [(e.state, e.reason, e.seq, e.actor) for e in events] == [
        ("raised", "elevated", 3, "gateway"),
        ("raised", "retest_confirmed", 4, "gateway"),
        ("raised", "retest_normal", 5, "gateway"),
    ]


def test_node_killed_goes_offline_by_last_will_and_clears_on_return(start_gateway, watch, private_broker) -> None:
    gw = start_gateway()
    alerts = watch("checkpoint/v1/alerts/#")
    cmd = [sys.executable, "-m", "testkit.node", "--port", str(private_broker.port),
           "--site", "river", "--node", "k1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        seen = NodePublisher(private_broker.port, "river", "probe").connect()  # the gateway has k1's status
        seen.send_seqs([0])  # once this is receipted, everything k1 published before is processed
        assert seen.wait_receipts([0])
        seen.close()
        assert gw.store.nodes("river")[0].state == "online"
    finally:
        proc.kill()  # no DISCONNECT: the broker publishes k1's last will
        proc.wait()
    _, raised = alerts.wait_for(lambda t, b: b["kind"] == "node_offline" and b["node"] == "k1")
    assert (raised["state"], raised["reason"], raised["site"]) == ("raised", "status", "river")
    back = NodePublisher(private_broker.port, "river", "k1").connect()
    _, cleared = alerts.wait_for(lambda t, b: b["kind"] == "node_offline" and b["node"] == "k1" and b["event"] == 2)
    assert (cleared["alert_id"], cleared["state"], cleared["reason"]) == (
        raised["alert_id"],
        "resolved",
        "back_online",
    )
    back.close()
    assert [n.state for n in gw.store.nodes("river") if n.node == "k1"] in (["online"], ["offline"])


def test_silent_node_goes_offline_and_returns(start_gateway, nodes, watch) -> None:
    clock = FakeClock()
    start_gateway(clock, {"alerts.offline_after_s": 30, "alerts.check_interval_s": 1.0})
    alerts = watch("checkpoint/v1/alerts/#")
    node = nodes("bridge", "quiet")
    node.send_seqs([0])
    assert node.wait_receipts([0])
    clock.advance(31_000)  # past offline_after_s without a word from the node
    _, raised = alerts.wait_for(lambda t, b: b["kind"] == "node_offline")
    assert (raised["node"], raised["reason"], raised["opened_at"]) == ("quiet", "silent", clock())
    node.send_seqs([1])
    _, cleared = alerts.wait_for(lambda t, b: b["event"] == 2)
    assert (cleared["alert_id"], cleared["state"]) == (raised["alert_id"], "resolved")


def test_repeated_sensor_faults_raise_one_alert_and_valid_scans_clear_it(start_gateway, nodes, watch) -> None:
    gw = start_gateway(overrides={"alerts.sensor_fault_count": 3, "alerts.sensor_fault_clear_after": 2})
    alerts = watch("checkpoint/v1/alerts/#")
    node = nodes("bridge", "flaky")
    fault = {
        "t_site_c": None,
        "t_amb_c": None,
        "t_core_c": None,
        "verdict": "invalid",
        "flags": ["sensor_fault"],
    }
    node.send_seqs(range(5), **fault)
    _, raised = alerts.wait_for(lambda t, b: b["kind"] == "sensor_fault")
    assert (raised["state"], raised["seq"]) == ("raised", 2)  # the third fault within the window
    node.send_seqs([5, 6])
    _, cleared = alerts.wait_for(lambda t, b: b["kind"] == "sensor_fault" and b["event"] == 2)
    assert cleared["state"] == "resolved" and cleared["reason"] == "valid_scans"
    assert node.wait_receipts(range(7))
    assert [a.kind for a in gw.store.alerts(None, None, "bridge")] == ["sensor_fault"]
    assert {r.gateway_verdict for r in gw.store.scans(None, None, None) if r.seq < 5} == {"invalid"}
