"""deploy/mosquitto/production.conf and the ACL, on a real Mosquitto: the config is accepted (TLS listener
with a generated certificate), anonymous clients are refused, and a node cannot publish as another node."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway import provision
from gateway.signing import NodeEntry, Registry
from sim.broker import Broker, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
USERS = {"gateway": "gw-pass", "bridge.n1": "n1-pass", "bridge.n2": "n2-pass"}


def _certificate(workdir: Path) -> tuple[Path, Path] | None:
    if shutil.which("openssl") is None:
        return None
    crt, key = workdir / "server.crt", workdir / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def _production_config(workdir: Path, tls_port: int) -> Path:
    """production.conf with this machine's paths and ports (the plain listener comes from Broker)."""
    passwd = workdir / "passwd"
    passwd.touch()
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
    nodes = {("bridge", n): NodeEntry("bridge", n, "00" * 32, f"bridge.{n}", 0) for n in ("n1", "n2")}
    (workdir / "acl").write_text(provision.acl(Registry(nodes), "checkpoint/v1", ["medic"]))  # as provision writes it
    cert = _certificate(workdir)
    lines = []
    for line in (DEPLOY / "production.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "password_file":
            line = f"password_file {passwd}"
        elif key == "acl_file":
            line = f"acl_file {workdir / 'acl'}"
        elif key == "persistence_location":
            line = f"persistence_location {workdir}/"
        elif key == "log_dest":
            line = "log_dest stderr"
        elif line == "listener 1883 127.0.0.1":
            continue
        elif line == "listener 8883":
            line = f"listener {tls_port} 127.0.0.1" if cert else "#"
        elif key in ("certfile", "keyfile", "tls_version") and cert is None:
            line = "#"
        elif key == "certfile" and cert:
            line = f"certfile {cert[0]}"
        elif key == "keyfile" and cert:
            line = f"keyfile {cert[1]}"
        lines.append(line)
    lines.append("user root")  # tests may run as root: keep the privileges that can read these temp files
    conf = workdir / "production-test.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@pytest.fixture
def production_broker(tmp_path: Path):
    tls_port = free_port()
    with Broker(config=_production_config(tmp_path, tls_port), workdir=tmp_path / "run") as broker:
        broker.tls_port = tls_port  # type: ignore[attr-defined]
        broker.cert = tmp_path / "server.crt"  # type: ignore[attr-defined]
        yield broker


def _client(port: int, user: str | None, client_id: str, tls_ca: Path | None = None) -> tuple[mqtt.Client, int]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    result: queue.Queue[int] = queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: result.put(rc.value)
    if user:
        c.username_pw_set(user, USERS[user])
    if tls_ca:
        c.tls_set(ca_certs=str(tls_ca))
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, result.get(timeout=10)


def test_production_config_starts_with_tls_and_refuses_anonymous(production_broker) -> None:
    gw, rc = _client(production_broker.port, "gateway", "gw")
    assert rc == 0
    anon, rc = _client(production_broker.port, None, "anon")
    assert rc != 0  # not authorised
    anon.loop_stop()
    if production_broker.cert.exists():
        node, rc = _client(production_broker.tls_port, "bridge.n1", "n1", tls_ca=production_broker.cert)
        assert rc == 0, "TLS listener refused a node with the right certificate and password"
        node.disconnect()
        node.loop_stop()
    gw.disconnect()
    gw.loop_stop()


def test_acl_stops_a_node_publishing_under_another_nodes_topic(production_broker) -> None:
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed = threading.Event()
    gw, rc = _client(production_broker.port, "gateway", "gw")
    assert rc == 0
    gw.on_message = lambda c, u, m: got.put((m.topic, m.payload))
    gw.on_subscribe = lambda *a: subscribed.set()
    gw.subscribe("checkpoint/v1/#", qos=1)
    assert subscribed.wait(10)
    node, rc = _client(production_broker.port, "bridge.n1", "n1")
    assert rc == 0
    forged = b'{"v":1,"forged":true}'
    for topic in ("bridge/n2/scan", "alerts/bridge", "bridge/n1/receipt"):
        node.publish("checkpoint/v1/" + topic, forged, qos=1).wait_for_publish(10)
    node.publish("checkpoint/v1/bridge/n1/scan", json.dumps({"v": 1}), qos=1).wait_for_publish(10)
    # Messages from one client arrive in order: if a forged one had passed, it would come first.
    assert got.get(timeout=10)[0] == "checkpoint/v1/bridge/n1/scan"
    assert got.empty()

    # Reading: Mosquitto 2.0 grants the SUBACK but checks the ACL on each delivery.
    receipts: queue.Queue[str] = queue.Queue()
    subscribed.clear()
    node.on_message = lambda c, u, m: receipts.put(m.topic)
    node.on_subscribe = lambda *a: subscribed.set()
    node.subscribe("checkpoint/v1/bridge/+/receipt", qos=1)
    assert subscribed.wait(10)
    for other in ("n2", "n1"):
        gw.publish(f"checkpoint/v1/bridge/{other}/receipt", b'{"v":1,"seqs":[1]}', qos=1).wait_for_publish(10)
    assert receipts.get(timeout=10) == "checkpoint/v1/bridge/n1/receipt"  # never n2's
    node.disconnect()
    node.loop_stop()
    gw.disconnect()
    gw.loop_stop()
