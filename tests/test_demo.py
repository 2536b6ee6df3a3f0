"""`make demo` runs unattended to the end with a duration, sets itself up, and can run twice; the console it
starts answers, and the notifier's messages reach the webhook receiver it starts (sim/demo.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_demo(duration: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "demo", f"DURATION={duration}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        stdin=subprocess.DEVNULL,  # not a terminal: the console is not kept up after the summary
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
        # The console and the notifier (issues 12 and 13): the demo drains the notifier's outbox (waiting for it,
        # not for time) and asks the console's API, as its medic, what is on the board, before it stops them.
        assert re.search(r"^demo: console: http://127\.0\.0\.1:\d+/ \(log in as demo-medic", out.stdout, re.M)
        board = re.search(r"answered: demo-medic's board has (\d+) open and (\d+) closed alerts", out.stdout)
        assert board is not None, out.stdout
        assert int(board.group(2)) >= 1  # the fevers the simulated medic resolved
        sent = re.search(r"notifications:\s+(\d+) received by the webhook receiver$", out.stdout, re.M)
        assert sent is not None and int(sent.group(1)) > 0, out.stdout
        # Printed as they arrived, in Chinese (medics) and English (the short form).
        assert re.search(r"^\[webhook .+\] to medics-zh: fever at \S+, node \S+$", out.stderr, re.M), out.stderr
        assert "    读数: 红外估算体温" in out.stderr and "re-check with a thermometer" in out.stderr
