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
from testkit.certs import have_openssl
from testkit.production import provisioned

pytestmark = pytest.mark.skipif(not have_openssl(), reason="openssl CLI not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import deploy_check  # noqa: E402

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

    from gateway import provision

    args = provision.argparse.Namespace(dir=d.dir, broker_host="127.0.0.1", port=8883, ca=d.ca.crt,
                                        prefix="checkpoint/v1", reader=[], rotate=["bridge-1/lane-1"],
                                        retire=["bridge-1/lane-2"], nodes=[])  # fmt: skip
    provision.run(args)
    rotated = json.loads((node_dir / "config.json").read_text())
    reg = Registry.load(d.dir / "registry.json")
    assert rotated["broker"]["hmac_key"] != cfg["broker"]["hmac_key"]
    assert reg.active("bridge-1", "lane-1").key == rotated["broker"]["hmac_key"]  # type: ignore[union-attr]
    assert reg.active("bridge-1", "lane-2") is None and reg.nodes[("bridge-1", "lane-2")].retired is not None
    assert "bridge-1.lane-2" not in (d.dir / "mosquitto" / "passwd").read_text()
    assert "lane-2" not in (d.dir / "mosquitto" / "acl").read_text()
    with pytest.raises(GatewayError, match="reserved"):
        provision.run(provision.argparse.Namespace(**dict(vars(args), rotate=[], retire=[], nodes=["alerts/n1"])))
