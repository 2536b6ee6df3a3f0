"""The routing table and [notify] at the door: first match wins unless continue; kinds, sites and states
filter; a wrong key, an unknown receiver or a password written in the file is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config
from gateway.errors import ConfigError
from gateway.notify.routing import receivers_for
from gateway.notify.settings import parse

RECEIVERS = {name: {"url": f"json://127.0.0.1:9/{name}"} for name in ("medics", "coordinator", "doctor", "ops")}
TABLE = parse(
    {
        "receivers": RECEIVERS,
        "routes": [
            {"kinds": ["fever"], "states": ["escalated"], "receivers": ["medics", "doctor"]},
            {"kinds": ["fever"], "sites": ["g7-km12"], "receivers": ["medics"], "continue": True},
            {"kinds": ["node_offline", "sensor_fault"], "states": ["raised", "resolved"], "receivers": ["ops"]},
            {"receivers": ["coordinator"]},
        ],
    },
    "test",
)


@pytest.mark.parametrize(
    ("kind", "site", "state", "expected"),
    [
        ("fever", "g7-km12", "raised", ["medics", "coordinator"]),  # continue: the catch-all adds its receiver
        ("fever", "g6-km3", "raised", ["coordinator"]),
        ("fever", "g6-km3", "escalated", ["medics", "doctor"]),  # first match wins
        ("fever", "g7-km12", "acknowledged", []),  # default states: raised and escalated
        ("node_offline", "g6-km3", "resolved", ["ops"]),
        ("clock_skew", "g6-km3", "raised", ["coordinator"]),
        ("identity_clash", "g6-km3", "resolved", []),
    ],
)
def test_routes(kind: str, site: str, state: str, expected: list[str]) -> None:
    assert receivers_for(TABLE.routes, kind, site, state) == expected


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ({"routes": [{"receivers": ["nobody"]}]}, "no receiver 'nobody'"),
        ({"receivers": {"m": {"url": "mailto://gw:hunter22@smtp.example?to=a@b"}}}, "secrets do not go in files"),
        ({"receivers": {"m": {"url": "json://h/x", "url_file": "/x"}}}, "one of them"),
        ({"receivers": {"m": {"url": "json://h/x", "locale": "fr"}}}, "zh-CN, en"),
        ({"routes": [{"kinds": ["fire"], "receivers": []}]}, "'fire' must be one of"),
        ({"timing": {"fever": {"repeat_min": -1}}}, "between 0"),
        ({"retry_first_s": 10, "retry_max_s": 5}, "retry_max_s"),
        ({"colour": "red"}, "notify.colour"),
    ],
)
def test_a_bad_notify_section_is_refused_with_the_reason(notify: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(notify, "test")


def test_the_section_is_read_from_the_file_and_env_secrets_are_not_config(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        '[web]\npublic_url = "https://console.example"\n'
        '[notify.receivers.m]\nurl = "mailtos://gw:${SMTP_PASSWORD}@smtp.example?to=a@b.example"\nlocale = "en"\n'
        '[[notify.routes]]\nreceivers = ["m"]\n'
        "[notify.sites.g7.timing.fever]\nrepeat_min = 5\n"
    )
    env = {"CHECKPOINT_NOTIFY_TOKEN": "not a config key", "SMTP_PASSWORD": "s3cret-pw"}
    cfg = config.load(path, environ=env)
    assert cfg.notify.routes[0].receivers == ("m",)
    assert cfg.notify.timing_for("g7", "fever").repeat_min == 5
    assert cfg.notify.timing_for("g7", "fever").escalate_min == 30
    assert cfg.notify.timing_for("g7", "node_offline").repeat_min == 0
    assert "s3cret-pw" not in repr(config.effective(cfg))
