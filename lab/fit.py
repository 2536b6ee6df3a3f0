"""Fitting methods for the core estimate, compared in docs/screening.md: each turns readings into one mode's
coefficients in a form firmware/screening.py computes ("heat_balance" or "linear").

Pure Python: the fits are two- and three-parameter least squares. `estimates` goes through the firmware's
`core_estimate`, so what is fitted and compared is exactly what the node and the gateway compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from firmware import module
from lab.dataset import FOREHEAD, Reading

screening: Any = module("screening")
HEAT_BALANCE_K = 0.19  # forehead/temporal artery, US 7,787,938 (docs/screening.md)

CalMode = dict[str, Any]


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


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def sd(xs: Sequence[float]) -> float:
    """Sample standard deviation."""
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def fit_least_squares(data: Sequence[Reading]) -> CalMode:
    c0, c1, c2 = _lstsq([(1.0, r.t_site, r.t_amb) for r in data], [r.oral_c for r in data])
    return {"form": "linear", "offset_c": c0, "site": c1, "amb": c2}


def fit_offset(data: Sequence[Reading]) -> CalMode:
    return {"form": "heat_balance", "k": 0.0, "offset_c": mean([r.oral_c - r.t_site for r in data])}


def fit_heat_balance_k(data: Sequence[Reading]) -> CalMode:
    """Tcore = Ts + k (Ts - Ta), k by least squares through the origin (the physics form, no offset)."""
    (k,) = _lstsq([(r.t_site - r.t_amb,) for r in data], [r.oral_c - r.t_site for r in data])
    return {"form": "heat_balance", "k": k, "offset_c": 0.0}


def fit_heat_balance_019(data: Sequence[Reading]) -> CalMode:
    """The patent's k = 0.19 as is: nothing is fitted."""
    return {"form": "heat_balance", "k": HEAT_BALANCE_K, "offset_c": 0.0}


def fit_heat_balance_019_offset(data: Sequence[Reading]) -> CalMode:
    k = HEAT_BALANCE_K
    return {
        "form": "heat_balance",
        "k": k,
        "offset_c": mean([r.oral_c - r.t_site - k * (r.t_site - r.t_amb) for r in data]),
    }


def fit_heat_balance_offset(data: Sequence[Reading], weights: Sequence[float] | None = None) -> CalMode:
    """Tcore = Ts + k (Ts - Ta) + c, k and c by (weighted) least squares on oral - Ts."""
    c, k = _lstsq([(1.0, r.t_site - r.t_amb) for r in data], [r.oral_c - r.t_site for r in data], weights)
    return {"form": "heat_balance", "k": k, "offset_c": c}


def ambient_weight_iv(data: Sequence[Reading]) -> float:
    """k of the heat balance with the room ambient as instrument: cov(oral - Ts, Ta) / cov(Ts - Ta, Ta).

    Least squares of oral - Ts on Ts - Ta has the skin reading's noise on both sides with opposite signs
    (errors in variables), which drags k below zero; the ambient is measured apart from the face, so only
    the part of Ts - Ta that moves with the room identifies k (docs/screening.md, "The ambient weight").
    """
    m_amb = mean([r.t_amb for r in data])
    m_y = mean([r.oral_c - r.t_site for r in data])
    m_x = mean([r.t_site - r.t_amb for r in data])
    num = sum((r.t_amb - m_amb) * (r.oral_c - r.t_site - m_y) for r in data)
    den = sum((r.t_amb - m_amb) * (r.t_site - r.t_amb - m_x) for r in data)
    if abs(den) < 1e-9:
        raise ValueError("ambient weight: the readings span no ambient range")
    return num / den


def fit_heat_balance_iv(data: Sequence[Reading]) -> CalMode:
    """Heat balance with k from the room ambient (instrument, `ambient_weight_iv`) and a fitted offset."""
    k = ambient_weight_iv(data)
    return {
        "form": "heat_balance",
        "k": k,
        "offset_c": mean([r.oral_c - r.t_site - k * (r.t_site - r.t_amb) for r in data]),
    }


def fit_febrile_weighted(data: Sequence[Reading]) -> CalMode:
    """Heat balance with offset, class-balanced weights: the few fevers weigh as much as all the others."""
    n_pos = sum(1 for r in data if r.febrile) or 1
    n_neg = (len(data) - n_pos) or 1
    return fit_heat_balance_offset(data, [0.5 / n_pos if r.febrile else 0.5 / n_neg for r in data])


def fit_variance_matched(data: Sequence[Reading]) -> CalMode:
    """Least squares' ranking, stretched to the mean and SD of oral (fevers are not shrunk to the mean).

    Same AUC as least squares; thresholding at an oral-scale temperature works again, and the displayed
    numbers spread like an oral thermometer's.
    """
    ls = fit_least_squares(data)
    pred = [ls["offset_c"] + ls["site"] * r.t_site + ls["amb"] * r.t_amb for r in data]
    oral = [r.oral_c for r in data]
    g = sd(oral) / sd(pred)
    site, amb = ls["site"] * g, ls["amb"] * g
    offset = mean(oral) - mean([site * r.t_site + amb * r.t_amb for r in data])
    return {"form": "linear", "offset_c": offset, "site": site, "amb": amb}


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    fit: Callable[[Sequence[Reading]], CalMode]


METHODS = (
    Method("least_squares", "plain least squares, oral ~ Ts + Ta", fit_least_squares),
    Method("offset", "constant offset, oral = Ts + c", fit_offset),
    Method("heat_balance_k", "heat balance Ts + k(Ts - Ta), k fitted", fit_heat_balance_k),
    Method("heat_balance_019", "heat balance, k = 0.19 (patent)", fit_heat_balance_019),
    Method("heat_balance_019_offset", "heat balance k = 0.19 + offset", fit_heat_balance_019_offset),
    Method("heat_balance_offset", "heat balance + offset, k and c fitted", fit_heat_balance_offset),
    Method("heat_balance_iv", "heat balance + offset, k from room ambient", fit_heat_balance_iv),
    Method("febrile_weighted", "heat balance + offset, class-balanced", fit_febrile_weighted),
    Method("variance_matched", "least squares stretched to oral's SD", fit_variance_matched),
)
METHODS_BY_NAME = {m.name: m for m in METHODS}


def estimates(cal_mode: CalMode, data: Sequence[Reading]) -> list[float]:
    """Core estimates of the readings by the firmware's screening math with one mode's coefficients."""
    cal = {"modes": {FOREHEAD: cal_mode}}
    return [screening.core_estimate(cal, FOREHEAD, r.t_site, r.t_amb) for r in data]
