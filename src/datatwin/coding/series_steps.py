"""Series: the cells of every step coded with the twin's one-step predictive, in step order.

For step t and column j, in the model's chain order (so the contemporaneous terms are known):

* missing or not (`P(missing) = r_j`, the column's missing rate; nothing when r_j = 0);
* for a bounded column, outside its support or not (`P = ε`); outside: which side (½ each when
  both are bounded), then the cells beyond, geometric as `precision.escape_log_prob`;
* inside: the cell under the predictive `mean_j(t) + s_j(t) e` (cells.py); a value below or
  above the level-0 window is coded by its distance (Elias-gamma style).

The conditional means and scales (with a regime's additions and a volatility scale) come from
series_moments.py: the encoder computes them for all steps at once, the decoder step by step
with O(lags) work a value, both bit-identical.

Encoding is vectorised: for a chunk of steps every row (flags padded to the common width, the
cells' levels) is computed at once, sorted into stream order and coded in one coder call; the
rare symbols (escapes, values beyond the window) are coded in their place by `Scalar`.
Decoding is sequential; everything that does not depend on a decoded value (intercepts,
phase scales, flag rows, scatter offsets) is precomputed. The loop is compiled when the
optional extension was built (series_compiled.py, `_series.c`), with the same rows.

The calendar columns of an `exog` twin are coded as the calendar model scores them
(series_calendar.py). A cell below the coder's floor (2**-24 a symbol) costs less than the
twin says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..series.ar import forward_fill
from . import series_compiled
from .cells import (
    ROW,
    ColumnCode,
    FloatArray,
    IntArray,
    level,
    level0,
    row_bits,
    split_edges,
    split_one,
    which,
)
from .coder import Decoder, Encoder, _categorical_family
from .series_calendar import CalCode, calendar_codes, first_rows
from .series_moments import Moments, Stepper, encode_moments, make_moments
from .values import geometric_code
from .wire import CompressedFileError

if TYPE_CHECKING:
    from ..series.twin import SeriesTwin

#: a missing cell in the (n, d) array of cells
MISSING = np.iinfo(np.int64).min
#: stream position of a symbol: ((step * d + chain position) * _SEQ + its index in the value)
_SEQ = 16
#: rows computed at once by the encoder (bounds its memory: ROW floats per row)
_CHUNK_ROWS = 1 << 14
#: decode with the compiled loop when it was built (the tests compare both)
COMPILED = True


@dataclass
class Plan:
    """What both directions precompute: columns, chain order, scales, history, moments."""

    cols: list[ColumnCode]
    order: list[int]
    m: int  # history rows
    S: FloatArray  # (n, d) residual scale multipliers of the seasonal phase
    Zh: FloatArray  # (m, d) history in model space (forward-filled)
    cal: dict[int, CalCode]  # calendar columns coded as the calendar model scores them
    moments: Moments  # intercepts and terms of the means, volatility and regime parameters


def make_plan(twin: SeriesTwin, n: int, base: int) -> Plan:
    """The plan for `n` steps starting at step index `base`."""
    model = twin.model
    d = len(twin.cols.names)
    cols = [ColumnCode.of(twin, j) for j in range(d)]
    steps = base + np.arange(n)
    S = np.ones((n, d))
    if model.phase_scale is not None:
        S = np.ascontiguousarray(model.phase_scale[:, steps % model.phase_scale.shape[1]].T)
    hist = twin.tail
    Zh = np.full(hist.shape, np.nan)
    for j, col in enumerate(cols):
        ok = ~np.isnan(hist[:, j])
        Zh[ok, j] = col.z_of(np.round(hist[ok, j] / col.delta).astype(np.int64))
    cal = calendar_codes(twin, cols, steps)
    mo = make_moments(model, len(hist), n, base, S)
    return Plan(cols, model.order(), len(hist), S, forward_fill(Zh), cal, mo)


# ---------------------------------------------------------------------------------- rare


class Scalar:
    """Symbols coded one at a time (escapes, values beyond the window): both directions."""

    def __init__(self, enc: Encoder | None, dec: Decoder | None) -> None:
        self.enc, self.dec = enc, dec
        self.bits = 0.0

    def cat(self, probs: FloatArray, symbol: int) -> int:
        row = np.ascontiguousarray(probs, dtype=np.float64)[None, :]
        if self.enc is not None:
            self.enc._coder.encode(np.array([symbol], dtype=np.int32), _FAMILY, row)
            self.bits += float(row_bits(row, np.array([symbol]))[0])
            return symbol
        assert self.dec is not None
        return int(self.dec._coder.decode(_FAMILY, row)[0])

    def flag(self, p1: float, value: bool) -> bool:
        return bool(self.cat(np.array([1.0 - p1, p1]), int(value)))

    def uniform(self, size: int, value: int) -> int:
        if self.enc is not None:
            self.bits += self.enc.encode_uniform(np.array([value]), np.array([size]))
            self.enc.bits = 0.0
            return value
        assert self.dec is not None
        return int(self.dec.decode_uniform(np.array([size]))[0])

    def gamma(self, value: int) -> int:
        """value >= 1: its bit length (uniform over 1..64) then the bits below the top one."""
        nb = self.uniform(64, value.bit_length() - 1 if value >= 1 else 0) + 1
        low = self.uniform(1 << (nb - 1), value - (1 << (nb - 1)) if value >= 1 else 0)
        return (1 << (nb - 1)) + low

    def geometric(self, rho: float, value: int) -> int:
        """P(j) = (1-ρ) ρ^j, j >= 0 (continue flags, then a gamma code past 64 of them)."""
        k, ratio, bit_p = geometric_code(rho)
        q, r = value >> k, value & ((1 << k) - 1)
        out_q = 0
        while out_q < 64 and self.flag(ratio, q > out_q):
            out_q += 1
        if out_q == 64:
            out_q += self.gamma(q - 63 if self.enc is not None else 1) - 1
        out_r = 0
        for i, p in enumerate(bit_p):
            out_r |= int(self.flag(p, bool((r >> i) & 1))) << i
        return (out_q << k) | out_r

    def outside(self, col: ColumnCode, k: int) -> int:
        """The cell of a value beyond the support: its side, then the cells beyond."""
        low = col.lo_k is not None and k < col.lo_k
        low = self.flag(0.5, low) if col.sides == 2 else col.lo_k is not None
        if low:
            assert col.lo_k is not None
            return col.lo_k - 1 - self.geometric(col.rho, col.lo_k - k - 1)
        assert col.hi_k is not None
        return col.hi_k + 1 + self.geometric(col.rho, k - col.hi_k - 1)


_FAMILY = _categorical_family()


# ---------------------------------------------------------------------------------- encode


@dataclass
class _Batch:
    """A chunk's symbols before sorting: keys, symbols, rows, and the rare symbols."""

    keys: list[IntArray]
    syms: list[IntArray]
    rows: list[FloatArray]
    rare: list[tuple[int, Callable[[Scalar], None]]]

    def add(self, keys: IntArray, syms: IntArray, rows: FloatArray) -> None:
        if len(keys):
            self.keys.append(keys)
            self.syms.append(np.asarray(syms, dtype=np.int64))
            self.rows.append(np.broadcast_to(rows, (len(keys), ROW)))


def encode_cells(twin: SeriesTwin, enc: Encoder, K: IntArray, base: int) -> float:
    """Code the cells K (n, d) (MISSING where missing); returns the model's bits."""
    with np.errstate(all="ignore"):  # infinities at bounds and far tails are expected
        return _encode_cells(twin, enc, K, base)


def _encode_cells(twin: SeriesTwin, enc: Encoder, K: IntArray, base: int) -> float:
    n, d = K.shape
    plan = make_plan(twin, n, base)
    for j, col in enumerate(plan.cols):
        if col.miss_rate <= 0 and np.any(K[:, j] == MISSING):
            raise InputError(
                f"column {twin.cols.names[j]!r} has missing values but the training data "
                "had none, so this model gives them no probability"
            )
    Zd = np.full((n, d), np.nan)
    for j, col in enumerate(plan.cols):
        ok = K[:, j] != MISSING
        Zd[ok, j] = col.z_of(K[ok, j])
    Z = forward_fill(np.vstack([plan.Zh, Zd]))
    M, S = encode_moments(plan.moments, Z)
    scalar = Scalar(enc, None)
    bits = 0.0
    step = max(1, _CHUNK_ROWS // (8 * d))
    for t0 in range(0, n, step):
        batch = _Batch([], [], [], [])
        for p, j in enumerate(plan.order):
            _column(batch, plan, j, K, Z, M, S, t0, min(n, t0 + step), p, d)
        bits += _emit(enc, scalar, batch)
    return bits + scalar.bits


def _column(
    b: _Batch, plan: Plan, j: int, K: IntArray, Z: FloatArray, M: FloatArray, S: FloatArray,
    t0: int, t1: int, p: int, d: int,
) -> None:  # fmt: skip
    """Column j's symbols of steps t0..t1 into the batch: flags, then the cells."""
    col = plan.cols[j]
    t = np.arange(t0, t1)
    k = K[t0:t1, j]
    key = (t * d + p) * _SEQ
    miss = k == MISSING
    if col.miss_rate > 0:
        b.add(key, miss, col.miss_row)
    out = np.zeros(len(k), dtype=bool)
    if col.eps > 0:
        if col.lo_k is not None:
            out |= ~miss & (k < col.lo_k)
        if col.hi_k is not None:
            out |= ~miss & (k > col.hi_k)
        b.add(key[~miss] + 1, out[~miss], col.esc_row)
        for i in np.flatnonzero(out):
            b.rare.append((int(key[i]) + 2, _outside(col, int(k[i]))))
    ins = ~miss & ~out
    t, k, key = t[ins], k[ins], key[ins]
    cc = plan.cal.get(j)
    if cc is None:
        _cells(b, col, k, key + 2, M[t, j], S[t, j])
        return
    rows = first_rows(cc, t, Z[plan.m + t - 1, j])
    pos = np.searchsorted(cc.cells, k)
    hit = (pos < len(cc.cells)) & (cc.cells[np.minimum(pos, len(cc.cells) - 1)] == k)
    b.add(key + 2, np.where(hit, pos, len(cc.cells)), rows)
    k, key = k[~hit], key[~hit]
    _cells(b, cc.other, k, key + 3, np.zeros(len(k)), np.ones(len(k)))


def _cells(
    b: _Batch, col: ColumnCode, k: IntArray, key: IntArray, mean: FloatArray, s: FloatArray
) -> None:
    """The cells k by bisection under `mean + s e`: level 0 at `key`, a value beyond the
    window at `key + 1`, deeper levels at `key + 1`, `key + 2`, ..."""
    klo, khi = col.window(mean, s)
    e = split_edges(klo, khi)
    rows = level0(col, e, mean, s)
    sym = np.where(k < klo, 0, np.where(k > khi, ROW - 1, 1 + which(e, k)))
    b.add(key, sym, rows)
    for i in np.flatnonzero((sym == 0) | (sym == ROW - 1)):
        b.rare.append((int(key[i]) + 1, _beyond(int(k[i]), int(klo[i]), int(khi[i]))))
    keep = (sym > 0) & (sym < ROW - 1)
    r = np.flatnonzero(keep)
    lo, hi = e[r, sym[keep] - 1], e[r, sym[keep]] - 1
    mean, s, k, key = mean[keep], s[keep], k[keep], key[keep]
    for depth in range(1, _SEQ - 3):
        live = hi > lo
        if not live.any():
            return
        lo, hi, mean, s, k, key = lo[live], hi[live], mean[live], s[live], k[live], key[live]
        e = split_edges(lo, hi)
        rows = level(col, e, mean, s)
        sym = which(e, k)
        b.add(key + depth, sym, rows)
        r = np.arange(len(sym))
        lo, hi = e[r, sym], e[r, sym + 1] - 1
    raise AssertionError("internal error: a cell needs more levels than planned")


def _outside(col: ColumnCode, k: int) -> Callable[[Scalar], None]:
    def code(sc: Scalar) -> None:
        sc.outside(col, k)

    return code


def _beyond(k: int, klo: int, khi: int) -> Callable[[Scalar], None]:
    def code(sc: Scalar) -> None:
        sc.gamma(klo - k if k < klo else k - khi)

    return code


def _emit(enc: Encoder, scalar: Scalar, b: _Batch) -> float:
    """Code a chunk's rows in stream order (one coder call between rare symbols)."""
    if not b.keys:
        return 0.0
    keys = np.concatenate(b.keys)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    syms = np.concatenate(b.syms)[order]
    rows = np.concatenate(b.rows)[order]
    bits = float(np.sum(row_bits(rows, syms)))
    start = 0
    for rare_key, fn in sorted(b.rare, key=lambda x: x[0]):
        stop = int(np.searchsorted(keys, rare_key))
        _encode_rows(enc, syms[start:stop], rows[start:stop])
        fn(scalar)
        start = stop
    _encode_rows(enc, syms[start:], rows[start:])
    return bits


def _encode_rows(enc: Encoder, syms: IntArray, rows: FloatArray) -> None:
    if len(syms):
        enc._coder.encode(syms.astype(np.int32), _FAMILY, np.ascontiguousarray(rows))


# ---------------------------------------------------------------------------------- decode


def decode_cells(twin: SeriesTwin, dec: Decoder, n: int, base: int) -> IntArray:
    """The cells (n, d) coded by `encode_cells` (MISSING where missing)."""
    with np.errstate(all="ignore"):
        return _decode_cells(twin, dec, n, base)


def _decode_cells(twin: SeriesTwin, dec: Decoder, n: int, base: int) -> IntArray:
    d = len(twin.cols.names)
    plan = make_plan(twin, n, base)
    if COMPILED and series_compiled.available(d):
        scalar = Scalar(None, dec)

        def other_cell(j: int) -> int:
            return _decode_cell(dec._coder, scalar, plan.cal[j].other, 0.0, 1.0)

        return series_compiled.decode_compiled(plan, n, dec._coder, scalar, other_cell)
    st = Stepper(plan.moments, plan.Zh, n)
    last = plan.Zh[-1].copy() if plan.m else np.zeros(d)
    out = np.zeros((n, d), dtype=np.int64)
    coder, scalar = dec._coder, Scalar(None, dec)
    cols = plan.cols
    for t in range(n):
        st.begin()
        for i in plan.order:
            col = cols[i]
            cc = plan.cal.get(i)
            mean, s = st.moment(i)
            st.mean[i] = mean
            if cc is None:
                k = _decode_value(coder, scalar, col, mean, s)
            else:
                k = _decode_calendar(coder, scalar, cc, col, t, last[i])
            if k == MISSING:
                z = last[i]
            else:
                z = float(col.z_of(np.array([k]))[0])
                last[i] = z
            out[t, i] = k
            st.push(i, float(z))
        st.end()
    return out


def _flags(coder: object, scalar: Scalar, col: ColumnCode) -> int | None:
    """The missing and escape flags: MISSING, an outside cell, or None (a cell follows)."""
    dec = coder.decode  # type: ignore[attr-defined]
    if col.miss_rate > 0 and dec(_FAMILY, col.miss_row[None, :])[0]:
        return int(MISSING)
    if col.eps > 0 and dec(_FAMILY, col.esc_row[None, :])[0]:
        return scalar.outside(col, 0)
    return None


def _decode_value(coder: object, scalar: Scalar, col: ColumnCode, mean: float, s: float) -> int:
    """One value: missing flag, escape flag, then its cell (or MISSING)."""
    flagged = _flags(coder, scalar, col)
    if flagged is not None:
        return flagged
    return _decode_cell(coder, scalar, col, mean, s)


def _decode_calendar(
    coder: object, scalar: Scalar, cc: CalCode, col: ColumnCode, t: int, z_prev: float
) -> int:
    """One value of a calendar column: flags, its value in V or another cell."""
    flagged = _flags(coder, scalar, col)
    if flagged is not None:
        return flagged
    rows = first_rows(cc, np.array([t]), np.array([z_prev]))
    sym = int(coder.decode(_FAMILY, rows)[0])  # type: ignore[attr-defined]
    if sym < len(cc.cells):
        return int(cc.cells[sym])
    if sym > len(cc.cells):
        raise CompressedFileError("compressed file damaged: a calendar value out of range")
    return _decode_cell(coder, scalar, cc.other, 0.0, 1.0)


def _decode_cell(coder: object, scalar: Scalar, col: ColumnCode, mean: float, s: float) -> int:
    """A cell coded by `_cells` under `mean + s e`."""
    dec = coder.decode  # type: ignore[attr-defined]
    mv, sv = np.array([mean]), np.array([s])
    klo, khi = col.window(mv, sv)
    lo, hi = int(klo[0]), int(khi[0])
    e = split_one(lo, hi)
    sym = int(dec(_FAMILY, level0(col, e, mv, sv))[0])
    if sym == 0:
        if col.lo_k is not None and lo <= col.lo_k:
            raise CompressedFileError("compressed file damaged: a value below its bound")
        return lo - scalar.gamma(1)
    if sym == ROW - 1:
        return hi + scalar.gamma(1)
    lo, hi = int(e[0, sym - 1]), int(e[0, sym]) - 1
    while hi > lo:
        e = split_one(lo, hi)
        sym = int(dec(_FAMILY, level(col, e, mv, sv))[0])
        lo, hi = int(e[0, sym]), int(e[0, sym + 1]) - 1
    return lo
