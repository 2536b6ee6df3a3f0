"""The running gateway never loads the screening lab: after importing every gateway module in a fresh
interpreter, no `lab` module and none of the lab's numeric or plotting libraries is in sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("lab", "numpy", "matplotlib")

# Runs in a fresh interpreter (this test process has the lab loaded through the other lab tests).
PROBE = """
import json, pkgutil, importlib, sys
import gateway
names = [m.name for m in pkgutil.walk_packages(gateway.__path__, "gateway.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(json.dumps({{"imported": names, "loaded": loaded}}))
"""


def test_no_gateway_module_loads_the_lab_or_its_libraries() -> None:
    probe = PROBE.format(forbidden=FORBIDDEN)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert {"gateway.cli", "gateway.service", "gateway.screening"} <= set(result["imported"])
    assert result["loaded"] == []


def test_the_probe_sees_the_lab_when_it_is_loaded() -> None:
    """The same probe, with the lab imported first, reports it: the check above can fail."""
    probe = "import lab.docs\n" + PROBE.format(forbidden=FORBIDDEN)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lab.evaluate" in json.loads(done.stdout)["loaded"]
