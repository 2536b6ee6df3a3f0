"""Attack 1 of issue 11: a neighbour on the checkpoint Wi-Fi answers for the broker. The node (the real firmware
on the real MicroPython interpreter, and on CPython) verifies the broker's certificate and host name against
broker.cafile: against the real broker it connects; against a man in the middle holding a certificate from
another CA, or one from the right CA for another name, it refuses before CONNECT, so the password never
leaves it, and its link shows REFUSED (the link LED's fast blink)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module
from sim.broker import Broker, free_port
from testkit.certs import Pki
from testkit.micropython import ESP32_HEAP, compile_firmware, interpreters
from testkit.tlstrap import TlsTrap

linkstate = firmware_module("linkstate")
config = firmware_module("config")
PROGRAM = str(Path(__file__).parent / "mp" / "tls_node.py")
PASSWORD = "n1-secret-password-7f3a"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    p = Pki(tmp_path_factory.mktemp("pki"))
    ca, other = p.ca("checkpoint-ca"), p.ca("impostor-ca")
    return {
        "ca": ca,
        "impostor_ca": other,
        "right": p.server("right", ca, "IP:127.0.0.1"),
        "wrong_ca": p.server("wrong-ca", other, "IP:127.0.0.1"),
        "wrong_name": p.server("wrong-name", ca, "DNS:broker.elsewhere.example"),
    }


def run_node(interpreter: str, tmp_path: Path, port: int, cafile: Path, deadline_s: float = 20) -> dict[str, Any]:
    opts = {"dir": str(tmp_path / f"outbox-{interpreter}"), "host": "127.0.0.1", "port": port,
            "cafile": str(cafile), "user": "n1", "password": PASSWORD, "node": "n1",
            "deadline_s": deadline_s}  # fmt: skip
    opts_file = tmp_path / f"opts-{interpreter}.json"
    opts_file.write_text(json.dumps(opts))
    # MicroPython loads the firmware compiled to .mpy, as the device does (compiling source at import time does not
    # fit the 112 KiB heap). The ESP32's heap budget: there mbedtls allocates from ESP-IDF's heap, outside
    # MicroPython's; the unix port takes the handshake's buffers from the interpreter's own heap.
    code = compile_firmware() if interpreter == "micropython" else FIRMWARE_DIR
    r = subprocess.run([*interpreters(ESP32_HEAP)[interpreter], PROGRAM, str(code), str(opts_file)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.parametrize("interpreter", ["micropython", "cpython"])
def test_the_node_connects_to_the_broker_its_ca_signed(pki: dict[str, Any], tmp_path: Path, interpreter: str) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "n1", PASSWORD], check=True, capture_output=True)
    tls_port = free_port()
    conf = tmp_path / "tls.conf"
    right = pki["right"]
    conf.write_text(
        f"allow_anonymous false\npassword_file {passwd}\nuser root\nlog_dest stderr\n"
        f"listener {tls_port} 127.0.0.1\ncertfile {right.crt}\nkeyfile {right.key}\ntls_version tlsv1.2\n"
    )
    with Broker(config=conf, workdir=tmp_path / "mosquitto"):
        out = run_node(interpreter, tmp_path, tls_port, pki["ca"].crt)
    assert out["up"] and out["refused"] is None, out
    assert out["states"][-1] == linkstate.UP


@pytest.mark.parametrize("interpreter", ["micropython", "cpython"])
@pytest.mark.parametrize("impostor", ["wrong_ca", "wrong_name"])
def test_a_man_in_the_middle_gets_no_password(
    pki: dict[str, Any], tmp_path: Path, interpreter: str, impostor: str
) -> None:
    with TlsTrap(pki[impostor]) as trap:
        out = run_node(interpreter, tmp_path, trap.port, pki["ca"].crt)
    assert not out["up"] and out["refused"], out
    assert out["states"][-1] == linkstate.REFUSED  # the link LED blinks fast
    assert trap.handshakes == 0 and trap.failures, "the node completed a TLS handshake with an impostor"
    assert all(PASSWORD.encode() not in got for got in trap.received)


def test_the_trap_would_have_seen_the_password_without_verification(pki: dict[str, Any], tmp_path: Path) -> None:
    """The trap works: a node that trusts the impostor's CA completes the handshake and the trap reads its
    CONNECT with the password (what every node did before issue 11)."""
    with TlsTrap(pki["wrong_ca"]) as trap:
        run_node("cpython", tmp_path, trap.port, pki["impostor_ca"].crt, deadline_s=2)  # the trap sends no CONNACK
    assert trap.handshakes >= 1
    assert any(PASSWORD.encode() in got for got in trap.received)


def test_tls_without_a_ca_is_refused_by_the_config() -> None:
    cfg = {"site": "bridge-1", "node": "n1", "broker": {"host": "10.0.0.2", "port": 8883, "tls": True}}
    assert config.validate(cfg) == (None, "broker.tls: true needs broker.cafile (the broker's CA certificate, "
                                          "beside config.json)")  # fmt: skip
    cfg["broker"]["cafile"] = "ca.crt"
    assert config.validate(cfg)[1] is None
