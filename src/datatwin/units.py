"""Units: every likelihood is kept in nats internally and reported in bits."""

from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def nats_to_bits(x: float | np.ndarray) -> float | np.ndarray:
    """Convert natural-log probabilities (nats) to bits."""
    return x / LN2


def check_finite_logp(logp: np.ndarray, what: str) -> np.ndarray:
    """Guard the no-inf-no-NaN contract: every valid input has a finite log-probability."""
    if not np.all(np.isfinite(logp)):
        bad = int(np.sum(~np.isfinite(logp)))
        raise AssertionError(f"internal error: {bad} non-finite log-probabilities in {what}")
    return logp
