"""Config validated at the door (unknown keys, types, ranges refused with the key); file < env < CLI flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def test_the_example_config_is_valid_and_documents_every_key() -> None:
    example = REPO / "deploy" / "gateway.example.toml"
    cfg = config.load(example, environ={})
    text = example.read_text()
    for section, values in config.effective(cfg).items():
        for key in values:
            if key != "password":  # a secret: environment only
                assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key} undocumented"


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nbroker = "mqtt://10.0.0.5:1883"\n[alerts]\noffline_after_s = 300\n')
    env = {"CHECKPOINT_ALERTS_OFFLINE_AFTER_S": "90", "CHECKPOINT_SCREENING_THRESHOLD_FOREHEAD_C": "37.3"}
    cfg = config.load(path, environ=env, overrides={"mqtt.broker": "mqtt://127.0.0.1:2883"})
    assert cfg.mqtt.broker == "mqtt://127.0.0.1:2883"  # flag beats file
    assert cfg.alerts.offline_after_s == 90  # environment beats file
    assert cfg.screening.threshold_forehead_c == 37.3
    assert cfg.screening.threshold_canthus_c is None  # the calibration's own operating point
    assert cfg.ingest.max_batch == 200  # default


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[alerts]\noffline_afer_s = 60\n", {}, "alerts.offline_afer_s"),
        ("[alert]\noffline_after_s = 60\n", {}, "[alert]"),
        ('[alerts]\noffline_after_s = "60"\n', {}, "alerts.offline_after_s"),
        ("[alerts]\noffline_after_s = 1\n", {}, "between 10 and 86400"),
        ('[mqtt]\nbroker = "http://x"\n', {}, "mqtt://host:port"),
        ('[mqtt]\nbroker = "mqtt://user:pw@x:1883"\n', {}, "must not carry credentials"),
        ('[mqtt]\npassword = "hunter2"\n', {}, "secrets do not go in files"),
        ('[report]\ntimezone = "Mars/Olympus"\n', {}, "report.timezone"),
        ("[store]\nsynchronous = 'off'\n", {}, "full, normal"),
        ("", {"CHECKPOINT_INGEST_MAX_BATCH": "lots"}, "ingest.max_batch (environment)"),
        ("", {"CHECKPOINT_MQTT_BROKERR": "mqtt://x"}, "mqtt.brokerr (environment)"),
        ("not toml [", {}, "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_the_key_and_reason(tmp_path: Path, text: str, env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), environ=env)
    assert message in str(err.value)


def test_secrets_come_from_the_environment_or_a_file_and_are_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    path = write(tmp_path, f'[mqtt]\nusername = "gateway"\npassword_file = "{secret}"\n')
    assert config.mqtt_password(config.load(path, environ={}).mqtt) == "from-file"
    cfg = config.load(path, environ={"CHECKPOINT_MQTT_PASSWORD": "from-env"})
    assert config.mqtt_password(cfg.mqtt) == "from-env"
    assert "from-env" not in json.dumps(config.effective(cfg)) and "from-env" not in repr(cfg)


def test_missing_file_and_bad_calibration_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"copy deploy/gateway\.example\.toml"):
        config.load(tmp_path / "nope.toml", environ={})
    cal = tmp_path / "cal.json"
    cal.write_text('{"id": "x", "ambient_c": [16, 32]}')
    cfg = config.load(write(tmp_path, f'[screening]\ncalibration_file = "{cal}"\n'), environ={})
    with pytest.raises(ConfigError, match="skin_c"):
        config.load_calibration(cfg.screening)
    assert config.load_calibration(config.Config().screening)["id"]  # the shipped calibration
