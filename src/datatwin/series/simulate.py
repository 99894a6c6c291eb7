"""Forward simulation of a `LinearModel`, vectorised over paths and seeded.

Each step draws every column in chain order from its conditional (Gaussian or mixture
residual), maps it back through the column's transform, rounds it to the recorded grid and
clips it to the column's support (exactly the folded cell probabilities the likelihood uses;
the escape mass the likelihood reserves for values outside the support is never sampled),
and feeds the recorded value back as history. Columns are drawn in the model's chain order;
calendar columns are drawn from the calendar of each simulated step (its weekday, time of day
and learned exception days), not from a Gaussian. Missing values (when the training data had
them) are drawn with the fitted missing rate and carried forward for conditioning.

Everything that does not depend on the path so far is computed for all steps before the loop
(intercepts, mixture picks and scaled residual draws, phase scales, missing masks, calendar
key probabilities). The loop keeps only the steps a step looks back at, in ring buffers laid
out (step, column, path): a step's lags are one gather of contiguous blocks and one matrix
product for every path at once. The arithmetic is the same, in the same order, as a step at a
time over whole arrays, so a seed gives the same samples as before this layout.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .precision import effective_lower, forward, inverse, to_grid
from .regime import rising

if TYPE_CHECKING:
    from .ar import Columns
    from .hetero import Hetero
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
    normals = rng.standard_normal((n, d, paths))
    picks = rng.random((n, d, paths))
    miss = rng.random((n, d, paths))
    st = _Steps(model, n, step0, missing_rate, picks, normals, miss)
    del miss
    out = np.empty((n, d, paths))
    # the values of the last R steps, time-major with the paths innermost (step p at p % R):
    # a step's lags are whole contiguous (d, paths) blocks, one gather and one product for
    # every path; a column of a step is one row
    R = _reach(model) + 1
    buf = np.empty((R, d, paths))
    for p in range(m - R + 1, m):
        buf[p % R] = history_z[p][:, None]
    rec = _Recorder(cols, transforms, center, scale)
    lags, A = model.lags, model.A
    Bflat = model.B.reshape(d, -1)  # (d, L*d), lag-major
    reg, vol = model.regime, model.hetero
    if reg is not None:
        Bup = reg.B.reshape(d, -1)
    vr = _Volatility.start(model, history_z, paths, step0) if vol is not None else None
    for t in range(n):
        pos = m + t
        hist = np.take(buf, pos - lags, axis=0, mode="wrap").reshape(-1, paths)  # (L*d, paths)
        base = Bflat @ hist + st.cal[t][:, None]
        if reg is not None and st.cal_up is not None:
            up = rising(partial(_back, buf, pos), reg.k)
            base = np.where(up, base + Bup @ hist + st.cal_up[t][:, None], base)
        svol = vr.factors() if vr is not None else None
        now, prev = buf[pos % R], buf[(pos - 1) % R]
        for j in st.order:
            if j in st.keyed:
                z = st.calendar_draw(j, t, prev[j], picks[t, j])
            else:
                e = st.before[j]
                mean = base[j] + (A[j, e] @ now[e] if e else 0.0)
                if reg is not None and e:
                    mean = mean + np.where(up[j], reg.A[j, e] @ now[e], 0.0)
                s = 1.0 if svol is None else svol[j]
                if st.phase is not None:
                    s = s * st.phase[t, j]
                z = mean + s * st.resid[t, j]
            y, zc = rec.record(z, j)
            if st.gone is not None and missing_rate[j] > 0:
                gone = st.gone[t, j]
                y = np.where(gone, np.nan, y)
                zc = np.where(gone, prev[j], zc)
            now[j] = zc
            if vr is not None and j not in st.keyed:
                vr.now[j] = np.abs(zc - mean)
            out[t, j] = y
        if vr is not None:
            vr.advance()
    return out.transpose(2, 0, 1)


def _reach(model: LinearModel) -> int:
    """The furthest step back the values of a simulated step depend on (≥ 1: calendar and
    missing values look at the step before)."""
    own = int(model.lags[-1]) if len(model.lags) else 0
    return max(own, model.regime.max_lag if model.regime is not None else 0, 1)


class _Steps:
    """What every step of a simulation needs, drawn or computed for all steps at once: the
    intercepts, the residual draws (mixture component by pick, scaled normal), the phase
    scales, the missing-value masks and the calendar columns' key probabilities."""

    def __init__(
        self,
        model: LinearModel,
        n: int,
        step0: int,
        missing_rate: np.ndarray,
        picks: np.ndarray,
        normals: np.ndarray,
        miss: np.ndarray,
    ) -> None:
        d = len(model.intercept)
        steps = step0 + np.arange(n)
        self.cal = model.intercepts_at(steps)  # (n, d) intercept of each step
        reg = model.regime
        self.cal_up = reg.intercepts_at(model, steps) if reg is not None else None
        self.order = model.order()
        self.before = {j: self.order[: self.order.index(j)] for j in self.order}
        cidx, self.calm = model.calendar_index(), model.calendar
        calm = self.calm
        self.keyed = (
            {j: (ci, *calm.key_probs(ci, steps)) for j, ci in cidx.items()}
            if calm is not None
            else {}
        )
        # the calendar columns keep their normals; the others' become their residual draws
        self.normals = self.resid = normals
        for j in range(d):
            if j not in self.keyed:
                normals[:, j] = _residual(model, j, picks[:, j], normals[:, j])
        ps = model.phase_scale
        self.phase = None if ps is None else ps[:, steps % ps.shape[1]].T  # (n, d)
        self.gone = miss < missing_rate[None, :, None] if np.any(missing_rate > 0) else None

    def calendar_draw(self, j: int, t: int, z_prev: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """Calendar column j's standardised values at step t on every path."""
        assert self.calm is not None
        ci, k, lam = self.keyed[j]
        z, _ = self.calm.draw(ci, k[t], float(lam[t]), z_prev, pick, self.normals[t, j])
        return z


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
    # the number of cumulative weights below each pick (cum_w never decreases)
    comp = np.minimum(np.searchsorted(cum_w, pick, side="left"), K - 1)
    return model.mix_mu[j][comp] + model.mix_sd[j][comp] * normal


class _Volatility:
    """|residuals| of the mean over the last volatility window (a ring of span + 1 steps) and
    their running sums (d, paths) over each window, updated as steps are drawn."""

    def __init__(self, hetero: Hetero, ring: np.ndarray, sums: dict[int, np.ndarray]) -> None:
        self.hetero, self.ring, self.sums = hetero, ring, sums
        self.pos = hetero.span  # the slot of the step being drawn (ring position)
        self.now = ring[self.pos % len(ring)]

    @classmethod
    def start(
        cls, model: LinearModel, history_z: np.ndarray, paths: int, step0: int
    ) -> _Volatility:
        """The history's last window of |residuals| and their sums."""
        vol = model.hetero
        assert vol is not None
        m, d = history_z.shape
        span = vol.span
        rows = np.arange(m - span, m)
        M = model.means(history_z, rows, step0 - m + rows)
        E = np.abs(history_z[rows] - M)  # (span, d)
        ring = np.zeros((span + 1, d, paths))
        ring[:span] = E[:, :, None]
        sums = {int(k): ring[span - k : span].sum(axis=0) for k in vol.windows}
        return cls(vol, ring, sums)

    def factors(self) -> np.ndarray:
        """(d, paths) the volatility scale of the step being drawn."""
        return self.hetero.factors_at(lambda k: self.sums[k].T).T

    def advance(self) -> None:
        """Add the step just drawn to each window's sum, drop the step leaving it."""
        n = len(self.ring)
        for w, s in self.sums.items():
            s += self.now - self.ring[(self.pos - w) % n]
        self.pos += 1
        self.now = self.ring[self.pos % n]
        self.now[:] = 0.0  # calendar columns have no residual (their sums stay as they were)


def _back(buf: np.ndarray, pos: int, lag: int) -> np.ndarray:
    """(d, paths) the simulated values `lag` steps before position `pos` (a ring buffer)."""
    return buf[(pos - lag) % len(buf)]
