"""deploy/systemd: each unit passes `systemd-analyze verify` (its only complaint here: the install path
/opt/checkpoint does not exist on a test machine), runs as the unprivileged user, restarts, and is hardened."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "deploy" / "systemd").glob("*.service"))
REQUIRED = (
    "User=checkpoint", "Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
    "PrivateTmp=yes", "CapabilityBoundingSet=", "ReadWritePaths=/var/lib/checkpoint", "TimeoutStopSec=",
)  # fmt: skip


def test_there_is_a_unit_for_the_gateway_the_console_and_the_notifier() -> None:
    commands = {
        u.name: next(line for line in u.read_text().splitlines() if line.startswith("ExecStart=")) for u in UNITS
    }
    assert {c.rsplit(" ", 1)[-1] for c in commands.values()} == {"run", "web", "notify"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_each_unit_is_hardened_and_verifies(unit: Path) -> None:
    text = unit.read_text()
    assert [k for k in REQUIRED if k not in text] == []
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in done.stderr.splitlines() if line and "is not executable" not in line]
    assert complaints == []
