"""The firmware seen from CPython (this file is not deployed to the ESP32).

On the device the modules sit at the root of the filesystem and import each other flat (`import screening`).
`module(name)` imports one the same way, with firmware/ on sys.path, so the gateway, the simulator and the
tests run the very modules the node runs. It is the one way to load them: `import firmware.screening` (or
`from firmware import screening`) gives the same module object, through the finder installed below, so an
`except SensorError` written against one import catches what the other raises.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DIR = Path(__file__).resolve().parent


def module(name: str) -> ModuleType:
    """The firmware module `name` (a file firmware/NAME.py), imported as the node imports it."""
    if "." in name or not (DIR / f"{name}.py").is_file():
        raise ModuleNotFoundError(f"no firmware module {name!r} in {DIR}", name=name)
    if str(DIR) not in sys.path:
        sys.path.insert(0, str(DIR))
    found = importlib.import_module(name)
    if Path(found.__file__ or "").resolve() != DIR / f"{name}.py":
        raise ImportError(f"{name!r} is already imported from {found.__file__}, not from firmware/", name=name)
    return found


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `firmware.NAME` to `module(NAME)`: the same object under both names, never a second copy."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != __name__ or not name or "." in name or not (DIR / f"{name}.py").is_file():
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        found = module(spec.name.partition(".")[2])
        spec.loader_state = found.__spec__  # the import machinery sets __spec__ on what we return: restored below
        return found

    def exec_module(self, found: ModuleType) -> None:
        alias = found.__spec__
        if alias is not None and alias.loader_state is not None:
            found.__spec__ = alias.loader_state  # executed once already, under its flat name: keep its own spec


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.insert(0, _Alias())
