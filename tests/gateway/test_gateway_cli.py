"""The `checkpoint-gateway` command: run, export (round trip), report (matches the stored scans), nodes,
alerts, check-config, and the errors that name the cause and the fix."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter, defaultdict

from gateway import export
from gateway.store import open_store
from sim.process import GatewayProcess
from testkit.gateway import run_cli

DAY1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY2 = DAY1 + 86_400_000
FEVER = {"t_site_c": 39.0, "t_amb_c": 24.0, "verdict": "elevated"}
COLD = {"t_site_c": 31.0, "t_amb_c": -5.0}
FAULT = {"t_site_c": None, "t_amb_c": None, "t_core_c": None, "verdict": "invalid", "flags": ["sensor_fault"]}


def _populate(nodes) -> None:
    """Two sites, two days, every verdict, retests that confirm and clear, one duplicate."""
    plan = {
        ("bridge", "n1"): [
            (0, {}),
            (1, FEVER),
            (2, {"retest_of": 1, **FEVER}),
            (3, COLD),
            (4, FAULT),
            (5, {}),
        ],
        ("bridge", "n2"): [(0, FEVER), (1, {"retest_of": 0}), (2, {})],
        ("toll", "t1"): [(0, {}), (1, {}), (2, FEVER)],
    }
    for (site, name), scans in plan.items():
        node = nodes(site, name)
        for seq, fields in scans:
            day = DAY2 if (site == "toll" and seq == 2) else DAY1
            node.send_seqs([seq], ts=day + 3_600_000 + seq * 60_000, **fields)
        node.send_seqs([0], ts=DAY1 + 3_600_000)  # a resend: stored once
        assert node.wait_receipts([s for s, _ in scans])


def test_report_matches_the_stored_scans_and_export_round_trips(start_gateway, nodes, db_url, tmp_path) -> None:
    gw = start_gateway()
    _populate(nodes)
    gw.stop()

    out = run_cli("export", "--what", "scans", "--format", "jsonl", "--db", db_url)
    assert out.returncode == 0, out.stderr
    scans = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(scans) == 12
    assert set(scans[0]) >= {"site", "node", "seq", "ts", "t_site_c", "verdict", "gateway_verdict", "flags"}

    expected: dict[str, Counter[str]] = defaultdict(Counter)
    nodes_up: Counter[str] = Counter()  # nodes whose fleet state is online, not nodes that scanned (issue 12)
    with contextlib.closing(open_store(db_url, create=False)) as fleet:
        nodes_up.update(n.site for n in fleet.nodes() if n.state == "online")
    for s in scans:
        if DAY1 <= s["ts"] < DAY2:
            key = "retests" if s["retest_of"] is not None else s["gateway_verdict"]
            expected[s["site"]][key] += 1
    report = run_cli("report", "--day", "2026-01-01", "--format", "json", "--db", db_url)
    assert report.returncode == 0, report.stderr
    sites = {r["site"]: r for r in json.loads(report.stdout)["sites"]}
    assert set(sites) == {"bridge", "toll"}
    for site, counts in expected.items():
        got = sites[site]
        assert got["screened"] == sum(v for k, v in counts.items() if k != "retests")
        for key in ("normal", "elevated", "indeterminate", "invalid", "retests"):
            assert got[key] == counts[key], (site, key)
        assert got["nodes_up"] == nodes_up[site]
    assert sites["bridge"]["confirmed"] == 1  # n1's fever confirmed by retest; n2's cleared
    assert sites["toll"]["elevated"] == 0  # its fever was on the next day
    table = run_cli("report", "--day", "2026-01-01", "--db", db_url)
    assert "TOTAL" in table.stdout and "bridge" in table.stdout

    store = open_store(db_url, create=False)
    for what in ("scans", "alerts"):
        jsonl = run_cli("export", "--what", what, "--format", "jsonl", "--db", db_url)
        csv_path = tmp_path / f"{what}.csv"
        written = run_cli("export", "--what", what, "--format", "csv", "--out", str(csv_path), "--db", db_url)
        assert written.returncode == 0, written.stderr
        from_jsonl = export.read(what, "jsonl", io.StringIO(jsonl.stdout))
        from_csv = export.read(what, "csv", io.StringIO(csv_path.read_text()))
        stored = list(export.rows(store, what, None, None, None))
        assert from_jsonl == stored and from_csv == stored, what
    since = run_cli("export", "--site", "toll", "--since", "2026-01-02", "--db", db_url)
    assert [json.loads(line)["seq"] for line in since.stdout.splitlines()] == [2]


def test_nodes_and_alerts_commands(start_gateway, nodes, db_url) -> None:
    gw = start_gateway()
    node = nodes("bridge", "n1")
    health = {
        "v": 1,
        "heap_free": 51_234,
        "rssi": -67,
        "outbox_depth": 3,
        "outbox_drops": 1,
        "sensor_errors": {"pec": 2},
    }
    node.publish_raw(json.dumps(health).encode(), "health", qos=1)
    node.send_seqs([0], **FEVER)
    assert node.wait_receipts([0])
    gw.stop()
    listed = run_cli("nodes", "--format", "json", "--db", db_url)
    row = json.loads(listed.stdout.splitlines()[0])
    assert (row["site"], row["node"], row["state"], row["fw"], row["config_id"]) == (
        "bridge", "n1", "online", "test-1", "test"
    )  # fmt: skip
    health_fields = ("heap_free", "rssi", "outbox_depth", "outbox_drops", "sensor_errors")
    assert [row[k] for k in health_fields] == [51_234, -67, 3, 1, 2]
    assert row["scans"] == 1 and row["last_seq"] == 0
    open_alerts = run_cli("alerts", "--db", db_url)
    assert open_alerts.returncode == 0 and "fever:bridge:n1:0" in open_alerts.stdout


def test_run_says_where_it_stores_and_exits_cleanly_on_sigterm(private_broker, tmp_path, watch) -> None:
    status = watch("checkpoint/v1/gateway/gw-proc/status")
    gateway = GatewayProcess(private_broker.port, f"sqlite:///{tmp_path / 'run.db'}", tmp_path)
    gateway.start()
    code, out = gateway.terminate()
    assert code == 0
    assert f"storing in sqlite:///{tmp_path / 'run.db'}" in out
    assert f"listening on mqtt://127.0.0.1:{private_broker.port}" in out and "checkpoint/v1/+/+/scan" in out
    # A clean stop publishes the retained offline status itself (a DISCONNECT sends no will).
    status.wait_for(lambda t, b: b["state"] == "offline")


def test_check_config_prints_the_effective_config_without_secrets(tmp_path) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text('[gateway]\ninstance = "gw-east"\n[mqtt]\nusername = "gateway"\n')
    env_run = run_cli_env({"CHECKPOINT_MQTT_PASSWORD": "s3cret", "CHECKPOINT_ALERTS_OFFLINE_AFTER_S": "120"},
                          "check-config", "--config", str(conf), "--db", "sqlite:///x.db")  # fmt: skip
    assert env_run.returncode == 0, env_run.stderr
    effective = json.loads(env_run.stdout)
    assert effective["gateway"]["instance"] == "gw-east"
    assert effective["alerts"]["offline_after_s"] == 120
    assert effective["store"]["db"] == "sqlite:///x.db"
    assert effective["mqtt"]["password"] == "***" and "s3cret" not in env_run.stdout


def test_errors_name_the_cause_and_the_fix(tmp_path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text("[alerts]\noffline_afer_s = 60\n")
    bad = run_cli("check-config", "--config", str(conf))
    assert bad.returncode == 1 and "alerts.offline_afer_s" in bad.stderr and "offline_after_s" in bad.stderr
    pg = run_cli("export", "--db", "postgresql://postgres@127.0.0.1:1/checkpoint")  # nothing listens on port 1
    assert pg.returncode == 1 and "cannot be reached" in pg.stderr and "check that the server is running" in pg.stderr
    missing = run_cli("report", "--day", "2026-01-01", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 1 and "no database at" in missing.stderr
    day = run_cli("report", "--day", "01/02/2026", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert day.returncode == 1


def run_cli_env(env: dict[str, str], *args: str):
    import os
    import subprocess
    import sys

    from testkit.gateway import REPO

    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **env}, timeout=60)  # fmt: skip
