"""Calendar columns: values that are functions of the time stamp (weekday, work day, hour, ...).

A calendar column c takes values in a small set V (its distinct training values). Its
conditional at step t, given the step's clock (phase of the week: weekday × time of day for
sub-daily data, weekday for daily data, step mod season otherwise) and the value before it:

    q_t(v) = λ_s · [v = y[t-1, c]] + (1 - λ_s) · k_t(v)          s = day start or within a day
    k_t(v) = (1 - π) · table[phase(t), v] + π · x(v)             on an ordinary day
           = (1 - ξ) · [v = e] + ξ · table[phase(t), v]          on an exception day (value e)
    P(y[t, c] = cell) = (1 - η) · q_t(v) · [v ∈ V]  +  η · N(0, 1) mass of the cell in z space

`table` holds smoothed frequencies per phase over the ordinary training days (add-½ toward the
column's marginal), λ_s is fit by EM, η = 1/(n+1) leaves every other grid cell a proper
probability (the N(0, 1) cell masses over the whole grid sum to one, so a step's cells sum to
exactly one). **Exceptions** (holidays) are learned from the data's own days: a day whose
observed values are all one value e that differs from the weekly pattern on at least half of
its steps. An exception is keyed by (month, weekday, n-th such weekday of the month), so it
repeats on the same weekday of the same week of that month in other years (a Monday holiday
stays a Monday; fixed-date holidays move by at most six days), with ξ = 1/4. A day can also
be an exception the data has not shown. On a day whose key lies outside the training span (a
holiday of a date the data never covered) that rate π is the rate of exception days among the
training days (add-½), and x the distribution of their values (add-½ toward the marginal), so
a new holiday costs about -log2(π x(e)) bits, not the near-certainty of the weekly pattern.
On a day whose key the training span covered as an ordinary day the rate is π_seen = ξ E / O
(E learned exception keys, O ordinary keys seen): exceptions are conserved, a learned one that
fails to recur (probability ξ) falls on another day, so a simulated year has as many exception
days as the data's year, not the learned ones plus π of every other day.

Simulation draws from the same q_t (vectorised over paths), so a simulated calendar column
follows the future calendar: its weekly pattern and the learned exceptions, not noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..modelfile import require
from .io import fixed_step_ns
from .precision import log_gauss_cell

#: the most distinct values a detected calendar column may have (declared ones: MAX_DECLARED)
MAX_VALUES = 32
MAX_DECLARED = 256
#: share of training steps the weekly pattern (with its exception days) must explain
DETECT_SHARE = 0.95
XI = 0.25
_DAY_NS = 86_400 * 10**9


@dataclass
class Clock:
    """Each step's calendar: phase of the key, day start, day id and exception key."""

    kind: str = "steps"  # "datetime" (weekday / time of day) or "steps" (step mod period)
    period: int = 1  # phases of the key
    per_day: int = 1  # steps per day (datetime)
    origin_ns: int = 0  # time of step 0 (datetime)
    step_ns: int = 0  # one step (datetime)

    @classmethod
    def of(cls, axis: Any, period: int | None) -> Clock | None:
        """The clock of a time axis (None when it has no calendar: no time, no season)."""
        import pandas as pd

        if axis.kind == "datetime" and axis.freq and axis.first is not None:
            step_ns = fixed_step_ns(pd.tseries.frequencies.to_offset(axis.freq))
            if step_ns and step_ns > 0 and _DAY_NS % step_ns == 0:
                per_day = _DAY_NS // step_ns
                origin = int(pd.Timestamp(axis.first).value)
                return cls("datetime", 7 * per_day, per_day, origin, step_ns)
        if period and period > 1:
            return cls("steps", int(period))
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "period": self.period,
            "per_day": self.per_day,
            "origin_ns": self.origin_ns,
            "step_ns": self.step_ns,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str) -> Clock:
        require(isinstance(d, dict), source, "calendar clock")
        c = cls(
            str(d.get("kind")),
            int(d.get("period", 0)),
            int(d.get("per_day", 0)),
            int(d.get("origin_ns", 0)),
            int(d.get("step_ns", 0)),
        )
        require(c.kind in ("datetime", "steps") and c.period >= 1, source, "calendar clock")
        require(c.per_day >= 1 and (c.kind == "steps" or c.step_ns > 0), source, "calendar clock")
        return c

    def keys(self, steps: np.ndarray) -> tuple[np.ndarray, ...]:
        """(phase, day start, day id, exception key or -1) of each step index."""
        steps = np.asarray(steps, dtype=np.int64)
        if self.kind == "steps":
            ones = np.ones(len(steps), dtype=bool)
            return steps % self.period, ones, steps, np.full(len(steps), -1, dtype=np.int64)
        ts = self.origin_ns + steps * self.step_ns
        days = np.floor_divide(ts, _DAY_NS)
        sod = (ts - days * _DAY_NS) // self.step_ns
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        phase = weekday * self.per_day + sod
        D = days.astype("datetime64[D]")
        M = D.astype("datetime64[M]")
        month = (M - D.astype("datetime64[Y]").astype("datetime64[M]")).astype(np.int64) + 1
        dom = (D - M.astype("datetime64[D]")).astype(np.int64) + 1
        key = month * 100 + weekday * 10 + (dom - 1) // 7
        return phase, sod == 0, days, key


@dataclass
class CalendarModel:
    """The calendar columns of a series model (see the module docstring)."""

    cols: np.ndarray  # (c,) column indices
    values: np.ndarray  # (c, V) values (padded with the last one)
    nvals: np.ndarray  # (c,) number of values of each column
    table: np.ndarray  # (c, period, V) probabilities of each phase (0 beyond nvals)
    lam: np.ndarray  # (c, 2) persistence weight at a day start / within a day
    exc_keys: np.ndarray  # (c, E) exception keys (-1: none)
    exc_vals: np.ndarray  # (c, E) value index of each exception
    eta: np.ndarray  # (c,) mass of the N(0, 1) cell component
    center: np.ndarray  # (c,) standardiser of each column (z = (y - center) / scale)
    scale: np.ndarray
    decimals: np.ndarray  # (c,)
    clock: Clock = field(default_factory=Clock)
    #: (c,) rate π of exception days not learned, and (c, V) their values' distribution x
    #: (None: no new exceptions, model files written before they existed)
    novel_rate: np.ndarray | None = None
    novel_dist: np.ndarray | None = None
    #: (c, S) keys of the days the training span covered (-1: padding), and (c,) the rate
    #: π_seen of new exceptions on those days (None: π everywhere, older model files)
    seen_keys: np.ndarray | None = None
    seen_rate: np.ndarray | None = None

    # ---- values <-> indices --------------------------------------------------------------
    def index(self, ci: int, z: np.ndarray) -> np.ndarray:
        """Index in V of standardised values z of calendar column ci (-1: not in V)."""
        delta = 10.0 ** (-int(self.decimals[ci]))
        k = np.round((self.center[ci] + self.scale[ci] * z) / delta)
        grid = np.round(self.values[ci, : self.nvals[ci]] / delta)
        pos = np.clip(np.searchsorted(grid, k), 0, len(grid) - 1)
        return np.where(grid[pos] == k, pos, -1)

    def key_probs(self, ci: int, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k_t(v) for each step (n, V), persistence weight λ of each step (n,))."""
        phase, start, _, key = self.clock.keys(steps)
        k = self.table[ci][phase % self.clock.period].copy()
        ek = self.exc_keys[ci]
        live = ek >= 0
        if live.any() and (key >= 0).any():
            order = np.argsort(ek[live])
            sk, sv = ek[live][order], self.exc_vals[ci][live][order]
            pos = np.clip(np.searchsorted(sk, key), 0, len(sk) - 1)
            hit = sk[pos] == key
            if hit.any():
                k[hit] *= XI
                k[np.flatnonzero(hit), sv[pos[hit]]] += 1.0 - XI
        else:
            hit = np.zeros(len(k), dtype=bool)
        if self.novel_rate is not None and self.novel_dist is not None:
            pi = self._novel_rates(ci, key)[~hit, None]
            k[~hit] = (1.0 - pi) * k[~hit] + pi * self.novel_dist[ci]
        lam = np.where(start, self.lam[ci, 0], self.lam[ci, 1])
        return k, lam

    def _novel_rates(self, ci: int, key: np.ndarray) -> np.ndarray:
        """Rate of a new exception on each step's day: π_seen on keys the training span
        covered, π elsewhere."""
        assert self.novel_rate is not None
        rate = np.full(len(key), float(self.novel_rate[ci]))
        if self.seen_keys is not None and self.seen_rate is not None:
            seen = self.seen_keys[ci][self.seen_keys[ci] >= 0]
            rate[(key >= 0) & np.isin(key, seen)] = float(self.seen_rate[ci])
        return rate

    # ---- likelihood ----------------------------------------------------------------------
    def log_probs(
        self,
        ci: int,
        z: np.ndarray,
        z_prev: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        steps: np.ndarray,
    ) -> np.ndarray:
        """Log mass of each observed cell (z; edges a, b) given the value before it."""
        k, lam = self.key_probs(ci, steps)
        idx = self.index(ci, z)
        prev = self.index(ci, z_prev)
        n = len(z)
        rows = np.arange(n)
        q = (1.0 - lam) * k[rows, np.maximum(idx, 0)]
        q = q + lam * ((prev == idx) & (prev >= 0))
        q = np.where(idx >= 0, q, 0.0)
        eta = float(self.eta[ci])
        with np.errstate(divide="ignore"):
            lq = np.log((1.0 - eta) * q)
        return np.logaddexp(lq, math.log(eta) + log_gauss_cell(a, b))

    # ---- simulation ----------------------------------------------------------------------
    def draw(
        self,
        ci: int,
        k: np.ndarray,
        lam: float,
        z_prev: np.ndarray,
        u: np.ndarray,
        normal: np.ndarray,
    ) -> tuple[np.ndarray, bool]:
        """Draw standardised values for one step on every path (the N(0, 1) component gives a
        raw normal, flagged for the caller to round and clip)."""
        nv = int(self.nvals[ci])
        eta = float(self.eta[ci])
        prev = self.index(ci, z_prev)
        # the cumulative probabilities for each possible value before (row 0: none of V),
        # gathered per path: the same sums as building each path's row
        rows = np.empty((nv + 1, nv))
        rows[:] = (1.0 - eta) * (1.0 - lam) * k[:nv]
        rows[1 + np.arange(nv), np.arange(nv)] += (1.0 - eta) * lam
        cdf = np.cumsum(rows, axis=1)[prev + 1]
        pick = (u[:, None] >= cdf).sum(axis=1)
        vz = (self.values[ci, :nv] - self.center[ci]) / self.scale[ci]
        gauss = pick >= nv
        z = np.where(gauss, normal, vz[np.minimum(pick, nv - 1)])
        return z, bool(gauss.any())

    # ---- persistence ---------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "cal_cols": self.cols.astype(np.int64),
            "cal_values": self.values,
            "cal_nvals": self.nvals.astype(np.int64),
            "cal_table": self.table,
            "cal_lam": self.lam,
            "cal_exc_keys": self.exc_keys.astype(np.int64),
            "cal_exc_vals": self.exc_vals.astype(np.int64),
            "cal_eta": self.eta,
            "cal_center": self.center,
            "cal_scale": self.scale,
            "cal_decimals": self.decimals.astype(np.int64),
            **self._novel_arrays(),
        }

    def _novel_arrays(self) -> dict[str, np.ndarray]:
        if self.novel_rate is None or self.novel_dist is None:
            return {}
        out = {"cal_novel_rate": self.novel_rate, "cal_novel_dist": self.novel_dist}
        if self.seen_keys is not None and self.seen_rate is not None:
            out["cal_seen_keys"] = self.seen_keys.astype(np.int64)
            out["cal_seen_rate"] = self.seen_rate
        return out

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], clock: Clock, d: int, source: str
    ) -> CalendarModel:
        """Rebuild and validate (probabilities sum to one, weights in [0, 1], ...)."""
        for key in (
            "cal_cols",
            "cal_values",
            "cal_nvals",
            "cal_table",
            "cal_lam",
            "cal_exc_keys",
            "cal_exc_vals",
            "cal_eta",
            "cal_center",
            "cal_scale",
            "cal_decimals",
        ):
            require(key in arrays, source, f"array {key} missing")
            require(bool(np.all(np.isfinite(arrays[key]))), source, f"{key} not finite")
        cols = arrays["cal_cols"].astype(np.int64)
        c = len(cols)
        require(cols.ndim == 1 and c >= 1, source, "calendar columns")
        require(bool(np.all((cols >= 0) & (cols < d))), source, "calendar columns")
        require(len(set(cols.tolist())) == c, source, "calendar columns repeat")
        values = arrays["cal_values"].astype(float)
        require(values.ndim == 2 and values.shape[0] == c, source, "cal_values shape")
        V = values.shape[1]
        nvals = arrays["cal_nvals"].astype(np.int64)
        require(nvals.shape == (c,) and bool(np.all((nvals >= 1) & (nvals <= V))), source, "nvals")
        table = arrays["cal_table"].astype(float)
        require(table.shape == (c, clock.period, V), source, "cal_table shape")
        require(bool(np.all(table >= 0)), source, "cal_table < 0")
        require(bool(np.allclose(table.sum(axis=2), 1.0, atol=1e-9)), source, "cal_table sums")
        for ci in range(c):
            require(bool(np.all(table[ci, :, nvals[ci] :] == 0)), source, "cal_table padding")
            v = values[ci, : nvals[ci]]
            require(bool(np.all(np.diff(v) > 0)), source, "cal_values must increase")
        lam = arrays["cal_lam"].astype(float)
        require(lam.shape == (c, 2) and bool(np.all((lam >= 0) & (lam <= 1))), source, "cal_lam")
        ek, ev = arrays["cal_exc_keys"].astype(np.int64), arrays["cal_exc_vals"].astype(np.int64)
        require(ek.ndim == 2 and ek.shape[0] == c and ev.shape == ek.shape, source, "exceptions")
        require(bool(np.all((ev >= 0) & (ev < nvals[:, None]))), source, "exception values")
        eta = arrays["cal_eta"].astype(float)
        require(eta.shape == (c,) and bool(np.all((eta > 0) & (eta < 1))), source, "cal_eta")
        center, scale = arrays["cal_center"].astype(float), arrays["cal_scale"].astype(float)
        require(center.shape == (c,) and scale.shape == (c,), source, "cal standardiser")
        require(bool(np.all(scale > 0)), source, "cal_scale > 0")
        dec = arrays["cal_decimals"].astype(np.int64)
        require(dec.shape == (c,) and bool(np.all((dec >= 0) & (dec <= 15))), source, "decimals")
        novel = _novel_from_arrays(arrays, nvals, V, source)
        return cls(cols, values, nvals, table, lam, ek, ev, eta, center, scale, dec, clock, *novel)


def _novel_from_arrays(
    arrays: dict[str, np.ndarray], nvals: np.ndarray, V: int, source: str
) -> tuple[np.ndarray | None, ...]:
    """(π, x, seen keys, π_seen) of a model file, validated (None where it predates them)."""
    if "cal_novel_rate" not in arrays:
        return None, None, None, None
    c = len(nvals)
    require("cal_novel_dist" in arrays, source, "array cal_novel_dist missing")
    rate = arrays["cal_novel_rate"].astype(float)
    dist = arrays["cal_novel_dist"].astype(float)
    require(rate.shape == (c,) and dist.shape == (c, V), source, "novel exceptions shape")
    ok = np.all((rate >= 0) & (rate < 1)) and np.all(np.isfinite(dist) & (dist >= 0))
    require(bool(ok), source, "novel exception rate in [0, 1), distribution ≥ 0")
    require(bool(np.allclose(dist.sum(axis=1), 1.0, atol=1e-9)), source, "novel sums")
    for ci in range(c):
        require(bool(np.all(dist[ci, nvals[ci] :] == 0)), source, "novel padding")
    if "cal_seen_keys" not in arrays:
        return rate, dist, None, None
    require("cal_seen_rate" in arrays, source, "array cal_seen_rate missing")
    keys = arrays["cal_seen_keys"].astype(np.int64)
    seen = arrays["cal_seen_rate"].astype(float)
    require(keys.ndim == 2 and keys.shape[0] == c and seen.shape == (c,), source, "seen keys")
    ok = np.all(np.isfinite(seen) & (seen >= 0) & (seen < 1)) and np.all(keys >= -1)
    require(bool(ok), source, "seen keys ≥ -1, new exception rate on them in [0, 1)")
    return rate, dist, keys, seen


# ---- fitting ----------------------------------------------------------------------------------
def _mode_pattern(
    idx: np.ndarray, phase: np.ndarray, day: np.ndarray, period: int, nv: int
) -> tuple[np.ndarray, dict[int, int]]:
    """Counts (period, V) per phase, and the exception days {day id: value index}."""
    counts = np.zeros((period, nv))
    np.add.at(counts, (phase, idx), 1.0)
    mode = counts.argmax(axis=1)
    off = mode[phase] != idx
    exc: dict[int, int] = {}
    for dd in np.unique(day[off]):
        sel = day == dd
        vals = np.unique(idx[sel])
        if len(vals) == 1 and off[sel].mean() >= 0.5:
            exc[int(dd)] = int(vals[0])
    return counts, exc


def _column_state(
    y: np.ndarray, steps: np.ndarray, clock: Clock, decimals: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Values, each observed step's value index, and the clock keys of the observed steps."""
    delta = 10.0 ** (-decimals)
    ok = np.isfinite(y)
    v = np.unique(np.round(y[ok] / delta)) * delta
    idx = np.searchsorted(np.round(v / delta), np.round(y[ok] / delta))
    return v, idx, ok, clock.keys(steps[ok])


def explained_share(y: np.ndarray, steps: np.ndarray, clock: Clock, decimals: int) -> float:
    """Share of observed steps the weekly pattern (with exception days) explains."""
    v, idx, _, (phase, _, day, _) = _column_state(y, steps, clock, decimals)
    if len(v) > MAX_DECLARED or len(idx) == 0:
        return 0.0
    counts, exc = _mode_pattern(idx, phase, day, clock.period, len(v))
    mode = counts.argmax(axis=1)[phase]
    hit = mode == idx
    for dd, e in exc.items():
        sel = day == dd
        hit[sel] = idx[sel] == e
    return float(hit.mean())


def detect(
    vals: np.ndarray, names: list[str], decimals: list[int], clock: Clock | None
) -> list[int]:
    """Columns that are functions of the time stamp: at most MAX_VALUES values, on the grid,
    ≥ 95 % of training steps explained by the weekly pattern and exception days."""
    if clock is None or vals.shape[1] < 2 or len(vals) < 2 * clock.period:
        return []
    out = []
    steps = np.arange(len(vals))
    for j in range(vals.shape[1]):
        y = vals[:, j]
        ok = y[np.isfinite(y)]
        if len(np.unique(ok)) > MAX_VALUES:
            continue
        delta = 10.0 ** (-decimals[j])
        if not np.allclose(np.round(ok / delta) * delta, ok, rtol=0, atol=1e-9 * delta):
            continue
        if explained_share(y, steps, clock, decimals[j]) >= DETECT_SHARE:
            out.append(j)
    if len(out) == vals.shape[1]:  # something must be left to model
        return []
    return out


def resolve(
    declared: list[str] | None, names: list[str], vals: np.ndarray, decimals: list[int], clock: Any
) -> list[int]:
    """Calendar columns: the declared ones (checked) or the detected ones."""
    if declared is None:
        return detect(vals, names, decimals, clock)
    if clock is None:
        raise InputError(
            "exogenous columns need a time column with a calendar (dates, or a seasonal step)"
        )
    out = []
    for c in declared:
        if c not in names:
            raise InputError(f"exogenous column {c!r} is not a value column ({', '.join(names)})")
        j = names.index(c)
        y = vals[:, j]
        if len(np.unique(y[np.isfinite(y)])) > MAX_DECLARED:
            raise InputError(
                f"exogenous column {c!r} has more than {MAX_DECLARED} distinct values; "
                "calendar columns take few values (weekday, work day, hour, ...)"
            )
        out.append(j)
    if len(out) == len(names):
        raise InputError("every column is exogenous; leave at least one column to model")
    return sorted(set(out))


def fit_calendar(
    vals: np.ndarray,
    rows: np.ndarray,
    cal_cols: list[int],
    decimals: list[int],
    center: np.ndarray,
    scale: np.ndarray,
    clock: Clock,
) -> CalendarModel:
    """Fit the calendar columns on `rows` of raw values `vals` (rows = step indices)."""
    c = len(cal_cols)
    fits = []
    for j in cal_cols:
        y = vals[rows, j]
        v, idx, ok, (phase, start, day, key) = _column_state(y, rows, clock, decimals[j])
        nv = len(v)
        counts, exc = _mode_pattern(idx, phase, day, clock.period, nv)
        ordinary = ~np.isin(day, np.array(list(exc), dtype=np.int64))
        counts = np.zeros((clock.period, nv))
        np.add.at(counts, (phase[ordinary], idx[ordinary]), 1.0)
        marg = (np.bincount(idx, minlength=nv) + 0.5) / (len(idx) + 0.5 * nv)
        # smoothed toward the pooled counts of the phase's day (weekday), those toward the
        # column's marginal: a weekday seen 8 times at 00:00 still has 8 × 24 steps
        group = np.arange(clock.period) // (clock.per_day if clock.kind == "datetime" else 1)
        pooled = np.zeros((group.max() + 1, nv))
        np.add.at(pooled, group, counts)
        prior = (pooled + 0.5 * marg) / (pooled.sum(axis=1, keepdims=True) + 0.5)
        table = (counts + 0.5 * prior[group]) / (counts.sum(axis=1, keepdims=True) + 0.5)
        ekeys = {int(key[np.flatnonzero(day == dd)[0]]): e for dd, e in exc.items()}
        ekeys = {k: e for k, e in ekeys.items() if k >= 0}
        novel = _novel(exc, ekeys, day, key, marg)
        fits.append((v, table, ekeys, idx, ok, start, novel))
    V = max(len(f[0]) for f in fits)
    E = max(1, max(len(f[2]) for f in fits))
    values = np.zeros((c, V))
    table = np.zeros((c, clock.period, V))
    exc_keys = np.full((c, E), -1, dtype=np.int64)
    exc_vals = np.zeros((c, E), dtype=np.int64)
    nvals = np.array([len(f[0]) for f in fits], dtype=np.int64)
    novel_rate, novel_dist, seen_rate = np.zeros(c), np.zeros((c, V)), np.zeros(c)
    seen_keys = np.full((c, max(1, max(len(f[6].seen) for f in fits))), -1, dtype=np.int64)
    for ci, (v, tb, ek, _, _, _, novel) in enumerate(fits):
        novel_rate[ci], seen_rate[ci] = novel.rate, novel.seen_rate
        novel_dist[ci, : len(v)] = novel.dist
        seen_keys[ci, : len(novel.seen)] = novel.seen
        values[ci, : len(v)] = v
        values[ci, len(v) :] = v[-1] + np.arange(1, V - len(v) + 1)
        table[ci, :, : len(v)] = tb
        for e, (k, val) in enumerate(sorted(ek.items())):
            exc_keys[ci, e], exc_vals[ci, e] = k, val
    cm = CalendarModel(
        np.array(cal_cols, dtype=np.int64),
        values,
        nvals,
        table,
        np.full((c, 2), 0.5),
        exc_keys,
        exc_vals,
        np.full(c, 1.0 / (len(rows) + 1.0)),
        np.array([center[j] for j in cal_cols], dtype=float),
        np.array([scale[j] for j in cal_cols], dtype=float),
        np.array([decimals[j] for j in cal_cols], dtype=np.int64),
        clock,
        novel_rate,
        novel_dist,
        seen_keys,
        seen_rate,
    )
    for ci, (_, _, _, idx, ok, start, _) in enumerate(fits):
        cm.lam[ci] = _fit_lambda(cm, ci, idx, rows[ok], start)
    return cm


@dataclass
class _Novel:
    """New exceptions of one column: rates off and on the training span, values."""

    rate: float  # π: on a day whose key the training span did not cover
    dist: np.ndarray  # (nv,) x: their values
    seen: np.ndarray  # keys of the days the training span covered
    seen_rate: float  # π_seen: on an ordinary day whose key it covered


def _novel(
    exc: dict[int, int], ekeys: dict[int, int], day: np.ndarray, key: np.ndarray, marg: np.ndarray
) -> _Novel:
    """π = rate of exception days (add-½), x = their values toward the marginal (add-½),
    π_seen = ξ E / O (a learned exception that fails to recur falls on another seen day),
    never above π."""
    ev = np.bincount(np.array(list(exc.values()), dtype=np.int64), minlength=len(marg))
    rate = (len(exc) + 0.5) / (len(np.unique(day)) + 1.0)
    seen = np.unique(key[key >= 0])
    ordinary = len(seen) - int(np.isin(seen, np.array(list(ekeys), dtype=np.int64)).sum())
    seen_rate = min(XI * len(ekeys) / ordinary, rate) if ordinary else 0.0
    return _Novel(rate, (ev + 0.5 * marg) / (len(exc) + 0.5), seen, seen_rate)


def _fit_lambda(
    cm: CalendarModel, ci: int, idx: np.ndarray, steps: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """EM for the persistence weights (day start, within a day) on consecutive observed steps."""
    k, _ = cm.key_probs(ci, steps)
    pk = k[np.arange(len(idx)), idx]
    same = np.zeros(len(idx), dtype=bool)
    consecutive = np.zeros(len(idx), dtype=bool)
    same[1:] = idx[1:] == idx[:-1]
    consecutive[1:] = np.diff(steps) == 1
    out = np.full(2, 0.5)
    for s, sel in enumerate((start & consecutive, ~start & consecutive)):
        if not sel.any():
            out[s] = 0.0
            continue
        p1, p2 = same[sel].astype(float), pk[sel]
        lam = (p1.sum() + 0.5) / (len(p1) + 1.0)  # start: the share of repeats
        for _ in range(200):
            r = lam * p1 / np.maximum(lam * p1 + (1.0 - lam) * p2, 1e-300)
            new = (r.sum() + 0.5) / (len(r) + 1.0)
            if abs(new - lam) < 1e-10:
                lam = new
                break
            lam = new
        out[s] = lam
    return out
