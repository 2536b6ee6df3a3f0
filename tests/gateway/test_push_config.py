"""`checkpoint-gateway push-config` reaches a node running the real firmware, which applies and persists it;
a config the node would refuse is refused before anything is sent, with the node's own reason."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import firmware
from sim.broker import Broker
from sim.post import SimNode
from sim.scenario import Scenario, Site
from sim.watch import Watcher

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "push-config", "--db", "sqlite:///unused.db", *args]


def test_a_pushed_threshold_is_applied_and_persisted_by_the_node(private_broker: Broker, tmp_path: Path) -> None:
    site = Site(name="bridge", nodes=1, ambient_c=22.0, mode="forehead")
    node = SimNode(Scenario(speed=5.0), site, "bridge-1", private_broker.port, tmp_path / "n", lambda r: None, 3)

    watcher = Watcher(private_broker.port, "checkpoint/v1/bridge/bridge-1/status")

    async def main() -> tuple[int, str]:
        node.power_on()
        await asyncio.to_thread(watcher.wait_for, lambda t, b: b.get("state") == "online", 20)
        proc = await asyncio.create_subprocess_exec(
            *cli("--broker", private_broker.url, "--site", "bridge", "--node", "bridge-1", "--id", "winter-2",
                 "--threshold", "37.3", "--wait", "20"),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        await node.stop()
        return int(proc.returncode or 0), out.decode()

    try:
        code, out = asyncio.run(main())
    finally:
        watcher.close()
    assert code == 0, out
    assert "runs config 'winter-2'" in out
    saved = json.loads((tmp_path / "n" / "config.json").read_text())
    assert saved["config_id"] == "winter-2" and saved["threshold_c"] == 37.3


def test_a_config_the_node_would_refuse_is_not_sent(private_broker: Broker) -> None:
    out = subprocess.run(
        cli("--broker", private_broker.url, "--site", "bridge", "--node", "bridge-1", "--id", "bad",
            "--threshold", "45"),
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert "the node would refuse this config" in out.stderr and "threshold_c" in out.stderr


def test_a_config_larger_than_a_node_reads_is_not_sent(private_broker: Broker, tmp_path: Path) -> None:
    """The node reads messages of at most contract MAX_PAYLOAD (4,096) bytes and skips larger packets unread: a
    calibration with long advice texts would never be applied. Refused, naming the size, and nothing retained."""
    cal = dict(firmware.module("calibration").CALIBRATION, advice={"cold_skin": "wait inside, then retest " * 200})
    path = tmp_path / "big.json"
    path.write_text(json.dumps(cal))
    watcher = Watcher(private_broker.port, "checkpoint/v1/bridge/bridge-1/config")
    try:
        out = subprocess.run(cli("--broker", private_broker.url, "--site", "bridge", "--node", "bridge-1", "--id",
                                 "big", "--calibration", str(path)), cwd=REPO, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert out.returncode == 1 and "more than the 4096 a node reads" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and watcher.drain() == []
    finally:
        watcher.close()
