"""Calendar columns of an `exog` series twin, coded as the calendar model scores them.

A calendar column c (values V, see `series.calendar`) gives a cell at step t the probability

    (1 - η) q_t(v) [cell is v's]  +  η · N(0, 1) mass of the cell (z space),
    q_t(v) = (1 - λ_t) k_t(v) + λ_t [v = the value before]

It is coded as one row over [v_1 .. v_|V|, other, unused]: `(1 - η) q_t(v) + η N(v)` for each
value's cell, `η (1 - Σ N(v))` for any other cell and `(1 - η) λ_t` left unused when the value
before is not in V (the model gives that mass to no cell). Another cell is then coded by the
bisection of cells.py under N(0, 1) with V's cells taken out of every part, so its
probability is `η N(cell)` exactly. The rows are computed by the same elementwise operations
for one step (decoder) or all (encoder). A column whose values do not map one to one onto
grid cells, or has more values than a row holds, keeps its linear-Gaussian coding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .cells import ROW, WINDOW_SD, ColumnCode, FloatArray, IntArray

if TYPE_CHECKING:
    from ..series.calendar import CalendarModel
    from ..series.twin import SeriesTwin


@dataclass(frozen=True)
class CalCode:
    """One calendar column's coding: its values' cells and their N(0, 1) masses, the
    per-step tables, and the column's cells under N(0, 1) without V's."""

    model: CalendarModel
    ci: int
    cells: IntArray  # (nv,) the grid cell of each value in V
    nmass: FloatArray  # (nv,) N(0, 1) mass of those cells
    rest: float  # 1 - sum(nmass): the N(0, 1) mass of every other cell
    eta: float
    K: FloatArray  # (n, nv) k_t(v) of each step
    lam: FloatArray  # (n,) λ_t
    other: ColumnCode  # N(0, 1) over the column's cells, V's cells taken out


def calendar_codes(twin: SeriesTwin, cols: list[ColumnCode], steps: IntArray) -> dict[int, CalCode]:
    """Column -> its CalCode, for the calendar columns that can be coded this way."""
    cal = twin.model.calendar
    out: dict[int, CalCode] = {}
    if cal is None:
        return out
    for ci, j in enumerate(int(c) for c in cal.cols):
        nv = int(cal.nvals[ci])
        col = cols[j]
        cells = np.round(cal.values[ci, :nv] / col.delta).astype(np.int64)
        if nv + 2 > ROW or len(np.unique(cells)) != nv:
            continue
        if not np.array_equal(cal.index(ci, col.z_of(cells)), np.arange(nv)):
            continue
        one, zero = np.ones(1), np.zeros(1)
        std = dataclasses.replace(
            col, w=one, mu=zero, sd=one, half=WINDOW_SD,
            mu3=zero[:, None, None], sd3=one[:, None, None], w3=one[:, None, None],
        )  # fmt: skip
        edges = col.edges_z(np.stack([cells, cells + 1], axis=1))
        nmass = std.masses(edges, np.zeros(nv), np.ones(nv))[:, 0]
        K, lam = cal.key_probs(ci, steps)
        other = dataclasses.replace(std, skip_cells=cells, skip_mass=nmass)
        rest = 1.0 - float(np.sum(nmass))
        out[j] = CalCode(cal, ci, cells, nmass, rest, float(cal.eta[ci]), K[:, :nv], lam, other)
    return out


def first_rows(cc: CalCode, t: IntArray, z_prev: FloatArray) -> FloatArray:
    """(n, ROW) rows of steps t over [values, other, unused], given the z before each."""
    prev = cc.model.index(cc.ci, z_prev)
    lam = cc.lam[t]
    q = (1.0 - lam)[:, None] * cc.K[t]
    has = np.flatnonzero(prev >= 0)
    q[has, prev[has]] += lam[has]
    nv = len(cc.cells)
    rows = np.zeros((len(t), ROW))
    rows[:, :nv] = (1.0 - cc.eta) * q + cc.eta * cc.nmass
    rows[:, nv] = cc.eta * cc.rest
    rows[:, nv + 1] = np.where(prev >= 0, 0.0, (1.0 - cc.eta) * lam)
    return rows
