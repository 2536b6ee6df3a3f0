"""The layers hold: every firmware file is loaded once (one loader), and the product never imports test support.

Product: firmware/, gateway/, sim/, lab/. Test support: testkit/ (and tests/). Each check imports every module of the
product in a fresh interpreter, so what this test process already imported cannot hide a problem.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import firmware

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("firmware", "gateway", "sim", "lab")
# Firmware modules CPython cannot import: the ESP32 board (machine, network) and the entry point (runs the node).
DEVICE_ONLY = {"board", "main"}

IMPORT_ALL = """
import importlib, json, pkgutil, sys
import firmware
from pathlib import Path

for name in sorted(p.stem for p in firmware.DIR.glob("*.py") if p.stem not in ("__init__", *{device_only!r})):
    firmware.module(name)
    importlib.import_module("firmware." + name)
for package in ("gateway", "sim", "lab"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".mp." not in info.name and not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
print(json.dumps({{name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}}))
"""


def imported_by_the_product() -> dict[str, str | None]:
    """Every module in sys.modules (name -> file) after importing all of the product in a fresh interpreter."""
    code = IMPORT_ALL.format(device_only=tuple(sorted(DEVICE_ONLY)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    modules: dict[str, str | None] = json.loads(out.stdout.strip().splitlines()[-1])
    return modules


def test_every_firmware_file_is_one_module_object() -> None:
    modules = imported_by_the_product()
    by_file: dict[str, set[str]] = {}
    for name, file in modules.items():
        if file and Path(file).resolve().parent == firmware.DIR and Path(file).name != "__init__.py":
            by_file.setdefault(str(Path(file).resolve()), set()).add(name)
    assert len(by_file) >= 10, f"expected the firmware's modules, found {sorted(by_file)}"
    # Imported under two names is fine (mlx90614 and firmware.mlx90614) only if both are the same object.
    for file, names in by_file.items():
        assert names <= {Path(file).stem, f"firmware.{Path(file).stem}"}, (file, names)
    same = """
import firmware, sys
from pathlib import Path
for name in sorted(sys.argv[1:]):
    flat = firmware.module(name)
    dotted = __import__("firmware." + name, fromlist=["_"])
    assert flat is dotted, name
    assert [m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == flat.__file__] == [flat] * 2
"""
    stems = sorted(Path(f).stem for f in by_file)
    out = subprocess.run([sys.executable, "-c", same, *stems], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr


def test_an_except_written_against_one_import_catches_the_other() -> None:
    import firmware.mlx90614  # the dotted import, as a stray line would write it

    assert firmware.module("mlx90614").SensorError is firmware.mlx90614.SensorError
    assert sys.modules["firmware.mlx90614"] is sys.modules["mlx90614"]


def test_the_loader_refuses_what_is_not_a_firmware_module() -> None:
    for name in ("os", "gateway", "nonexistent", "mlx90614.x"):
        try:
            firmware.module(name)
        except ModuleNotFoundError:
            continue
        raise AssertionError(f"firmware.module({name!r}) loaded something")


def product_files() -> list[Path]:
    return [p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_no_product_source_imports_test_support() -> None:
    files = product_files()
    assert len(files) > 40
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in imports_of(p) if n.split(".")[0] in ("testkit", "tests"))
        for p in files
    }
    assert {f: n for f, n in offenders.items() if n} == {}


def test_importing_the_whole_product_loads_no_test_support() -> None:
    loaded = [name for name in imported_by_the_product() if name.split(".")[0] in ("testkit", "tests", "pytest")]
    assert loaded == []
