"""A series value's recorded cell as a few fixed-width categorical symbols (vectorised).

Column j's value at a step is a cell k of its recorded grid (value = k · δ). Under the twin's
one-step predictive its probability is the mass of the Gaussian mixture `mean + s e` (in the
column's transformed, standardised space) between the cell's edges; at a bound the tail
beyond it is folded into the boundary cell. The cell is coded by bisection:

* level 0: a window of cells around the mean (±12 residual sds of the widest component) is
  cut into `min(W, cells)` sub-ranges; the symbol is one of [below the window | a sub-range |
  above the window], with masses that are differences of the mixture CDF at the edges;
* each further level cuts the chosen sub-range into `min(W, cells)` parts the same way, until
  one cell is left. The product of the levels' conditional masses telescopes to the cell's
  mass (divided by the window's total, 1 up to rounding), which is what `twin.log_prob`
  scores. Below/above the window the distance is coded apart (see series_steps).

Every row has `ROW = W + 2` entries (deeper levels and flags padded with zeros, which the
coder gives its smallest unit, 2**-24): every symbol of a series is then one row of one
categorical family, so the encoder codes a whole chunk of steps in one coder call.

All functions take arrays (one entry per value) and do the same elementwise float64 operations
whatever their length: the encoder calls them for thousands of values at once, the decoder for
one, and both get bit-identical rows. Logarithms, exponentials and the normal CDF are
fixedmath.py's, so the rows are also the same on every machine; `_series.c` decodes with the
same operations compiled.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..core.parallel import workers
from ..series.precision import effective_lower
from .fixedmath import compiled, exp, log, lower_tail

if TYPE_CHECKING:
    from ..series.twin import SeriesTwin

#: sub-ranges per level
W = 32
#: entries of every coded row: level 0 is [below, W sub-ranges, above]
ROW = W + 2
#: compute level rows with the compiled code when it was built (the tests compare both)
COMPILED = True
#: half-width of the level-0 window, in residual standard deviations
WINDOW_SD = 12.0
_LIM = float(1 << 60)
_TRANSFORMS = {"none": 0, "sqrt": 1, "log": 2}
_PM = np.array([[-1.0, 1.0]])

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ColumnCode:
    """Everything coding column `j` needs that is fixed for the whole file."""

    j: int
    delta: float
    transform: str
    center: float
    scale: float
    lo_k: int | None  # lowest cell of the support (None: unbounded)
    hi_k: int | None
    w: FloatArray  # mixture components with positive weight
    mu: FloatArray
    sd: FloatArray
    half: float  # window half-width per unit of residual scale s
    miss_rate: float
    eps: float  # escape mass (0: no escape flag)
    sides: int  # bounded sides
    rho: float  # geometric ratio of the cells beyond a bound
    miss_row: FloatArray  # (ROW,) [1 - r, r, 0, ...]
    esc_row: FloatArray  # (ROW,) [1 - eps, eps, 0, ...]
    mu3: FloatArray  # (K, 1, 1) component means, shaped for broadcasting
    sd3: FloatArray
    w3: FloatArray  # (K, 1, 1) component weights, shaped for broadcasting
    #: cells coded apart (a calendar column's values): their masses are taken out of the parts
    skip_cells: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    skip_mass: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, twin: SeriesTwin, j: int) -> ColumnCode:
        """Column j of a series twin."""
        cols, m = twin.cols, twin.model
        delta = 10.0 ** (-cols.decimals[j])
        lo = effective_lower(cols.lower[j], twin.transforms[j])
        hi = cols.upper[j]
        keep = m.mix_w[j] > 0
        w, mu, sd = m.mix_w[j][keep], m.mix_mu[j][keep], m.mix_sd[j][keep]
        sides = (lo is not None) + (hi is not None)
        eps = float(cols.escape[j]) if sides else 0.0
        mean_cells = 1.0 + max(float(cols.spread[j]), delta) / delta
        rate = float(twin.missing_rate[j])
        return cls(
            j=j,
            delta=delta,
            transform=twin.transforms[j],
            center=float(twin.center[j]),
            scale=float(twin.scale[j]),
            lo_k=None if lo is None else round(lo / delta),
            hi_k=None if hi is None else round(hi / delta),
            w=w,
            mu=mu,
            sd=sd,
            half=float(np.max(np.abs(mu) + WINDOW_SD * sd)),
            miss_rate=rate,
            eps=max(eps, 0.0),
            sides=sides,
            rho=1.0 - 1.0 / mean_cells,
            miss_row=flag_row(rate),
            esc_row=flag_row(max(eps, 0.0)),
            mu3=mu[:, None, None],
            sd3=sd[:, None, None],
            w3=w[:, None, None],
        )

    @classmethod
    def normal(cls, j: int, step: float) -> ColumnCode:
        """A column whose cells [k - ½, k + ½) · step are scored under N(mean, s²): no
        transform, no bounds, one standard-normal component (the residual scale is `s`)."""
        one, zero = np.ones(1), np.zeros(1)
        return cls(
            j=j,
            delta=step,
            transform="none",
            center=0.0,
            scale=1.0,
            lo_k=None,
            hi_k=None,
            w=one,
            mu=zero,
            sd=one,
            half=WINDOW_SD,
            miss_rate=0.0,
            eps=0.0,
            sides=0,
            rho=0.0,
            miss_row=flag_row(0.0),
            esc_row=flag_row(0.0),
            mu3=zero[:, None, None],
            sd3=one[:, None, None],
            w3=one[:, None, None],
        )

    @functools.cached_property
    def layout(self) -> tuple[FloatArray, IntArray, FloatArray]:
        """The column as the compiled code reads it (`_series.c`'s F_*, I_* enums): its
        numbers (delta, center, scale, half, z of the log floor), its integers (transform,
        bounds, components, the missing and escape flags; the calendar index -1), and its
        mixture components (weight, mean, sd)."""
        floor = float(((log(np.array([0.5 * self.delta])) - self.center) / self.scale)[0])
        col_f = np.array([self.delta, self.center, self.scale, self.half, floor])
        col_i = np.array([
            _TRANSFORMS[self.transform], self.lo_k is not None, self.lo_k or 0,
            self.hi_k is not None, self.hi_k or 0, len(self.w), 0, self.miss_rate > 0,
            self.eps > 0, -1,
        ], dtype=np.int64)  # fmt: skip
        comp = np.ascontiguousarray(np.stack([self.w, self.mu, self.sd], axis=1), np.float64)
        return col_f, col_i, comp

    def clip(self, k: IntArray) -> IntArray:
        """Cells clipped into the support."""
        if self.lo_k is not None:
            k = np.maximum(k, self.lo_k)
        if self.hi_k is not None:
            k = np.minimum(k, self.hi_k)
        return k

    def z_of(self, k: IntArray) -> FloatArray:
        """History values of cells `k` (as `series.ar.prepare`: clipped into the support)."""
        z = (_forward(self.clip(k) * self.delta, self.transform) - self.center) / self.scale
        if self.transform == "log":
            floor = (log(np.array([0.5 * self.delta])) - self.center) / self.scale
            z = np.where(np.isfinite(z), z, floor[0])
        return z

    def window(self, mean: FloatArray, s: FloatArray) -> tuple[IntArray, IntArray]:
        """The level-0 window [klo, khi] of cells around each mean (inside the support)."""
        z = (mean[:, None] + (s * self.half)[:, None] * _PM) * self.scale + self.center
        x = _inverse(z, self.transform) / self.delta
        k = np.fmin(
            np.fmax(np.concatenate([np.floor(x[:, :1]), np.ceil(x[:, 1:])], 1), -_LIM), _LIM
        )
        k = k.astype(np.int64)
        if self.lo_k is not None:
            k = np.maximum(k, self.lo_k)
        if self.hi_k is not None:
            k = np.minimum(k, self.hi_k)
        return k[:, 0], np.maximum(k[:, 1], k[:, 0])

    def edges_z(self, e: IntArray) -> FloatArray:
        """z of the lower edges of cells `e` (−inf at/below the lowest cell of the support,
        +inf above the highest, −inf where the transform is undefined)."""
        z = (_forward((e - 0.5) * self.delta, self.transform) - self.center) / self.scale
        if self.lo_k is not None:
            z = np.where(e <= self.lo_k, -np.inf, z)
        if self.hi_k is not None:
            z = np.where(e > self.hi_k, np.inf, z)
        if self.transform == "log":  # log of a negative edge
            z = np.where(np.isnan(z), -np.inf, z)
        return z

    def masses(self, z: FloatArray, mean: FloatArray, s: FloatArray) -> FloatArray:
        """(n, E-1) mixture masses between consecutive edges `z` (n, E) of each value.

        With the mixture's lower CDF F and upper CDF G (sums over the components, added in
        component order), a part whose lower edge lies above the mean is G(a) - G(b), any
        other F(b) - F(a): each difference is taken on the side of the smaller tail, so
        far-tail cells keep their relative precision."""
        v = (z - mean[:, None]) / s[:, None]
        u = (v - self.mu3) / self.sd3  # (K, n, E)
        tail = lower_tail(np.abs(u))  # Φ(-|u|): Φ(u) and Φ(-u) are it or 1 minus it
        low = self.w3 * np.where(u > 0, 1.0 - tail, tail)  # w Φ(u)
        up = self.w3 * np.where(u < 0, 1.0 - tail, tail)  # w Φ(-u)
        F, G = low[0], up[0]
        for k in range(1, len(self.w)):
            F = F + low[k]
            G = G + up[k]
        return np.maximum(np.where(v[:, :-1] > 0, G[:, :-1] - G[:, 1:], F[:, 1:] - F[:, :-1]), 0)


def flag_row(p1: float) -> FloatArray:
    """A padded two-symbol row [1 - p1, p1, 0, ...] of ROW entries."""
    row = np.zeros(ROW)
    row[0], row[1] = 1.0 - p1, p1
    return row


def _forward(x: np.ndarray, transform: str) -> np.ndarray:
    """`precision.forward` without its error-state guard (the callers set one once)."""
    if transform == "sqrt":
        return np.sqrt(np.maximum(x, 0.0))
    if transform == "log":
        return log(x)
    return x


def _inverse(z: FloatArray, transform: str) -> FloatArray:
    if transform == "sqrt":
        return np.where(z > 0, z * z, 0.0)
    if transform == "log":
        return exp(np.minimum(z, 700.0))
    return z


def split_edges(lo: IntArray, hi: IntArray) -> IntArray:
    """(n, W+1) edges cutting [lo, hi] into b = min(W, cells) parts, `lo + (i cells) // b`
    (exact in int64 for up to 2**62 cells); past b they repeat hi + 1 (empty parts)."""
    n = hi - lo + 1
    b = np.minimum(W, n)[:, None]
    i = np.minimum(_I[None, :], b)
    q, r = np.divmod(n[:, None], b)
    return lo[:, None] + i * q + (i * r) // b


_I = np.arange(W + 1)
#: for b parts: the part indices 0..b, then b repeated up to W (the decoder's `split_one`)
_IB = [np.minimum(_I, b)[None, :] for b in range(W + 1)]


def split_one(lo: int, hi: int) -> IntArray:
    """`split_edges` of one range, in integer arithmetic (so equal to it exactly)."""
    n = hi - lo + 1
    b = min(W, n)
    q, r = divmod(n, b)
    i = _IB[b]
    return lo + i * q + (i * r) // b


def level0(col: ColumnCode, e: IntArray, mean: FloatArray, s: FloatArray) -> FloatArray:
    """Level-0 rows (n, ROW) over the window's edges `e`: below, parts, above."""
    if _compiles(col, e):
        return _compiled_rows(col, e, mean, s, outer=True)
    inf = np.full((len(e), 1), np.inf)
    rows = col.masses(np.concatenate([-inf, col.edges_z(e), inf], axis=1), mean, s)
    if len(col.skip_cells):
        _skip(rows, e, col, outer=True)
    return _fallback(rows, e, outer=True)


def level(col: ColumnCode, e: IntArray, mean: FloatArray, s: FloatArray) -> FloatArray:
    """A deeper level's rows (n, ROW) over the edges `e` of its parts."""
    if _compiles(col, e):
        return _compiled_rows(col, e, mean, s, outer=False)
    rows = np.zeros((len(e), ROW))
    rows[:, :W] = col.masses(col.edges_z(e), mean, s)
    if len(col.skip_cells):
        _skip(rows, e, col, outer=False)
    return _fallback(rows, e, outer=False)


def _compiles(col: ColumnCode, e: IntArray) -> bool:
    """Whether `_series.level_rows` computes these rows (the same bits as the numpy path)."""
    return COMPILED and compiled is not None and len(e) > 0 and not len(col.skip_cells)


def _compiled_rows(
    col: ColumnCode, e: IntArray, mean: FloatArray, s: FloatArray, outer: bool
) -> FloatArray:
    """The rows from `_series.level_rows`, which releases the GIL: enough work is cut into
    one block per core (`core.parallel.workers`), computed on threads; each row depends
    only on its own value, so the blocks are the same bits as one call."""
    assert compiled is not None
    out = np.empty((len(e), ROW))
    col_f, col_i, comp = col.layout
    e = np.ascontiguousarray(e, dtype=np.int64)
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    s = np.ascontiguousarray(s, dtype=np.float64)
    failed: list[BaseException] = []

    def rows(a: int, b: int) -> None:
        assert compiled is not None
        try:
            compiled.level_rows(col_f, col_i, comp, e[a:b], mean[a:b], s[a:b], out[a:b], outer)
        except BaseException as exc:  # handed to the calling thread below
            failed.append(exc)

    work = len(e) * max(1, comp.size // 3)  # rows × mixture components
    blocks = max(1, min(workers(), work // _WORK_PER_THREAD))
    cuts = np.linspace(0, len(e), blocks + 1).astype(int)
    # threads of this call only (a pool left running would keep core.parallel from forking)
    others = [
        threading.Thread(target=rows, args=(int(a), int(b)), name="datatwin-rows")
        for a, b in zip(cuts[:-2], cuts[1:-1], strict=True)
    ]
    for t in others:
        t.start()
    rows(int(cuts[-2]), int(cuts[-1]))
    for t in others:
        t.join()
    if failed:
        raise failed[0]
    return out


#: rows × components below which a block is not worth a thread. Measured on elecdemand's
#: calls: 682 rows of a 3-component log column took 1.5 ms in one block, 0.9 in two; 682 rows
#: of one component 0.23 ms in one, 0.32 in two (a thread costs ~0.1 ms, and milliseconds to
#: be scheduled on a busy machine: 256 rows a block had made sunspot's small calls slower)
_WORK_PER_THREAD = 768


def _skip(rows: FloatArray, e: IntArray, col: ColumnCode, outer: bool) -> None:
    """Take the skipped cells' masses out of the parts holding them (in place; level 0's
    below and above included), in the skipped cells' order, floored at 0."""
    c = col.skip_cells
    part = (e[:, :, None] <= c[None, None, :]).sum(axis=1) - 1  # (n, cells): -1 = below
    if outer:
        idx, ok = part + 1, np.ones(part.shape, bool)
    else:
        idx, ok = part, (part >= 0) & (part < W)
    r = np.broadcast_to(np.arange(len(e))[:, None], part.shape)
    m = np.broadcast_to(col.skip_mass[None, :], part.shape)
    np.subtract.at(rows, (r[ok], idx[ok]), m[ok])
    np.maximum(rows, 0.0, out=rows)


def _fallback(rows: FloatArray, e: IntArray, outer: bool) -> FloatArray:
    """Rows whose masses all underflow become uniform over their real symbols."""
    dead = ~(rows.max(axis=1) > 0)
    if dead.any():
        parts = (e[dead, 1:] > e[dead, :-1]).sum(axis=1)[:, None]
        idx = np.arange(ROW)[None, :]
        real = (idx <= parts) | (idx == ROW - 1) if outer else idx < parts
        rows[dead] = real.astype(np.float64)
    return rows


def which(e: IntArray, k: IntArray) -> IntArray:
    """Index of the part of each row of edges `e` holding cell k."""
    return (e <= k[:, None]).sum(axis=1) - 1


def row_bits(rows: FloatArray, syms: IntArray) -> FloatArray:
    """Ideal bits of each symbol under its row (the coder's floor 2**-24 for a zero mass)."""
    total = rows.sum(axis=1)
    p = rows[np.arange(len(rows)), syms]
    return np.log2(total) - np.log2(np.maximum(p, total * 2.0**-24))
