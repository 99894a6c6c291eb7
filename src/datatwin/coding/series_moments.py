"""Series: the conditional mean and residual scale of every cell, for both coder directions.

For step t and column j (linear.py, regime.py, hetero.py):

    mean_j(t) = low_j(t) + r_j(t) high_j(t)
    low_j(t)  = C_j(t)  + Σ c  · z[s, i]   (the model's terms)
    high_j(t) = C'_j(t) + Σ c' · z[s, i]   (a regime's additions; r_j(t) = its `rising` test)
    s_j(t)    = phase_j(t) · exp(clip(θ0 + θ1 log(ā1 + ε) + θ2 log(ā2 + ε), ±LOG_CAP))

ā_i the mean |z - mean| of column j over the k_i steps before t (`hetero`; else the factor
is 1). Every sum is taken in one fixed order: the terms by source (step, then chain order),
the regime's window lag by lag, the residual sizes as a running sum from the first residual
the windows need. The encoder knows every z and computes all steps at once, term by term
(`encode_moments`: elementwise float64 operations on whole columns); the decoder adds each
decoded value's terms into the accumulators of the steps it feeds (`Stepper.push`, one
scatter, O(lags · d)) and updates the running sums once a step is complete, so it never
looks back over a window. The exponential and logarithms are fixedmath.py's on both sides
(and in `_series.c`, which decodes with the same operations compiled). Both get
bit-identical means and scales; they are the model's own up to rounding
(`means_and_scales` sums in another order: relative differences of ~1e-15), so the coded
bits are `log_prob`'s (the tests compare them to 1e-6, sunspot's agree to 1e-15).
Everything that does not depend on a coded value (intercepts, phase scales) is computed by
the same call with the same arguments in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..series.hetero import LOG_CAP
from ..series.regime import rising
from .fixedmath import compiled, exp, log

if TYPE_CHECKING:
    from ..series.linear import LinearModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: per target column: (lag, source column, coefficient) in source order
Terms = list[list[tuple[int, int, float]]]

#: the encoder's term sums from `_series.pull_terms` when built (tests switch it off)
COMPILED = True


def model_terms(A: FloatArray, B: FloatArray, lags: list[int], order: list[int]) -> Terms:
    """Per target j, its nonzero terms sorted by source: lag descending, then chain order,
    then the contemporaneous ones (sources before j in the chain)."""
    pos = {j: p for p, j in enumerate(order)}
    out: Terms = []
    for j in range(A.shape[0]):
        t = [
            (lag, i, float(B[j, li, i]))
            for li, lag in sorted(enumerate(lags), key=lambda x: -x[1])
            for i in order
            if B[j, li, i] != 0.0
        ]
        t += [(0, i, float(A[j, i])) for i in order if pos[i] < pos[j] and A[j, i]]
        out.append(t)
    return out


@dataclass
class Moments:
    """What both directions precompute: extended rows h0.. (history rows whose residuals
    the volatility windows need, then the data rows), intercepts, terms, parameters."""

    d: int
    m: int  # history rows
    h0: int  # first extended row (m when there is no volatility scale)
    C: FloatArray  # (m + n - h0, d) intercepts of the extended rows
    Cr: FloatArray | None  # (m + n - h0, d) the regime's intercepts, or None
    S: FloatArray  # (n, d) phase scales of the data rows
    terms: Terms
    rterms: Terms | None
    k: int  # regime window (0: none)
    windows: list[int]  # volatility windows (empty: none)
    theta: FloatArray | None  # (d, 3)
    eps: FloatArray | None  # (d,)
    max_lag: int  # largest term lag
    order: list[int]  # the chain


def make_moments(model: LinearModel, m: int, n: int, base: int, S: FloatArray) -> Moments:
    """The moments of `n` data steps from step `base`, after `m` history rows."""
    d = len(model.intercept)
    order, lags = model.order(), [int(x) for x in model.lags]
    het, reg = model.hetero, model.regime
    span = het.span if het is not None else 0
    h0 = m - span  # the model file's tail holds every lag, volatility windows included
    steps = base - (m - h0) + np.arange(m + n - h0)
    C = np.ascontiguousarray(model.intercepts_at(steps)) if len(steps) else np.zeros((0, d))
    Cr = rterms = None
    if reg is not None:
        Cr = np.ascontiguousarray(reg.intercepts_at(model, steps)) if len(steps) else C * 0.0
        rterms = model_terms(reg.A, reg.B, lags, order)
    return Moments(
        d=d,
        m=m,
        h0=h0,
        C=C,
        Cr=Cr,
        S=S,
        terms=model_terms(model.A, model.B, lags, order),
        rterms=rterms,
        k=reg.k if reg is not None else 0,
        windows=[] if het is None else [int(x) for x in het.windows],
        theta=None if het is None else het.theta,
        eps=None if het is None else het.eps,
        max_lag=max(lags, default=0),
        order=order,
    )


def _pull(C: FloatArray, terms: Terms, Z: FloatArray, r0: int) -> FloatArray:
    """(len(C), d) C plus the terms at rows r0, r0 + 1, ... of Z, term by term in source
    order (each term a contiguous slice of a column); compiled, the same operations."""
    n = len(C)
    Zt = np.ascontiguousarray(Z.T)
    if COMPILED and compiled is not None and len(terms) == C.shape[1]:
        flat = [t for tj in terms for t in tj]
        M = np.empty_like(C)
        compiled.pull_terms(
            np.ascontiguousarray(C, dtype=np.float64), Zt,
            np.array([t[0] for t in flat], np.int64), np.array([t[1] for t in flat], np.int64),
            np.array([t[2] for t in flat], np.float64),
            np.cumsum([0] + [len(tj) for tj in terms]).astype(np.int64), r0, M,
        )  # fmt: skip
        return M
    M = C.copy()
    for j, tj in enumerate(terms):
        mj = M[:, j].copy()
        for lag, i, c in tj:
            assert r0 - lag >= 0
            mj += c * Zt[i, r0 - lag : r0 - lag + n]
        M[:, j] = mj
    return M


def volatility(mo: Moments, j: int, sums: list[FloatArray]) -> FloatArray:
    """Column j's volatility factors from its residual sums over the windows (elementwise)."""
    assert mo.theta is not None and mo.eps is not None
    th, eps = mo.theta[j], float(mo.eps[j])
    x = np.full(len(sums[0]) if sums else 1, float(th[0]))
    for w, (k, s) in enumerate(zip(mo.windows, sums, strict=True)):
        x = x + float(th[1 + w]) * log(s / k + eps)
    return exp(np.where(x < -LOG_CAP, -LOG_CAP, np.where(x > LOG_CAP, LOG_CAP, x)))


def encode_moments(mo: Moments, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(n, d) means and scales of the data rows of Z (history rows first), all at once."""
    rows = mo.h0 + np.arange(len(mo.C))
    M = _pull(mo.C, mo.terms, Z, mo.h0)
    if mo.Cr is not None and mo.rterms is not None:
        high = _pull(mo.Cr, mo.rterms, Z, mo.h0)
        up = rising(lambda lag: Z[rows - lag], mo.k)
        M = np.where(up, M + high, M)
    data = slice(mo.m - mo.h0, None)
    if not mo.windows:
        return M[data], mo.S
    cs = np.zeros((len(rows) + 1, mo.d))
    np.cumsum(np.abs(Z[rows] - M), axis=0, out=cs[1:])
    S = mo.S.copy()
    x = np.arange(mo.m - mo.h0, len(rows))
    for j in range(mo.d):
        S[:, j] = S[:, j] * volatility(mo, j, [cs[x, j] - cs[x - k, j] for k in mo.windows])
    return M[data], S


class Stepper:
    """The decoder's side: accumulators filled as values are decoded, one step at a time.

    Per step: `begin()` (regime indicators and volatility factors, from earlier steps), then
    per column in chain order `moment(j)` and `push(j, z)`, then `end()`."""

    def __init__(self, mo: Moments, Zh: FloatArray, n: int) -> None:
        self.mo = mo
        d, m = mo.d, mo.m
        self.P, self.W = accumulators(mo, n)
        self.offs, self.coefs = _scatter(mo, self.W)
        self.z: list[list[float]] = [[] for _ in range(d)]  # each column's z so far
        self.cs: list[list[float]] = [[0.0] for _ in range(d)]  # running residual sums
        self.mean = [0.0] * d
        self.up = [False] * d
        self.h = [1.0] * d
        self.row = 0
        for r in range(m):
            if r >= mo.h0:
                self.begin()
            for i in mo.order:
                self.mean[i] = self.moment(i)[0]
                self.push(i, float(Zh[r, i]))
            self.end()

    def begin(self) -> None:
        """The regime indicators and volatility factors of the next row."""
        mo, r = self.mo, self.row
        if mo.k:
            k = mo.k
            for j in range(mo.d):
                z = self.z[j]
                recent = z[r - 1]
                for lag in range(2, k + 1):
                    recent += z[r - lag]
                before = z[r - k - 1]
                for lag in range(k + 2, 2 * k + 1):
                    before += z[r - lag]
                self.up[j] = recent > before
        if mo.windows and r >= mo.m:
            x = r - mo.h0
            for j in range(mo.d):
                cs = self.cs[j]
                sums = [np.array([cs[x] - cs[x - k]]) for k in mo.windows]
                self.h[j] = float(volatility(mo, j, sums)[0])

    def moment(self, j: int) -> tuple[float, float]:
        """Mean and scale of column j's cell in the current row (sources before it in the
        chain pushed)."""
        mo, r = self.mo, self.row
        base = r * self.W
        mean = self.P.item(base + j)
        if mo.Cr is not None and self.up[j]:
            mean = mean + self.P.item(base + mo.d + j)
        s = 1.0
        if r >= mo.m:
            s = float(mo.S[r - mo.m, j])
            if mo.windows:
                s = s * self.h[j]
        return mean, s

    def push(self, j: int, z: float) -> None:
        """Column j's value (forward-filled when missing) in the current row; `moment(j)`
        must have been taken (its mean is kept for the residual)."""
        self.z[j].append(z)
        o = self.offs[j]
        if len(o):
            at = self.row * self.W + o
            self.P[at] += self.coefs[j] * z

    def end(self) -> None:
        """Close the row: its residual sizes join the running sums."""
        mo = self.mo
        if mo.windows and self.row >= mo.h0:
            for j in range(mo.d):
                cs = self.cs[j]
                cs.append(cs[-1] + abs(self.z[j][-1] - self.mean[j]))
        self.row += 1


def accumulators(mo: Moments, n: int) -> tuple[FloatArray, int]:
    """The flat accumulators P of the means (W = d floats a row, 2 d with a regime's
    additions; rows for the history, the n steps and the largest lag past them), the
    intercepts filled in from row h0, and W."""
    d, m = mo.d, mo.m
    W = 2 * d if mo.Cr is not None else d
    P = np.zeros((m + n + mo.max_lag + 1) * W)
    P2 = P[: (m + n) * W].reshape(m + n, W)
    P2[mo.h0 :, :d] = mo.C
    if mo.Cr is not None:
        P2[mo.h0 :, d:] = mo.Cr
    return P, W


def _scatter(mo: Moments, W: int) -> tuple[list[IntArray], list[FloatArray]]:
    """Per source column: flat offsets (lag * W + target) and coefficients, so that
    `P[row * W + offs] += coefs * z` adds all of a value's terms at once."""
    d = mo.d
    offs: list[list[int]] = [[] for _ in range(d)]
    coefs: list[list[float]] = [[] for _ in range(d)]
    for shift, terms in ((0, mo.terms), (d, mo.rterms or [])):
        for j, tj in enumerate(terms):
            for lag, i, c in tj:
                offs[i].append(lag * W + shift + j)
                coefs[i].append(c)
    return (
        [np.asarray(o, dtype=np.int64) for o in offs],
        [np.asarray(c, dtype=np.float64) for c in coefs],
    )
