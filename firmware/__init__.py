"""The firmware seen from CPython (this file is not deployed to the ESP32).

On the device the modules sit at the root of the filesystem and import each other flat (`import screening`).
`module(name)` imports one the same way, with firmware/ on sys.path, so the gateway, the simulator and the
tests run the very modules the node runs.
"""

import importlib
import sys
from pathlib import Path
from types import ModuleType

DIR = Path(__file__).resolve().parent


def module(name: str) -> ModuleType:
    if str(DIR) not in sys.path:
        sys.path.insert(0, str(DIR))
    return importlib.import_module(name)
