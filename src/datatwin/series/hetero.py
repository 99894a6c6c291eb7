"""A residual scale that follows recent volatility: `hetero`.

With e_j(t) = z_j(t) - mean_j(t) the residuals of the conditional mean (standardised space),
and ā_i,j(t) = (1/k_i) Σ_{l=1..k_i} |e_j(t - l)| their mean size over two windows (k_1 = the
season, k_2 = 4 k_1, as in HAR volatility models), column j's residual is scaled by

    s_j(t) = exp(clip(θ0_j + θ1_j log(ā_1,j(t) + ε_j) + θ2_j log(ā_2,j(t) + ε_j), ±LOG_CAP))

on top of the seasonal-phase scale, with θ1, θ2 ≥ 0 and θ1 + θ2 ≤ SUM_CAP < 1 (a large
residual raises the next scales less than in proportion, so simulated volatility reverts) and
ε_j = 1 % of the column's mean |e| (a floor keeping the log finite). θ is fit by maximum
likelihood of the recorded cells with the mean fixed. s_j(t) depends only on steps before t,
so each step's conditional is still one Gaussian (or mixture) over the cells: they sum to one
for every history, and simulation draws from it (feeding back each drawn residual).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize

from ..modelfile import require
from ..numerics import LOG_SQRT_2PI
from .precision import log_cell_mass

if TYPE_CHECKING:
    from .ar import Prepared
    from .linear import LinearModel

#: the scale multiplier stays within exp(±LOG_CAP)
LOG_CAP = 3.0
#: the largest total weight of log recent volatility (< 1: volatility reverts)
SUM_CAP = 0.95
#: windows: the season (else half the largest order scanned) and this many seasons
LONG = 4


@dataclass
class Hetero:
    """Windows (k_1, k_2), per-column θ (d, 3) (zeros: scale 1) and floors ε (d,)."""

    windows: np.ndarray  # (2,) int
    theta: np.ndarray  # (d, 3)
    eps: np.ndarray  # (d,)

    @property
    def span(self) -> int:
        return int(np.max(self.windows))

    def factors(self, absres: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(n, d) s(t) at positions `idx` of `absres` (|e| of consecutive steps, (N, d))."""
        cs = np.concatenate([np.zeros((1, absres.shape[1])), np.cumsum(absres, axis=0)])
        return self._scale([(cs[idx] - cs[idx - k]) / k for k in self.windows])

    def factors_at(self, window_sum: Callable[[int], np.ndarray]) -> np.ndarray:
        """s(t) from `window_sum(k)`, the sum of |e| over the last k steps (simulation)."""
        return self._scale([window_sum(int(k)) / int(k) for k in self.windows])

    def _scale(self, means: list[np.ndarray]) -> np.ndarray:
        th = self.theta
        x = th[:, 0] + sum(th[:, 1 + i] * np.log(a + self.eps) for i, a in enumerate(means))
        return np.exp(np.clip(x, -LOG_CAP, LOG_CAP))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "hetero_windows": self.windows.astype(np.int64),
            "hetero_theta": self.theta,
            "hetero_eps": self.eps,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], d: int, source: str) -> Hetero | None:
        """The volatility scale of a model file (None when it has none), validated."""
        if "hetero_windows" not in arrays:
            return None
        for key in ("hetero_windows", "hetero_theta", "hetero_eps"):
            require(key in arrays, source, f"array {key} missing")
            require(arrays[key].dtype.kind in "fiu", source, f"array {key} is not numeric")
            require(bool(np.all(np.isfinite(arrays[key]))), source, f"{key} not finite")
        w, th, eps = arrays["hetero_windows"], arrays["hetero_theta"], arrays["hetero_eps"]
        require(
            w.shape == (2,) and w.dtype.kind in "iu" and bool(np.all(w >= 1)), source, "windows"
        )
        require(th.shape == (d, 3) and eps.shape == (d,), source, "hetero shapes")
        require(bool(np.all(eps > 0)), source, "hetero_eps must be > 0")
        ok = np.all(th[:, 1:] >= 0) and np.all(th[:, 1:].sum(axis=1) <= SUM_CAP + 1e-12)
        require(bool(ok), source, "hetero weights must be ≥ 0 and sum to ≤ 0.95")
        return cls(w.astype(np.int64), th.astype(float), eps.astype(float))


def fit_theta(
    logp: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], feats: np.ndarray
) -> tuple[np.ndarray, float]:
    """Maximum-likelihood θ (3,) for one column: `logp(s)` gives the log cell masses under
    residual scales s and their derivatives in log s; `feats` (n, 2) are log(ā_i + ε).
    Returns θ and the log-likelihood gain over s = 1."""
    mu = feats.mean(axis=0)
    F = feats - mu
    design = np.column_stack([np.ones(len(F)), F])

    def nll(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = x[0] + F @ x[1:]
        lp, slope = logp(np.exp(np.clip(t, -LOG_CAP, LOG_CAP)))
        slope = np.where(np.abs(t) < LOG_CAP, slope, 0.0)  # flat where the scale is clipped
        return -float(np.sum(lp)), -(design.T @ slope)

    base = nll(np.zeros(3))[0]
    bounds = [(-LOG_CAP, LOG_CAP), (0.0, SUM_CAP), (0.0, SUM_CAP)]
    res = minimize(nll, np.zeros(3), jac=True, method="L-BFGS-B", bounds=bounds)
    x = np.asarray(res.x, dtype=float)
    w = x[1:].sum()
    if w > SUM_CAP:
        x[1:] *= SUM_CAP / w
    theta = np.array([x[0] - float(x[1:] @ mu), x[1], x[2]])
    return theta, base - nll(x)[0]


def logp_and_slope(
    model: LinearModel, j: int, u_a: np.ndarray, u_b: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log masses of column j's cells (u_a, u_b] (offsets from the mean, before the scale)
    under residual scales s, and their derivatives in log s:

        P = Σ_k w_k [Φ(β_k) − Φ(α_k)],  α_k = (u_a/s − μ_k)/σ_k,  β_k likewise,
        ∂ log P / ∂ log s = Σ_k (w_k/σ_k) [(u_a/s) φ(α_k) − (u_b/s) φ(β_k)] / P

    (an infinite bound contributes nothing: u φ(α) → 0)."""
    keep = model.mix_w[j] > 0
    w, mu, sd = model.mix_w[j][keep], model.mix_mu[j][keep], model.mix_sd[j][keep]
    va, vb = u_a / s, u_b / s
    lp = log_cell_mass(va, vb, np.zeros_like(va), w, mu, sd)
    slope = np.zeros_like(va)
    for wk, mk, sk in zip(w, mu, sd, strict=True):
        for v, sign in ((va, 1.0), (vb, -1.0)):
            z = (v - mk) / sk
            with np.errstate(invalid="ignore", over="ignore"):
                term = v * np.exp(-0.5 * z * z - LOG_SQRT_2PI - lp)
            slope += sign * (wk / sk) * np.where(np.isfinite(v), term, 0.0)
    return lp, slope


def hetero_windows(period: int | None, max_order: int) -> np.ndarray:
    """(k_1, k_2): the season (else half the largest order scanned) and LONG seasons."""
    k1 = int(period) if period and period > 1 else max(1, max_order // 2)
    return np.array([k1, LONG * k1], dtype=np.int64)


def fit_hetero(
    model: LinearModel, prep: Prepared, rows: np.ndarray, windows: np.ndarray, columns: list[int]
) -> tuple[Hetero, dict[int, float]]:
    """The volatility scale of `model` (mean fixed) by maximum likelihood on `rows` (those with
    the history it needs), for `columns`; with each column's log-likelihood gain (nats)."""
    Z = prep.Z
    d = Z.shape[1]
    span = int(np.max(windows))
    rows = rows[rows >= model.max_lag + span]
    r0 = int(rows[0]) - span
    R = np.arange(r0, int(rows[-1]) + 1)
    MR, S = model.means_and_scales(Z, R, R)
    E = np.abs(Z[R] - MR)
    theta, eps, gains = np.zeros((d, 3)), np.full(d, 1e-6), {}
    for j in columns:
        o = prep.observed[rows, j]
        idx = rows[o] - r0
        eps[j] = max(0.01 * float(np.mean(E[idx, j])), 1e-6)
        cs = np.concatenate([[0.0], np.cumsum(E[:, j])])
        feats = np.column_stack([np.log((cs[idx] - cs[idx - k]) / k + eps[j]) for k in windows])
        a, b, mean = prep.a[rows[o], j], prep.b[rows[o], j], MR[idx, j]
        s0 = np.ones(len(idx)) if S is None else S[idx, j]
        u_a, u_b = a - mean, b - mean

        def logp(
            s: np.ndarray, j: int = j, u_a=u_a, u_b=u_b, s0=s0
        ) -> tuple[np.ndarray, np.ndarray]:
            return logp_and_slope(model, j, u_a, u_b, s0 * s)

        theta[j], gains[j] = fit_theta(logp, feats)
    return Hetero(np.asarray(windows, dtype=np.int64), theta, eps), gains
