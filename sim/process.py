"""Child processes of the simulator and the tests (Mosquitto, MicroPython nodes): stopped the same way."""

from __future__ import annotations

import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; reaps it either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
