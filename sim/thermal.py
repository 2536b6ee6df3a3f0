"""The scanner's own thermal state at a post: what its sensor's ambient (the die) does, and the error it causes.

A handheld or kiosk scanner's MLX90614 reads its own package temperature as "ambient" and compensates the object
reading with it. At a winter post the package is wherever the scanner is kept (docs/screening.md, "The cold
post"):
- `heated`: a heated housing or booth held at `housing_c`; the package approaches it with `tau_s`.
- `insulated`: an insulated housing in the post's air: the package approaches the air slowly (`tau_s`, long).
- `exposed`: left out in the air: it approaches the air with `tau_s` (a plastic handheld: minutes).
Each starts at `start_c` (carried out from a heated booth: about 21 C) and follows a first-order approach:
  T(t) = target + (start - target) exp(-t / tau).
A package whose temperature changes is not isothermal; the MLX90614 datasheet's accuracy holds only in thermal
equilibrium and its application notes warn that gradients across the package give object readings off by
degrees. The size is not in the datasheet: here the object reading is off by GRADIENT_C_PER_C_MIN C per C/min
of the package's rate of change (an assumption, signed: a package cooling reads low, the dangerous direction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOUSINGS = ("heated", "insulated", "exposed")
GRADIENT_C_PER_C_MIN = 0.5  # assumed; docs/screening.md, "The cold post"
DEFAULT_TAU_S = {"heated": 300.0, "insulated": 5400.0, "exposed": 300.0}


@dataclass(frozen=True)
class Housing:
    kind: str = "heated"
    housing_c: float = 20.0  # a heated housing's set point
    start_c: float | None = None  # the package at power-on (None: already at its target)
    tau_s: float | None = None  # None: DEFAULT_TAU_S[kind]

    def target_c(self, air_c: float) -> float:
        return self.housing_c if self.kind == "heated" else air_c

    def _tau(self) -> float:
        return self.tau_s if self.tau_s is not None else DEFAULT_TAU_S[self.kind]

    def sensor_c(self, t_s: float, air_c: float) -> float:
        """The package temperature `t_s` seconds after power-on at a post in `air_c` air."""
        target = self.target_c(air_c)
        start = target if self.start_c is None else self.start_c
        return target + (start - target) * math.exp(-max(0.0, t_s) / self._tau())

    def rate_c_min(self, t_s: float, air_c: float) -> float:
        """The package's rate of change, C per minute (the truth the node estimates)."""
        target = self.target_c(air_c)
        start = target if self.start_c is None else self.start_c
        return -(start - target) / self._tau() * 60 * math.exp(-max(0.0, t_s) / self._tau())

    def error_c(self, t_s: float, air_c: float) -> float:
        """How far off the object reading is for the package's gradient (C; + reads high)."""
        return GRADIENT_C_PER_C_MIN * self.rate_c_min(t_s, air_c)
