"""Bits of rows of a prepared series under a conditional model, with the data's own terms.

    log P(step t) = Σ_j [observed: log(1 - r_j) + log P_model(cell) (+ escape adjustment)
                         missing:  log r_j]

r_j is column j's missing rate; a column the training data never missed gives missing values
no probability (an InputError). Candidates and the twin score through these functions, so a
leaderboard row and `SeriesTwin.log_prob` are the same computation.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..units import LN2
from .ar import Columns, Prepared
from .protocols import SeriesModel


def log_prob_rows(
    model: SeriesModel,
    cols: Columns,
    missing_rate: np.ndarray,
    prep: Prepared,
    rows: np.ndarray,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """Per-step log-probability (nats) of `rows` of a prepared series.

    `steps` are the rows' step indices on the training grid (for calendar and phase terms);
    by default the rows themselves (the training data's own indices).
    """
    steps = rows if steps is None else steps
    out = np.zeros(len(rows))
    for j, (o, model_lp) in enumerate(model.cell_log_probs(prep, rows, steps)):
        lp = np.zeros(len(rows))
        lp[o] = prep.cell_logp(rows[o], j, model_lp)
        r = missing_rate[j]
        if r > 0:
            lp = np.where(o, lp + math.log1p(-r), math.log(r))
        elif not o.all():
            raise InputError(
                f"column {cols.names[j]!r} has missing values but the training data "
                "had none, so this model gives them no probability"
            )
        out += lp
    return out


def bits_rows(
    model: SeriesModel,
    cols: Columns,
    missing_rate: np.ndarray,
    prep: Prepared,
    rows: np.ndarray,
) -> float:
    """Mean bits per step of `rows` (NaN when there are none)."""
    if len(rows) == 0:
        return float("nan")
    lp = log_prob_rows(model, cols, missing_rate, prep, rows)
    return float(-np.sum(lp) / len(rows) / LN2)


def missing_rate(vals: np.ndarray) -> np.ndarray:
    """Per-column missing rate (add-½), zero for columns with no missing value."""
    n = len(vals)
    miss = np.isnan(vals).sum(axis=0)
    return np.where(miss > 0, (miss + 0.5) / (n + 1.0), 0.0)
