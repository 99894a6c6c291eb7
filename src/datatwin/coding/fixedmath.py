"""exp, log and the normal CDF computed the same way on every machine (for the coders).

A compressed file is decoded by recomputing, on the reader's machine, the very float64
probabilities the writer coded with. Library elementary functions do not promise that: numpy's
`exp` and `log` take SIMD paths that depend on the CPU, `scipy.special.ndtr` and `math.exp`
depend on the platform's libm (and scipy's version). These take only IEEE-754 additions,
multiplications and divisions, the exact operations `rint`, `floor`, `frexp` and `ldexp` and
correctly rounded tables, in a fixed order, so numpy (here) and the compiled code
(`_series.c`, compiled without fused multiply-add) give equal bits anywhere:

* exp(x) = 2^m 2^(j/64) p(r): n = rint(64 x / ln 2) = 64 m + j (0 <= j < 64), r = x - n ln2_hi
  / 64 - n ln2_lo / 64 (|r| <= ln 2 / 128; ln2_hi has 32 trailing zero bits, so n ln2_hi / 64
  is exact), p the Taylor polynomial of degree 6 (truncation below 1e-19), 2^(j/64) from a
  table of correctly rounded doubles, 2^m applied by ldexp;
* polynomials are evaluated by Estrin's scheme (pairs, then powers x^2, x^4, x^8), whose
  chains of dependent operations are a third of Horner's;
* log(x) = e ln 2 + 2 atanh(s), x = 2^e m with m in [1/sqrt 2, sqrt 2), f = m - 1 (exact),
  s = f / (2 + f), |s| <= 0.1716, the odd series to s^23;
* ndtr(x) = Phi(x): for t = -x >= 0, Phi(-t) = exp(-t^2 / 2) Q(t) with Q(t) = Phi(-t) e^{t^2/2}
  (smooth) a degree-10 polynomial on each quarter [i / 4, (i + 1) / 4) (`_normal_table.py`,
  interpolated in 50-digit arithmetic by dev/gen_normal_table.py); Phi(x) = 1 - Phi(-x) for
  x > 0; 0 below -39.

Accuracy: a few units in the last place for exp and log; ndtr's relative error grows with t^2
(the rounding of t^2 / 2), about 1e-15 at t = 5 and 1e-13 in the far tail (the tests compare
with scipy). Cross-machine identity is the point: accuracy only has to keep coded sizes at the
model's bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
import numpy.typing as npt

from ._normal_table import COEFFICIENTS, DEGREE, EXP2_TABLE, PER_UNIT, PIECES

FloatArray = npt.NDArray[np.float64]

LN2_HI = 6.93147180369123816490e-01  # ln 2 rounded to 21 significant bits
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
INV_LN2 = 1.4426950408889634  # 1 / ln 2 rounded
EXP_TERMS = [1.0 / math.factorial(n) for n in range(7)]  # 1/n!, n = 0..6
LOG_TERMS = [2.0 / (2 * n + 1) for n in range(12)]  # 2 / (2n + 1), n = 0..11
EXP_MIN = -746.0  # exp below is 0 (the smallest subnormal is 2^-1074 = e^-744.4)
EXP_MAX = 709.0  # exp above: inf (callers clamp first)
SQRT1_2 = 0.70710678118654752440
#: (PIECES, DEGREE + 1) coefficients of Q on the pieces (lowest first)
TABLE = np.asarray(COEFFICIENTS, dtype=np.float64)
assert TABLE.shape == (PIECES, 11) and DEGREE == 10  # the Estrin form below
#: 2^(j / 64), j = 0..63
EXP2 = np.asarray(EXP2_TABLE, dtype=np.float64)


def _exp_poly(r: FloatArray) -> FloatArray:
    """The degree-6 Taylor polynomial of e^r by Estrin's scheme (the compiled one's order)."""
    c = EXP_TERMS
    r2 = r * r
    r4 = r2 * r2
    s0 = (c[0] + c[1] * r) + (c[2] + c[3] * r) * r2
    s1 = (c[4] + c[5] * r) + c[6] * r2
    return s0 + s1 * r4


def _q_poly(c: FloatArray, x: FloatArray) -> FloatArray:
    """sum_d c[d] x^d for degree 10 by Estrin's scheme (pairs, then x^2, x^4, x^8): a short
    chain of dependent operations, in the compiled one's order."""
    x2 = x * x
    x4 = x2 * x2
    x8 = x4 * x4
    q0 = (c[0] + c[1] * x) + (c[2] + c[3] * x) * x2
    q1 = (c[4] + c[5] * x) + (c[6] + c[7] * x) * x2
    q2 = (c[8] + c[9] * x) + c[10] * x2
    return (q0 + q1 * x4) + q2 * x8


def exp_numpy(x: npt.ArrayLike) -> FloatArray:
    """e^x elementwise (0 below EXP_MIN, inf above EXP_MAX, nan for nan)."""
    x = np.asarray(x, dtype=np.float64)
    ok = (x >= EXP_MIN) & (x <= EXP_MAX)
    xs = np.where(ok, x, 0.0)
    n = np.rint(xs * (64.0 * INV_LN2))
    r = (xs - n * (LN2_HI / 64.0)) - n * (LN2_LO / 64.0)
    p = _exp_poly(r)
    ni = n.astype(np.int64)
    j = ni & 63
    out = np.ldexp(EXP2[j] * p, (ni - j) >> 6)
    return np.where(ok, out, np.where(x > EXP_MAX, np.inf, np.where(x < EXP_MIN, 0.0, x)))


def log_numpy(x: npt.ArrayLike) -> FloatArray:
    """ln x elementwise (-inf at 0, nan below 0 and for nan, inf at inf)."""
    x = np.asarray(x, dtype=np.float64)
    ok = (x > 0) & (x < np.inf)
    m, e = np.frexp(np.where(ok, x, 1.0))
    low = m < SQRT1_2
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e).astype(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    p = np.full(x.shape, LOG_TERMS[11])
    for c in reversed(LOG_TERMS[:11]):
        p = p * s2 + c
    out = e * LN2_HI + (e * LN2_LO + s * p)
    return np.where(ok, out, np.where(x == 0, -np.inf, np.where(x == np.inf, np.inf, np.nan)))


def lower_tail_numpy(t: npt.ArrayLike) -> FloatArray:
    """Phi(-t) for t >= 0 (and nan for nan)."""
    t = np.asarray(t, dtype=np.float64)
    ok = t < PIECES / PER_UNIT
    ts = np.where(ok, t, 0.0)
    i = np.floor(ts * PER_UNIT)
    x = 2.0 * (ts * PER_UNIT - i) - 1.0
    c = TABLE.T[:, i.astype(np.int64)]  # (DEGREE + 1, n)
    q = _q_poly(c, x)
    out = exp_numpy(-(ts * ts) * 0.5) * q
    return np.where(ok, out, np.where(np.isnan(t), np.nan, 0.0))


def ndtr_numpy(x: npt.ArrayLike) -> FloatArray:
    """Phi(x), the standard normal CDF, elementwise."""
    x = np.asarray(x, dtype=np.float64)
    tail = lower_tail_numpy(np.abs(x))
    return np.where(x > 0, 1.0 - tail, tail)


# ---------------------------------------------------------------------------------- compiled

compiled: ModuleType | None
try:  # the same functions compiled (_series.c), when the optional extension was built
    from . import _series

    compiled = _series
except ImportError:  # pragma: no cover - installs without a C compiler
    compiled = None
else:
    _series.set_constants(
        np.array([LN2_HI, LN2_LO, INV_LN2, SQRT1_2, EXP_MIN, EXP_MAX, *EXP_TERMS, *LOG_TERMS]),
        np.ascontiguousarray(TABLE),
        EXP2,
        PIECES,
        DEGREE,
        PER_UNIT,
    )


def _apply(
    name: str, fallback: Callable[[npt.ArrayLike], FloatArray]
) -> Callable[[npt.ArrayLike], FloatArray]:
    def f(x: npt.ArrayLike) -> FloatArray:
        if compiled is None:
            return fallback(x)
        a = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty_like(a)
        getattr(compiled, name)(a, out)
        return out

    f.__doc__ = fallback.__doc__
    return f


#: e^x, ln x, Phi(x) and Phi(-t) (t >= 0) elementwise: compiled when built, else numpy (equal
#: bits either way)
exp = _apply("exp", exp_numpy)
log = _apply("log", log_numpy)
ndtr = _apply("ndtr", ndtr_numpy)
lower_tail = _apply("lower_tail", lower_tail_numpy)


def softmax_rows_numpy(
    h: FloatArray, wT: FloatArray, b: FloatArray, seen: FloatArray, prior: FloatArray, eps: float
) -> FloatArray:
    """`softmax_rows` in numpy: the same operations in the same order (elementwise only)."""
    acc = np.repeat(b[None, :], len(h), axis=0)
    for k in range(wT.shape[0]):
        acc = acc + h[:, k : k + 1] * wT[k][None, :]
    on = seen != 0.0
    m = np.max(np.where(on[None, :], acc, -np.inf), axis=1, keepdims=True)  # exact, any order
    q = np.where(on[None, :], exp_numpy(acc - m), 0.0)
    s = np.zeros(len(h))
    for j in range(q.shape[1]):
        s = s + q[:, j]
    return (1.0 - eps) * (q / s[:, None]) + eps * prior[None, :]


def softmax_rows(
    h: npt.ArrayLike,
    w: npt.ArrayLike,
    b: npt.ArrayLike,
    seen: npt.ArrayLike,
    prior: npt.ArrayLike,
    eps: float,
) -> FloatArray:
    """Rows (n, V) of `(1 - eps) softmax_seen(w h + b) + eps prior` for h (n, H), w (V, H),
    with the product, the softmax's sum and its exp in one fixed order of float64 operations
    (`_dense.h`), so every CPU gives the same bits (BLAS and numpy's reductions do not
    promise that). Unseen outcomes get `eps prior` alone."""
    f64 = np.float64
    hh = np.ascontiguousarray(h, dtype=f64)
    wT = np.ascontiguousarray(np.asarray(w, dtype=f64).T)
    bb, pr = np.ascontiguousarray(b, dtype=f64), np.ascontiguousarray(prior, dtype=f64)
    on = np.ascontiguousarray(np.asarray(seen, dtype=bool), dtype=f64)
    if compiled is None:
        return softmax_rows_numpy(hh, wT, bb, on, pr, float(eps))
    out = np.empty((len(hh), len(bb)))
    compiled.softmax_rows(hh, wT, bb, on, pr, float(eps), out)
    return out
