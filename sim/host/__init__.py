"""Hardware for the host: the boards that let the real firmware run here with sim/ supplying the hardware.

- `board.HostBoard`: the firmware board interface (firmware/board.py) over simulated parts, for CPython
  (the simulator runs firmware/app.py in-process with it) and as the far end of the bridge.
- `bridge.BridgeServer`: serves a HostBoard over a local TCP socket to `mp/board.py`, the board module the
  real MicroPython interpreter imports instead of the ESP32 one.
- `node.MicroPythonNode`: runs the firmware under `micropython -X heapsize=112wk` (the ESP32 budget, word-scaled)
  with that bridge; `micropython_command(heap)` is the interpreter command every MicroPython test uses.
- `lane.Lane`: travellers stepping in front of the sensor, one after another, as staff see verdicts.
- `gateway_stub.ReceiptingGateway`: a paho client that plays the gateway's receipts for firmware tests.
"""

import shutil
from pathlib import Path

from firmware import DIR as FIRMWARE_DIR
from firmware import module as firmware_module

__all__ = ["FIRMWARE_DIR", "firmware_module", "micropython_command"]
REPO = Path(__file__).resolve().parents[2]


def micropython_command(heap: str = "112k") -> list[str]:
    """The real MicroPython interpreter (the venv's, else PATH's) with a heap budget, as a command list."""
    venv = REPO / ".venv" / "bin" / "micropython"
    binary = str(venv) if venv.exists() else (shutil.which("micropython") or "micropython")
    return [binary, "-X", f"heapsize={heap}"]
