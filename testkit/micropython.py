"""The real MicroPython interpreter for tests: its command with a heap budget, and the node firmware run under
it with its hardware bridged to a HostBoard (sim/host/bridge.py).

    board = HostBoard(FollowerClock(), root, {0x5A: chip})
    with MicroPythonNode(board, node_dir, cfg, speed=20) as node:
        node.wait_for(lambda line: line.startswith("heap"), timeout=60)

The node's filesystem is `node_dir` (config.json written from `cfg`, boot.txt, outbox/). The interpreter runs
with the ESP32's heap budget (ESP32_HEAP); its stdout lines are collected in `lines`.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import firmware
from sim import process
from sim.host.board import HostBoard
from sim.host.bridge import BridgeServer

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = firmware.DIR
HOST_MP = REPO / "sim" / "host" / "mp"
RUNNER = HOST_MP / "run_node.py"
BUILD = REPO / "build" / "host-mpy"
# The ESP32's heap budget (about 110 KiB, no PSRAM) in MicroPython's word-scaled form: "112wk" is 112 KiB on a
# 32-bit port and 224 KiB here on the 64-bit unix port, where every object and pointer is twice as wide. The
# same number of objects fits as on the device. (A literal 112k here holds half of what the ESP32 holds: the
# firmware's code alone takes about 95 KB of it; see docs/firmware.md.)
ESP32_HEAP = "112wk"


class NodeError(RuntimeError):
    """The MicroPython node did not do what was waited for."""


def micropython_command(heap: str = "112k") -> list[str]:
    """The real MicroPython interpreter (the venv's, else PATH's) with a heap budget, as a command list."""
    return [_tool("micropython"), "-X", f"heapsize={heap}"]


def interpreters(heap: str = "112k") -> dict[str, list[str]]:
    """The two interpreters a firmware test program runs under, by name: the real MicroPython with a heap
    budget, and this CPython."""
    return {"micropython": micropython_command(heap), "cpython": [sys.executable]}


def _tool(name: str) -> str:
    venv = REPO / ".venv" / "bin" / name
    return str(venv) if venv.exists() else (shutil.which(name) or name)


def compile_firmware(sources: tuple[Path, ...] = (FIRMWARE, HOST_MP)) -> Path:
    """The firmware compiled to .mpy for this host, as the ESP32 runs it (compiling source at import time
    would not fit the heap). The ESP32 board.py is left out: mp/board.py replaces it. Cached by content under
    build/host-mpy/."""
    files = sorted(
        f
        for d in sources
        for f in d.glob("*.py")
        if f.name not in ("__init__.py", "main.py", "run_node.py") and not (d == FIRMWARE and f.name == "board.py")
    )
    digest = hashlib.sha1()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    out = BUILD / digest.hexdigest()[:16]
    if not (out / "done").exists():
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            subprocess.run([_tool("mpy-cross"), "-o", str(out / (f.stem + ".mpy")), str(f)], check=True)
        (out / "done").write_text("\n".join(f.name for f in files))
    return out


class MicroPythonNode:
    def __init__(
        self,
        board: HostBoard,
        node_dir: Path,
        cfg: dict[str, Any] | None,
        speed: int = 20,
        heap: str = ESP32_HEAP,
        config_text: str | None = None,
    ) -> None:
        self.board = board
        self.dir = Path(node_dir)
        self.speed = speed
        self.heap = heap
        self.cfg = cfg
        self._config_text = config_text
        self.bridge = BridgeServer(board)
        full, _ = firmware.module("config").validate(cfg) if cfg is not None else (None, None)
        self.bridge.configure(full)  # pin numbers -> names, as the firmware will read its config
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> MicroPythonNode:
        self.dir.mkdir(parents=True, exist_ok=True)
        text = self._config_text if self._config_text is not None else json.dumps(self.cfg)
        (self.dir / "config.json").write_text(text)
        self.bridge.start()
        env = dict(os.environ, CHECKPOINT_BRIDGE_PORT=str(self.bridge.port), CHECKPOINT_SPEED=str(self.speed))
        self.proc = subprocess.Popen(
            [*micropython_command(self.heap), str(RUNNER), str(compile_firmware()), str(self.dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._pump, name="mp-stdout", daemon=True).start()
        return self

    def _pump(self) -> None:
        if self.proc is None or self.proc.stdout is None:
            raise NodeError("not started")
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._new.put(line)
        self._new.put("")  # EOF marker: the process ended

    def wait_for(self, match: Callable[[str], bool], timeout: float) -> str:
        """The first new stdout line that matches; NodeError on timeout or if the interpreter exits first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NodeError(f"no matching line within {timeout} s; last lines: {self.lines[-15:]}")
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                continue
            if line == "" and self.proc is not None and self.proc.poll() is not None:
                raise NodeError(f"micropython exited ({self.proc.returncode}); last lines: {self.lines[-15:]}")
            if match(line):
                return line

    def wait_exit(self, timeout: float) -> int:
        if self.proc is None:
            raise NodeError("not started")
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        process.stop(self.proc)
        self.bridge.close()

    def __enter__(self) -> MicroPythonNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
