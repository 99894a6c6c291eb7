"""Forward simulation of a `LinearModel`, vectorised over paths and seeded.

Each step draws every column in chain order from its conditional (Gaussian or mixture
residual), maps it back through the column's transform, rounds it to the recorded grid and
clips it to the column's support (exactly the folded cell probabilities the likelihood uses;
the escape mass the likelihood reserves for values outside the support is never sampled),
and feeds the recorded value back as history. Columns are drawn in the model's chain order;
calendar columns are drawn from the calendar of each simulated step (its weekday, time of day
and learned exception days), not from a Gaussian. Missing values (when the training data had
them) are drawn with the fitted missing rate and carried forward for conditioning.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .precision import effective_lower, forward, inverse, to_grid
from .regime import rising

if TYPE_CHECKING:
    from .ar import Columns
    from .linear import LinearModel


def simulate(
    model: LinearModel,
    cols: Columns,
    transforms: list[str],
    center: np.ndarray,
    scale: np.ndarray,
    missing_rate: np.ndarray,
    history_z: np.ndarray,
    n: int,
    paths: int,
    rng: np.random.Generator,
    step0: int = 0,
) -> np.ndarray:
    """Simulate `paths` continuations of `n` steps; returns values (paths, n, d), NaN = missing.

    `history_z` (m, d) is the standardised, filled history with m ≥ model.max_lag; `step0` is
    the first simulated step's index on the training grid (for seasonal-phase scales); `rng`
    draws the normals, then the mixture picks, then the missing-value draws, each (n, d, paths).
    """
    d = len(cols.names)
    m = history_z.shape[0]
    buf = np.empty((m + n, paths, d))  # time-major: the lags of a step are whole blocks
    buf[:m] = history_z[:, None, :]
    out = np.empty((n, paths, d))
    normals = rng.standard_normal((n, d, paths))
    picks = rng.random((n, d, paths))
    miss = rng.random((n, d, paths))
    rec = _Recorder(cols, transforms, center, scale)
    lags = model.lags
    steps = step0 + np.arange(n)
    cal = model.intercepts_at(steps)  # (n, d) intercept of each step
    Bflat = model.B.reshape(d, -1)  # (d, L*d), lag-major
    reg, vol = model.regime, model.hetero
    if reg is not None:
        cal_up = reg.intercepts_at(model, steps)
        Bup = reg.B.reshape(d, -1)
    ebuf, wsum = _history_residuals(model, history_z, n, paths, step0)
    order = model.order()
    before = {j: order[: order.index(j)] for j in order}
    cidx, calm = model.calendar_index(), model.calendar
    keyed = {j: calm.key_probs(ci, steps) for j, ci in cidx.items()} if calm is not None else {}
    for t in range(n):
        pos = m + t
        hist = buf[pos - lags].transpose(1, 0, 2).reshape(paths, -1)  # (paths, L*d) lag-major
        base = hist @ Bflat.T + cal[t]
        if reg is not None:
            up = rising(partial(_back, buf, pos), reg.k)
            base = np.where(up, base + hist @ Bup.T + cal_up[t], base)
        svol = vol.factors_at(wsum.__getitem__) if vol is not None else None
        for j in order:
            if j in cidx and calm is not None:
                k, lam = keyed[j]
                z, _ = calm.draw(
                    cidx[j], k[t], float(lam[t]), buf[pos - 1, :, j], picks[t, j], normals[t, j]
                )
            else:
                e = before[j]
                mean = base[:, j] + (buf[pos][:, e] @ model.A[j, e] if e else 0.0)
                if reg is not None and e:
                    mean = mean + np.where(up[:, j], buf[pos][:, e] @ reg.A[j, e], 0.0)
                s = 1.0 if svol is None else svol[:, j]
                if model.phase_scale is not None:
                    s = s * model.phase_scale[j, (step0 + t) % model.phase_scale.shape[1]]
                z = mean + s * _residual(model, j, picks[t, j], normals[t, j])
            y, zc = rec.record(z, j)
            if missing_rate[j] > 0:
                gone = miss[t, j] < missing_rate[j]
                y = np.where(gone, np.nan, y)
                zc = np.where(gone, buf[pos - 1, :, j], zc)
            buf[pos, :, j] = zc
            if ebuf is not None and j not in cidx:
                ebuf[pos, :, j] = np.abs(zc - mean)
            out[t, :, j] = y
        if ebuf is not None:
            for w in wsum:
                wsum[w] += ebuf[pos] - ebuf[pos - w]
    return out.transpose(1, 0, 2)


class _Recorder:
    """A drawn z as recorded: back through the transform, on the grid, clipped to the support;
    and the recorded value's z again (the history later steps condition on)."""

    def __init__(
        self, cols: Columns, transforms: list[str], center: np.ndarray, scale: np.ndarray
    ) -> None:
        self.cols, self.transforms, self.center, self.scale = cols, transforms, center, scale
        self.lows = [effective_lower(cols.lower[j], transforms[j]) for j in range(len(scale))]

    def record(self, z: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
        cols, tr, c, s = self.cols, self.transforms[j], self.center[j], self.scale[j]
        y = inverse(c + s * z, tr)
        y = to_grid(y, cols.decimals[j], self.lows[j], cols.upper[j])
        zc = (forward(y, tr) - c) / s
        if tr == "log":
            floor = (np.log(0.5 * 10.0 ** (-cols.decimals[j])) - c) / s
            zc = np.where(np.isfinite(zc), zc, floor)
        return y, zc


def _residual(model: LinearModel, j: int, pick: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Column j's residual draws (before scaling): its mixture component by `pick`."""
    K = model.mix_w.shape[1]
    if K == 1:
        return model.mix_mu[j, 0] + model.mix_sd[j, 0] * normal
    cum_w = np.cumsum(model.mix_w[j])
    cum_w[-1] = 1.0
    comp = np.minimum((pick[:, None] > cum_w[None, :]).sum(axis=1), K - 1)
    return model.mix_mu[j][comp] + model.mix_sd[j][comp] * normal


def _history_residuals(
    model: LinearModel, history_z: np.ndarray, n: int, paths: int, step0: int
) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
    """(m + n, paths, d) |residuals| of the mean, filled in for the history's last window, and
    their running sums over each volatility window (updated as steps are drawn); (None, {})
    without a volatility scale."""
    if model.hetero is None:
        return None, {}
    m, d = history_z.shape
    ebuf = np.zeros((m + n, paths, d))
    rows = np.arange(m - model.hetero.span, m)
    M = model.means(history_z, rows, step0 - m + rows)
    ebuf[rows] = np.abs(history_z[rows] - M)[:, None, :]
    return ebuf, {int(k): ebuf[m - k : m].sum(axis=0) for k in model.hetero.windows}


def _back(buf: np.ndarray, pos: int, lag: int) -> np.ndarray:
    """(paths, d) the simulated values `lag` steps before position `pos`."""
    return buf[pos - lag]
