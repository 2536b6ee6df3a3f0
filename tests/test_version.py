"""The version is written in one place, firmware/version.py: the package metadata and the gateway read it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import firmware
import gateway

REPO = Path(__file__).resolve().parents[1]


def test_the_package_and_the_gateway_take_the_firmware_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "firmware.version.FW"}
    fw = firmware.module("version").FW
    assert gateway.__version__ == fw
    assert fw.count(".") == 2 and all(part.isdigit() for part in fw.split("."))
