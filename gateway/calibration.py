"""Calibration of the screening math on clinical data: dataset reader, fitting methods, cross-validation,
operating points.

The data is the FDA facial/oral temperature study (PhysioNet, doi:10.13026/3bhc-9065; Wang et al., Sensors
2022): a thermal camera's forehead peak (`T_FH_Max{r}`) and inner-canthus peak (`canthiMax{r}`) in four rounds
per subject, the room ambient (`T_atm`) and a reference oral temperature (`aveOralM`). Elevated body
temperature (EBT) is oral >= 37.5 C. Round 1 of each subject stands for one scan by a node.

Pure Python (no numpy): `gateway evaluate` reads datasets through this module at runtime, and the fits here
are two- and three-parameter least squares. Every estimate goes through firmware/screening.py's
`core_estimate`, so what is evaluated is exactly what the node and the gateway compute.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError

# firmware/ is untyped MicroPython-subset code: imported by name so mypy --strict does not check it as ours.
screening: Any = importlib.import_module("firmware.screening")
EBT_C = 37.5
ROUNDS = (1, 2, 3, 4)
SITE_COLUMNS = {"forehead": "T_FH_Max", "canthus": "canthiMax"}
REQUIRED_COLUMNS = ("SubjectID", "T_atm", "aveOralM")
DATA_ENV = "CHECKPOINT_DATA_DIR"
DATASET_RELPATH = Path("face-oral-temp") / "FLIR_group1.csv"
HEAT_BALANCE_K = 0.19  # forehead/temporal artery, US 7,787,938 (DOMAIN.md)
THRESHOLD_STEP_C = 0.05  # operating points are chosen on this grid (the display shows 0.1 C)

CalMode = dict[str, Any]


class DatasetError(GatewayError, ValueError):
    """The dataset file cannot be read as the study's CSV format (the message says why)."""


@dataclass(frozen=True)
class Subject:
    """One row of the dataset: a subject's readings by column name (None = empty cell)."""

    subject_id: str
    oral_c: float | None
    ambient_c: float | None
    sites: Mapping[str, float | None]
    date: str
    time: str


@dataclass(frozen=True)
class Scan:
    """One subject's reading at one site in one round: what a node would see, and the reference."""

    subject_id: str
    t_site: float
    t_amb: float
    oral_c: float

    @property
    def febrile(self) -> bool:
        return self.oral_c >= EBT_C


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


def read_dataset(path: str | os.PathLike[str], modes: Iterable[str] = tuple(SITE_COLUMNS)) -> list[Subject]:
    """Read a CSV in the study's format: UTF-8 (BOM optional), three header lines, column names on line 3.

    Raises DatasetError for a missing or unreadable file, a file that is not UTF-8 text, fewer than three
    header lines, or missing columns (the round-1 site column of each requested mode is required). Empty or
    non-numeric cells are missing values (None), left for the caller to skip and count.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte {e.start}): is it a CSV?") from e
    except csv.Error as e:
        raise DatasetError(f"{path}: not a CSV file ({e})") from e
    if len(rows) < 3:
        raise DatasetError(f"{path}: expected three header lines (column names on line 3), got {len(rows)}")
    names = [n.strip() for n in rows[2]]
    index = {n: i for i, n in enumerate(names) if n}
    need = list(REQUIRED_COLUMNS) + [SITE_COLUMNS[m] + "1" for m in modes]
    missing = [n for n in need if n not in index]
    if missing:
        raise DatasetError(f"{path}: line 3 lacks the column(s) {', '.join(missing)}: not the study's format")
    site_cols = [c + str(r) for c in SITE_COLUMNS.values() for r in ROUNDS if c + str(r) in index]

    def cell(row: list[str], name: str) -> str:
        i = index.get(name)
        return row[i] if i is not None and i < len(row) else ""

    subjects = []
    for row in rows[3:]:
        if not any(c.strip() for c in row):
            continue
        subjects.append(
            Subject(
                subject_id=cell(row, "SubjectID").strip(),
                oral_c=_number(cell(row, "aveOralM")),
                ambient_c=_number(cell(row, "T_atm")),
                sites={c: _number(cell(row, c)) for c in site_cols},
                date=cell(row, "Date").strip(),
                time=cell(row, "Time").strip(),
            )
        )
    return subjects


def scans(subjects: Sequence[Subject], mode: str, round_: int = 1) -> tuple[list[Scan], int]:
    """The scans of one mode and round, and the number of subjects skipped for a missing value."""
    column = SITE_COLUMNS[mode] + str(round_)
    out: list[Scan] = []
    for s in subjects:
        t_site = s.sites.get(column)
        if t_site is None or s.ambient_c is None or s.oral_c is None:
            continue
        out.append(Scan(s.subject_id, t_site, s.ambient_c, s.oral_c))
    return out, len(subjects) - len(out)


# ---- metrics ---------------------------------------------------------------------------------------------


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic (ties count one half); NaN without a class."""
    pairs = sorted(zip(scores, labels, strict=True))
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if not n_pos or not n_neg:
        return math.nan
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += mid_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def sens_spec(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity of `score >= threshold` (NaN for a class that is absent)."""
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= threshold)
    tn = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s < threshold)
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    return (tp / n_pos if n_pos else math.nan), (tn / n_neg if n_neg else math.nan)


def roc_points(scores: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, float]]:
    """(1 - specificity, sensitivity) at every distinct threshold, from (0, 0) to (1, 1)."""
    pts = [(0.0, 0.0)]
    for t in sorted(set(scores), reverse=True):
        se, sp = sens_spec(scores, labels, t)
        pts.append((1.0 - sp, se))
    pts.append((1.0, 1.0))
    return pts


def bias_sd(estimates: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Mean and sample SD of (estimate - reference)."""
    d = [e - r for e, r in zip(estimates, reference, strict=True)]
    if len(d) < 2:
        return (d[0] if d else math.nan), math.nan
    m = sum(d) / len(d)
    return m, math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))


def alerts_per_10k(sens: float, spec: float, prevalence: float) -> tuple[float, float]:
    """(alerts, true fevers among them) per 10,000 travellers at a fever prevalence."""
    true_alerts = 10_000 * prevalence * sens
    return true_alerts + 10_000 * (1 - prevalence) * (1 - spec), true_alerts


# ---- fitting ---------------------------------------------------------------------------------------------


def _lstsq(rows: Sequence[Sequence[float]], y: Sequence[float], w: Sequence[float] | None = None) -> list[float]:
    """Weighted least squares by the normal equations (Gaussian elimination, partial pivoting)."""
    p = len(rows[0])
    w = w if w is not None else [1.0] * len(y)
    a = [[sum(wi * r[i] * r[j] for r, wi in zip(rows, w, strict=True)) for j in range(p)] for i in range(p)]
    b = [sum(wi * r[i] * yi for r, yi, wi in zip(rows, y, w, strict=True)) for i in range(p)]
    for col in range(p):
        piv = max(range(col, p), key=lambda r: abs(a[r][col]))
        if abs(a[piv][col]) < 1e-12:
            raise ValueError("least squares: singular design (too few distinct readings)")
        a[col], a[piv] = a[piv], a[col]
        b[col], b[piv] = b[piv], b[col]
        for r in range(col + 1, p):
            f = a[r][col] / a[col][col]
            a[r] = [x - f * z for x, z in zip(a[r], a[col], strict=True)]
            b[r] -= f * b[col]
    x = [0.0] * p
    for i in reversed(range(p)):
        x[i] = (b[i] - sum(a[i][j] * x[j] for j in range(i + 1, p))) / a[i][i]
    return x


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _sd(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def fit_least_squares(data: Sequence[Scan]) -> CalMode:
    c0, c1, c2 = _lstsq([(1.0, s.t_site, s.t_amb) for s in data], [s.oral_c for s in data])
    return {"form": "linear", "offset_c": c0, "site": c1, "amb": c2}


def fit_offset(data: Sequence[Scan]) -> CalMode:
    return {"form": "heat_balance", "k": 0.0, "offset_c": _mean([s.oral_c - s.t_site for s in data])}


def fit_heat_balance_k(data: Sequence[Scan]) -> CalMode:
    """Tcore = Ts + k (Ts - Ta), k by least squares through the origin (the physics form, no offset)."""
    (k,) = _lstsq([(s.t_site - s.t_amb,) for s in data], [s.oral_c - s.t_site for s in data])
    return {"form": "heat_balance", "k": k, "offset_c": 0.0}


def fit_heat_balance_019(data: Sequence[Scan]) -> CalMode:
    """The patent's k = 0.19 as is: nothing is fitted."""
    return {"form": "heat_balance", "k": HEAT_BALANCE_K, "offset_c": 0.0}


def fit_heat_balance_019_offset(data: Sequence[Scan]) -> CalMode:
    k = HEAT_BALANCE_K
    return {
        "form": "heat_balance",
        "k": k,
        "offset_c": _mean([s.oral_c - s.t_site - k * (s.t_site - s.t_amb) for s in data]),
    }


def fit_heat_balance_offset(data: Sequence[Scan], weights: Sequence[float] | None = None) -> CalMode:
    """Tcore = Ts + k (Ts - Ta) + c, k and c by (weighted) least squares on oral - Ts."""
    c, k = _lstsq([(1.0, s.t_site - s.t_amb) for s in data], [s.oral_c - s.t_site for s in data], weights)
    return {"form": "heat_balance", "k": k, "offset_c": c}


def fit_febrile_weighted(data: Sequence[Scan]) -> CalMode:
    """Heat balance with offset, class-balanced weights: the few fevers weigh as much as all the others."""
    n_pos = sum(1 for s in data if s.febrile) or 1
    n_neg = (len(data) - n_pos) or 1
    return fit_heat_balance_offset(data, [0.5 / n_pos if s.febrile else 0.5 / n_neg for s in data])


def fit_variance_matched(data: Sequence[Scan]) -> CalMode:
    """Least squares' ranking, stretched to the mean and SD of oral (fevers are not shrunk to the mean).

    Same AUC as least squares; thresholding at an oral-scale temperature works again, and the displayed
    numbers spread like an oral thermometer's.
    """
    ls = fit_least_squares(data)
    pred = [ls["offset_c"] + ls["site"] * s.t_site + ls["amb"] * s.t_amb for s in data]
    oral = [s.oral_c for s in data]
    g = _sd(oral) / _sd(pred)
    site, amb = ls["site"] * g, ls["amb"] * g
    offset = _mean(oral) - _mean([site * s.t_site + amb * s.t_amb for s in data])
    return {"form": "linear", "offset_c": offset, "site": site, "amb": amb}


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    fit: Callable[[Sequence[Scan]], CalMode]


METHODS = (
    Method("least_squares", "plain least squares, oral ~ Ts + Ta", fit_least_squares),
    Method("offset", "constant offset, oral = Ts + c", fit_offset),
    Method("heat_balance_k", "heat balance Ts + k(Ts - Ta), k fitted", fit_heat_balance_k),
    Method("heat_balance_019", "heat balance, k = 0.19 (patent)", fit_heat_balance_019),
    Method("heat_balance_019_offset", "heat balance k = 0.19 + offset", fit_heat_balance_019_offset),
    Method("heat_balance_offset", "heat balance + offset, k and c fitted", fit_heat_balance_offset),
    Method("febrile_weighted", "heat balance + offset, class-balanced", fit_febrile_weighted),
    Method("variance_matched", "least squares stretched to oral's SD", fit_variance_matched),
)
METHODS_BY_NAME = {m.name: m for m in METHODS}


def estimates(cal_mode: CalMode, data: Sequence[Scan]) -> list[float]:
    """Core estimates of the scans by the firmware's screening math with one mode's coefficients."""
    cal = {"modes": {"forehead": cal_mode}}
    return [screening.core_estimate(cal, "forehead", s.t_site, s.t_amb) for s in data]


# ---- operating points and cross-validation ---------------------------------------------------------------


def choose_threshold(scores: Sequence[float], labels: Sequence[bool], target_sens: float) -> float:
    """The highest threshold on the 0.05 C grid whose sensitivity on these scans is >= target_sens."""
    pos = sorted((s for s, y in zip(scores, labels, strict=True) if y), reverse=True)
    if not pos:
        raise ValueError("choose_threshold: no febrile scan")
    need = math.ceil(target_sens * len(pos) - 1e-9)
    kth = pos[max(need, 1) - 1]  # the need-th highest febrile score must stay at or above the threshold
    return math.floor(kth / THRESHOLD_STEP_C + 1e-9) * THRESHOLD_STEP_C


def folds(ids: Sequence[str], k: int, seed: int) -> list[set[str]]:
    """Subjects split into k folds at random (fixed seed)."""
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    return [set(order[i::k]) for i in range(k)]


@dataclass(frozen=True)
class HeldOut:
    """Out-of-fold results of one method: each scan's estimate and the threshold its training folds chose."""

    scans: list[Scan]
    estimates: list[float]
    thresholds: list[float]

    @property
    def labels(self) -> list[bool]:
        return [s.febrile for s in self.scans]

    def metrics(self) -> dict[str, float]:
        labels = self.labels
        triples = list(zip(self.estimates, self.thresholds, labels, strict=True))
        tp = sum(1 for e, t, y in triples if y and e >= t)
        tn = sum(1 for e, t, y in triples if not y and e < t)
        n_pos = sum(labels)
        bias, sd = bias_sd(self.estimates, [s.oral_c for s in self.scans])
        at_ebt = sens_spec(self.estimates, labels, EBT_C)
        return {
            "auc": auc(self.estimates, labels),
            "sensitivity": tp / n_pos,
            "specificity": tn / (len(labels) - n_pos),
            "sens_at_37_5": at_ebt[0],
            "spec_at_37_5": at_ebt[1],
            "bias_c": bias,
            "sd_c": sd,
        }


def cross_validate(
    data: Sequence[Scan],
    method: Method,
    target_sens: float,
    k: int = 5,
    seed: int = 1,
    evaluate_on: Sequence[Scan] | None = None,
) -> HeldOut:
    """k-fold by subject: fit and choose the threshold on k-1 folds of `data`, estimate the held-out subjects'
    scans in `evaluate_on` (default `data` itself; another round's scans for leave-rounds-out)."""
    pool = data if evaluate_on is None else evaluate_on
    out_scans: list[Scan] = []
    out_est: list[float] = []
    out_thr: list[float] = []
    for fold in folds([s.subject_id for s in data], k, seed):
        train = [s for s in data if s.subject_id not in fold]
        test = [s for s in pool if s.subject_id in fold]
        cal_mode = method.fit(train)
        thr = choose_threshold(estimates(cal_mode, train), [s.febrile for s in train], target_sens)
        out_scans += test
        out_est += estimates(cal_mode, test)
        out_thr += [thr] * len(test)
    return HeldOut(out_scans, out_est, out_thr)


def cross_validate_repeated(
    data: Sequence[Scan], method: Method, target_sens: float, repeats: int = 10, k: int = 5, seed: int = 1
) -> dict[str, tuple[float, float]]:
    """Mean and SD over `repeats` seeded k-fold splits of each held-out metric."""
    runs = [cross_validate(data, method, target_sens, k, seed + r).metrics() for r in range(repeats)]
    return {
        key: (_mean([r[key] for r in runs]), _sd([r[key] for r in runs]) if repeats > 1 else 0.0) for key in runs[0]
    }


def other_rounds(
    subjects: Sequence[Subject], mode: str, method: Method, target_sens: float, k: int = 5, seed: int = 1
) -> dict[int, dict[str, float]]:
    """Leave-rounds-out: fit on round 1, evaluate rounds 2-4, on subjects held out of the fit (k-fold).

    Rounds 2-4 are later captures in the same session: a proxy for another session or camera set-up.
    """
    r1, _ = scans(subjects, mode, 1)
    result: dict[int, dict[str, float]] = {}
    for rnd in ROUNDS[1:]:
        target, _ = scans(subjects, mode, rnd)
        result[rnd] = cross_validate(r1, method, target_sens, k, seed, evaluate_on=target).metrics()
    return result


# ---- the shipped calibration ------------------------------------------------------------------------------

SHIPPED_METHOD = "heat_balance_019_offset"
TARGET_SENS = {"forehead": 0.80, "canthus": 0.90}  # the goals (docs/screening.md)
AMBIENT_RANGE_C = (18.0, 30.0)
SKIN_RANGE_C = (28.0, 42.0)
MIN_CORE_QUANTILE = 0.005  # the cold-skin floor flags about this share of the indoor data
MIN_CORE_MARGIN_C = 0.0


def _rounded(cal_mode: CalMode) -> CalMode:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cal_mode.items()}


def fit_mode(data: Sequence[Scan], mode: str, method: str = SHIPPED_METHOD) -> CalMode:
    """One mode's shipped coefficients: the method's fit, the operating point, and the cold-skin floor."""
    cal_mode = _rounded(METHODS_BY_NAME[method].fit(data))
    est = estimates(cal_mode, data)
    cal_mode["threshold_c"] = round(choose_threshold(est, [s.febrile for s in data], TARGET_SENS[mode]), 2)
    low = sorted(est)[int(MIN_CORE_QUANTILE * len(est))]
    cal_mode["min_core_c"] = math.floor((low - MIN_CORE_MARGIN_C) * 10) / 10
    return cal_mode


def fit_calibration(subjects: Sequence[Subject], cal_id: str, method: str = SHIPPED_METHOD) -> dict[str, Any]:
    """The calibration dict to ship in firmware/calibration.py (JSON-serialisable, see screening.py)."""
    modes = {m: fit_mode(scans(subjects, m, 1)[0], m, method) for m in SITE_COLUMNS}
    return {
        "id": cal_id,
        "method": method,
        "ambient_c": list(AMBIENT_RANGE_C),
        "skin_c": list(SKIN_RANGE_C),
        "modes": modes,
    }


CAL_ID = "fda-flir-g1-1"
_MODULE_HEADER = '''"""The shipped calibration (versioned): node and gateway use it unless config pushes one.

Fitted on the FDA facial/oral temperature data, group 1, round 1 (PhysioNet doi:10.13026/3bhc-9065; Wang et
al., Sensors 2022) by gateway/calibration.py; method, cross-validated results and operating points in
docs/screening.md. GENERATED by `make screening-docs` (scripts/screening_docs.py --write-calibration): do not
edit by hand; a new fit gets a new id. The format is documented in screening.py.
"""

'''


def render_calibration_module(cal: Mapping[str, Any]) -> str:
    """Source of firmware/calibration.py for a calibration dict (MicroPython-compatible, ruff-formatted)."""
    lines = ["CALIBRATION = {"]
    for key, value in cal.items():
        if key != "modes":
            lines.append(f"    {key!r}: {value!r},".replace("'", '"'))
    lines.append('    "modes": {')
    for mode, coeffs in cal["modes"].items():
        lines.append(f'        "{mode}": {{')
        lines += [f'            "{k}": {v!r},'.replace("'", '"') for k, v in coeffs.items()]
        lines.append("        },")
    lines += ["    },", "}", ""]
    return _MODULE_HEADER + "\n".join(lines)
