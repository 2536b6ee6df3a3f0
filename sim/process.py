"""Child processes of the simulator and the tests (Mosquitto, the gateway, MicroPython nodes): started and
stopped the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import firmware
from sim.watch import Watcher

if TYPE_CHECKING:  # sim.rabbitmq takes free_port from sim.broker, which runs its broker through this module
    from sim.rabbitmq import RabbitCluster

contract: Any = firmware.module("contract")  # untyped MicroPython module
REPO = Path(__file__).resolve().parents[1]


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; reaps it either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class GatewayProcess:
    """`python -m gateway run` as a child process on a loopback broker: the real service, which the simulator
    (and a crash test) can SIGKILL and start again. Its stderr goes to WORKDIR/gateway-N.log, one per start.

    With `cluster` it runs on the cluster path instead: `--broker amqp://` every member, the gateway's account
    from the environment, and `port` is the member whose MQTT listener its status is watched on."""

    def __init__(
        self, port: int, db_url: str, workdir: Path, instance: str = "gw-proc", share_group: str = "",
        cluster: RabbitCluster | None = None, repo: Path = REPO,
    ) -> None:  # fmt: skip
        """`repo`: the source tree whose gateway runs (another revision's, for bench/bench_ingest.py --against)."""
        self.port, self.db_url, self.workdir, self.instance = port, db_url, workdir, instance
        self.repo = repo
        self.share_group = share_group  # several instances: each takes a share of the stream ($share/GROUP/...)
        self.cluster = cluster
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start it and return once it announces itself online (its retained status names its pid)."""
        self.starts += 1
        status = f"{contract.PREFIX}/{contract.GATEWAY}/{self.instance}/status"
        auth = None if self.cluster is None else ("node", self.cluster.node_password)
        watcher = Watcher(self.port, status, auth=auth)
        env = dict(os.environ)
        url = f"mqtt://127.0.0.1:{self.port}"
        if self.cluster is not None:
            url = self.cluster.amqp_url()
            env.update(CHECKPOINT_MQTT_USERNAME="gateway", CHECKPOINT_MQTT_PASSWORD=self.cluster.gateway_password)
        try:
            with open(self.workdir / f"gateway-{self.starts}.log", "w") as log:
                cmd = [sys.executable, "-m", "gateway", "run", "--broker", url, "--db", self.db_url, "--instance",
                       self.instance]  # fmt: skip
                cmd += ["--share-group", self.share_group] if self.share_group else []
                self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=self.repo, env=env)
            pid = self.proc.pid
            watcher.wait_for(lambda t, b: b.get("state") == "online" and b.get("pid") == pid, timeout)
        finally:
            watcher.close()

    def _started(self) -> subprocess.Popen[str]:
        if self.proc is None:
            raise RuntimeError("the gateway process was never started")
        return self.proc

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed, no offline status is published (the broker sends the will)."""
        proc = self._started()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> tuple[int, str]:
        """SIGTERM, as a clean shutdown: its exit status and what it printed on stdout."""
        proc = self._started()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
