"""deploy/mosquitto/production.conf on this machine, as `checkpoint-gateway provision` sets it up: passwd and
ACL from the provisioning command, a TLS listener on a free loopback port with a test certificate, temporary
paths. The Broker launcher adds a plain loopback listener of its own, which tests use only to prove a point.

    deployment = provisioned(tmp_path, ["bridge-1/lane-1", "river/lane-1"], readers=["medic"])
    with deployment.broker() as b: ...
"""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gateway import provision
from sim.broker import Broker, free_port
from testkit.certs import Cert, Pki

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"


@dataclass
class Deployment:
    dir: Path  # provision's --dir
    ca: Cert
    server: Cert
    tls_port: int

    def node_password(self, site: str, node: str) -> str:
        import json

        return str(json.loads((self.dir / "nodes" / site / node / "config.json").read_text())["broker"]["password"])

    def gateway_password(self) -> str:
        return (self.dir / "gateway.password").read_text().strip()

    def set_password(self, user: str, password: str) -> None:
        """A human account (a medic), as the operator adds one with mosquitto_passwd."""
        passwd = self.dir / "mosquitto" / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)

    def provision(self, **given: object) -> None:
        """`checkpoint-gateway provision` again on this --dir: no nodes, readers, rotations or retirements but
        those `given` (lists, as argparse gives them)."""
        args = dict(dir=self.dir, broker_host="127.0.0.1", port=8883, ca=self.ca.crt, prefix="checkpoint/v1",
                    nodes=[], reader=[], remove_reader=[], rotate=[], retire=[])  # fmt: skip
        provision.run(argparse.Namespace(**(args | given)))

    def config(self) -> Path:
        lines = []
        for line in (DEPLOY / "production.conf").read_text().splitlines():
            key = line.split(" ", 1)[0]
            line = {
                "password_file": f"password_file {self.dir / 'mosquitto' / 'passwd'}",
                "acl_file": f"acl_file {self.dir / 'mosquitto' / 'acl'}",
                "persistence_location": f"persistence_location {self.dir}/",
                "log_dest": "log_dest stderr",
                "listener": f"listener {self.tls_port} 127.0.0.1",
                "certfile": f"certfile {self.server.crt}",
                "keyfile": f"keyfile {self.server.key}",
            }.get(key, line)
            lines.append(line)
        lines.append("user root")  # tests may run as root: keep the privileges that read these temporary files
        conf = self.dir / "production-test.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def broker(self) -> Broker:
        return Broker(config=self.config(), workdir=self.dir / "run")


def provisioned(workdir: Path, nodes: list[str], readers: tuple[str, ...] = ("medic",)) -> Deployment:
    pki = Pki(workdir / "pki")
    ca = pki.ca("checkpoint-ca")
    server = pki.server("broker", ca, "IP:127.0.0.1")
    d = Deployment(workdir / "deploy", ca, server, free_port())
    d.provision(nodes=nodes, reader=list(readers))
    return d
