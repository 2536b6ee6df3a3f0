"""`make deploy NODE=<site>/<node>` picks that node's provisioned files, and its host-side check (`make
deploy-check`, run by `make deploy` first) refuses the example config naming each field to fill. No board: only
the check runs here (docs/firmware.md, "Deploying a node")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from gateway import cli

REPO = Path(__file__).resolve().parents[2]


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "deploy-check", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_example_config_is_refused_naming_each_field_to_fill(tmp_path: Path) -> None:
    node = tmp_path / "nodes" / "bridge-1" / "lane-1"
    node.mkdir(parents=True)
    shutil.copy(REPO / "firmware" / "config.example.json", node / "config.json")
    done = _check("NODE=bridge-1/lane-1", f"NODE_DIR={tmp_path}")
    assert done.returncode != 0
    for field in ("wifi.password", "broker.password", "broker.hmac_key", "broker.cafile"):
        assert field in done.stderr, (field, done.stderr)


def test_a_provisioned_node_is_picked_by_name_and_passes_once_its_wifi_is_filled(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n(the broker's CA)\n-----END CERTIFICATE-----\n")
    etc = tmp_path / "etc"
    args = ["provision", "--dir", str(etc), "--broker-host", "10.0.0.2", "--ca", str(ca), "bridge-1/lane-1"]
    assert cli.main(args) == 0
    refused = _check("NODE=bridge-1/lane-1", f"NODE_DIR={etc}")
    assert refused.returncode != 0 and "wifi.ssid" in refused.stderr and "wifi.password" in refused.stderr
    assert "broker." not in refused.stderr  # provision filled the broker's fields
    path = etc / "nodes" / "bridge-1" / "lane-1" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["wifi"] = {"ssid": "post-7", "password": "a real one"}
    path.write_text(json.dumps(cfg))
    passed = _check("NODE=bridge-1/lane-1", f"NODE_DIR={etc}")
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.strip() == str(path.parent / "ca.crt")  # the CA file `make deploy` copies beside it
    other = _check("NODE=bridge-1/lane-9", f"NODE_DIR={etc}")
    assert other.returncode != 0 and "lane-9/config.json missing" in other.stdout + other.stderr
