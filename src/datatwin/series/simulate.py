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
    K = model.mix_w.shape[1]
    buf = np.empty((paths, m + n, d))
    buf[:, :m, :] = history_z[None, :, :]
    out = np.empty((paths, n, d))
    normals = rng.standard_normal((n, d, paths))
    picks = rng.random((n, d, paths))
    miss = rng.random((n, d, paths))
    cum_w = np.cumsum(model.mix_w, axis=1)
    cum_w[:, -1] = 1.0
    lows = [effective_lower(cols.lower[j], transforms[j]) for j in range(d)]
    lags = model.lags
    steps = step0 + np.arange(n)
    cal = model.intercepts_at(steps)  # (n, d) intercept of each step
    Bflat = model.B.reshape(d, -1)  # (d, L*d), lag-major
    reg = model.regime
    if reg is not None:
        cal_up = reg.intercepts_at(model, steps)
        Bup = reg.B.reshape(d, -1)
    order = model.order()
    before = {j: order[: order.index(j)] for j in order}
    cidx = model.calendar_index()
    calm = model.calendar
    keyed = {}
    if calm is not None:
        for j, ci in cidx.items():
            keyed[j] = calm.key_probs(ci, steps)
    for t in range(n):
        pos = m + t
        if len(lags):
            hist = buf[:, pos - lags, :].reshape(paths, -1)
            base = hist @ Bflat.T + cal[t]
        else:
            base = np.broadcast_to(cal[t], (paths, d)).copy()
        if reg is not None:
            up = rising(partial(_back, buf, pos), reg.k)
            add = cal_up[t] + (hist @ Bup.T if len(lags) else 0.0)
            base = np.where(up, base + add, base)
        for j in order:
            if j in cidx and calm is not None:
                k, lam = keyed[j]
                z, gauss = calm.draw(
                    cidx[j], k[t], float(lam[t]), buf[:, pos - 1, j], picks[t, j], normals[t, j]
                )
            else:
                e = before[j]
                mean = base[:, j] + (buf[:, pos, e] @ model.A[j, e] if e else 0.0)
                if reg is not None and e:
                    mean = mean + np.where(up[:, j], buf[:, pos, e] @ reg.A[j, e], 0.0)
                s = 1.0
                if model.phase_scale is not None:
                    s = model.phase_scale[j, (step0 + t) % model.phase_scale.shape[1]]
                if K > 1:
                    comp = np.minimum((picks[t, j][:, None] > cum_w[j][None, :]).sum(axis=1), K - 1)
                    z = mean + s * (model.mix_mu[j][comp] + model.mix_sd[j][comp] * normals[t, j])
                else:
                    z = mean + s * (model.mix_mu[j, 0] + model.mix_sd[j, 0] * normals[t, j])
            y = inverse(center[j] + scale[j] * z, transforms[j])
            y = to_grid(y, cols.decimals[j], lows[j], cols.upper[j])
            zc = (forward(y, transforms[j]) - center[j]) / scale[j]
            if transforms[j] == "log":
                floor = (np.log(0.5 * 10.0 ** (-cols.decimals[j])) - center[j]) / scale[j]
                zc = np.where(np.isfinite(zc), zc, floor)
            if missing_rate[j] > 0:
                gone = miss[t, j] < missing_rate[j]
                y = np.where(gone, np.nan, y)
                zc = np.where(gone, buf[:, pos - 1, j], zc)
            buf[:, pos, j] = zc
            out[:, t, j] = y
    return out


def _back(buf: np.ndarray, pos: int, lag: int) -> np.ndarray:
    """(paths, d) the simulated values `lag` steps before position `pos`."""
    return buf[:, pos - lag, :]
