"""Per-unit calibration error in the simulator (issue 15 item 3): a site's units read `gain x true + offset`
with a spread drawn from each node's seed, and a site whose staff ran the two-point check at shift start gives
each node the correction the procedure yields, which its own config door takes and which undoes the error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import firmware
from sim.clock import ManualClock
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614
from sim.post import SimNode, Uplink, node_config
from sim.scenario import Scenario, ScenarioError, load

config = firmware.module("config")
reference = firmware.module("reference")
Driver: Any = firmware.module("mlx90614").MLX90614
SITE = """
[[site]]
name = "bridge"
nodes = 6
unit_gain_sd = 0.01
unit_offset_sd_c = 0.2
reference_check = {check}
"""


def nodes(tmp_path: Path, check: bool) -> list[SimNode]:
    path = tmp_path / "units.toml"
    path.write_text(SITE.format(check="true" if check else "false"))
    scenario: Scenario = load(path)
    site = scenario.sites[0]
    return [SimNode(scenario, site, n, Uplink(1883), tmp_path / n, lambda r: None, 77 + i)
            for i, n in enumerate(site.node_names())]  # fmt: skip


def worst_error(chip: MLX90614, ref: dict[str, float] | None) -> float:
    """The largest |reading (corrected with `ref`) - true| over 33-41 C, C, the part settled on each surface and
    read by the node's own driver."""
    clock = ManualClock()
    unit = MLX90614(clock, variant="DCI", noise=False, gain=chip.gain, offset_c=chip.offset_c)
    sensor = Driver(MachineI2C({0x5A: unit}, freq=100_000))
    worst = 0.0
    for i in range(81):
        true_c = 33.0 + 0.1 * i
        unit.set_scene(object_c=true_c, ambient_c=22.0)
        clock.advance(5_000)
        worst = max(worst, abs(reference.correct(ref, round(float(sensor.object()), 2)) - true_c))
    return worst


def test_units_differ_and_the_shift_check_undoes_it(tmp_path: Path) -> None:
    checked = nodes(tmp_path, check=True)
    gains = [n.chip.gain for n in checked]
    assert len(set(gains)) == len(gains) and all(0.97 <= g <= 1.03 for g in gains)
    assert all(abs(n.chip.offset_c) <= 0.6 for n in checked)
    raw = [worst_error(n.chip, None) for n in checked]
    fixed = []
    for n in checked:
        cfg: dict[str, Any] = node_config(n.site, n.name, n.uplink, n.ref)
        taken, reason = config.validate(cfg)  # the node's own door
        assert reason is None, reason
        fixed.append(worst_error(n.chip, config.scan_settings(taken)["ref"]))
    print(f"\nworst error over 33-41 C per unit: uncorrected {[round(e, 2) for e in raw]}, after the check"
          f" {[round(e, 3) for e in fixed]}")  # fmt: skip
    assert max(raw) > 0.2  # the procedure matters in simulation
    assert max(fixed) <= 0.05


def test_without_the_check_the_node_has_no_correction(tmp_path: Path) -> None:
    unchecked = nodes(tmp_path, check=False)
    assert all(n.ref is None and "reference" not in node_config(n.site, n.name, n.uplink, n.ref) for n in unchecked)
    assert unchecked[0].chip.gain != 1.0  # the same seed's units, still in error


@pytest.mark.parametrize(
    "line,words",
    [("unit_gain_sd = 0.2", "unit_gain_sd"), ("unit_offset_sd_c = -1", "unit_offset_sd_c"),
     ('reference_check = "yes"', "reference_check")],
)  # fmt: skip
def test_bad_unit_keys_are_refused_with_the_key(tmp_path: Path, line: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[[site]]\nname = "bridge"\n{line}\n')
    with pytest.raises(ScenarioError, match=words):
        load(path)
