"""Values recorded with more decimals than their column's grid, scored exactly.

A column's grid is δ = 10^-dec (its recorded precision, `io._decimals_of`): the decimals that
99.5 % of its values are written with. The rare value with more digits (an interpolated
16.7333333333333 in a column of one-decimal temperatures) is not rounded onto the grid; it
gets its own mass. Every recorded value v lies in one grid cell [k - ½, k + ½)·δ, and

    P(v) = P_model(cell k) · (1 - φ)                                   v on the grid
    P(v) = P_model(cell k) · φ · P(d) / (9 · 10^(d-1))                  v has d ≥ 1 more decimals

φ is the column's mass per value for finer values ((m + ½)/(n + 1): m of the n training
values were finer). P(d) = 2^-d for d < D and 2^-(D-1) for d = D (D = `MAX_EXTRA`), so the
P(d) sum to one; the cell holds exactly 9 · 10^(d-1) points with exactly d more decimals
(those of the finer grid that are not on the next coarser one), so the points of a cell
share its mass (1 - φ) + φ = 1 and the likelihood stays a normalised probability of the data
as recorded. Digits past D more decimals (beyond what a float holds) are rounded to D.
Finer values are scored and compressed but never sampled (like the escape beyond a bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

MAX_EXTRA = 18  # decimals beyond the grid at most (9·10^17 points a cell fit an int64)


@dataclass
class Finer:
    """The finer values of a column: where they are and their exact digits.

    `where`: their indices; `extra`: d, decimals beyond the grid (1..MAX_EXTRA); `cell`: the
    grid cell k holding each; `index`: its rank among the cell's 9·10^(d-1) points."""

    where: np.ndarray
    extra: np.ndarray
    cell: np.ndarray
    index: np.ndarray

    @classmethod
    def none(cls) -> Finer:
        e = np.zeros(0, dtype=np.int64)
        return cls(e, e, e, e)

    def only(self, keep: np.ndarray) -> Finer:
        """The finer values where `keep` (a mask over them) holds."""
        return Finer(self.where[keep], self.extra[keep], self.cell[keep], self.index[keep])


def off_grid(x: np.ndarray, decimals: int) -> np.ndarray:
    """Which values are not on the grid 10^-decimals (NaN: no); float noise in the last
    digits (18.200000000000003 for 18.2) counts as on the grid."""
    with np.errstate(over="ignore", invalid="ignore"):
        g = np.asarray(x, dtype=float) * 10.0**decimals
        r = np.abs(g - np.round(g))
        return np.isfinite(g) & (r > np.maximum(1e-9, np.abs(g) * 4e-16))


def find_finer(x: np.ndarray, decimals: int) -> Finer:
    """The finer values of `x` (floats read from the recorded text) on the grid 10^-decimals."""
    where = np.flatnonzero(off_grid(x, decimals))
    if len(where) == 0:
        return Finer.none()
    parts = [_digits(float(x[i]), decimals) for i in where]
    keep = [p is not None for p in parts]
    got = [p for p in parts if p is not None]
    out = np.array(got, dtype=np.int64).reshape(-1, 3)
    return Finer(where[np.array(keep, dtype=bool)], out[:, 0], out[:, 1], out[:, 2])


def _digits(v: float, decimals: int) -> tuple[int, int, int] | None:
    """(d, cell k, index) of one value (None: on the grid once rounded to MAX_EXTRA)."""
    exact = Decimal(repr(v))
    d = min(max(0, -exact.normalize().as_tuple().exponent - decimals), MAX_EXTRA)  # type: ignore[operator]
    f = int(exact.scaleb(decimals + d).to_integral_value())
    while d > 0 and f % 10 == 0:
        f, d = f // 10, d - 1
    if d == 0:
        return None
    k = (f + 5 * 10 ** (d - 1)) // 10**d
    if abs(k) >= 1 << 62:
        return None
    return d, k, _rank(f, k, d)


def _rank(f: int, k: int, d: int) -> int:
    """The rank of the fine point f among the non-multiples of 10 in the cell's range
    [k·10^d - 5·10^(d-1), (k+1)·10^d - 5·10^(d-1))."""
    a = k * 10**d - 5 * 10 ** (d - 1)
    q, s = divmod(a, 10)
    m, r = divmod(f - 10 * q, 10)
    return 9 * m + r - 1 - max(s - 1, 0)


def point(k: int, d: int, index: int) -> int:
    """The fine point (an integer at 10^-(decimals + d)) of rank `index` in cell k."""
    a = k * 10**d - 5 * 10 ** (d - 1)
    q, s = divmod(a, 10)
    g = index + max(s - 1, 0)
    return 10 * q + 1 + g + g // 9


def text_of(k: int, d: int, index: int, decimals: int) -> str:
    """A finer value written with exactly decimals + d decimals."""
    f = point(k, d, index)
    places = decimals + d
    sign = "-" if f < 0 else ""
    digits = str(abs(f)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def log_p_extra(d: np.ndarray) -> np.ndarray:
    """log P(d) + log 1/(9·10^(d-1)): the digits' share of a finer value's mass."""
    d = np.asarray(d, dtype=float)
    log_pd = np.where(d < MAX_EXTRA, -d, -(MAX_EXTRA - 1.0)) * math.log(2.0)
    return log_pd - math.log(9.0) - (d - 1.0) * math.log(10.0)


def mass(x: np.ndarray, decimals: int) -> float:
    """φ from training values: (finer + ½) / (observed + 1)."""
    x = x[~np.isnan(x)]
    return (len(find_finer(x, decimals).where) + 0.5) / (len(x) + 1.0)


def adjust(x: np.ndarray, decimals: int, phi: float) -> tuple[np.ndarray, Finer]:
    """Each observed value's log-probability term for the grid (log(1 - φ) on it, log φ +
    `log_p_extra` off it) and the finer values; x is unchanged (see `snap`)."""
    fin = find_finer(x, decimals)
    adj = np.full(len(x), math.log1p(-phi))
    adj[fin.where] = math.log(phi) + log_p_extra(fin.extra)
    return adj, fin


def snap(x: np.ndarray, fin: Finer, decimals: int) -> np.ndarray:
    """x with each finer value replaced by its cell's grid value."""
    if len(fin.where) == 0:
        return x
    out = np.array(x, dtype=float, copy=True)
    out[fin.where] = fin.cell * 10.0 ** (-decimals)
    return out
