"""deploy/mosquitto/production.conf on this machine, as `checkpoint-gateway provision` sets it up: passwd and
ACL from the provisioning command, a TLS listener on a free loopback port with a test certificate, temporary
paths. The Broker launcher adds a plain loopback listener of its own, which tests use only to prove a point.

    deployment = provisioned(tmp_path, ["bridge-1/lane-1", "river/lane-1"], readers=["medic"])
    with deployment.broker() as b: ...
        medic = connect(deployment, "medic", "medic-pass"); lane = node(deployment, "bridge-1", "lane-1")
"""

from __future__ import annotations

import argparse
import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

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


@dataclass
class Conn:
    """One paho client; `rc` 0 when the broker accepted it, `present` its CONNACK session-present flag."""

    c: mqtt.Client
    rc: int
    present: bool
    got: queue.Queue[mqtt.MQTTMessage]
    gone: threading.Event

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def payloads(self, until: bytes) -> list[bytes]:
        """The payloads received up to and including `until`."""
        out: list[bytes] = []
        while not out or out[-1] != until:
            out.append(bytes(self.got.get(timeout=10).payload))
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def connect(d: Deployment, user: str, password: str, client_id: str = "", *, clean: bool = True,
            plain_port: int | None = None, will: tuple[str, bytes] | None = None) -> Conn:  # fmt: skip
    """Over TLS to the production listener, or over the launcher's plain loopback listener (`plain_port`)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    if will:
        c.will_set(will[0], will[1], qos=1, retain=True)
    if plain_port is None:
        c.tls_set(ca_certs=str(d.ca.crt))
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    gone, up = threading.Event(), queue.Queue[tuple[int, bool]]()
    c.on_connect = lambda cl, u, flags, rc, p: up.put((rc.value, bool(flags.session_present)))
    c.on_disconnect = lambda *a: gone.set()
    c.on_message = lambda cl, u, m: got.put(m)
    c.connect("127.0.0.1", plain_port or d.tls_port)
    c.loop_start()
    rc, present = up.get(timeout=10)
    if rc != 0:
        c.disconnect()
        c.loop_stop()
    return Conn(c, rc, present, got, gone)


def node(d: Deployment, site: str, name: str, client_id: str = "", **kw: object) -> Conn:
    return connect(d, f"{site}.{name}", d.node_password(site, name), client_id, **kw)  # type: ignore[arg-type]
