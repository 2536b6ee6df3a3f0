"""The field loop (issue 15, item 5): from medics' clinical re-checks, per node and per site, the bias of the
IR estimate against the clinical reading and its spread, the false-alarm share, and field PPV; and the
re-check records written as a data set in the study's format, so `checkpoint-gateway evaluate` runs on them.

A re-check is one elevated (or retested) scan with the medic's clinical reading. Fever = clinical >= 37.5 C,
as in the study (the product's report uses China's 37.3 C; gateway/field.py computes both). False-alarm share =
elevated scans whose clinical reading is below it, over elevated scans; field PPV is its complement over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import field
from lab.dataset import EBT_C

Recheck = field.Recheck


def summary(rechecks: Sequence[Recheck]) -> dict[str, Any]:
    """The product's summary (gateway/field.py) with the study's fever line, clinical >= 37.5 C."""
    return field.summary(rechecks, EBT_C)


def by_node(rechecks: Sequence[Recheck]) -> dict[str, dict[str, Any]]:
    """`summary` per "site/node"."""
    return field.by_node(rechecks, EBT_C)


def by_site(rechecks: Sequence[Recheck]) -> dict[str, dict[str, Any]]:
    return field.by_site(rechecks, EBT_C)


def write_dataset(rechecks: Sequence[Recheck], path: Path) -> int:
    """The re-checks as a CSV in the study's format (gateway/field.py `write_dataset`), readable by `evaluate`;
    returns the rows written."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        return field.write_dataset(rechecks, f)
