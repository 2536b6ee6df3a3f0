"""`checkpoint-sim readout` (what `make demo` shows for now), run in simulated time."""

from __future__ import annotations

import re

import pytest

from sim.cli import main


def test_readout_shows_traveller_retries_and_named_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["readout", "--duration", "20", "--variant", "DCI", "--seed", "3", "--fast"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if re.match(r"\s+\d+\.\d\d s ", line)]
    assert len(lines) == 20 * 4 + 1  # one line per 0.25 s
    objects = [float(m) for m in re.findall(r"object\s+(-?\d+\.\d\d) C", out)]
    assert max(objects) == pytest.approx(37.9, abs=0.4)  # the feverish traveller, settled
    assert any(abs(o - 35.6) < 0.3 for o in objects)
    assert "SensorError(not_ready)" in lines[0]  # power-up: no data for 0.25 s
    assert "retries" in out and "SensorError(pec)" in out  # the interference burst
    assert "a traveller steps in front" in out


def test_readout_refuses_a_bad_duration() -> None:
    with pytest.raises(SystemExit):
        main(["readout", "--duration", "0", "--fast"])


def test_unknown_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        main(["teleport"])
