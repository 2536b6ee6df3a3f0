"""`checkpoint-sim`: the simulator's command line. Each subcommand's parser names its function (`func`).

checkpoint-sim run [--scenario FILE] [--sites N] [--nodes-per-site N] [--rate R] [--duration S] [--speed X] ...
    Posts full of nodes running the real firmware against a real broker and gateway; faults on schedule; a
    summary against ground truth at the end (`--json`: one JSON object as the last line of stdout). sim/run.py.

checkpoint-sim readout [--duration S] [--variant DCI] [--seed N] [--fast]
    A live read-out of a simulated MLX90614 through the real firmware driver while a scripted scene plays:
    the lane is empty, a traveller steps in front, leans back, leaves; a burst of bus noise shows the
    driver's retries and its SensorError; a feverish traveller; the lane empties.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import firmware
from sim import run
from sim.clock import ManualClock, TickSource
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614, VARIANTS

# The firmware's clock and driver (untyped MicroPython modules), loaded the one way.
Clock: Any = firmware.module("clock").Clock
Driver: Any = firmware.module("mlx90614").MLX90614
SensorError: Any = firmware.module("mlx90614").SensorError

READOUT_PERIOD_MS = 250
AMBIENT_C = 15.0  # the sensor sits in the checkpoint booth
WALL_C = 12.0  # what it sees across an empty lane

# (fraction of the run, what happens, scene or fault). Scenes: object_c and fill; faults: (kind, p) or None.
READOUT_SCRIPT: tuple[tuple[float, str, dict[str, Any]], ...] = (
    (0.00, "power-up; empty lane, the sensor sees the far wall", {"object_c": WALL_C}),
    (0.12, "a traveller steps in front (forehead 35.6 C)", {"object_c": 35.6}),
    (0.35, "the traveller leans back: the forehead fills 60% of the view", {"object_c": 35.6, "fill": 0.6}),
    (0.45, "the traveller moves away", {"object_c": WALL_C}),
    (0.55, "interference on the cable: 70% of transfers corrupted", {"fault": ("bus_noise", 0.7)}),
    (0.70, "interference over; a feverish traveller steps in (forehead 37.9 C)", {"object_c": 37.9}),
    (0.90, "the lane is empty again", {"object_c": WALL_C}),
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="checkpoint-sim", description="Fever-screening checkpoint simulator")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_arguments(
        commands.add_parser("run", help="simulate checkpoint posts end to end (broker, gateway, nodes, faults)")
    )
    add_readout(commands)
    return parser


def add_readout(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("readout", help="live read-out of a simulated MLX90614 through the firmware driver")
    p.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="DCI", help="MLX90614 variant (default DCI)")
    p.add_argument("--seed", type=int, default=0, help="seed for the sensor noise and faults")
    p.add_argument("--fast", action="store_true", help="simulated time: no waiting (tests, CI)")
    p.set_defaults(func=_run_readout)


def _run_readout(args: argparse.Namespace) -> int:
    if args.duration <= 0:
        raise SystemExit("checkpoint-sim readout: --duration must be > 0")
    if args.fast:
        manual = ManualClock()
        return readout(args.duration, args.variant, args.seed, sys.stdout, manual, manual.advance)
    real = Clock()
    return readout(args.duration, args.variant, args.seed, sys.stdout, real, lambda ms: time.sleep(ms / 1000))


def readout(
    duration_s: float, variant: str, seed: int, out: TextIO, clock: TickSource, wait_ms: Callable[[int], None]
) -> int:
    """Print one line per 0.25 s of `clock` time; `wait_ms` lets that time pass."""
    chip = MLX90614(clock, variant=variant, seed=seed)
    sensor = Driver(MachineI2C({0x5A: chip}, freq=100_000))
    scene = {"object_c": WALL_C, "fill": 1.0}
    chip.set_scene(ambient_c=AMBIENT_C, **scene)
    out.write(f"MLX90614{variant} at 0x5A, 100 kHz, ambient {AMBIENT_C:.1f} C; one line per 0.25 s\n")
    script = list(READOUT_SCRIPT)
    for step in range(int(duration_s * 1000) // READOUT_PERIOD_MS + 1):
        t_s = step * READOUT_PERIOD_MS / 1000
        while script and script[0][0] * duration_s <= t_s:
            _, what, change = script.pop(0)
            out.write(f"# {t_s:6.2f} s  {what}\n")
            _apply(chip, scene, change)
        out.write(f"{t_s:8.2f} s  {_reading_line(sensor, chip, scene)}\n")
        out.flush()
        wait_ms(READOUT_PERIOD_MS)
    return 0


def _apply(chip: MLX90614, scene: dict[str, float], change: dict[str, Any]) -> None:
    chip.clear()
    fault = change.get("fault")
    if fault is not None:
        chip.inject(fault[0], p=fault[1])
        return
    scene.update(object_c=change["object_c"], fill=change.get("fill", 1.0))
    chip.set_scene(ambient_c=AMBIENT_C, **scene)


def _reading_line(sensor: Any, chip: MLX90614, scene: dict[str, float]) -> str:
    seen = scene["fill"] * scene["object_c"] + (1 - scene["fill"]) * AMBIENT_C
    before = sum(sensor.fault_counts.values())
    try:
        text = f"ambient {sensor.ambient():6.2f} C  object {sensor.object():6.2f} C"
    except SensorError as e:
        text = f"no reading: SensorError({e.reason})".ljust(38)
    retried = sum(sensor.fault_counts.values()) - before
    return f"{text}  (sensor sees {seen:5.2f} C)" + (f"  retries {retried}" if retried else "")
