"""Scenarios for `checkpoint-sim run`: sites, nodes, travellers and scheduled faults, from TOML.

A scenario file looks like this (every key optional; command-line flags override the top-level ones):

    duration_s = 120          # simulated seconds
    speed = 10.0              # simulated seconds per real second
    clock = "scaled"          # or "virtual": time moves only when no node has anything to do, as fast as the
                              # machine goes (speed unused); one seed, one run (sim/vloop.py, docs/simulator.md)
    seed = 1
    rate_per_min = 6.0        # travellers per minute per node (Poisson)
    fever_prevalence = 0.05
    mode = "forehead"         # or "canthus"

    [[site]]
    name = "bridge-north"
    nodes = 2
    ambient_c = -4.0          # the air the node stands in (outdoor post)
    indoor = false            # travellers step out of a car: short cold exposure
    mode = "forehead"

    # The cold post (issue 14; docs/screening.md, "The cold post"), per site, all optional:
    arrival = "vehicle"       # "foot" (default) or "vehicle": occupants settled to a heated cabin
    outdoor_c = -6.0          # the outdoor air travellers come from (default: ambient_c outdoors, -6 indoors)
    cabin_c = [21.5, 1.2]     # vehicle cabins: mean, sd (cut to mean +- 2 sd)
    window_s = [2, 5]         # the window open this long in the outdoor air before the reading
    cold_share = 0.7          # on foot at an indoor site: share in from the cold ...
    minutes_inside = [10, 25] # ... scanned this long after coming in
    scanner = "heated"        # its housing: "heated" (housing_c), "insulated", "exposed" (default; sim/thermal.py)
    housing_c = 20.0
    scanner_start_c = 21.0    # the sensor at power-on (carried out of a heated booth); default: settled
    scanner_tau_s = 300.0     # its time constant (default per housing)
    retest_after_min = [10, 15]  # an indeterminate traveller (cold skin) comes back after this long inside
    retest_air_c = 20.0       # ... in this air (a heated booth or room)
    # Per-unit calibration error (issue 15 item 3; docs/sensor.md), per site, optional (default exact units):
    unit_gain_sd = 0.01       # each node's part reads gain x true + offset, gain ~ 1 +- this (cut at 3 sd) ...
    unit_offset_sd_c = 0.2    # ... and offset ~ 0 +- this, C, drawn from the node's seed
    reference_check = true    # staff ran the two-point check at shift start: the node's config carries the
                              # correction it gives (firmware/reference.py, from the unit's readings at 35/39 C)

    [[fault]]
    at_s = 30
    kind = "wifi_drop"        # wifi_drop | broker_restart | gateway_restart | sensor_error_flag |
    node = "bridge-north-1"   # sensor_bus_noise | power_cut | garbage | identity_clash | disk_full
    duration_s = 20

Faults act on one node (`node`), or on the shared broker or gateway. `identity_clash`: the node's unit is
replaced by a spare under the same name (once its outbox is empty: the swap itself loses nothing), which starts
its seqs again at 0, so its scans collide with the stored ones. `disk_full`: the filesystem holding the
gateway's database fills up (24 KiB left) for `duration_s`; it needs root (the database goes on a tmpfs the
simulator mounts) and the simulator's own database (no --db). Unknown keys are refused with the key named, so
a typo never silently drops a fault.

On a node's network (SimNode.net_fault): `clock_jump` (its NTP server jumps to 2101 and the node is made to
ask), `ntp_bad_reply` (kiss-o'-death replies), `receipt_loss` (every other receipt for it is lost on the way
in), `dns_slow` (its DNS server answers after 5 s of node time, and a Wi-Fi blip makes it resolve again).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim.thermal import HOUSINGS

IDENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
MODES = ("forehead", "canthus")
CLOCKS = ("scaled", "virtual")
NET_FAULTS = ("clock_jump", "ntp_bad_reply", "receipt_loss", "dns_slow")  # on a node's network (sim/post.py)
NODE_FAULTS: tuple[str, ...] = ("wifi_drop", "sensor_error_flag", "sensor_bus_noise", "power_cut", "garbage")
NODE_FAULTS += ("identity_clash", *NET_FAULTS)
SHARED_FAULTS = ("broker_restart", "gateway_restart", "disk_full")
FAULT_KINDS = NODE_FAULTS + SHARED_FAULTS


class ScenarioError(ValueError):
    """A scenario file or option that cannot be run; the message names the key and the fix."""


@dataclass(frozen=True)
class Site:
    name: str
    nodes: int = 2
    ambient_c: float = 22.0
    indoor: bool = True
    mode: str = "forehead"
    arrival: str = "foot"
    outdoor_c: float | None = None
    cabin_c: tuple[float, float] = (21.5, 1.2)
    window_s: tuple[float, float] = (2.0, 5.0)
    cold_share: float | None = None  # None: 0.7 indoors (the simulator's old default), 0 outdoors
    minutes_inside: tuple[float, float] = (3.0, 20.0)
    scanner: str = "exposed"  # the old default: the scanner stands in the site's air, settled
    housing_c: float = 20.0
    scanner_start_c: float | None = None
    scanner_tau_s: float | None = None
    retest_after_min: tuple[float, float] = (10.0, 15.0)
    retest_air_c: float = 20.0
    unit_gain_sd: float = 0.0
    unit_offset_sd_c: float = 0.0
    reference_check: bool = False

    def outdoor(self) -> float:
        """The outdoor air of the post: given, else the site's own air outdoors, else -6 C."""
        if self.outdoor_c is not None:
            return self.outdoor_c
        return self.ambient_c if not self.indoor else -6.0

    def node_names(self) -> list[str]:
        return [f"{self.name}-{i + 1}"[:32] for i in range(self.nodes)]


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    node: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class Scenario:
    duration_s: float = 60.0
    speed: float = 5.0
    clock: str = "scaled"
    seed: int = 1
    rate_per_min: float = 6.0
    fever_prevalence: float = 0.05
    mode: str = "forehead"
    sites: tuple[Site, ...] = (Site(name="post-1"),)
    faults: tuple[Fault, ...] = field(default=())

    def with_options(self, **options: Any) -> Scenario:
        """Command-line overrides; None means "not given"."""
        given = {k: v for k, v in options.items() if v is not None}
        return replace(self, **given)

    def node_names(self) -> list[tuple[str, str]]:
        return [(s.name, n) for s in self.sites for n in s.node_names()]


_TOP = {"duration_s", "speed", "clock", "seed", "rate_per_min", "fever_prevalence", "mode", "site", "fault"}
_SITE = {"name", "nodes", "ambient_c", "indoor", "mode", "arrival", "outdoor_c", "cabin_c", "window_s", "cold_share"}
_SITE |= {"minutes_inside", "scanner", "housing_c", "scanner_start_c", "scanner_tau_s", "retest_after_min"}
_SITE |= {"retest_air_c", "unit_gain_sd", "unit_offset_sd_c", "reference_check"}
_PAIRS = {"cabin_c": (0, 40), "window_s": (0, 3600), "minutes_inside": (0, 600), "retest_after_min": (0, 600)}
_FAULT = {"at_s", "kind", "node", "duration_s"}


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ScenarioError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def _number(table: dict[str, Any], key: str, where: str, lo: float, hi: float) -> None:
    if key not in table:
        return
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ScenarioError(f"{where}.{key}: {value!r} is not a number in [{lo}, {hi}]")


def _site(raw: dict[str, Any], i: int, default_mode: str) -> Site:
    where = f"site[{i}]"
    _check_keys(raw, _SITE, where)
    name = raw.get("name")
    if not isinstance(name, str) or not IDENT.match(name) or len(name) > 29:
        raise ScenarioError(f"{where}.name: {name!r} must match [a-z0-9][a-z0-9-]*, at most 29 characters")
    _number(raw, "nodes", where, 1, 1000)
    _number(raw, "ambient_c", where, -40, 50)
    mode = raw.get("mode", default_mode)
    if mode not in MODES:
        raise ScenarioError(f"{where}.mode: {mode!r} is not one of {MODES}")
    for key, lo, hi in (("outdoor_c", -40, 50), ("cold_share", 0, 1), ("housing_c", -40, 60)):
        _number(raw, key, where, lo, hi)
    for key, lo, hi in (("scanner_start_c", -40, 60), ("scanner_tau_s", 1, 10**6), ("retest_air_c", -40, 50)):
        _number(raw, key, where, lo, hi)
    _number(raw, "unit_gain_sd", where, 0.0, 0.03)  # 3 sd inside what an honest sensor has (firmware/reference.py)
    _number(raw, "unit_offset_sd_c", where, 0.0, 1.0)
    if not isinstance(raw.get("reference_check", False), bool):
        raise ScenarioError(f"{where}.reference_check: {raw['reference_check']!r} is not true or false")
    for key, choices in (("arrival", ("foot", "vehicle")), ("scanner", HOUSINGS)):
        if raw.get(key, choices[0]) not in choices:
            raise ScenarioError(f"{where}.{key}: {raw[key]!r} is not one of {choices}")
    base = Site(name=name)
    given: dict[str, Any] = {k: _pair(raw, k, where) for k in _PAIRS if k in raw}
    numbers = ("outdoor_c", "cold_share", "housing_c", "scanner_start_c", "scanner_tau_s", "retest_air_c",
               "unit_gain_sd", "unit_offset_sd_c")  # fmt: skip
    given |= {k: float(raw[k]) for k in numbers if k in raw}
    return replace(
        base,
        nodes=int(raw.get("nodes", 2)),
        ambient_c=float(raw.get("ambient_c", 22.0)),
        indoor=bool(raw.get("indoor", True)),
        mode=mode,
        arrival=raw.get("arrival", base.arrival),
        scanner=raw.get("scanner", base.scanner),
        reference_check=raw.get("reference_check", False),
        **given,
    )


def _pair(raw: dict[str, Any], key: str, where: str) -> tuple[float, float]:
    value, (lo, hi) = raw[key], _PAIRS[key]
    ok = isinstance(value, list) and len(value) == 2
    if not ok or not all(not isinstance(v, bool) and isinstance(v, int | float) and lo <= v <= hi for v in value):
        raise ScenarioError(f"{where}.{key}: {value!r} is not a pair of numbers in [{lo}, {hi}]")
    return (float(value[0]), float(value[1]))


def _fault(raw: dict[str, Any], i: int, nodes: set[str]) -> Fault:
    where = f"fault[{i}]"
    _check_keys(raw, _FAULT, where)
    kind = raw.get("kind")
    if kind not in FAULT_KINDS:
        raise ScenarioError(f"{where}.kind: {kind!r} is not one of {', '.join(FAULT_KINDS)}")
    _number(raw, "at_s", where, 0, 10**7)
    _number(raw, "duration_s", where, 0, 10**7)
    if "at_s" not in raw:
        raise ScenarioError(f"{where}.at_s: missing (seconds of simulated time after the start)")
    node = raw.get("node")
    if kind in NODE_FAULTS and node not in nodes:
        known = ", ".join(sorted(nodes))
        raise ScenarioError(f"{where}.node: {node!r} is not a node of this scenario ({known})")
    return Fault(at_s=float(raw["at_s"]), kind=kind, node=node, duration_s=float(raw.get("duration_s", 0.0)))


def parse(data: dict[str, Any]) -> Scenario:
    _check_keys(data, _TOP, "scenario")
    for key, lo, hi in (
        ("duration_s", 1, 10**7),
        ("speed", 0.1, 1000),
        ("rate_per_min", 0, 600),
        ("fever_prevalence", 0, 1),
    ):
        _number(data, key, "scenario", lo, hi)
    mode = data.get("mode", "forehead")
    if mode not in MODES:
        raise ScenarioError(f"scenario.mode: {mode!r} is not one of {MODES}")
    if data.get("clock", CLOCKS[0]) not in CLOCKS:
        raise ScenarioError(f"scenario.clock: {data['clock']!r} is not one of {CLOCKS}")
    sites = tuple(_site(raw, i, mode) for i, raw in enumerate(data.get("site", [])))
    if len({s.name for s in sites}) != len(sites):
        raise ScenarioError("site: two sites share a name")
    base = Scenario()
    scenario = Scenario(
        duration_s=float(data.get("duration_s", base.duration_s)),
        speed=float(data.get("speed", base.speed)),
        clock=data.get("clock", base.clock),
        seed=int(data.get("seed", base.seed)),
        rate_per_min=float(data.get("rate_per_min", base.rate_per_min)),
        fever_prevalence=float(data.get("fever_prevalence", base.fever_prevalence)),
        mode=mode,
        sites=sites or base.sites,
    )
    nodes = {n for _, n in scenario.node_names()}
    faults = tuple(_fault(raw, i, nodes) for i, raw in enumerate(data.get("fault", [])))
    return replace(scenario, faults=tuple(sorted(faults, key=lambda f: f.at_s)))


def load(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read the scenario file ({e.strerror})") from e
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML ({e})") from e
    try:
        return parse(data)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from e
