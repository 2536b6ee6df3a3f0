"""One validator for every number that decides a verdict, at every door (issue 9 item 2, issue 10 kind 10).

A calibration whose threshold is NaN or 45 C switches screening off without an error (every fever "normal").
The same check (firmware/screening.py `check_calibration`) runs where a calibration or a threshold enters:
the node's config file and a pushed config, the gateway's calibration file, its environment and file
thresholds, `push-config`, `check-config` and `run`. Each refusal names the key, the value and the range.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import firmware
from gateway import config as gateway_config
from gateway import push
from gateway.errors import ConfigError, GatewayError

screening = firmware.module("screening")
node_config = firmware.module("config")
contract = firmware.module("contract")
SHIPPED = firmware.module("calibration").CALIBRATION
REPO = Path(__file__).resolve().parents[1]


def calibration(**changes: Any) -> dict[str, Any]:
    """The shipped calibration with `changes` applied; a key "modes.forehead.k" reaches inside."""
    cal = copy.deepcopy(SHIPPED)
    for dotted, value in changes.items():
        keys = dotted.split(".")
        where = cal
        for k in keys[:-1]:
            where = where[k]
        where[keys[-1]] = value
    return cal


# (the change, what the refusal must name)
BAD = [
    ({"modes.forehead.threshold_c": math.nan}, "modes.forehead.threshold_c must be a number, got nan"),
    ({"modes.forehead.threshold_c": 45}, "modes.forehead.threshold_c = 45 is outside 37.0..38.5"),
    ({"modes.canthus.threshold_c": 36.0}, "modes.canthus.threshold_c = 36.0 is outside 37.0..38.5"),
    ({"modes.forehead.k": math.inf}, "modes.forehead.k = inf is outside 0.0..1.0"),
    ({"modes.forehead.offset_c": -12.0}, "modes.forehead.offset_c = -12.0 is outside -5.0..5.0"),
    ({"modes.forehead.min_core_c": math.nan}, "modes.forehead.min_core_c must be a number"),
    ({"ambient_c": [math.nan, 30.0]}, "ambient_c[0] must be a number"),
    ({"ambient_c": [30.0, 18.0]}, "ambient_c must be [low, high] with low < high"),
    ({"skin_c": [28.0, 1e9]}, "skin_c[1] = 1000000000.0 is outside 15.0..45.0"),
    ({"modes.forehead.form": "cubic"}, "modes.forehead.form must be one of heat_balance, linear"),
    ({"modes.forehead.gain": 2.0}, "modes.forehead: unknown key 'gain'"),
    ({"id": 'x"y'}, "id must be 1-32 printable ASCII characters"),
]

LINEAR = calibration(
    id="site-linear-1",
    **{"modes.forehead": {"form": "linear", "offset_c": 20.0, "site": 0.5, "amb": 0.05, "threshold_c": 37.5}},
)


@pytest.mark.parametrize("changes,named", BAD)
def test_the_validator_names_the_key_the_value_and_the_range(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError) as refused:
        screening.check_calibration(calibration(**changes), contract.MODES)
    assert named in str(refused.value)


def test_the_shipped_and_a_linear_calibration_pass_at_every_door(tmp_path: Path) -> None:
    """A linear-form calibration was accepted by the node and refused by the gateway: one validator now."""
    for cal in (SHIPPED, LINEAR):
        screening.check_calibration(cal, contract.MODES)
        assert node_cfg(calibration=cal)[1] is None
        assert gateway_calibration(tmp_path, cal)["id"] == cal["id"]
        assert push.build(push_args(tmp_path, calibration=cal))["calibration"]["id"] == cal["id"]


def node_cfg(**given: Any) -> tuple[Any, Any]:
    return node_config.validate(dict({"site": "bridge-1", "node": "lane-1", "broker": {"host": "h"}}, **given))


def gateway_calibration(tmp_path: Path, cal: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(cal))  # json writes NaN and Infinity as Python reads them back
    return gateway_config.load_calibration(gateway_config.ScreeningSection(calibration_file=str(path)))


def push_args(tmp_path: Path, calibration: dict[str, Any] | None = None, threshold: float | None = None) -> Any:
    path = None
    if calibration is not None:
        path = tmp_path / "push-cal.json"
        path.write_text(json.dumps(calibration))
    return argparse.Namespace(site="bridge-1", node="lane-1", config_id="cfg-9", mode=None, threshold=threshold,
                              calibration=path, wait=0.0, broker=None)  # fmt: skip


@pytest.mark.parametrize("changes,named", BAD[:3])
def test_every_door_refuses_a_calibration_that_switches_screening_off(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    bad = calibration(**changes)
    cfg, reason = node_cfg(calibration=bad)
    assert cfg is None and named in reason  # the node's config file
    base, _ = node_cfg()
    merged, reason = node_config.merge_push(base, {"v": 1, "id": "cfg-9", "calibration": bad})
    assert merged is None and named in reason  # a pushed config, checked on the node
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("[", r"\[")):
        gateway_calibration(tmp_path, bad)  # the gateway's calibration file
    with pytest.raises(GatewayError, match="the node would refuse this config"):
        push.build(push_args(tmp_path, calibration=bad))  # push-config, before anything is sent


@pytest.mark.parametrize("threshold", ["nan", "inf", "45", "36.9"])
def test_a_threshold_outside_the_range_is_refused_everywhere(tmp_path: Path, threshold: str) -> None:
    value = float(threshold)
    cfg, reason = node_cfg(threshold_c=value)
    assert cfg is None and reason == "threshold_c: out of range 37.0..38.5"
    with pytest.raises(GatewayError, match=r"threshold_c: out of range 37\.0\.\.38\.5"):
        push.build(push_args(tmp_path, threshold=value))
    env = {"CHECKPOINT_SCREENING_THRESHOLD_FOREHEAD_C": threshold}
    with pytest.raises(ConfigError, match=r"screening\.threshold_forehead_c.*37\.0 and 38\.5"):
        gateway_config.load(None, environ=env)
    toml = tmp_path / "gw.toml"
    toml.write_text(f"[screening]\nthreshold_canthus_c = {threshold}\n")
    with pytest.raises(ConfigError, match=r"threshold_canthus_c.*37\.0 and 38\.5"):
        gateway_config.load(toml, environ={})


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_the_gateway_refuses_to_start_on_a_calibration_with_a_nan_threshold(tmp_path: Path, command: str) -> None:
    """The issue's input: threshold_c NaN made cores of 39.06, 39.90 and 41.09 C "normal". Now nothing runs."""
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(calibration(**{"modes.forehead.threshold_c": math.nan})))
    conf = tmp_path / "gw.toml"
    conf.write_text(f'[screening]\ncalibration_file = "{cal}"\n[mqtt]\nbroker = "mqtt://127.0.0.1:9"\n')
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    done = subprocess.run([sys.executable, "-m", "gateway", command, "--config", str(conf), "--db", db],
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 1
    assert "modes.forehead.threshold_c must be a number, got nan" in done.stderr
    assert "Traceback" not in done.stderr
