"""The FDA facial/oral temperature study read as subjects and readings.

PhysioNet doi:10.13026/3bhc-9065; Wang et al., Sensors 2022 (the data's README cites both): a thermal
camera's forehead peak (`T_FH_Max{r}`) and inner-canthus peak (`canthiMax{r}`) in four rounds per subject, the
room ambient (`T_atm`) and a reference oral temperature (`aveOralM`). Elevated body temperature (EBT) is oral
>= 37.5 C. One subject's site temperature in one round, with the ambient, is a `Reading`: what a node would
measure, beside the reference. The data is never copied into the repository.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware import module

contract: Any = module("contract")
FOREHEAD, CANTHUS = contract.MODES  # the study's two sites; a third mode would need its column here
EBT_C = 37.5
ROUNDS = (1, 2, 3, 4)
SITE_COLUMNS = {FOREHEAD: "T_FH_Max", CANTHUS: "canthiMax"}
REQUIRED_COLUMNS = ("SubjectID", "T_atm", "aveOralM")
# The file's age ranges grouped into bands with enough subjects to report (all 44 fevers are 18-30).
AGE_BANDS = {"18-20": "18-20", "21-25": "21-30", "26-30": "21-30", "21-30": "21-30"}
AGE_BAND_OLDER = "31+"
DATA_ENV = "CHECKPOINT_DATA_DIR"
DATASET_RELPATH = Path("face-oral-temp") / "FLIR_group1.csv"


class DatasetError(ValueError):
    """The dataset file cannot be read as the study's CSV format (the message says why)."""


@dataclass(frozen=True)
class Subject:
    """One row of the dataset: a subject's values by column name (None = empty cell)."""

    subject_id: str
    oral_c: float | None
    ambient_c: float | None
    sites: Mapping[str, float | None]
    date: str
    time: str
    sex: str = ""  # `Gender` as the file has it ("Female", "Male"); "" when absent
    age: str = ""  # `Age`, a range as the file has it ("18-20", "21-25", ...); "" when absent


@dataclass(frozen=True)
class Reading:
    """One subject's site temperature in one round, the room ambient, and the oral reference; sex and age
    only to measure fairness (never an input of the estimate)."""

    subject_id: str
    t_site: float
    t_amb: float
    oral_c: float
    sex: str = ""
    age: str = ""

    @property
    def febrile(self) -> bool:
        return self.oral_c >= EBT_C


def age_band(age: str) -> str:
    """The reporting band of a file's age range ("" stays ""): 18-20, 21-30 or 31+."""
    if not age:
        return ""
    return AGE_BANDS.get(age, AGE_BAND_OLDER)


def default_dataset_path() -> Path:
    """The study's file under $CHECKPOINT_DATA_DIR, else under ../shared/data/ beside the repo."""
    env = os.environ.get(DATA_ENV)
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / DATASET_RELPATH


def _number(cell: str) -> float | None:
    cell = cell.strip()
    if not cell:
        return None
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _rows(path: str | os.PathLike[str]) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return list(csv.reader(f))
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte {e.start}): is it a CSV?") from e
    except csv.Error as e:
        raise DatasetError(f"{path}: not a CSV file ({e})") from e


def read_dataset(path: str | os.PathLike[str], modes: Iterable[str] = tuple(SITE_COLUMNS)) -> list[Subject]:
    """Read a CSV in the study's format: UTF-8 (BOM optional), three header lines, column names on line 3.

    Raises DatasetError for a missing or unreadable file, a file that is not UTF-8 text, fewer than three
    header lines, or missing columns (the round-1 site column of each requested mode is required). Empty or
    non-numeric cells are missing values (None), left for the caller to skip and count.
    """
    rows = _rows(path)
    if len(rows) < 3:
        raise DatasetError(f"{path}: expected three header lines (column names on line 3), got {len(rows)}")
    index = {n: i for i, n in enumerate(n.strip() for n in rows[2]) if n}
    need = list(REQUIRED_COLUMNS) + [SITE_COLUMNS[m] + "1" for m in modes]
    missing = [n for n in need if n not in index]
    if missing:
        raise DatasetError(f"{path}: line 3 lacks the column(s) {', '.join(missing)}: not the study's format")
    site_cols = [c + str(r) for c in SITE_COLUMNS.values() for r in ROUNDS if c + str(r) in index]

    def cell(row: list[str], name: str) -> str:
        i = index.get(name)
        return row[i] if i is not None and i < len(row) else ""

    return [
        Subject(
            subject_id=cell(row, "SubjectID").strip(),
            oral_c=_number(cell(row, "aveOralM")),
            ambient_c=_number(cell(row, "T_atm")),
            sites={c: _number(cell(row, c)) for c in site_cols},
            date=cell(row, "Date").strip(),
            time=cell(row, "Time").strip(),
            sex=cell(row, "Gender").strip(),
            age=cell(row, "Age").strip(),
        )
        for row in rows[3:]
        if any(c.strip() for c in row)
    ]


def readings(subjects: Sequence[Subject], mode: str, round_: int = 1) -> tuple[list[Reading], int]:
    """The readings of one mode and round, and the number of subjects skipped for a missing value."""
    column = SITE_COLUMNS[mode] + str(round_)
    out: list[Reading] = []
    for s in subjects:
        t_site = s.sites.get(column)
        if t_site is None or s.ambient_c is None or s.oral_c is None:
            continue
        out.append(Reading(s.subject_id, t_site, s.ambient_c, s.oral_c, s.sex, s.age))
    return out, len(subjects) - len(out)
