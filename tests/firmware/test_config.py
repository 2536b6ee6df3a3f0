"""Node config (firmware/config.py): validated at the door with a reason naming the key; pushes merged safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module

config = firmware_module("config")
EXAMPLE = FIRMWARE_DIR / "config.example.json"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"site": "bridge-1", "node": "lane-1", "broker": {"host": "10.0.0.2"}, **extra}


def test_the_committed_example_is_valid_and_complete() -> None:
    given = json.loads(EXAMPLE.read_text())
    cfg, reason = config.validate(given)
    assert reason is None and cfg == given  # every key spelled out, nothing unknown


def test_defaults_fill_a_minimal_config() -> None:
    cfg, reason = config.validate(minimal())
    assert reason is None
    assert cfg["mode"] == "forehead" and cfg["sensor"]["variant"] == "BAA" and cfg["pins"]["sda"] == 21
    assert config.settle_ms(cfg) == 100
    assert config.calibration(cfg) is firmware_module("calibration").CALIBRATION


@pytest.mark.parametrize(
    "given,reason",
    [
        (minimal(colour="red"), "unknown key: colour"),
        (minimal(sensor={"variant": "BAA", "adress": 90}), "unknown key: sensor.adress"),
        (minimal(node="Lane 1"), "node: must match"),
        (minimal(site="-x"), "site: must match"),
        (minimal(site="a" * 33), "site: must match"),
        ({"site": "s", "node": "n", "broker": {}}, "broker.host: required"),
        (minimal(broker={"host": "h", "port": "1883"}), "broker.port: must be an integer"),
        (minimal(broker={"host": "h", "port": 70000}), "broker.port: out of range"),
        (minimal(threshold_c="37.5"), "threshold_c: must be a number"),
        (minimal(threshold_c=45), "threshold_c: out of range"),
        (minimal(mode="ear"), "mode: must be one of"),
        (minimal(mode="canthus"), "mode: canthus needs a narrow-FOV sensor"),
        (minimal(sensor={"iir": 4}), "sensor: iir and fir are set together"),
        (minimal(scan={"max_ms": 500}, sensor={"variant": "DCI"}), "scan.max_ms: shorter than"),
        (minimal(calibration={"id": "x"}), "calibration: ambient_c must be"),
        (minimal(calibration=[1, 2]), "calibration: must be an object"),
        (minimal(wifi={"ssid": 5}), "wifi.ssid: must be a string"),
        (minimal(scan={"trigger": "voice"}), "scan.trigger: must be one of"),
        (minimal(broker={"hosts": []}), "broker.host: required (or broker.hosts"),
        (minimal(broker={"host": "h", "hosts": []}), "broker.hosts: 1 to 8 members"),
        (minimal(broker={"hosts": "a,b"}), "broker.hosts: must be a list"),
        (minimal(broker={"hosts": ["a", ""]}), "broker.hosts: '' is not host or host:port"),
        (minimal(broker={"hosts": ["a:0"]}), "broker.hosts: 'a:0' is not host or host:port"),
        (minimal(broker={"hosts": ["a:1883x"]}), "broker.hosts: 'a:1883x' is not host or host:port"),
        (minimal(broker={"hosts": [5]}), "broker.hosts: 5 is not host or host:port"),
        (minimal(broker={"hosts": [f"m{i}" for i in range(9)]}), "broker.hosts: 1 to 8 members"),
    ],
)
def test_an_invalid_config_is_refused_with_a_reason(given: dict[str, Any], reason: str) -> None:
    cfg, got = config.validate(given)
    assert cfg is None and got is not None and got.startswith(reason), got


def test_a_custom_filter_settles_as_the_drivers_table_says() -> None:
    """IIR 100 %, FIR 128 on a DCI: 0.26 s (the node uses what the part reads back at boot: sensorboot.py)."""
    cfg, reason = config.validate(minimal(mode="canthus", sensor={"variant": "DCI", "iir": 4, "fir": 4}))
    assert reason is None and config.settle_ms(cfg) == 260


def test_canthus_with_a_narrow_fov_part_is_fine() -> None:
    cfg, reason = config.validate(minimal(mode="canthus", sensor={"variant": "DCI"}))
    assert reason is None and config.settle_ms(cfg) == 650


def test_load_names_the_problem_with_the_file(tmp_path: Path) -> None:
    assert config.load(str(tmp_path / "none.json"))[1].startswith("cannot read")
    bad = tmp_path / "bad.json"
    bad.write_text("{site: 1")
    assert config.load(str(bad))[1].startswith("not valid JSON")


def test_save_is_atomic_and_loads_back(tmp_path: Path) -> None:
    cfg, _ = config.validate(minimal())
    path = str(tmp_path / "config.json")
    config.save(cfg, path)
    assert config.load(path) == (cfg, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no temporary left behind


def test_a_push_changes_only_what_the_gateway_may_change() -> None:
    cfg, _ = config.validate(minimal())
    cal = dict(firmware_module("calibration").CALIBRATION, id="site-tuned-2")
    new, reason = config.merge_push(
        cfg, {"v": 1, "id": "cfg-7", "threshold_c": 37.3, "calibration": cal, "intervals": {"health_s": 30}}
    )
    assert reason is None
    assert new["config_id"] == "cfg-7" and new["threshold_c"] == 37.3 and new["calibration"]["id"] == "site-tuned-2"
    assert new["intervals"] == {"health_s": 30, "wdt_ms": 8000} and new["broker"] == cfg["broker"]
    assert cfg["intervals"]["health_s"] == 60  # the running config is not modified in place


@pytest.mark.parametrize(
    "push,reason",
    [
        ({"v": 1, "wifi": {"ssid": "evil"}}, "not settable remotely: wifi"),
        ({"v": 1, "node": "other"}, "not settable remotely: node"),
        ({"id": "x", "mode": "forehead"}, "v: must be 1"),
        ({"v": 1, "mode": "canthus"}, "mode: canthus needs"),
        ({"v": 1, "intervals": {"health_s": 1}}, "intervals.health_s: out of range"),
        ({"v": 1, "scan": 3}, "scan: must be an object"),
        ({"v": 1, "id": 5}, "config_id"),
        ("threshold 37", "config: must be an object"),
    ],
)
def test_a_bad_push_is_refused_with_a_reason(push: Any, reason: str) -> None:
    cfg, _ = config.validate(minimal())
    new, got = config.merge_push(cfg, push)
    assert new is None and got.startswith(reason), got


def test_scan_settings_carry_mode_threshold_and_calibration() -> None:
    cfg, _ = config.validate(minimal(mode="canthus", sensor={"variant": "DCI"}, threshold_c=37.3))
    s = config.scan_settings(cfg)
    assert s["mode"] == "canthus" and s["threshold_c"] == 37.3 and s["settle_ms"] == 650 and s["sample_ms"] == 20
    assert s["cal"]["id"] == firmware_module("calibration").CALIBRATION["id"]


def test_the_ntp_host_is_configurable_for_a_post_without_internet() -> None:
    """A post on a local access point has no pool.ntp.org: the node asks the host it is given (empty: none)."""
    assert config.validate(minimal())[0]["ntp_host"] == "pool.ntp.org"
    assert config.validate(minimal(ntp_host="10.0.0.2"))[0]["ntp_host"] == "10.0.0.2"
    assert config.validate(minimal(ntp_host=""))[0]["ntp_host"] == ""
    assert config.validate(minimal(ntp_host=123)) == (None, "ntp_host: must be a string")


def test_a_cluster_is_a_list_of_members_tried_in_turn() -> None:
    """broker.hosts (issue 16): the members of a broker cluster, each "host" or "host:port" (port default
    broker.port); the session starts on the first and moves to the next after a failed attempt."""
    cfg, reason = config.validate(minimal(broker={"hosts": ["10.0.0.2", "10.0.0.3:1884", "rmq-c"], "port": 1883}))
    assert reason is None
    session = firmware_module("session")
    assert session.members(cfg["broker"]) == [("10.0.0.2", 1883), ("10.0.0.3", 1884), ("rmq-c", 1883)]
    assert session.members(config.validate(minimal())[0]["broker"]) == [("10.0.0.2", 1883)]  # host alone
