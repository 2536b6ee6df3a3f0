"""`checkpoint-gateway provision`: per-node credentials (hashed), ACL, node configs the firmware accepts but
`make deploy` refuses until the Wi-Fi is filled in, the registry; rotating a key; retiring a node."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import firmware
from gateway.errors import GatewayError
from gateway.signing import Registry
from testkit.production import provisioned

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import deploy_check

config = firmware.module("config")


def test_provision_rotate_retire(tmp_path: Path) -> None:
    d = provisioned(tmp_path, ["bridge-1/lane-1", "bridge-1/lane-2"])
    node_dir = d.dir / "nodes" / "bridge-1" / "lane-1"
    cfg = json.loads((node_dir / "config.json").read_text())
    assert config.validate(cfg)[1] is None and cfg["broker"]["tls"] and (node_dir / "ca.crt").is_file()
    reg = Registry.load(d.dir / "registry.json")
    assert reg.active("bridge-1", "lane-1").key == cfg["broker"]["hmac_key"]  # type: ignore[union-attr]
    passwd = (d.dir / "mosquitto" / "passwd").read_text()
    assert cfg["broker"]["password"] not in passwd and "bridge-1.lane-1:$7$" in passwd  # hashed
    assert (d.dir / "registry.json").stat().st_mode & 0o077 == 0
    with pytest.raises(SystemExit, match=r"wifi\.ssid, wifi\.password"):
        deploy_check.check(node_dir / "config.json")
    cfg["wifi"] = {"ssid": "post-3", "password": "s3cret-wifi"}
    (node_dir / "config.json").write_text(json.dumps(cfg))
    assert deploy_check.check(node_dir / "config.json") == node_dir / "ca.crt"

    d.provision(rotate=["bridge-1/lane-1"], retire=["bridge-1/lane-2"])
    rotated = json.loads((node_dir / "config.json").read_text())
    reg = Registry.load(d.dir / "registry.json")
    assert rotated["broker"]["hmac_key"] != cfg["broker"]["hmac_key"]
    assert reg.active("bridge-1", "lane-1").key == rotated["broker"]["hmac_key"]  # type: ignore[union-attr]
    assert reg.active("bridge-1", "lane-2") is None and reg.nodes[("bridge-1", "lane-2")].retired is not None
    assert "bridge-1.lane-2" not in (d.dir / "mosquitto" / "passwd").read_text()
    assert "lane-2" not in (d.dir / "mosquitto" / "acl").read_text()
    with pytest.raises(GatewayError, match="reserved"):
        d.provision(nodes=["alerts/n1"])


def test_readers_are_kept_and_changed_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ACL keeps its readers from run to run; adding and removing one is explicit and printed; a reader's
    password set in the passwd under --dir survives later runs; a block provision did not write is named."""
    d = provisioned(tmp_path, ["bridge-1/lane-1"], readers=("medic",))
    acl, passwd = d.dir / "mosquitto" / "acl", d.dir / "mosquitto" / "passwd"
    assert "reader medic added" in capsys.readouterr().out
    d.set_password("medic", "medic-pass")
    d.provision(nodes=["bridge-1/lane-2"], reader=["nurse"])
    said = capsys.readouterr().out
    assert "reader nurse added" in said and "reader medic added" not in said
    assert f"reader nurse has no password yet: mosquitto_passwd {passwd} nurse" in said
    assert said.endswith("provision: readers in the ACL: medic, nurse\n")
    assert "user medic\ntopic read checkpoint/v1/alerts/#\n" in acl.read_text()
    assert passwd.read_text().startswith("gateway:") and "\nmedic:$7$" in passwd.read_text()
    acl.write_text(acl.read_text() + "user homeassistant\ntopic read checkpoint/v1/+/+/status\n")
    d.set_password("nurse", "nurse-pass")
    d.provision(remove_reader=["nurse"])
    said = capsys.readouterr().out
    assert "the block of user homeassistant was not written by provision: left out" in said
    assert "reader nurse removed" in said and said.endswith("provision: readers in the ACL: medic\n")
    assert "nurse" not in acl.read_text() and "nurse:" not in passwd.read_text() and "medic:" in passwd.read_text()
    for bad, match in (({"remove_reader": ["nurse"]}, "not a reader"), ({"reader": ["gateway"]}, "reserved"),
                       ({"reader": ["medic"], "remove_reader": ["medic"]}, "both")):  # fmt: skip
        with pytest.raises(GatewayError, match=match):
            d.provision(**bad)
    assert "user medic\n" in acl.read_text()
