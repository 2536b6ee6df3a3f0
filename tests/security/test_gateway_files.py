"""Issue 11 item 6 through the CLI: `checkpoint-gateway run` with a production config whose CA, password or
registry file is missing (or a registry that is not one) exits 1 with one line naming the file, no traceback;
a registry with plain MQTT to another host is refused (TLS required in production)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.signing import NodeEntry, Registry, new_key
from testkit.certs import Pki

REPO = Path(__file__).resolve().parents[2]


def production(tmp_path: Path, **change: str) -> Path:
    """A production config (TLS, registry, the gateway's user) whose files exist, then `change` applied."""
    Registry({("bridge-1", "lane-1"): NodeEntry("bridge-1", "lane-1", new_key(), "bridge-1.lane-1", 0)}).save(
        tmp_path / "registry.json"
    )
    (tmp_path / "gateway.password").write_text("s3cret\n")
    values = {
        "registry": str(tmp_path / "registry.json"),
        "broker": "mqtts://127.0.0.1:1",  # nothing listens: every case here stops before connecting
        "password_file": str(tmp_path / "gateway.password"),
        "ca_file": str(tmp_path / "ca.crt"),
    }
    values.update(change)
    text = (f'[gateway]\nregistry = "{values["registry"]}"\n[mqtt]\nbroker = "{values["broker"]}"\n'
            f'username = "gateway"\npassword_file = "{values["password_file"]}"\nca_file = "{values["ca_file"]}"\n'
            f'[store]\ndb = "sqlite:///{tmp_path / "gw.db"}"\n')  # fmt: skip
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def run(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHECKPOINT_")}
    return subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture
def ca(tmp_path: Path) -> None:
    cert = Pki(tmp_path / "pki").ca("checkpoint-ca")
    (tmp_path / "ca.crt").write_bytes(cert.crt.read_bytes())


@pytest.mark.parametrize(
    ("key", "file", "words"),
    [
        ("ca_file", "missing-ca.crt", "mqtt.ca_file: no such file"),
        ("password_file", "missing.password", "mqtt.password_file: cannot read"),
        ("registry", "missing-registry.json", "gateway.registry: no such file"),
    ],
)
def test_a_missing_file_is_named_without_a_traceback(tmp_path: Path, ca: None, key: str, file: str, words: str) -> None:
    missing = tmp_path / file
    r = run(production(tmp_path, **{key: str(missing)}))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and words in r.stderr and str(missing) in r.stderr


BROKEN = ['{"v": 1, "nodes": {"bridge-1/lane-1": {"user": "u"}}}',
          '{"v": 1, "nodes": {"x/y": {"key": "zz", "user": "u", "since": 0}}}', "[1, 2]", "not json"]  # fmt: skip


@pytest.mark.parametrize("text", BROKEN)
def test_a_broken_registry_is_named_without_a_traceback(tmp_path: Path, ca: None, text: str) -> None:
    config = production(tmp_path)
    (tmp_path / "registry.json").write_text(text)
    r = run(config)
    assert r.returncode == 1 and "Traceback" not in r.stderr and str(tmp_path / "registry.json") in r.stderr


def test_a_registry_with_plain_mqtt_to_another_host_is_refused(tmp_path: Path) -> None:
    r = run(production(tmp_path, broker="mqtt://10.0.0.2:1883"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "mqtt.broker: mqtt://10.0.0.2:1883 is plain MQTT with a node registry" in r.stderr
