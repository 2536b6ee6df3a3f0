"""`make demo` runs unattended to the end with a duration, sets itself up, and can run twice."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_demo(duration: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "demo", f"DURATION={duration}"], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_make_demo_runs_to_completion_twice() -> None:
    for _ in range(2):
        out = make_demo(24)
        assert out.returncode == 0, f"make demo failed:\n{out.stdout}\n{out.stderr}"
        assert re.search(r"lost \(must be 0\)\s+0$", out.stdout, re.M), out.stdout
        assert re.search(r"stored twice \(must be 0\)\s+0$", out.stdout, re.M), out.stdout
        made = int(re.search(r"scans made by nodes\s+(\d+)", out.stdout).group(1))  # type: ignore[union-attr]
        assert made > 0
        # Where to look: the alerts topic, the report command, the files.
        assert "mosquitto_sub" in out.stderr and "checkpoint/v1/alerts/#" in out.stderr
        assert "checkpoint-gateway report --db sqlite:///var/demo/gateway.db --day " in out.stdout
        assert "fault: wifi_drop on tollgate-room-1" in out.stderr
        # The cold post (issue 14): vehicles at the bridge with the scanner kept in range get verdicts.
        bridge = re.search(r"at bridge-north: definitive_share ([\d.]+), normal_outside_conditions (\d+)", out.stdout)
        assert bridge is not None, out.stdout
        assert float(bridge.group(1)) >= 0.90 and int(bridge.group(2)) == 0
