"""`checkpoint-gateway evaluate` (lab/evaluate.py) on the FDA study file, on malformed CSVs and on a CSV with
missing cells."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware import module
from gateway import cli
from lab import evaluate

shipped: Any = module("calibration")

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "n", "positives", "auc", "sensitivity", "specificity", "threshold_c", "bias_c", "sd_c", "skipped", "by_sex",
    "by_age_band",
}  # fmt: skip
HEADER = "\ufeff,,Round 1:,,Other parameters:\n,,T_FEmax,T_CEmax,,\nSubjectID,,T_FH_Max1,canthiMax1,aveOralM,T_atm\n"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert evaluate.main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    report: dict[str, object] = json.loads(out)
    return report


@pytest.mark.parametrize(
    ("mode", "auc_min", "sens_min", "spec_min"),
    # Goals (issue 5): forehead AUC 0.86, sens 0.80, spec 0.78; canthus AUC 0.96, sens 0.90, spec 0.85. The
    # canthus AUC of round 1 in this file is 0.954 (docs/screening.md); canthus gives up one fever of 44 of
    # the sensitivity goal to keep women's sensitivity within 0.10 of men's (issue 15): 39 / 44 = 0.886.
    [("forehead", 0.86, 0.80, 0.78), ("canthus", 0.95, 0.88, 0.85)],
)
def test_json_report_on_the_study_file_meets_the_goals(
    capsys: pytest.CaptureFixture[str],
    dataset: Path,
    mode: str,
    auc_min: float,
    sens_min: float,
    spec_min: float,
) -> None:
    r = run_json(capsys, "--dataset", str(dataset), "--mode", mode)
    assert set(r) == KEYS
    assert (r["n"], r["positives"], r["skipped"]) == (533, 44, 11)  # 11 subjects lack round 1
    assert isinstance(r["auc"], float) and r["auc"] >= auc_min
    assert isinstance(r["sensitivity"], float) and r["sensitivity"] >= sens_min
    assert isinstance(r["specificity"], float) and r["specificity"] >= spec_min
    assert r["threshold_c"] == shipped.CALIBRATION["modes"][mode]["threshold_c"]
    assert isinstance(r["bias_c"], float) and abs(r["bias_c"]) < 0.05
    assert isinstance(r["sd_c"], float) and 0.2 < r["sd_c"] < 0.5


def test_site_threshold_trades_specificity_for_sensitivity(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    default = run_json(capsys, "--dataset", str(dataset), "--mode", "canthus")
    china = run_json(capsys, "--dataset", str(dataset), "--mode", "canthus", "--threshold", "37.3")
    assert china["threshold_c"] == 37.3
    assert china["sensitivity"] >= default["sensitivity"]  # type: ignore[operator]
    assert china["specificity"] < default["specificity"]  # type: ignore[operator]
    assert china["auc"] == default["auc"]


def test_checkpoint_gateway_evaluate_prints_one_json_object(dataset: Path) -> None:
    """The command as documented: `checkpoint-gateway evaluate` (`python -m gateway`) reaches the lab."""
    cmd = [sys.executable, "-m", "gateway", "evaluate", "--dataset", str(dataset), "--mode", "forehead", "--json"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == KEYS


def test_gateway_cli_and_the_lab_give_the_same_report(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    argv = ["--dataset", str(dataset), "--mode", "canthus", "--json"]
    assert cli.main(["evaluate", *argv]) == 0
    assert json.loads(capsys.readouterr().out) == run_json(capsys, *argv[:-1])


def test_human_readable_report_names_calibration_and_counts(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    assert evaluate.main(["--dataset", str(dataset), "--mode", "forehead"]) == 0
    out = capsys.readouterr().out
    assert shipped.CALIBRATION["id"] in out
    assert "skipped 11" in out and "AUC 0.8" in out


def test_missing_cells_are_skipped_and_counted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [
        "a,,35.9,36.9,38.4,23.0",  # febrile, hot forehead: elevated
        "b,,35.0,35.6,36.8,23.0",  # healthy: normal
        "c,,34.8,35.4,36.6,22.0",  # healthy: normal
        "d,,,35.5,36.7,22.0",  # no forehead reading
        "e,,35.1,,36.7,22.0",  # no canthus reading
        "f,,35.2,35.7,,22.0",  # no oral reference
        "g,,35.3,35.8,36.9,",  # no ambient
        "h,,35.3,35.8,36.9,n/a",  # not a number: missing too
        "",
    ]
    path = tmp_path / "small.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    r = run_json(capsys, "--dataset", str(path), "--mode", "forehead")
    assert (r["n"], r["positives"], r["skipped"]) == (4, 1, 4)  # d, f, g, h
    assert (r["sensitivity"], r["specificity"], r["auc"]) == (1.0, 1.0, 1.0)
    r = run_json(capsys, "--dataset", str(path), "--mode", "canthus")
    assert (r["n"], r["skipped"]) == (4, 4)  # e, f, g, h


def test_no_febrile_row_gives_nulls_not_a_crash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "healthy.csv"
    path.write_text(HEADER + "a,,35.0,35.6,36.8,23.0\n", encoding="utf-8")
    r = run_json(capsys, "--dataset", str(path), "--mode", "forehead")
    assert (r["n"], r["positives"], r["sensitivity"], r["auc"], r["sd_c"]) == (1, 0, None, None, None)
    assert r["specificity"] == 1.0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "three header lines"),
        (b"SubjectID,T_FH_Max1,aveOralM,T_atm\nx,35,37,22\n", "three header lines"),
        (b"a,b\nc,d\nname,age,city\nbob,3,x\n", "lacks the column(s) SubjectID, T_atm, aveOralM, T_FH_Max1"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "not UTF-8"),
    ],
    ids=["empty", "no-header-lines", "wrong-columns", "binary"],
)
def test_malformed_csv_exits_2_with_a_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert evaluate.main(["--dataset", str(path), "--mode", "forehead", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("evaluate: ") and reason in captured.err


def test_missing_file_and_bad_calibration_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert evaluate.main(["--dataset", str(tmp_path / "none.csv"), "--mode", "forehead"]) == 2
    assert "cannot read" in capsys.readouterr().err
    data = tmp_path / "ok.csv"
    data.write_text(HEADER + "a,,35.0,35.6,36.8,23.0\n", encoding="utf-8")
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps({"id": "x", "ambient_c": [18, 30], "skin_c": [28, 42], "modes": {}}))
    assert evaluate.main(["--dataset", str(data), "--mode", "forehead", "--calibration", str(cal)]) == 2
    assert "modes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "value"),
    [("k", math.nan), ("offset_c", math.inf), ("threshold_c", 73.0), ("min_core_c", -5.0)],
)
def test_a_calibration_with_a_number_out_of_range_is_refused_by_the_one_validator(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str, value: float
) -> None:
    """evaluate checks a calibration file with screening.check_calibration, as the node and the gateway do."""
    data = tmp_path / "ok.csv"
    data.write_text(HEADER + "a,,35.0,35.6,36.8,23.0\n", encoding="utf-8")
    bad = copy.deepcopy(shipped.CALIBRATION)
    bad["modes"]["canthus"][key] = value
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(bad), encoding="utf-8")  # NaN and Infinity as Python's json writes and reads them
    assert evaluate.main(["--dataset", str(data), "--mode", "forehead", "--calibration", str(cal)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate: calibration: ") and f"modes.canthus.{key}" in err


def test_malformed_csv_on_the_command_line_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("just one line\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "lab.evaluate", "--dataset", str(path), "--mode", "canthus"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "three header lines" in done.stderr


def test_a_pushed_calibration_from_json_gives_the_same_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dataset: Path
) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps(shipped.CALIBRATION), encoding="utf-8")
    a = run_json(capsys, "--dataset", str(dataset), "--mode", "forehead")
    b = run_json(capsys, "--dataset", str(dataset), "--mode", "forehead", "--calibration", str(cal))
    assert a == b
