"""firmware/vl53l0x.py and the distance gate (firmware/distance.py) on the real MicroPython interpreter.

As tests/firmware/test_driver_micropython.py does for the MLX90614: the simulated VL53L0X runs in CPython, the
gate's bus transfers are recorded there and replayed byte for byte by a test-only I2C stand-in written in
MicroPython. The gate must make the same decisions under MicroPython (every distance, every status, every
too_far, the bus errors of an unplugged sensor), its polling must allocate nothing, and the heap the two
modules take, compiled to .mpy as the node loads them, is measured (the driver is imported only when config
sensor.distance names a sensor; distance.py always, by scanner.py).
"""

from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path
from typing import Any

from firmware import module
from sim.clock import ManualClock
from sim.i2c import MachineI2C, ReadableBuffer, WritableBuffer
from sim.vl53l0x import VL53L0X as Chip
from testkit.micropython import compile_firmware, micropython_command

distance = module("distance")
vl53l0x = module("vl53l0x")
MICROPYTHON = micropython_command("112k")
POLLS = 300

REPLAY = """
import gc, json, sys
sys.path.insert(0, {firmware!r})
with open("program.txt") as f:
    PROGRAM = f.read()
with open("ops.bin", "rb") as f:
    OPS = f.read()
with open("heap_ops.bin", "rb") as f:
    HEAP_OPS = f.read()
import contract  # loaded on the node whatever its config
gc.collect()
free0 = gc.mem_free()
import distance
gc.collect()
free_d = gc.mem_free()
import vl53l0x
gc.collect()
free1 = gc.mem_free()


class ReplayI2C:
    # Answers reads with the recorded bytes, raises the recorded bus errors, counts transfers that differ.
    # The record: per transfer kind (r/w), register, errno (0: none), length, the bytes.
    def __init__(self, ops):
        self.ops = ops
        self.at = 0
        self.i = 0
        self.mismatches = 0

    def _next(self, kind, reg, n):
        o, at = self.ops, self.at
        err, m = o[at + 2], o[at + 3]
        if o[at] != kind or o[at + 1] != reg or (not err and m != n):
            self.mismatches += 1
        self.at = at + 4 + m
        self.i += 1
        if err:
            raise OSError(err)
        return at + 4

    def readfrom_mem_into(self, addr, reg, buf):
        j = self._next(114, reg, len(buf))
        i = 0
        while i < len(buf):
            buf[i] = self.ops[j + i]
            i += 1

    def writeto_mem(self, addr, reg, buf):
        j = self._next(119, reg, len(buf))
        i = 0
        while i < len(buf):
            if buf[i] != self.ops[j + i]:
                self.mismatches += 1
            i += 1


def run(program, bus):
    gate = distance.Gate(vl53l0x.VL53L0X(bus), 30, 73)
    out = []
    for op in program:
        if op == "s":
            gate.start()
        elif op == "f":
            out.append(gate.flag())
        else:
            gate.poll()
            out.append([gate.last, gate.n, gate.inside, gate.errors])
    return out


bus = ReplayI2C(OPS)
outcomes = run(PROGRAM, bus)
heap_bus = ReplayI2C(HEAP_OPS)
gc.collect()
free_gate = gc.mem_free()
gate = distance.Gate(vl53l0x.VL53L0X(heap_bus), 30, 73)
gate.poll()
gate.poll()
gc.collect()
free2 = gc.mem_free()


def polls(gate, n):
    gc.collect()
    gc.disable()
    before = gc.mem_free()
    i = 0
    while i < n:
        gate.poll()
        i += 1
    grown = before - gc.mem_free()
    gc.enable()
    return grown


grown = polls(gate, {polls})
print(json.dumps({{"outcomes": outcomes, "transfers": bus.i, "mismatches": bus.mismatches + heap_bus.mismatches,
                  "distance_bytes": free0 - free_d, "driver_bytes": free_d - free1,
                  "gate_bytes": free_gate - free2, "poll_growth": grown,
                  "heap_transfers": heap_bus.i, "last": gate.last}}))
"""

Op = tuple[str, int, bytes | None, int]


def encode(ops: list[Op]) -> bytes:
    """The record as the replay reads it: per transfer kind, register, errno, length, the bytes."""
    out = bytearray()
    for kind, reg, data, err in ops:
        body = data or b""
        out += bytes((ord(kind), reg, err, len(body))) + body
    return bytes(out)


class RecordingI2C(MachineI2C):
    """A machine.I2C that keeps every transfer the driver makes: reads with their bytes, writes, bus errors."""

    def __init__(self, chip: Chip) -> None:
        super().__init__({0x29: chip})
        self.ops: list[Op] = []

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: WritableBuffer, *, addrsize: int = 8) -> None:
        try:
            super().readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
        except OSError as e:
            self.ops.append(("r", memaddr, None, e.errno or errno.EIO))
            raise
        self.ops.append(("r", memaddr, bytes(buf), 0))

    def writeto_mem(self, addr: int, memaddr: int, buf: ReadableBuffer, *, addrsize: int = 8) -> None:
        try:
            super().writeto_mem(addr, memaddr, buf, addrsize=addrsize)
        except OSError as e:
            self.ops.append(("w", memaddr, None, e.errno or errno.EIO))
            raise
        self.ops.append(("w", memaddr, bytes(buf), 0))


# (ms from the start, distance or fault): a traveller inside, one leaning back, nobody, the sensor unplugged.
EPISODES: list[tuple[int, Any]] = [(0, 55.0), (700, 84.0), (1400, None), (2100, "no_device"), (2500, 60.0)]


def record() -> tuple[RecordingI2C, str, list[Any]]:
    clock = ManualClock()
    chip = Chip(clock, seed=4)
    bus = RecordingI2C(chip)
    gate = distance.Gate(vl53l0x.VL53L0X(bus), 30, 73)
    program, outcomes = [], []
    episodes = list(EPISODES)
    for step in range(150):
        now = step * 20
        if episodes and now >= episodes[0][0]:
            if step:
                program.append("f")  # the verdict on the episode that ends here
                outcomes.append(gate.flag())
            what = episodes.pop(0)[1]
            chip.clear()
            chip.inject(what) if what == "no_device" else chip.set_target(what)
            program.append("s")
            gate.start()
        program.append("p")
        gate.poll()
        outcomes.append([gate.last, gate.n, gate.inside, gate.errors])
        clock.advance(20)
    program.append("f")
    outcomes.append(gate.flag())
    return bus, "".join(program), outcomes


def record_clean() -> RecordingI2C:
    clock = ManualClock()
    chip = Chip(clock, seed=5)
    chip.set_target(62.0)
    bus = RecordingI2C(chip)
    gate = distance.Gate(vl53l0x.VL53L0X(bus), 30, 73)
    for _ in range(2 + POLLS):
        gate.poll()
        clock.advance(20)
    return bus


def test_gate_under_micropython_matches_cpython_and_polls_without_allocating(tmp_path: Path) -> None:
    bus, program, expected = record()
    heap_bus = record_clean()
    (tmp_path / "program.txt").write_text(program)
    (tmp_path / "ops.bin").write_bytes(encode(bus.ops))
    (tmp_path / "heap_ops.bin").write_bytes(encode(heap_bus.ops))
    (tmp_path / "replay.py").write_text(REPLAY.format(firmware=str(compile_firmware()), polls=POLLS))
    run = subprocess.run(
        [*MICROPYTHON, "replay.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr + run.stdout
    result = json.loads(run.stdout.strip().splitlines()[-1])

    assert result["outcomes"] == expected
    assert result["transfers"] == len(bus.ops) and result["mismatches"] == 0
    assert result["heap_transfers"] == len(heap_bus.ops)
    flags = [o for o in expected if not isinstance(o, list)]
    assert flags == [None, "too_far", "too_far", "too_far", None]  # inside, leaning back, nobody, unplugged, back
    assert max(o[3] for o in expected if isinstance(o, list)) > 0  # the unplugged sensor's errors were replayed
    assert result["poll_growth"] == 0, f"polling allocated {result['poll_growth']} bytes in {POLLS} polls"
    assert result["distance_bytes"] + result["driver_bytes"] + result["gate_bytes"] < 16_000  # 64-bit port
    print(
        f"MicroPython heap (64-bit unix port, .mpy): distance.py {result['distance_bytes']} B, vl53l0x.py "
        f"{result['driver_bytes']} B, one gate {result['gate_bytes']} B, polling 0 B in {POLLS}"
    )
