"""Traveller physiology for the simulator: core and oral temperature, and the site temperature a sensor sees.

Healthy oral temperature ~ N(36.89, 0.31) cut at 37.5 C and fevers 37.5 C + exponential (mean 0.62 C)
come from the FDA facial/oral data (group 1, round 1: non-febrile oral 36.87 +- 0.29 C; 44 febrile subjects,
mean excess 0.62 C, up to 40.3 C; docs/domain.md §5). A traveller is
febrile when oral >= 37.5 C (the FDA study's EBT): `fever_prevalence` is exactly the febrile share.
Core is oral + 0.4 C (assumption: oral reads a few tenths below core; docs/domain.md gives no figure).

Site temperature in thermal equilibrium (the forehead peak `T_FH_Max` or inner-canthus peak `canthiMax` a
thermal camera reports) is a regression on oral and ambient fitted on the same data, plus a per-traveller
deviation (split normal: the forehead's long cold tail) and a per-scan noise (the share of variance that
changed between a subject's rounds, 13 % forehead and 10 % canthus). Forehead and canthus deviations of one
traveller correlate (0.40 in the data); fevers get an extra spread (see _FEVER_DEVIATION_C).
tests/sim/test_travellers.py checks the quantiles against the file.

After cold exposure (Dzien 2021, docs/domain.md §3.2: from -5..0 C air into 20.5 C, forehead 33.2 +- 1.5 C at 0 min,
34.9 at 1, 35.8 at 3, 36.1 at 5, 36.6 +- 0.24 at 60 min) the site runs below equilibrium by
  deficit(t) = f * (1.78 exp(-t / 0.69) + 1.62 exp(-t / 4.26)) * (ambient - cold) / 23
(C, t in minutes: two exponentials fitted to Dzien's means, 3.4 C at 0 min; 23 C is Dzien's mean
indoor-outdoor step) with a per-traveller factor f ~ N(1, 0.435) >= 0 that gives Dzien's 1.5 C spread at
0 min. Dzien measured the forehead; the canthus gets the same curve (assumption, conservative: no canthus
figures in docs/domain.md §3.2).

A vehicle occupant (issue 14, the cold post; docs/screening.md, "The cold post") sits in a heated cabin long
enough for the face to settle to the cabin air (`cabin_c`: equilibrium at that ambient), then the window is
opened for `window_s` seconds in the outdoor air before the reading. The face cools with the same two terms as
it warms in Dzien's recovery, run forwards (assumption: exposure and recovery share their time constants):
  exposure_deficit(s) = f * (1.78 (1 - exp(-s / 41.4)) + 1.62 (1 - exp(-s / 255.6))) * (cabin - outdoor) / 23
(C, s in seconds), so a 10 s window at -6 C from a 21 C cabin costs about 0.4 C, a minute about 1.6 C.

Pure Python (random.Random); no numpy at runtime.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from statistics import NormalDist

MODES = ("forehead", "canthus")
EBT_C = 37.5
HEALTHY_ORAL_C = (36.89, 0.31)  # before the cut at 37.5: gives 36.87 +- 0.29 like the data
FEVER_EXCESS_MEAN_C = 0.62
ORAL_BELOW_CORE_C = 0.4

# site = a + b * oral + g * ambient + deviation + noise   (least squares on round 1, all 533 subjects)
_EQUILIBRIUM = {"forehead": (7.3043, 0.67844, 0.12270), "canthus": (2.4832, 0.84025, 0.08808)}
# Per-traveller split normal (sd below, sd above the mode) and per-scan noise sd, C.
_DEVIATION = {"forehead": (0.50, 0.175), "canthus": (0.353, 0.29)}
_SCAN_NOISE_C = {"forehead": 0.14, "canthus": 0.11}
# Fevers scatter more around the regression (data: forehead 0.47 vs 0.39 C, canthus 0.43 vs 0.34 C SD;
# the canthus also sits 0.10 C above the line; skin perfusion changes in a fever's rise and fall, inferred):
# an extra normal deviation (mean, sd) for febrile travellers.
_FEVER_DEVIATION_C = {"forehead": (0.02, 0.27), "canthus": (0.10, 0.26)}
_MODE_CORRELATION = 0.40

# Cold exposure: deficit curve fitted to Dzien 2021 (see the module docstring).
_COLD_TERMS = ((1.78, 0.69), (1.62, 4.26))
_COLD_STEP_C = 23.0
_COLD_FACTOR_SD = 0.435

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Traveller:
    """One traveller; `minutes_since_cold` and `cold_ambient_c` are None unless they came in from the cold."""

    id: int
    core_c: float
    oral_c: float
    febrile: bool
    minutes_since_cold: float | None
    cold_ambient_c: float | None
    forehead_deviation_c: float = 0.0
    canthus_deviation_c: float = 0.0
    cold_factor: float = 1.0
    cabin_c: float | None = None  # a vehicle occupant: the cabin air the face settled to
    window_s: float | None = None  # ... and how long the window was open in the outdoor air before the reading


def _split_normal(u: float, sd_low: float, sd_high: float) -> float:
    """The u-quantile (0 < u < 1) of a split normal with mean 0."""
    mode = -math.sqrt(2 / math.pi) * (sd_high - sd_low)
    p_low = sd_low / (sd_low + sd_high)
    if u < p_low:
        return mode + sd_low * _NORMAL.inv_cdf(u * (sd_low + sd_high) / (2 * sd_low))
    return mode + sd_high * _NORMAL.inv_cdf(0.5 + (u - p_low) * (sd_low + sd_high) / (2 * sd_high))


def exposure_deficit_c(seconds: float, from_c: float, outdoor_c: float, factor: float = 1.0) -> float:
    """How far (C) a face settled at `from_c` falls below that equilibrium after `seconds` in `outdoor_c` air."""
    t = max(0.0, seconds) / 60
    curve = sum(a * (1 - math.exp(-t / tau)) for a, tau in _COLD_TERMS)
    return factor * curve * max(0.0, from_c - outdoor_c) / _COLD_STEP_C


def cold_deficit_c(minutes: float, cold_ambient_c: float, ambient_c: float, factor: float = 1.0) -> float:
    """How far (C) a site runs below equilibrium `minutes` after coming in from `cold_ambient_c`."""
    t = max(0.0, minutes)
    curve = sum(a * math.exp(-t / tau) for a, tau in _COLD_TERMS)
    return factor * curve * max(0.0, ambient_c - cold_ambient_c) / _COLD_STEP_C


class Population:
    """A seeded stream of travellers.

    `cold_share` of them come in from outdoor air between `cold_ambient_c` (low, high) C, scanned
    `minutes_since_cold` (low, high) minutes after coming in (uniform draws).
    """

    def __init__(
        self,
        seed: int,
        fever_prevalence: float = 0.005,
        cold_share: float = 0.0,
        cold_ambient_c: tuple[float, float] = (-5.0, 0.0),
        minutes_since_cold: tuple[float, float] = (0.0, 10.0),
        cabin_c: tuple[float, float] | None = None,
        window_s: tuple[float, float] = (3.0, 10.0),
    ) -> None:
        """`cabin_c` (mean, sd; cut to mean +- 2 sd): every traveller is a vehicle occupant whose window is open
        `window_s` (low, high) seconds in `cold_ambient_c` air before the reading."""
        if not 0.0 <= fever_prevalence <= 1.0 or not 0.0 <= cold_share <= 1.0:
            raise ValueError("fever_prevalence and cold_share must be within 0..1")
        self._rng = random.Random(seed)
        self.fever_prevalence = fever_prevalence
        self.cold_share = cold_share
        self.cold_ambient_c = cold_ambient_c
        self.minutes_since_cold = minutes_since_cold
        self.cabin_c, self.window_s = cabin_c, window_s
        self._next_id = 1

    def _oral(self, febrile: bool) -> float:
        rng = self._rng
        if febrile:
            return EBT_C + rng.expovariate(1 / FEVER_EXCESS_MEAN_C)
        while True:
            oral = rng.gauss(*HEALTHY_ORAL_C)
            if oral < EBT_C:
                return oral

    def _deviation(self, mode: str, z: float, febrile: bool) -> float:
        d = _split_normal(_NORMAL.cdf(z), *_DEVIATION[mode])
        return d + self._rng.gauss(*_FEVER_DEVIATION_C[mode]) if febrile else d

    def traveller(self) -> Traveller:
        rng = self._rng
        febrile = rng.random() < self.fever_prevalence
        oral = self._oral(febrile)
        z1 = rng.gauss(0.0, 1.0)
        z2 = _MODE_CORRELATION * z1 + math.sqrt(1 - _MODE_CORRELATION**2) * rng.gauss(0.0, 1.0)
        cold = rng.random() < self.cold_share
        t = Traveller(
            id=self._next_id,
            core_c=oral + ORAL_BELOW_CORE_C,
            oral_c=oral,
            febrile=febrile,
            minutes_since_cold=rng.uniform(*self.minutes_since_cold) if cold else None,
            cold_ambient_c=rng.uniform(*self.cold_ambient_c) if cold else None,
            forehead_deviation_c=self._deviation("forehead", z1, febrile),
            canthus_deviation_c=self._deviation("canthus", z2, febrile),
            cold_factor=max(0.0, rng.gauss(1.0, _COLD_FACTOR_SD)),
        )
        if self.cabin_c is not None:  # drawn after the rest: the same seed gives the same people on foot
            mean, sd = self.cabin_c
            cabin = min(mean + 2 * sd, max(mean - 2 * sd, rng.gauss(mean, sd)))
            outdoor = rng.uniform(*self.cold_ambient_c)
            t = replace(t, cabin_c=cabin, window_s=rng.uniform(*self.window_s), cold_ambient_c=outdoor,
                        minutes_since_cold=None)  # fmt: skip
        self._next_id += 1
        return t

    def take(self, n: int) -> list[Traveller]:
        return [self.traveller() for _ in range(n)]

    def __iter__(self) -> Iterator[Traveller]:
        while True:
            yield self.traveller()


def equilibrium_site_c(traveller: Traveller, mode: str, ambient_c: float) -> float:
    """The site temperature (C) once the traveller is in equilibrium at `ambient_c`, without scan noise."""
    if mode not in _EQUILIBRIUM:
        raise ValueError(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})")
    a, b, g = _EQUILIBRIUM[mode]
    deviation = traveller.forehead_deviation_c if mode == "forehead" else traveller.canthus_deviation_c
    return a + b * traveller.oral_c + g * ambient_c + deviation


def site_temperature(
    traveller: Traveller, mode: str, ambient_c: float, minutes_indoors: float | None, rng: random.Random
) -> float:
    """The site temperature (C) the sensor sees in one scan: equilibrium, minus any cold deficit, plus noise.

    `minutes_indoors` is the time since the traveller left the cold (None: the traveller's own
    `minutes_since_cold`); it matters only for a traveller with a `cold_ambient_c`.
    """
    if traveller.cabin_c is not None and minutes_indoors is None:  # in the vehicle, window open
        site = equilibrium_site_c(traveller, mode, traveller.cabin_c)
        outdoor = traveller.cold_ambient_c if traveller.cold_ambient_c is not None else traveller.cabin_c
        site -= exposure_deficit_c(traveller.window_s or 0.0, traveller.cabin_c, outdoor, traveller.cold_factor)
        return site + rng.gauss(0.0, _SCAN_NOISE_C[mode])
    site = equilibrium_site_c(traveller, mode, ambient_c)
    if traveller.cold_ambient_c is not None:
        minutes = traveller.minutes_since_cold if minutes_indoors is None else minutes_indoors
        if minutes is not None:
            site -= cold_deficit_c(minutes, traveller.cold_ambient_c, ambient_c, traveller.cold_factor)
    return site + rng.gauss(0.0, _SCAN_NOISE_C[mode])


@dataclass(frozen=True)
class Scene:
    """What the sensor sees (sim/mlx90614.py `set_scene`): an object at `object_c` filling `fill` of its field of
    view, in air at `ambient_c`. A traveller's scene comes from `scene`; a test may set one by hand (a cup of
    tea is not a traveller). `distance_mm`: how far the target stands from the sensor, for a distance sensor
    (None: not modelled); sim/fill.py `at_distance` sets it with the fill it gives."""

    object_c: float
    ambient_c: float = 22.0
    fill: float = 1.0
    distance_mm: float | None = None


def scene(
    traveller: Traveller, mode: str, ambient_c: float, rng: random.Random, minutes_indoors: float | None = None
) -> Scene:
    """What the sensor sees while `traveller` stands in front of it in one scan at a site measuring `mode` in air
    at `ambient_c`: their site temperature then (`site_temperature`, one draw from `rng`) in that air."""
    return Scene(site_temperature(traveller, mode, ambient_c, minutes_indoors, rng), ambient_c)


def deficit_c(traveller: Traveller, ambient_c: float, minutes_indoors: float | None = None) -> float:
    """How far (C) the traveller's face is below its equilibrium at this reading (ground truth, no noise)."""
    if traveller.cabin_c is not None and minutes_indoors is None:
        outdoor = traveller.cold_ambient_c if traveller.cold_ambient_c is not None else traveller.cabin_c
        return exposure_deficit_c(traveller.window_s or 0.0, traveller.cabin_c, outdoor, traveller.cold_factor)
    minutes = traveller.minutes_since_cold if minutes_indoors is None else minutes_indoors
    if traveller.cold_ambient_c is None or minutes is None:
        return 0.0
    return cold_deficit_c(minutes, traveller.cold_ambient_c, ambient_c, traveller.cold_factor)


def settled_at_c(traveller: Traveller, ambient_c: float, minutes_indoors: float | None = None) -> float:
    """The air the face settled to before this reading: the cabin for an occupant, else the site's air."""
    return traveller.cabin_c if traveller.cabin_c is not None and minutes_indoors is None else ambient_c
