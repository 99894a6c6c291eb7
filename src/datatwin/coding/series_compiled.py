"""Series decoding compiled: the plan as flat arrays for `_series.decode_steps`.

The compiled loop (`_series.c`) is series_steps.py's `_decode_cells` with series_moments.py's
`Stepper`, cells.py and series_calendar.py's `first_rows` written in C with the same float
operations, so it decodes the same cells from the same file. This module lays the plan out
for it (`CompiledPlan`: numbers and contiguous arrays, one column per row) and handles what C
hands back to Python: the rare symbols (values outside a bound, beyond the level-0 window, a
calendar column's other cells) and damaged input. Without the extension (or past
MAX_COLUMNS columns) `available` is False and the Python loop decodes, with the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..series.hetero import LOG_CAP
from ..text.steps import paused_gc
from .cells import ROW, ColumnCode, FloatArray, IntArray
from .coder import _Categorical
from .fixedmath import compiled
from .series_moments import _scatter, accumulators
from .wire import CompressedFileError

if TYPE_CHECKING:
    from .series_steps import Plan, Scalar

#: positions in `ColumnCode.layout`'s integers (the C's I_COMP_AT and I_CAL)
I_COMP_AT, I_CAL = 6, 9


#: columns the compiled loop holds (more: the Python loop decodes)
MAX_COLUMNS = 256


def available(d: int) -> bool:
    """Whether the compiled loop can decode a series of d columns."""
    return compiled is not None and d <= MAX_COLUMNS


@dataclass
class CompiledPlan:
    """What `_series.decode_steps` reads (see its enums for the column layouts)."""

    n: int
    d: int
    m: int
    h0: int
    stride: int  # floats per row of P: d, or 2 d with a regime's additions
    max_lag: int
    k: int  # regime window (0: none)
    n_windows: int
    n_cal: int
    cal_width: int  # values of the widest calendar column (cal_K's last axis)
    log_cap: float
    order: IntArray
    P: FloatArray  # accumulators, intercepts filled (written by the decoder)
    offs: IntArray  # per source column, concatenated: offsets lag * stride + target, sorted
    coefs: FloatArray
    run_at: IntArray  # (d + 1,) where each source column's runs start
    run_start: IntArray  # each run of consecutive offsets: its first term
    run_len: IntArray  # and its length
    S: FloatArray  # (n, d) phase scales
    windows: IntArray
    theta: FloatArray  # (d, 1 + n_windows)
    heps: FloatArray  # (d,)
    Zh: FloatArray  # (m, d)
    col_f: FloatArray  # (d, 5): delta, center, scale, half, log floor
    col_i: IntArray  # (d, 10): transform, has lo, lo, has hi, hi, comps, first comp, miss, esc, cal
    comp: FloatArray  # (components, 3): weight, mean, sd
    cal_f: FloatArray  # (calendars, 5): rest, eta, center, scale, delta
    cal_nv: IntArray
    cal_cells: IntArray  # (calendars, ROW)
    cal_nmass: FloatArray
    cal_grid: FloatArray
    cal_K: FloatArray  # (calendars, n, cal_width)
    cal_lam: FloatArray  # (calendars, n)
    out: IntArray  # (n, d) the decoded cells


def _f(a: object) -> FloatArray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _columns(
    cols: list[ColumnCode], cal_of: dict[int, int]
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Per column its numbers (col_f), integers (col_i, with its calendar and first
    component) and mixture components (comp), as `ColumnCode.layout` gives them."""
    col_f, col_i, comp, at = [], [], [], 0
    for j, c in enumerate(cols):
        f, i, k = c.layout
        i = i.copy()
        i[I_COMP_AT], i[I_CAL] = at, cal_of.get(j, -1)
        col_f.append(f)
        col_i.append(i)
        comp.append(k)
        at += len(k)
    return _f(np.stack(col_f)), np.stack(col_i), _f(np.concatenate(comp))


def _calendars(plan: Plan, n: int) -> dict[str, object]:
    """The calendar columns' fields of CompiledPlan (in column order)."""
    cal = sorted(plan.cal)
    nc = len(cal)
    width = max([len(plan.cal[j].cells) for j in cal], default=1)
    cal_f, cal_nv = np.zeros((nc, 5)), np.zeros(nc, np.int64)
    cells, nmass, grid = np.zeros((nc, ROW), np.int64), np.zeros((nc, ROW)), np.zeros((nc, ROW))
    K, lam = np.zeros((nc, n, width)), np.zeros((nc, n))
    for c, j in enumerate(cal):
        cc = plan.cal[j]
        nv, ci, model = len(cc.cells), cc.ci, cc.model
        delta = 10.0 ** (-int(model.decimals[ci]))
        cal_f[c] = [cc.rest, cc.eta, model.center[ci], model.scale[ci], delta]
        cal_nv[c] = nv
        cells[c, :nv], nmass[c, :nv] = cc.cells, cc.nmass
        grid[c, :nv] = np.round(model.values[ci, :nv] / delta)
        K[c, :, :nv], lam[c] = cc.K, cc.lam
    return dict(
        n_cal=nc, cal_width=width, cal_f=cal_f, cal_nv=cal_nv, cal_cells=cells,
        cal_nmass=nmass, cal_grid=grid, cal_K=K, cal_lam=lam,
    )  # fmt: skip


def _runs(
    offs: list[IntArray], coefs: list[FloatArray]
) -> tuple[IntArray, FloatArray, IntArray, IntArray, IntArray]:
    """Each source column's terms sorted by offset (stably) and cut into runs of consecutive
    offsets, which the compiled loop adds as dense vectors. A value's terms reach distinct
    targets (`Stepper.push` adds them with one fancy-indexed `+=`), so their order within
    one push does not change a bit of any sum."""
    flat_o, flat_c, run_at, start, length = [], [], [0], [], []
    at = 0
    for o, c in zip(offs, coefs, strict=True):
        order = np.argsort(o, kind="stable")
        o, c = o[order], c[order]
        cut = np.flatnonzero(np.diff(o) != 1) + 1
        first = np.concatenate([[0], cut]) if len(o) else np.zeros(0, np.int64)
        start.append(at + first)
        length.append(np.diff(np.append(first, len(o))))
        run_at.append(run_at[-1] + len(first))
        flat_o.append(o)
        flat_c.append(c)
        at += len(o)
    i64 = np.int64
    return (
        np.concatenate([np.zeros(0, i64), *flat_o]).astype(i64),
        np.concatenate([np.zeros(0), *flat_c]),
        np.asarray(run_at, i64),
        np.concatenate([np.zeros(0, i64), *start]).astype(i64),
        np.concatenate([np.zeros(0, i64), *length]).astype(i64),
    )


def compiled_plan(plan: Plan, n: int) -> CompiledPlan:
    """`plan` laid out for the compiled loop (P as `Stepper.__init__` fills it)."""
    mo, cols = plan.moments, plan.cols
    d = mo.d
    P, stride = accumulators(mo, n)
    offs, coefs, run_at, run_start, run_len = _runs(*_scatter(mo, stride))
    col_f, col_i, comp = _columns(cols, {j: c for c, j in enumerate(sorted(plan.cal))})
    return CompiledPlan(
        n=n, d=d, m=mo.m, h0=mo.h0, stride=stride, max_lag=mo.max_lag, k=mo.k,
        n_windows=len(mo.windows), log_cap=float(LOG_CAP),
        order=np.asarray(plan.order, dtype=np.int64), P=P,
        offs=offs, coefs=_f(coefs), run_at=run_at, run_start=run_start, run_len=run_len,
        S=_f(plan.S),
        windows=np.asarray(mo.windows, dtype=np.int64),
        theta=_f(mo.theta if mo.theta is not None else np.zeros((d, 1))),
        heps=_f(mo.eps if mo.eps is not None else np.zeros(d)), Zh=_f(plan.Zh),
        col_f=col_f, col_i=col_i, comp=comp,
        out=np.zeros((n, d), np.int64), **_calendars(plan, n),  # type: ignore[arg-type]
    )  # fmt: skip


def decode_compiled(
    plan: Plan, n: int, coder: object, scalar: Scalar, other_cell: object
) -> IntArray:
    """The (n, d) cells, decoded by the compiled loop; `other_cell(j)` decodes a calendar
    column's other cell (rare, in Python)."""
    cp = compiled_plan(plan, n)
    row = np.zeros(ROW)

    def rare(kind: int, j: int) -> int:
        if kind == 0:
            return scalar.outside(plan.cols[j], 0)
        if kind in (1, 2):
            return scalar.gamma(1)
        if kind == 3:
            return other_cell(j)  # type: ignore[operator]
        if kind == 4:
            raise CompressedFileError("compressed file damaged: a value below its bound")
        raise CompressedFileError("compressed file damaged: a calendar value out of range")

    assert compiled is not None
    decode = coder.decode  # type: ignore[attr-defined]
    flags = tuple(_Categorical(r, None, False) for c in plan.cols for r in (c.miss_row, c.esc_row))
    with paused_gc():  # the loop makes millions of short-lived objects and no cycles
        compiled.decode_steps(cp, decode, _Categorical, flags, row, rare)
    return cp.out
