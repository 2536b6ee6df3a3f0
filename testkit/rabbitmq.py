"""The test cluster (sim/rabbitmq.py's, with TLS listeners of a test CA) and a gateway on its cluster path as a
child process, for tests and benches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim import rabbitmq as cluster
from sim.rabbitmq import RabbitError, TlsFiles
from testkit.certs import Pki

REPO = Path(__file__).resolve().parents[1]
__all__ = ["AmqpGateway", "RabbitCluster", "RabbitError"]


class RabbitCluster(cluster.RabbitCluster):
    """The tests' cluster (sim/rabbitmq.py): every member also listens for AMQP over TLS with a certificate for
    127.0.0.1 signed by a test CA, `ca` (its `crt` is what a gateway verifies the members against)."""

    def __init__(self, size: int = 3) -> None:
        pki = Pki(Path(tempfile.mkdtemp(prefix="checkpoint-rabbitmq-pki-")))
        self.ca = pki.ca("rabbit-test-ca")
        member = pki.server("rabbit-member", self.ca, "IP:127.0.0.1,DNS:localhost")
        self.pki_dir = pki.dir
        super().__init__(size, TlsFiles(self.ca.crt, member.crt, member.key))

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.pki_dir, ignore_errors=True)


class AmqpGateway:
    """`python -m gateway run --broker amqp://...` as a child process, credentials from the environment; its
    stdout and stderr go to WORKDIR/<instance>-N.log. `start()` returns once it consumes from the work queue."""

    def __init__(
        self, rmq: RabbitCluster, db_url: str, workdir: Path, instance: str, members: list[int],
        ca_file: Path | None = None,
    ) -> None:  # fmt: skip
        """`ca_file`: amqps:// to the members' TLS listeners, verified against this CA (mqtt.ca_file)."""
        self.rmq, self.db_url, self.workdir, self.instance, self.members = rmq, db_url, workdir, instance, members
        self.ca_file = ca_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.instance}-{self.starts}.log"

    def start(self, timeout: float = 30.0, wait: bool = True) -> AmqpGateway:
        """Start it; with `wait`, return once it consumes from the work queue (RabbitError if it does not)."""
        self.starts += 1
        env = dict(os.environ, CHECKPOINT_MQTT_USERNAME="gateway", CHECKPOINT_MQTT_PASSWORD=self.rmq.gateway_password)
        if self.ca_file is not None:
            env["CHECKPOINT_MQTT_CA_FILE"] = str(self.ca_file)
        url = self.rmq.amqp_url(self.members, tls=self.ca_file is not None)
        cmd = [sys.executable, "-m", "gateway", "run", "--broker", url, "--db", self.db_url, "--instance",
               self.instance]  # fmt: skip
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=REPO)
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while b"consuming from" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RabbitError(f"gateway {self.instance} did not start consuming; see {self.log}")
            time.sleep(0.05)  # polling its log for the line, not a synchronisation by time
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        self.proc.terminate()
        return self.proc.wait(timeout)
