"""Linear autoregressive conditionals, fit in closed form and scanned over orders.

Every series model here is one `LinearModel` (linear.py): in the standardised transformed space
z = (g(y) - center) / scale, column j of step t has mean

    c_j + Σ_{i<j} A[j, i] z[t, i] + Σ_l B[j, l, :] · z[t - lag_l, :]

(a vector AR whose within-step dependence is written as a chain over the columns, so each
column has a univariate conditional) and a Gaussian or Gaussian-mixture residual. i.i.d. is
the model with no lags; differenced models (y_t - y_{t-D}) are rewritten into the same form.
Fitting is least squares on one Gram matrix per design, so a whole scan over orders costs a
few small Cholesky solves per order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from ..modelfile import require
from .finer import adjust as finer_adjust
from .finer import mass as finer_mass
from .finer import snap
from .linear import LinearModel, fourier_basis
from .precision import (
    cell_edges,
    effective_lower,
    escape_log_prob,
    forward,
    log_gauss_cell,
)

SD_FLOOR = 1e-6


@dataclass
class Columns:
    """Per-column facts the likelihood needs: name, decimals, support bounds, escape.

    `escape` is the mass per step a bounded column reserves for values outside its support
    (1/(n+1), n the steps the support was learned from); `spread` is the column's spread in
    data units (its range max - min, at least one grid cell), the mean distance beyond a bound
    over which that mass is spread (see `precision.escape_log_prob`). `finer` is the mass per
    value for values with more decimals than the column's grid (see `finer.py`).
    """

    names: list[str]
    decimals: list[int]
    lower: list[float | None]
    upper: list[float | None]
    sqrt_ok: list[bool]
    log_ok: list[bool]
    escape: list[float]
    spread: list[float]
    finer: list[float]

    @classmethod
    def infer(cls, values: np.ndarray, names: list[str], decimals: list[int]) -> Columns:
        """Bounds from the data: ≤2 distinct values -> [min, max]; zeros or counts -> ≥ 0."""
        lower: list[float | None] = []
        upper: list[float | None] = []
        sq, lg = [], []
        escape = [1.0 / (len(values) + 1.0)] * values.shape[1]
        spread = []
        finer = [finer_mass(values[:, j], decimals[j]) for j in range(values.shape[1])]
        for j in range(values.shape[1]):
            x = values[:, j]
            x = x[~np.isnan(x)]
            distinct = np.unique(x)
            mn, mx = float(distinct[0]), float(distinct[-1])
            spread.append(max(mx - mn, 10.0 ** (-decimals[j])))
            if len(distinct) <= 2:
                lower.append(mn)
                upper.append(mx)
                sq.append(False)
                lg.append(False)
                continue
            nonneg = mn >= 0 and (mn == 0 or decimals[j] == 0)
            lower.append(0.0 if nonneg else None)
            upper.append(None)
            sq.append(mn >= 0)
            lg.append(mn > 0 and not nonneg)
        return cls(list(names), list(decimals), lower, upper, sq, lg, escape, spread, finer)

    def to_meta(self) -> dict[str, Any]:
        """The columns as JSON metadata for a model file."""
        return {
            "columns": self.names,
            "decimals": self.decimals,
            "lower": self.lower,
            "upper": self.upper,
            "sqrt_ok": self.sqrt_ok,
            "log_ok": self.log_ok,
            "escape": [float(v) for v in self.escape],
            "spread": [float(v) for v in self.spread],
            "finer": [float(v) for v in self.finer],
        }

    @classmethod
    def from_meta(
        cls,
        meta: dict[str, Any],
        source: str,
        default_escape: float,
        default_spread: Callable[[int], float],
    ) -> Columns:
        """Columns from `to_meta` output, validated; files written before the escape mass
        existed get `default_escape` and `default_spread(j)`, those before the finer mass
        half the escape (½/(n+1): no finer value among n)."""
        names = meta["columns"]
        require(isinstance(names, list) and len(names) > 0, source, "no columns")
        d = len(names)
        for key in ("decimals", "lower", "upper", "sqrt_ok", "log_ok"):
            require(isinstance(meta.get(key), list) and len(meta[key]) == d, source, f"bad {key}")
        decimals = meta["decimals"]
        require(all(isinstance(k, int) and 0 <= k <= 15 for k in decimals), source, "decimals")
        escape = meta.get("escape", [default_escape] * d)
        spread = meta.get("spread")
        if spread is None:
            spread = [default_spread(j) for j in range(d)]

        def check(key: str, vals: Any) -> None:
            require(
                isinstance(vals, list)
                and len(vals) == d
                and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in vals
                ),
                source,
                f"bad {key}",
            )

        check("escape", escape)
        check("spread", spread)
        finer = meta.get("finer", [0.5 * e for e in escape])
        check("finer", finer)
        require(all(0.0 < v < 1.0 for v in escape), source, "escape masses must be in (0, 1)")
        require(all(0.0 < v < 1.0 for v in finer), source, "finer masses must be in (0, 1)")
        require(all(v > 0.0 for v in spread), source, "spreads must be > 0")
        return cls(
            list(names),
            [int(k) for k in decimals],
            [None if v is None else float(v) for v in meta["lower"]],
            [None if v is None else float(v) for v in meta["upper"]],
            [bool(v) for v in meta["sqrt_ok"]],
            [bool(v) for v in meta["log_ok"]],
            [float(v) for v in escape],
            [float(v) for v in spread],
            [float(v) for v in finer],
        )

    def transforms_for(self, transform: str) -> list[str]:
        """The per-column transforms a global transform choice means (ineligible: none)."""
        ok = {"none": [True] * len(self.names), "sqrt": self.sqrt_ok, "log": self.log_ok}[transform]
        return [transform if e else "none" for e in ok]


@dataclass
class Prepared:
    """A series in model space: filled standardised values and every value's cell edges.

    `outside` marks values beyond the column's support; `adj` is each value's log-probability
    adjustment for the escape mass (added to an in-support cell's log mass; the whole
    log-probability of a value outside), see `precision.escape_log_prob`.
    """

    Z: np.ndarray
    a: np.ndarray
    b: np.ndarray
    observed: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    transforms: list[str]
    outside: np.ndarray
    adj: np.ndarray

    def cell_logp(self, rows: np.ndarray, j: int, model_logp: np.ndarray) -> np.ndarray:
        """Log-probability of column j's values at `rows` given the model's log cell masses

        (broadcast along trailing axes): (1 - ε) times the cell mass inside the support, the
        escape mass outside it."""
        adj = self.adj[rows, j]
        out = self.outside[rows, j]
        shape = adj.shape + (1,) * (np.ndim(model_logp) - adj.ndim)
        adj, out = adj.reshape(shape), out.reshape(shape)
        return np.where(out, adj, model_logp + adj)


def standardiser(values: np.ndarray, transforms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Center and scale of each transformed column (from the rows given)."""
    d = values.shape[1]
    center = np.zeros(d)
    scale = np.ones(d)
    for j in range(d):
        g = forward(values[:, j], transforms[j])
        g = g[np.isfinite(g)]
        if g.size:
            center[j] = float(np.mean(g))
            sd = float(np.std(g))
            scale[j] = sd if sd > 1e-12 else 1.0
    return center, scale


def prepare(
    values: np.ndarray,
    cols: Columns,
    transforms: list[str],
    center: np.ndarray,
    scale: np.ndarray,
    where: str = "data",
) -> Prepared:
    """Transform, standardise, forward-fill missing values and compute cell edges.

    A value outside the column's support is scored with the escape mass and enters the history
    (the conditioning of later steps) as the nearest value inside the support. A value with
    more decimals than the grid is scored in its cell with its digits' mass (`finer.py`) and
    enters the history as the cell's grid value.
    """
    n, d = values.shape
    Z = np.empty((n, d))
    a = np.empty((n, d))
    b = np.empty((n, d))
    outside = np.zeros((n, d), dtype=bool)
    adj = np.zeros((n, d))
    obs = ~np.isnan(values)
    for j in range(d):
        fine_adj, fin = finer_adjust(values[:, j], cols.decimals[j], cols.finer[j])
        x = snap(values[:, j], fin, cols.decimals[j])
        a[:, j], b[:, j] = cell_edges(
            x,
            cols.decimals[j],
            cols.lower[j],
            cols.upper[j],
            transforms[j],
            center[j],
            scale[j],
            where,
            repr(cols.names[j]),
        )
        outside[:, j], adj[:, j] = escape_log_prob(
            x,
            cols.decimals[j],
            cols.lower[j],
            cols.upper[j],
            transforms[j],
            cols.escape[j],
            cols.spread[j],
        )
        adj[:, j] += np.where(obs[:, j], fine_adj, 0.0)
        delta = 10.0 ** (-cols.decimals[j])
        with np.errstate(over="ignore"):
            k = np.round(x / delta)
        lo = effective_lower(cols.lower[j], transforms[j])
        if lo is not None:
            k = np.maximum(k, round(lo / delta))
        hi = cols.upper[j]
        if hi is not None:
            k = np.minimum(k, round(hi / delta))
        k = k * delta
        z = (forward(k, transforms[j]) - center[j]) / scale[j]
        if transforms[j] == "log":
            z = np.where(
                np.isfinite(z),
                z,
                (np.log(0.5 * 10.0 ** (-cols.decimals[j])) - center[j]) / scale[j],
            )
        Z[:, j] = z
    Z = forward_fill(Z)
    return Prepared(Z, a, b, obs, center, scale, transforms, outside, adj)


def forward_fill(Z: np.ndarray) -> np.ndarray:
    """Carry the last observed value forward over missing ones (0, the centre, before any)."""
    if not np.isnan(Z).any():
        return Z
    out = Z.copy()
    n = len(out)
    for j in range(out.shape[1]):
        col = out[:, j]
        mask = np.isnan(col)
        idx = np.where(~mask, np.arange(n), 0)
        np.maximum.accumulate(idx, out=idx)
        filled = col[idx]
        filled[mask & (np.cumsum(~mask) == 0)] = 0.0
        out[:, j] = filled
    return out


# ---------------------------------------------------------------------------------------------
# Design matrices and order scans


def level_table(
    Z: np.ndarray, observed: np.ndarray, rows: np.ndarray, pm: int, shrink: float = 1.0
) -> np.ndarray:
    """(d, pm) mean of z by phase (row mod pm) over `rows`, shrunk toward the overall mean."""
    d = Z.shape[1]
    out = np.zeros((d, pm))
    ph = rows % pm
    for j in range(d):
        ok = observed[rows, j]
        z = Z[rows[ok], j]
        mean = float(z.mean()) if z.size else 0.0
        s = np.bincount(ph[ok], weights=z, minlength=pm)
        n = np.bincount(ph[ok], minlength=pm)
        out[j] = (s + shrink * mean) / (n + shrink)
    return out


def fourier_level(
    Z: np.ndarray,
    observed: np.ndarray,
    rows: np.ndarray,
    periods: np.ndarray,
    table: np.ndarray | None = None,
    ridge: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """The level table (shifted by the fit's constant) and the (d, 2H) least-squares Fourier
    coefficients of z minus the table on `rows` (a small ridge keeps harmonics of periods
    longer than the data finite)."""
    d = Z.shape[1]
    table = np.zeros((d, 1)) if table is None else table.copy()
    X = fourier_basis(rows, periods)
    coef = np.zeros((d, X.shape[1]))
    for j in range(d):
        ok = observed[rows, j]
        if not ok.any():
            continue
        y = Z[rows[ok], j] - table[j, rows[ok] % table.shape[1]]
        Xj = X[ok]
        mx = Xj.mean(axis=0)
        Xc = Xj - mx
        G = Xc.T @ Xc + ridge * len(y) * np.eye(X.shape[1])
        coef[j] = np.linalg.solve(G, Xc.T @ (y - y.mean()))
        table[j] += float(y.mean() - mx @ coef[j])
    return table, coef


def _design(W: np.ndarray, rows: np.ndarray, lags: list[int]) -> np.ndarray:
    """[1, w_t (d columns), w_{t-l} for each lag] for each row."""
    d = W.shape[1]
    h = 1
    X = np.empty((len(rows), h + d + len(lags) * d), order="F")
    X[:, 0] = 1.0
    X[:, h : h + d] = W[rows]
    for k, lag in enumerate(lags):
        X[:, h + d + k * d : h + d + (k + 1) * d] = W[rows - lag]
    return X


@dataclass
class Sequence:
    """A family of nested candidates: lag blocks in prefix order, and (order, prefix length)."""

    family: str
    lags: list[int]
    candidates: list[tuple[int, int]]


def _cholesky(M: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor of a Gram block, with a tiny ridge (grown if needed)."""
    base = max(float(np.mean(np.diag(M))), 1e-12)
    for ridge in (1e-10, 1e-7, 1e-4, 1e-1):
        try:
            return np.linalg.cholesky(M + ridge * base * np.eye(len(M))).T
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("Gram matrix is not positive definite")


class Scan:
    """Least-squares fits of nested lag sets on one design, scored on holdout cells.

    For each family and column, one Cholesky factor of the Gram matrix (features ordered as
    intercept, earlier columns of the step, lag blocks in the family's prefix order) gives
    every order's coefficients by a triangular solve and its residual sum of squares for free.
    """

    def __init__(
        self,
        prep: Prepared,
        train_rows: np.ndarray,
        hold_rows: np.ndarray,
        sequences: list[Sequence],
        D: int = 0,
        level: np.ndarray | None = None,
        fourier: tuple[np.ndarray, np.ndarray] | None = None,
        chain: list[int] | None = None,
        skip: frozenset[int] = frozenset(),
    ) -> None:
        Z = prep.Z
        self.d = Z.shape[1]
        self.D = D
        self.h = 1
        # levels (D = 0): the model is fit to deviations from the level, without drift
        self.level = level if D == 0 else None
        self.fourier = fourier if D == 0 else None
        order = list(range(self.d)) if chain is None else list(chain)
        self.chain = chain
        #: the columns before each column in the chain (its within-step regressors)
        self.earlier = {j: order[: order.index(j)] for j in order}
        #: columns not modelled by their Gaussian (calendar columns): not scored here
        self.skip = skip
        self.offset = None
        if self.level is not None or self.fourier is not None:
            steps = np.arange(len(Z))
            self.offset = np.zeros_like(Z)
            if self.level is not None:
                self.offset += self.level[:, steps % self.level.shape[1]].T
            if self.fourier is not None:
                self.offset += fourier_basis(steps, self.fourier[0]) @ self.fourier[1].T
        self.prep = prep
        if D > 0:
            W = np.zeros_like(Z)
            W[D:] = Z[D:] - Z[:-D]
        elif self.offset is not None:
            W = Z - self.offset
        else:
            W = Z
        union = sorted({lag for sq in sequences for lag in sq.lags})
        slot = {lag: k for k, lag in enumerate(union)}
        fit_rows = train_rows[prep.observed[train_rows].all(axis=1)]
        self.n_fit = len(fit_rows)
        Xt = _design(W, fit_rows, union)
        self.G = Xt.T @ Xt
        del Xt
        self.Xh = _design(W, hold_rows, union) if len(hold_rows) else None
        self.hold_rows = hold_rows
        self.slot = slot
        self.sequences = {sq.family: sq for sq in sequences}
        self.factors: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, float]] = {}
        self.holdout_nats: dict[str, list[float]] = {}
        #: per family: (d, candidates) holdout nats of each column
        self.holdout_cols: dict[str, np.ndarray] = {}

    def run(self, family: str) -> None:
        """Fit and score every order of one family (once; later calls do nothing)."""
        if family in self.holdout_nats:
            return
        prep, D, d, G, Xh, slot, h = self.prep, self.D, self.d, self.G, self.Xh, self.slot, self.h
        n = self.n_fit
        hold_rows = self.hold_rows
        if D > 0:
            base_h = prep.Z[hold_rows - D]
        elif self.offset is not None:
            base_h = self.offset[hold_rows]
        else:
            base_h = np.zeros((len(hold_rows), d))
        oh = prep.observed[hold_rows]
        for sq in [self.sequences[family]]:
            totals = np.zeros(len(sq.candidates))
            per_col = np.zeros((d, len(sq.candidates)))
            for j in range(d):
                e = self.earlier[j]
                F = np.concatenate(
                    [np.arange(0, h), h + np.array(e, dtype=int)]
                    + [h + d + slot[lag] * d + np.arange(d) for lag in sq.lags]
                ).astype(int)
                t = h + j
                R = _cholesky(G[np.ix_(F, F)])
                z = scipy.linalg.solve_triangular(R, G[F, t], trans="T", check_finite=False)
                yy = float(G[t, t])
                # (R[:k,:k])^-1 = (R^-1)[:k,:k], so every prefix's coefficients are columns of
                # one cumulative sum: beta_k = cumsum(R^-1 * z, axis=1)[:, k-1] (zero below k)
                Rinv = scipy.linalg.solve_triangular(R, np.eye(len(F)), check_finite=False)
                cum = np.cumsum(Rinv * z[None, :], axis=1)
                rss = yy - np.cumsum(z * z)
                self.factors[(sq.family, j)] = (cum, rss, yy)
                if Xh is None or j in self.skip:
                    continue
                o = oh[:, j]
                kk = np.array([h + len(e) + k * d for _, k in sq.candidates])
                sds = np.maximum(np.sqrt(np.maximum(rss[kk - 1], 0.0) / max(n, 1)), SD_FLOOR)
                Xj = Xh[np.ix_(o, F)] if not o.all() else Xh[:, F]
                means = base_h[o, j][:, None] + Xj @ cum[:, kk - 1]
                ah = prep.a[hold_rows, j][o][:, None]
                bh = prep.b[hold_rows, j][o][:, None]
                lp = log_gauss_cell((ah - means) / sds, (bh - means) / sds)
                lp = prep.cell_logp(hold_rows[o], j, lp)
                per_col[j] = -lp.sum(axis=0)
                totals -= lp.sum(axis=0)
            self.holdout_nats[sq.family] = totals.tolist()
            self.holdout_cols[sq.family] = per_col

    def best_order(self, family: str, min_order: int = 0) -> int:
        """The order with the fewest holdout bits (ties: the smaller order)."""
        self.run(family)
        sq = self.sequences[family]
        tot = self.holdout_nats[family]
        idx = [i for i, c in enumerate(sq.candidates) if c[0] >= min_order]
        i = min(idx, key=lambda i: (round(tot[i], 9), i))
        return sq.candidates[i][0]

    def model(self, family: str, order: int) -> LinearModel:
        """The fitted model of one order of a family, in raw-lag form."""
        self.run(family)
        sq = self.sequences[family]
        k = dict(sq.candidates)[order]
        d = self.d
        betas, sds = [], np.empty(d)
        for j in range(d):
            cum, rss, _ = self.factors[(family, j)]
            kk = self.h + len(self.earlier[j]) + k * d
            betas.append(cum[:kk, kk - 1].copy())
            sds[j] = max(math.sqrt(max(float(rss[kk - 1]), 0.0) / max(self.n_fit, 1)), SD_FLOOR)
        lags = sq.lags[:k]
        model = _to_linear(d, betas, sds, self.D, lags, self.h, self.earlier)
        if self.chain is not None:
            model.chain = np.array(self.chain, dtype=np.int64)
        if self.offset is not None or self.D > 0:
            # reverting to the level (or no drift for differences): the intercept is the level's
            model.intercept = np.zeros(d)
            if self.level is not None:
                model.level = self.level.copy()
            elif self.fourier is not None:
                model.level = np.zeros((d, 1))
            if self.fourier is not None:
                model.fourier_periods = self.fourier[0].copy()
                model.fourier_coef = self.fourier[1].copy()
        model.info = {
            "family": family,
            "order": int(order),
            "D": int(self.D),
            "n_coef": int(sum(len(b) for b in betas)),
        }
        return model


def _to_linear(
    d: int,
    betas: list[np.ndarray],
    sds: np.ndarray,
    D: int,
    slot_lags: list[int],
    h: int = 1,
    earlier: dict[int, list[int]] | None = None,
) -> LinearModel:
    """Rewrite per-column regressions (layout of `Scan`) as a raw-lag LinearModel."""
    raw = set(slot_lags)
    if D > 0:
        raw |= {lag + D for lag in slot_lags} | {D}
    raw_lags = sorted(raw)
    pos = {lag: k for k, lag in enumerate(raw_lags)}
    c = np.zeros(d)
    A = np.zeros((d, d))
    B = np.zeros((d, len(raw_lags), d))
    # layout: 0 intercept, 1..h-1 calendar, h..h+j-1 earlier columns of the step, then lags
    for j, beta in enumerate(betas):
        e = list(range(j)) if earlier is None else earlier[j]
        c[j] = beta[0]
        a = beta[h : h + len(e)]
        A[j, e] = a
        blocks = beta[h + len(e) :].reshape(len(slot_lags), d)
        for k, lag in enumerate(slot_lags):
            B[j, pos[lag], :] += blocks[k]
            if D > 0:
                B[j, pos[lag + D], :] -= blocks[k]
        if D > 0:
            B[j, pos[D], j] += 1.0
            B[j, pos[D], e] -= a
    return LinearModel(
        np.array(raw_lags, dtype=np.int64),
        c,
        A,
        B,
        np.ones((d, 1)),
        np.zeros((d, 1)),
        sds.reshape(d, 1).copy(),
    )


__all__ = [
    "Columns",
    "LinearModel",
    "Prepared",
    "Scan",
    "Sequence",
    "fourier_level",
    "forward_fill",
    "level_table",
    "prepare",
    "standardiser",
]
