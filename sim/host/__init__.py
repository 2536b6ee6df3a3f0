"""Hardware for the host: the boards that let the real firmware run here with sim/ supplying the hardware.

- `board.HostBoard`: the firmware board interface (firmware/board.py) over simulated parts, for CPython
  (the simulator runs firmware/app.py in-process with it) and as the far end of the bridge.
- `bridge.BridgeServer`: serves a HostBoard over a local TCP socket to `mp/board.py`, the board module the
  real MicroPython interpreter imports instead of the ESP32 one.
- `node.MicroPythonNode`: runs the firmware under `micropython -X heapsize=112k` with that bridge.
- `lane.Lane`: travellers stepping in front of the sensor, one after another, as staff see verdicts.
- `gateway_stub.ReceiptingGateway`: a paho client that plays the gateway's receipts for firmware tests.
"""

import importlib
import sys
from pathlib import Path
from types import ModuleType

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"


def firmware_module(name: str) -> ModuleType:
    """A firmware module imported the way the device imports it: flat (`import scan`), firmware/ on sys.path."""
    if str(FIRMWARE_DIR) not in sys.path:
        sys.path.insert(0, str(FIRMWARE_DIR))
    return importlib.import_module(name)
