"""Long-horizon drift of series candidates: their own simulated paths against the holdout.

Holdout bits judge one-step prediction: each step is scored given the *real* past. A twin is
run on its *own* past for thousands of steps, and a structure that predicts well one step
ahead can still drift (a level that wanders, a season that fades). So the leaderboard also
shows, for the SHOWN best candidates by holdout bits (each fit on the training part), how
PATHS simulated continuations, started from the end of the training part, compare with the
first (at most MAX_STEPS) held-out steps. Per column, then averaged over the columns:

    drift_acf = sqrt(mean over lags l = 1..L of (mean over paths of acf_path(l) - acf_hold(l))²)
    drift_ks  = Kolmogorov–Smirnov distance of the pooled simulated values to the holdout's
    drift_w1  = Wasserstein-1 distance of the same, in units of the holdout's standard deviation

with L = min(MAX_LAG, holdout steps / 4). They are reported, never used to select: holdout
bits decide. The paths are seeded, so the figures are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..core.candidates import Board
from .ar import Columns, Prepared
from .linear import LinearModel

if TYPE_CHECKING:
    from .select import SeriesCandidate, SeriesSearch

#: simulated paths per candidate, candidates shown (the best by holdout bits), largest lag,
#: most held-out steps compared (the simulation is one Python step per time step)
PATHS = 8
SHOWN = 3
MAX_LAG = 50
MAX_STEPS = 1000
SEED = 20_240_601


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations of lags 0..max_lag of the observed values of x (NaN where the
    series is too short)."""
    x = x[~np.isnan(x)]
    out = np.full(max_lag + 1, np.nan)
    if len(x) < 3:
        return out
    x = x - x.mean()
    denom = float(np.dot(x, x)) or 1.0
    lags = min(max_lag, len(x) - 1)
    out[: lags + 1] = [float(np.dot(x[: len(x) - k], x[k:])) / denom for k in range(lags + 1)]
    return out


@dataclass(frozen=True)
class Drift:
    """Distances of simulated paths to the held-out values, averaged over columns."""

    acf: float
    ks: float
    w1: float

    def columns(self) -> dict[str, float]:
        """The leaderboard columns."""
        return {
            "drift_acf": round(self.acf, 4),
            "drift_ks": round(self.ks, 4),
            "drift_w1": round(self.w1, 4),
        }


def ks_w1(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Kolmogorov–Smirnov distance, Wasserstein-1 distance) of two samples' empirical CDFs
    F_a, F_b: max |F_a - F_b| and the integral of |F_a - F_b| over the merged sorted values."""
    a, b = np.sort(a), np.sort(b)
    grid = np.sort(np.concatenate([a, b]))
    gap = np.abs(
        np.searchsorted(a, grid, side="right") / len(a)
        - np.searchsorted(b, grid, side="right") / len(b)
    )
    return float(gap.max()), float(np.sum(gap[:-1] * np.diff(grid)))


def column_drift(sim: np.ndarray, real: np.ndarray) -> tuple[float, float, float] | None:
    """(acf, ks, w1) of simulated paths (paths, n) against one column's real values (n,)."""
    ok = real[np.isfinite(real)]
    pooled = sim[np.isfinite(sim)]
    lag = min(MAX_LAG, len(real) // 4)
    if len(ok) < 8 or len(pooled) < 8 or lag < 1:
        return None
    a_real = acf(real, lag)[1:]
    a_sim = np.nanmean([acf(p, lag)[1:] for p in sim], axis=0)
    err = float(np.sqrt(np.nanmean((a_sim - a_real) ** 2)))
    if not np.isfinite(err):  # a constant column: no autocorrelation to match
        err = 0.0
    ks, w1 = ks_w1(pooled, ok)
    return err, ks, w1 / (float(np.std(ok)) or 1.0)


def measure(
    model: LinearModel,
    cols: Columns,
    prep: Prepared,
    missing_rate: np.ndarray,
    history_end: int,
    held: np.ndarray,
) -> Drift | None:
    """Drift of `model` (fit on the steps before `history_end`): PATHS paths from step
    `history_end` against the first MAX_STEPS raw held-out values of `held` (n, d)."""
    held = held[:MAX_STEPS]
    m = max(model.max_lag, 1)
    if history_end < m or len(held) < 8:
        return None
    rng = np.random.default_rng(SEED)
    sim = model.simulate(
        cols,
        prep.transforms,
        prep.center,
        prep.scale,
        missing_rate,
        prep.Z[history_end - m : history_end],
        len(held),
        PATHS,
        rng,
        history_end,
    )  # (paths, n, d)
    per = [column_drift(sim[:, :, j], held[:, j]) for j in range(held.shape[1])]
    got = np.array([p for p in per if p is not None])
    if not len(got):
        return None
    a, k, w = got.mean(axis=0)
    return Drift(float(a), float(k), float(w))


def annotate(search: SeriesSearch, board: Board[SeriesCandidate]) -> None:
    """Drift columns on the SHOWN best contenders of a series search and on the best one's
    long-horizon variant (horizon.py)."""
    ranked = sorted(board.contenders(), key=lambda c: c.holdout_bits)
    shown = ranked[:SHOWN]
    shown += [
        c for c in ranked if c.structure.label.endswith("+long") and all(c is not s for s in shown)
    ]
    held = search.vals[search.n_train :]
    for cand in shown:
        sc = cand.model
        if sc is None:
            continue
        got = measure(sc.model, search.cols, sc.prep, search.rate, search.n_train, held)
        if got is not None:
            cand.columns.update(got.columns())
