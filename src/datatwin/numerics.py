"""Numerics every kind shares: the log-probability mass of a Gaussian cell.

A value recorded at finite precision stands for the cell of numbers that round to it, so
its probability under a Gaussian N(μ, σ²) is a mass, not a density:

    P(a < X ≤ b) = Φ((b − μ)/σ) − Φ((a − μ)/σ).

`log_gauss_cell` computes log(Φ(b) − Φ(a)) for standardised bounds, finite and accurate far
in the tails (work in the lower tail; log-CDFs and `expm1` where the CDFs underflow), so a
value 40 standard deviations out still costs a finite, correct number of bits. Tables
(`tabular/gaussian.py`) and series (`series/precision.py`) both score their numbers through it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr, ndtr

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def log_gauss_cell(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) for a < b (either may be infinite), finite and accurate everywhere.

    Narrow cells (width·(1+|midpoint|) < 1e-3) use the midpoint density times the width
    (relative error < 1e-7). Others take the difference of CDFs on the side of the smaller
    tail (flipped so both bounds' CDFs are ≤ Φ(upper) and carry full relative precision):
    its relative error is about 1e-16 · Φ(upper) / mass, below 1e-12 for any cell that is not
    narrow. Where that difference underflows (beyond ~37 standard deviations) the log-CDFs
    are differenced instead (`_far_tail`).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        width = b - a
        mid = np.where(np.isfinite(width), 0.5 * (a + b), 0.0)
        narrow = np.isfinite(width) & (width * (1.0 + np.abs(mid)) < 1e-3)
        flip = a > 0
        mass = ndtr(np.where(flip, -a, b)) - ndtr(np.where(flip, -b, a))
        out = np.where(
            narrow,
            -0.5 * mid * mid - LOG_SQRT_2PI + np.log(np.maximum(width, 1e-300)),
            np.log(mass),
        )
        far = ~narrow & ~(mass > 1e-280)
        if far.any():
            exact = _far_tail(a[far], b[far])
            out[far] = np.where(np.isfinite(exact), exact, out[far])
    return np.where(np.isfinite(out), out, -745.0)


def _far_tail(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) by log-CDFs on the smaller tail's side (no underflow)."""
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    lhi = log_ndtr(hi)
    return lhi + np.log(-np.expm1(log_ndtr(lo) - lhi))


def log_normal_cell(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray, step: float) -> np.ndarray:
    """log P(X ∈ [x − step/2, x + step/2)) for X ~ N(mu, sigma²): the cell a value recorded
    on a grid of spacing `step` stands for."""
    return log_gauss_cell((x - 0.5 * step - mu) / sigma, (x + 0.5 * step - mu) / sigma)
