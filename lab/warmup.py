"""Warm-up at a cold post (issue 17 item 4, with the cold post's thermal model): how long after power-on or a
move the scanner is usable, measured by running the node's own settling check on the simulated sensor.

Each case is a housing of sim/thermal.py (a first-order approach of the MLX90614 package to its target, the
model docs/screening.md "The cold post" describes) at a post in -6 C air. Its package temperature is sampled
every SAMPLE_S as the node samples its sensor and fed to firmware/conditions.py `AmbientWatch`, the code the
node runs: the scanner is usable while its ambient is inside the calibration's range (firmware/calibration.py
`ambient_c`, low end 18 C) and changing slower than conditions.RATE_C_MIN (0.3 C/min over the last minute).
Reported: when it first becomes usable, when it stops being usable (an unheated housing cooling), and what the
node itself shows as its wait one minute after power-on (the number staff read on the display) against the
truth. Run: .venv/bin/python -m lab.warmup
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware import module
from sim.thermal import Housing

SAMPLE_S = 0.02  # the node's sensor sampling (firmware/config.example.json sensor.sample_ms 20)
AIR_C = -6.0  # the reference scene's winter night
HORIZON_S = 3600


@dataclass(frozen=True)
class Case:
    name: str
    housing: Housing


CASES = (
    Case("heated housing 20 C, unit from a warm booth (21 C)", Housing("heated", 20.0, start_c=21.0)),
    Case("heated housing 20 C, unit from an unheated store (10 C)", Housing("heated", 20.0, start_c=10.0)),
    Case("heated housing 20 C, unit from a car at the post (-6 C)", Housing("heated", 20.0, start_c=-6.0)),
    Case("insulated housing, carried out of a warm booth (21 C)", Housing("insulated", start_c=21.0)),
    Case("bare handheld, carried out of a warm booth (21 C)", Housing("exposed", start_c=21.0)),
)


@dataclass(frozen=True)
class Warmup:
    case: str
    usable_from_s: float | None  # first time the node's check passes; None: never within HORIZON_S
    usable_until_s: float | None  # last time it passes, when it stops before HORIZON_S; None: it stays usable
    shown_wait_s: int | None  # what the node displays as its wait 60 s after power-on (None: "move it")
    true_wait_s: float | None  # the truth at that moment (usable_from - 60), None when it never is


def measure(case: Case, lo_c: float = 18.0, hi_c: float = 30.0) -> Warmup:
    conditions = module("conditions")
    watch = conditions.AmbientWatch()
    diff = lambda a, b: a - b  # noqa: E731 - the node's ticks_diff on plain milliseconds
    usable: list[float] = []
    shown = None
    steps = int(HORIZON_S / SAMPLE_S)
    for i in range(steps + 1):
        t = i * SAMPLE_S
        ambient = case.housing.sensor_c(t, AIR_C)
        watch.feed(int(t * 1000), ambient, diff)
        rate = watch.rate(diff)
        if rate is not None and not watch.unsettled(diff) and lo_c <= ambient <= hi_c:
            usable.append(t)
        if i == int(60 / SAMPLE_S):
            shown = watch.wait_s(lo_c, diff)
    first = usable[0] if usable else None
    stops = bool(usable) and usable[-1] < HORIZON_S - 1
    true_wait = None if first is None else max(0.0, first - 60)
    return Warmup(case.name, first, usable[-1] if stops else None, shown, true_wait)


def _min(s: float | None, never: str) -> str:
    return never if s is None else f"{s / 60:.1f} min"


def table(rows: list[Warmup]) -> str:
    """A Markdown table of the figures (docs/firmware.md, "Housing and warm-up in the cold")."""
    out = ["| at -6 C air | usable after | usable until | the node shows at 1 min | truth at 1 min |",
           "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        shown = "move it somewhere warmer" if r.shown_wait_s is None else f"wait {r.shown_wait_s} s"
        truth = "never usable here" if r.true_wait_s is None else f"{r.true_wait_s:.0f} s"
        until = "-" if r.usable_from_s is None else _min(r.usable_until_s, "stays usable")
        out.append(f"| {r.case} | {_min(r.usable_from_s, 'never')} | {until} |"
                   f" {shown} | {truth} |")  # fmt: skip
    return "\n".join(out)


def main() -> int:
    print(f"warm-up at {AIR_C:+.0f} C air, the node's own check (firmware/conditions.py) on sim/thermal.py:")
    print(table([measure(c) for c in CASES]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
