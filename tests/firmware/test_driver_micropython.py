"""firmware/mlx90614.py on the real MicroPython interpreter (unix port, ESP32-sized heap).

The simulated chip runs in CPython; its bus transfers are recorded and replayed, byte for byte, by a tiny
test-only I2C stand-in written in MicroPython. This shows (1) the driver makes the same decisions under
MicroPython as under CPython (values, retries, named errors), and (2) its read path allocates nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from firmware import module
from sim.clock import ManualClock
from sim.i2c import MachineI2C, WritableBuffer
from sim.mlx90614 import MLX90614 as Chip
from testkit.micropython import micropython_command

MLX90614 = module("mlx90614").MLX90614
SensorError = module("mlx90614").SensorError
ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = micropython_command("112k")
READS = 1000

REPLAY_AND_MEASURE = """
import gc, json, sys
sys.path.insert(0, {firmware!r})
from mlx90614 import MLX90614, SensorError
from transcript import PARITY_CMDS, PARITY_DATA, PARITY_OPS, HEAP_CMDS, HEAP_DATA


class ReplayI2C:
    # Answers readfrom_mem_into with the next recorded 3 bytes; counts commands that differ from the record.
    def __init__(self, cmds, data):
        self.cmds = cmds
        self.data = data
        self.i = 0
        self.mismatches = 0

    def readfrom_mem_into(self, addr, cmd, buf):
        i = self.i
        if addr != 0x5A or cmd != self.cmds[i]:
            self.mismatches += 1
        j = i * 3
        d = self.data
        buf[0] = d[j]
        buf[1] = d[j + 1]
        buf[2] = d[j + 2]
        self.i = i + 1


def parity():
    bus = ReplayI2C(PARITY_CMDS, PARITY_DATA)
    sensor = MLX90614(bus, retries=3)
    out = []
    for op in PARITY_OPS:
        try:
            out.append(sensor.ambient_raw() if op == 0x61 else sensor.object_raw())
        except SensorError as e:
            out.append("E:" + e.reason)
    return out, bus.i, bus.mismatches


def heap(sensor, n, as_float):
    gc.collect()
    gc.disable()
    before = gc.mem_free()
    i = 0
    total = 0
    if as_float:
        while i < n:
            sensor.object()
            i += 1
    else:
        while i < n:
            total += sensor.object_raw()
            i += 1
    grown = before - gc.mem_free()
    gc.enable()
    return grown, total


outcomes, transfers, mismatches = parity()
bus = ReplayI2C(HEAP_CMDS, HEAP_DATA)
sensor = MLX90614(bus, retries=3)
sensor.object_raw()  # first call: let any lazy interning happen before measuring
raw_growth, raw_total = heap(sensor, {reads}, False)
float_growth, _ = heap(sensor, {reads}, True)
print(json.dumps({{"outcomes": outcomes, "transfers": transfers, "mismatches": mismatches,
                  "raw_growth": raw_growth, "raw_total": raw_total, "float_growth": float_growth,
                  "mem_free": gc.mem_free()}}))
"""


class RecordingI2C(MachineI2C):
    """A machine.I2C that keeps every successful Read Word transfer (command and the 3 bytes received)."""

    def __init__(self, chip: Chip) -> None:
        super().__init__({0x5A: chip})
        self.cmds = bytearray()
        self.data = bytearray()

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: WritableBuffer, *, addrsize: int = 8) -> None:
        super().readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
        self.cmds.append(memaddr)
        self.data += bytes(buf)


def record_parity_run() -> tuple[RecordingI2C, bytes, list[int | str]]:
    """400 reads under 30% bus noise, an 0xFFFF burst and an error-flag episode, decided by CPython."""
    clock = ManualClock()
    chip = Chip(clock, variant="DCI", seed=1)
    chip.set_scene(object_c=36.4, ambient_c=18.0)
    clock.advance(5_000)
    bus = RecordingI2C(chip)
    sensor = MLX90614(bus, retries=3)
    chip.inject("bus_noise", p=0.3)
    ops = bytes(b"ao"[i % 2] for i in range(400))
    outcomes: list[int | str] = []
    for i, op in enumerate(ops):
        if i == 100:
            chip.inject("ffff_burst", n=6)
        if i in (200, 210):
            (chip.inject if i == 200 else chip.clear)("error_flag")
        try:
            outcomes.append(sensor.ambient_raw() if op == ord("a") else sensor.object_raw())
        except SensorError as e:
            outcomes.append("E:" + e.reason)
        clock.advance(20)
    return bus, ops, outcomes


def record_clean_reads() -> RecordingI2C:
    clock = ManualClock()
    chip = Chip(clock, variant="DCI", seed=2)
    chip.set_scene(object_c=36.4, ambient_c=18.0)
    clock.advance(5_000)
    bus = RecordingI2C(chip)
    sensor = MLX90614(bus)
    for _ in range(1 + 2 * READS):
        sensor.object_raw()
        clock.advance(10)
    return bus


def test_driver_under_micropython_matches_cpython_and_reads_without_allocating(tmp_path: Path) -> None:
    parity_bus, ops, expected = record_parity_run()
    heap_bus = record_clean_reads()
    (tmp_path / "transcript.py").write_text(
        f"PARITY_CMDS = {bytes(parity_bus.cmds)!r}\nPARITY_DATA = {bytes(parity_bus.data)!r}\n"
        f"PARITY_OPS = {ops!r}\nHEAP_CMDS = {bytes(heap_bus.cmds)!r}\nHEAP_DATA = {bytes(heap_bus.data)!r}\n"
    )
    script = tmp_path / "replay.py"
    script.write_text(REPLAY_AND_MEASURE.format(firmware=str(ROOT / "firmware"), reads=READS))
    run = subprocess.run(
        [*MICROPYTHON, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert result["outcomes"] == expected
    assert result["transfers"] == len(parity_bus.cmds) and result["mismatches"] == 0
    reasons = {o for o in expected if isinstance(o, str)}
    assert {"E:pec", "E:invalid_ffff", "E:error_flag"} <= reasons  # the error paths ran too

    raws = [heap_bus.data[3 * i] | heap_bus.data[3 * i + 1] << 8 for i in range(1, 1 + READS)]
    assert result["raw_total"] == sum(raws)
    assert result["raw_growth"] == 0, f"read path allocated {result['raw_growth']} bytes in {READS} reads"
    # A float result is one boxed object per call on MicroPython; nothing else may be allocated.
    assert 0 < result["float_growth"] <= 32 * READS
    per_float = result["float_growth"] / READS
    print(f"MicroPython heap growth: raw reads 0 B in {READS}, float reads {per_float:.0f} B/read")
