"""Recorded precision: each value's probability is its model's mass on the value's cell.

A value v recorded with `dec` decimals stands for the cell [v - δ/2, v + δ/2), δ = 10^-dec.
Models live in a transformed, standardised space z = (g(v) - center) / scale (g = identity,
sqrt or log); a cell is mapped through g exactly. A column with a lower bound (non-negative
data such as counts, 0/1 indicators) or an upper bound (0/1 indicators) has the model's mass
beyond the bound folded into the boundary cell, so the cells of all possible values sum to
one and samples (rounded to the grid, then clipped) never leave the support.

Values outside the support learned from the data are still scored: a bounded column reserves
an escape mass ε per step (1/(n+1), n the steps the support was learned from) for the cells
beyond its bounds (geometric in the number of cells beyond, with a mean of one training range),
and its in-support cells carry (1 - ε) of the model's mass. The escape is never sampled.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from ..numerics import log_gauss_cell

TRANSFORMS = ("none", "sqrt", "log")


def forward(x: np.ndarray, transform: str) -> np.ndarray:
    """g(x): the transform a model of this column is written in."""
    if transform == "none":
        return x
    with np.errstate(invalid="ignore", divide="ignore"):
        if transform == "sqrt":
            return np.sqrt(np.maximum(x, 0.0))
        if transform == "log":
            return np.log(x)
    raise ValueError(f"unknown transform {transform!r}")


def inverse(z: np.ndarray, transform: str) -> np.ndarray:
    """g^-1(z); below the transform's range it returns z itself (clipped later to the bound)."""
    if transform == "none":
        return z
    if transform == "sqrt":
        return np.where(z > 0, z * z, z)
    if transform == "log":
        with np.errstate(over="ignore"):
            return np.exp(np.minimum(z, 700.0))
    raise ValueError(f"unknown transform {transform!r}")


def effective_lower(lower: float | None, transform: str) -> float | None:
    """The support's lower bound under a transform (sqrt and log imply non-negative values)."""
    if transform in ("sqrt", "log"):
        return 0.0 if lower is None else max(lower, 0.0)
    return lower


def cell_edges(
    x: np.ndarray,
    decimals: int,
    lower: float | None,
    upper: float | None,
    transform: str,
    center: float,
    scale: float,
    where: str = "data",
    name: str = "value",
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised, transformed edges (a, b) of each value's recorded cell (NaN stays NaN).

    A value outside the support gets the edges of the nearest boundary cell (harmless numbers):
    its probability is the escape mass from `escape_log_prob`, not a model cell.
    """
    del where, name  # kept for callers; out-of-support values are scored, not rejected
    delta = 10.0 ** (-decimals)
    with np.errstate(over="ignore"):
        k = np.round(x / delta)
    lo = effective_lower(lower, transform)
    ok = ~np.isnan(x)
    if lo is not None:
        k = np.maximum(k, round(lo / delta))
    if upper is not None:
        k = np.minimum(k, round(upper / delta))
    left = (k - 0.5) * delta
    right = (k + 0.5) * delta
    a = (forward(left, transform) - center) / scale
    b = (forward(right, transform) - center) / scale
    if lo is not None:
        a = np.where(k <= round(lo / delta), -np.inf, a)
    if upper is not None:
        b = np.where(k >= round(upper / delta), np.inf, b)
    a = np.where(ok, a, np.nan)
    b = np.where(ok, b, np.nan)
    return a, b


def escape_log_prob(
    x: np.ndarray,
    decimals: int,
    lower: float | None,
    upper: float | None,
    transform: str,
    eps: float,
    spread: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Which values lie outside the support, and each value's log-probability adjustment.

    A column with a bound (under its transform) reserves an escape mass `eps` per step for the
    grid cells beyond its bounds: split evenly between the bounded sides, and spread over the
    cells m = 1, 2, ... beyond a bound geometrically, P(m) = (1 - q) q^(m-1), with a mean of
    1 + spread/δ cells (`spread`: the column's training range, in data units). The model's cells of
    in-support values are scaled by (1 - eps), so a step's cells over the whole grid sum to 1.

    Returns (outside, adj): for in-support values adj = log(1 - eps), added to the cell's log
    mass; for values outside, adj is their whole log-probability (finite for every finite
    value: m is capped at 1e300 cells). Columns without a bound: adj = 0, nothing outside.
    """
    x = np.asarray(x, dtype=float)
    outside = np.zeros(x.shape, dtype=bool)
    adj = np.zeros(x.shape)
    lo = effective_lower(lower, transform)
    sides = (lo is not None) + (upper is not None)
    if sides == 0 or eps <= 0.0:
        return outside, adj
    delta = 10.0 ** (-decimals)
    mean_cells = 1.0 + max(spread, delta) / delta
    log_q = math.log1p(-1.0 / mean_cells)
    base = math.log(eps / sides) - math.log(mean_cells)
    adj[:] = math.log1p(-eps)
    ok = ~np.isnan(x)
    with np.errstate(over="ignore"):
        k = np.where(ok, np.round(np.where(ok, x, 0.0) / delta), 0.0)
    for bound, sign in ((lo, 1.0), (upper, -1.0)):
        if bound is None:
            continue
        m = sign * (round(bound / delta) - k)  # cells beyond the bound (≥ 1 outside)
        beyond = ok & (m >= 1)
        if beyond.any():
            mb = np.minimum(m[beyond], 1e300)
            adj[beyond] = base + (mb - 1.0) * log_q
            outside |= beyond
    return outside, adj


def log_cell_mass(
    a: np.ndarray, b: np.ndarray, mean: np.ndarray, w: np.ndarray, mu: np.ndarray, sd: np.ndarray
) -> np.ndarray:
    """Log mass of cells (a, b) under mean + a Gaussian mixture (weights w, means mu, sds sd)."""
    if len(w) == 1:
        return log_gauss_cell((a - mean - mu[0]) / sd[0], (b - mean - mu[0]) / sd[0])
    parts = [
        math.log(w[k]) + log_gauss_cell((a - mean - mu[k]) / sd[k], (b - mean - mu[k]) / sd[k])
        for k in range(len(w))
    ]
    return logsumexp(np.stack(parts), axis=0)


def to_grid(y: np.ndarray, decimals: int, lower: float | None, upper: float | None) -> np.ndarray:
    """Round simulated values to the recorded grid, folding the tails into boundary cells."""
    delta = 10.0 ** (-decimals)
    k = np.floor(y / delta + 0.5)
    if lower is not None:
        k = np.maximum(k, round(lower / delta))
    if upper is not None:
        k = np.minimum(k, round(upper / delta))
    return np.round(k * delta, decimals)
