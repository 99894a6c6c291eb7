"""Long memory and regimes of a level structure: `blocks` and `regime`.

In the standardised transformed space, with w = z - m the deviations from the structure's level
m(t) (mean, calendar table, Fourier terms):

**blocks** (long memory with tied coefficients, as in HAR models): beyond the base's lags, the
mean of each column's deviations over geometrically growing blocks of lags [a, b] (b ≈ 1.5 a,
up to 8 times the largest order scanned; a block leaves out the base's own lags) enters the
regression with one coefficient per block and column,

    mean_j(t) = m_j(t) + c_j + Σ_{i<j} A[j,i] w_{t,i} + Σ_l B[j,l,:]·w_{t-l}
                + Σ_k β[j,k,:] · mean_{l ∈ block k} w_{t-l}.

That is a long AR whose coefficients are equal within a block, so it is a `LinearModel` (the
block means spread over the raw lags): scored, simulated and stored as any AR.

**regime** (a threshold AR): column j's conditional mean switches with the sign of its recent
change, r_j(t) = 1[Σ_{l=1..k} z_{t-l,j} > Σ_{l=k+1..2k} z_{t-l,j}] (k the season, so the
season cancels), adding

    r_j(t) · (c'_j + Σ_{i<j} A'[j,i] w_{t,i} + Σ_l B'[j,l,:]·w_{t-l})

to the mean. r_j(t) depends only on steps before t, so each step's conditional is still one
Gaussian (or mixture) over the recorded cells: the cells of a step sum to one for every history,
and simulation draws from exactly the conditional it scores (the sums deciding r are added in
the same order when scoring and simulating, so both see the same regime).

Both are fit by least squares on the training rows (the mean's maximum likelihood under
Gaussian residuals), with the residual scale sqrt(RSS / n).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..modelfile import require

if TYPE_CHECKING:
    from .ar import Prepared
    from .linear import LinearModel

#: blocks grow by this factor (b ≈ GROW · a)
GROW = 1.5
#: blocks reach back this many times the largest order scanned
REACH = 8
_SD_FLOOR = 1e-6
#: training rows per coefficient an extension needs (see `Design.fits_in`)
MIN_ROWS_PER_COEF = 2


def rising(lagged: Callable[[int], np.ndarray], k: int) -> np.ndarray:
    """r(t) = 1[Σ_{l=1..k} z_{t-l} > Σ_{l=k+1..2k} z_{t-l}], `lagged(l)` the values l steps
    back; the sums are added lag by lag in this one order wherever r is needed."""
    recent = lagged(1).copy()
    for lag in range(2, k + 1):
        recent += lagged(lag)
    before = lagged(k + 1).copy()
    for lag in range(k + 2, 2 * k + 1):
        before += lagged(lag)
    return recent > before


@dataclass
class Regime:
    """The upper regime's additions to the mean (on the model's lags), and its window k."""

    k: int
    c: np.ndarray  # (d,)
    A: np.ndarray  # (d, d), follows the model's chain
    B: np.ndarray  # (d, L, d)

    @property
    def max_lag(self) -> int:
        return 2 * self.k

    def part(self, model: LinearModel) -> LinearModel:
        """The additions as a LinearModel on the same level (no regime of its own); kept for
        the last model asked about, so that its cached intercepts are reused."""
        hit = self.__dict__.get("_part")
        if hit is None or hit[0] is not model:
            hit = (model, replace(model, intercept=self.c, A=self.A, B=self.B, regime=None))
            self.__dict__["_part"] = hit
        return hit[1]

    def intercepts_at(self, model: LinearModel, steps: np.ndarray) -> np.ndarray:
        """(n, d) c' - A' m(t) - Σ_l B'_l m(t - l): the additions' intercept at each step."""
        part = self.part(model)
        return part.intercepts_at(steps) - part.level_at(steps)

    def mean_shift(
        self, model: LinearModel, Z: np.ndarray, rows: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """(n, d) r(t) times the additions, at `rows` of Z."""
        up = rising(lambda lag: Z[rows - lag], self.k)
        add = self.intercepts_at(model, steps) + Z[rows] @ self.A.T
        for li, lag in enumerate(model.lags):
            add += Z[rows - lag] @ self.B[:, li, :].T
        return np.where(up, add, 0.0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "regime_k": np.array([self.k], dtype=np.int64),
            "regime_c": self.c,
            "regime_A": self.A,
            "regime_B": self.B,
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], d: int, L: int, source: str
    ) -> Regime | None:
        """The regime of a model file (None when it has none), validated."""
        if "regime_k" not in arrays:
            return None
        for key in ("regime_k", "regime_c", "regime_A", "regime_B"):
            require(key in arrays, source, f"array {key} missing")
            require(arrays[key].dtype.kind in "fiu", source, f"array {key} is not numeric")
            require(bool(np.all(np.isfinite(arrays[key]))), source, f"{key} not finite")
        kk = arrays["regime_k"]
        require(kk.shape == (1,) and kk.dtype.kind in "iu" and int(kk[0]) >= 1, source, "regime_k")
        require(arrays["regime_c"].shape == (d,), source, "regime_c shape")
        require(arrays["regime_A"].shape == (d, d), source, "regime_A shape")
        require(arrays["regime_B"].shape == (d, L, d), source, "regime_B shape")
        return cls(
            int(kk[0]),
            arrays["regime_c"].astype(float),
            arrays["regime_A"].astype(float),
            arrays["regime_B"].astype(float),
        )


def block_spans(core: np.ndarray, p: int, reach: int, grow: float = GROW) -> list[list[int]]:
    """[a, b] blocks of lags after order p up to `reach`, b ≈ grow·a (each with a lag not
    among the base's own lags `core`)."""
    out: list[list[int]] = []
    a, have = p + 1, set(int(x) for x in core)
    while a <= reach:
        b = min(max(a, int(np.ceil(a * grow)) - 1), reach)
        if any(lag not in have for lag in range(a, b + 1)):
            out.append([a, b])
        a = b + 1
    return out


@dataclass
class Design:
    """What an extended fit regresses on: the base's lags, lag blocks, a regime window."""

    core: np.ndarray  # the untied lags (the base's)
    spans: list[list[int]]  # lag blocks [a, b]
    k: int  # regime window (0: no regime)

    def blocks(self) -> list[np.ndarray]:
        have = set(int(x) for x in self.core)
        return [np.array([x for x in range(a, b + 1) if x not in have]) for a, b in self.spans]

    def lags(self) -> np.ndarray:
        every = set(int(x) for x in self.core)
        for blk in self.blocks():
            every |= set(int(x) for x in blk)
        return np.array(sorted(every), dtype=np.int64)

    def max_lag(self) -> int:
        return max(int(self.lags()[-1]) if len(self.core) or self.spans else 0, 2 * self.k)

    def info(self) -> dict[str, Any]:
        return {"core_lags": [int(x) for x in self.core], "blocks": self.spans, "regime_k": self.k}

    def n_features(self, d: int) -> int:
        """Coefficients of one column's regression at most: intercept, the step's other
        columns, d per core lag and per block; twice that with a regime."""
        one = 1 + (d - 1) + d * (len(self.core) + len(self.spans))
        return 2 * one if self.k else one

    def usable(self, prep: Prepared, rows: np.ndarray) -> np.ndarray:
        """The rows with the history the design needs and every column observed."""
        return rows[(rows >= self.max_lag()) & prep.observed[rows].all(axis=1)]

    def fits_in(self, prep: Prepared, rows: np.ndarray) -> bool:
        """Whether `rows` leave the regressions at least MIN_ROWS_PER_COEF rows a coefficient:
        fewer interpolate the training rows (a residual scale of ~0) and lose on the holdout
        by astronomically many bits."""
        n_rows = len(self.usable(prep, rows))
        return n_rows >= MIN_ROWS_PER_COEF * self.n_features(prep.Z.shape[1])

    @classmethod
    def of(cls, model: LinearModel) -> Design:
        """The design a model was fit with (a base structure: its lags, no blocks, no regime)."""
        info = model.info
        core = np.array(info.get("core_lags", model.lags), dtype=np.int64)
        return cls(core, [list(s) for s in info.get("blocks", [])], int(info.get("regime_k", 0)))


def _features(W: np.ndarray, rows: np.ndarray, design: Design) -> np.ndarray:
    """[1, w_t (d), w_{t-l} for each core lag (d each), each block's mean (d each)] at rows."""
    cols = [np.ones((len(rows), 1)), W[rows]]
    cols += [W[rows - lag] for lag in design.core]
    for blk in design.blocks():
        acc = W[rows - blk[0]].copy()
        for lag in blk[1:]:
            acc += W[rows - lag]
        cols.append(acc / len(blk))
    return np.concatenate(cols, axis=1)


def _solve(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Least-squares coefficients from a Gram block (a tiny ridge, grown if needed)."""
    base = max(float(np.mean(np.diag(G))), 1e-12)
    for ridge in (1e-9, 1e-6, 1e-3):
        try:
            return np.linalg.solve(G + ridge * base * np.eye(len(G)), g)
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("Gram matrix is singular")


def _fit_column(
    X: np.ndarray, G: np.ndarray, y: np.ndarray, F: np.ndarray, up: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """(coefficients, residual sd) of y on the features F of X (G = X'X), and on F times the
    0/1 indicator `up` if given (its Gram blocks are X' diag(up) X)."""
    Gf, gy = G[np.ix_(F, F)], X[:, F].T @ y
    if up is not None:
        Xu = X[up > 0][:, F]
        Gu = Xu.T @ Xu
        Gf = np.block([[Gf, Gu], [Gu, Gu]])
        gy = np.concatenate([gy, Xu.T @ y[up > 0]])
    beta = _solve(Gf, gy)
    fit = X[:, F] @ beta[: len(F)]
    if up is not None:
        fit += up * (X[:, F] @ beta[len(F) :])
    r = y - fit
    return beta, max(float(np.sqrt(np.mean(r * r))), _SD_FLOOR)


def _scatter(
    beta: np.ndarray, j: int, e: list[int], design: Design, pos: dict[int, int], out: tuple
) -> None:
    """Write column j's coefficients (layout of `_features`) into (c, A, B) raw-lag form."""
    c, A, B = out
    d = A.shape[0]
    c[j] = beta[0]
    A[j, e] = beta[1 : 1 + len(e)]
    off = 1 + len(e)
    for ci, lag in enumerate(design.core):
        B[j, pos[int(lag)], :] += beta[off + ci * d : off + (ci + 1) * d]
    off += len(design.core) * d
    for bi, blk in enumerate(design.blocks()):
        coef = beta[off + bi * d : off + (bi + 1) * d] / len(blk)
        for lag in blk:
            B[j, pos[int(lag)], :] += coef


def fit_extension(
    prep: Prepared, rows: np.ndarray, base: LinearModel, design: Design, skip: frozenset[int]
) -> LinearModel:
    """`base` (a level structure) refit with lag blocks and/or a regime by least squares on
    `rows` (those with the history the design needs and every column observed); columns in
    `skip` (drawn from the calendar) keep the base's conditional."""
    Z = prep.Z
    n, d = Z.shape
    W = Z - base.level_at(np.arange(n))
    rows = design.usable(prep, rows)
    X = _features(W, rows, design)
    G = X.T @ X
    up = rising(lambda lag: Z[rows - lag], design.k).astype(float) if design.k else None
    lags = design.lags()
    pos = {int(lag): i for i, lag in enumerate(lags)}
    L = len(lags)
    low = (np.zeros(d), np.zeros((d, d)), np.zeros((d, L, d)))
    high = (np.zeros(d), np.zeros((d, d)), np.zeros((d, L, d)))
    sds = base.mix_sd[:, 0].copy()
    order = base.order()
    n_coef = 0
    for j in order:
        if j in skip:
            low[0][j], low[1][j] = base.intercept[j], base.A[j]
            for li, lag in enumerate(base.lags):
                low[2][j, pos[int(lag)]] = base.B[j, li]
            n_coef += int(np.count_nonzero(base.B[j]) + np.count_nonzero(base.A[j])) + 1
            continue
        e = order[: order.index(j)]
        F = np.concatenate([[0], 1 + np.array(e, dtype=int), np.arange(1 + d, X.shape[1])])
        beta, sds[j] = _fit_column(X, G, W[rows, j], F, None if up is None else up[:, j])
        _scatter(beta[: len(F)], j, e, design, pos, low)
        if up is not None:
            _scatter(beta[len(F) :], j, e, design, pos, high)
        n_coef += len(beta)
    info = {**base.info, **design.info(), "n_coef": n_coef}
    info.pop("shrink", None)
    regime = Regime(design.k, *high) if design.k else None
    return replace(
        base,
        lags=lags,
        intercept=low[0],
        A=low[1],
        B=low[2],
        mix_w=np.ones((d, 1)),
        mix_mu=np.zeros((d, 1)),
        mix_sd=sds.reshape(d, 1),
        info=info,
        phase_scale=None,
        regime=regime,
    )


#: a radius within this relative distance of the cap needs no further shrink (a base shrunk
#: to the cap comes back at cap + 1e-12 from the power iteration: another costly pass)
_CAP_TOL = 1e-9


def stabilize_regimes(model: LinearModel, cap: float) -> LinearModel:
    """Cap the spectral radius of each regime's AR recursion (the lower one's, and the upper
    one's: base plus additions), as `residuals.stabilize` does for one."""
    from .residuals import stabilize

    R = model.regime
    if R is None:
        return stabilize(model, cap, _CAP_TOL)
    upper = replace(model, A=model.A + R.A, B=model.B + R.B, regime=None, info={})
    stabilize(model, cap, _CAP_TOL)
    stabilize(upper, cap, _CAP_TOL)
    R.B = upper.B - model.B
    if "shrink" in upper.info:
        model.info["shrink_upper"] = upper.info["shrink"]
    return model
