"""docs/screening.md's generated tables are what the code computes now (they had drifted by a few points of
specificity unnoticed): the quick ones are computed again and compared with the committed blocks; the fix is
`make screening-docs`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lab import docs, tables
from lab.calibration import CAL_ID, fit_calibration
from lab.dataset import Subject


def block(name: str) -> str:
    text = docs.DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- BEGIN {re.escape(name)} -->\n(.*?)<!-- END {re.escape(name)} -->", text, re.S)
    assert found, f"docs/screening.md has no generated block {name!r}"
    return found.group(1).strip()


@pytest.mark.parametrize("name", ["calibration", "evaluate", "fairness", "cold", "ppv"])
def test_the_generated_tables_are_current(name: str, subjects: list[Subject], dataset: Path) -> None:
    cal: dict[str, Any] = fit_calibration(subjects, CAL_ID)
    compute = {
        "calibration": lambda: tables.calibration_table(cal),
        "evaluate": lambda: tables.evaluate_table(dataset, cal),
        "fairness": lambda: tables.fairness_table(dataset, cal),
        "cold": lambda: tables.cold_table(subjects, cal),
        "ppv": lambda: tables.ppv_table(subjects, cal),
    }
    assert compute[name]().strip() == block(name), f"docs/screening.md's {name!r} table is stale: make screening-docs"
