"""`SeriesTwin`: a time-series twin chosen by holdout bits per time step.

The candidate structures and how they are searched are in select.py (`SERIES_STRUCTURES`
lists them with one line of help each); the conditional model is a `SeriesModel`
(protocols.py), implemented by `LinearModel` (linear.py); scoring.py turns a model into bits
of rows. This module holds the twin: reading and splitting the data, the selected model's
likelihood and simulation, the model file and the command-line hooks.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import progress
from ..base import Twin
from ..blas import blas_single_threaded
from ..core.candidates import select
from ..core.options import check_keywords
from ..core.seeding import SeedLike, seed_sequence
from ..errors import InputError
from ..modelfile import require
from .ar import Columns, LinearModel, Prepared, prepare
from .builders import FAMILIES, parse_request
from .calendar import Clock, resolve
from .io import (
    MIN_STEPS,
    SeriesData,
    TimeAxis,
    check_continues,
    end_axis,
    format_number,
    read_series,
    seasonal_period,
)
from .precision import TRANSFORMS, inverse
from .scoring import log_prob_rows, missing_rate
from .select import SERIES_STRUCTURES, Plan, SeriesCandidate, SeriesSearch
from .structures import SeriesStructure

#: arrays a model file holds besides the model's own
_TWIN_ARRAYS = ("center", "scale", "missing_rate", "tail")


class SeriesTwin(Twin):
    """A twin of a regular multivariate time series (one unit = one time step, all columns)."""

    kind = "series"
    unit = "step"
    structure_registry = SERIES_STRUCTURES
    archive_keys = frozenset(
        {"columns", "decimals", "lower", "upper", "sqrt_ok", "log_ok", "escape", "spread", "finer"}
        | {"transforms", "time", "column_order", "info", "next_step"}
    )

    def __init__(
        self,
        cols: Columns,
        transforms: list[str],
        center: np.ndarray,
        scale: np.ndarray,
        model: LinearModel,
        missing_rate: np.ndarray,
        tail: np.ndarray,
        time: TimeAxis,
        column_order: list[str],
        structure: str,
        leaderboard: list[dict[str, Any]] | None = None,
        next_step: int = 0,
    ) -> None:
        self.cols = cols
        self.transforms = list(transforms)
        self.center = np.asarray(center, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.model = model
        self.missing_rate = np.asarray(missing_rate, dtype=float)
        self.tail = np.asarray(tail, dtype=float)
        self.time = time
        self.column_order = list(column_order)
        self.structure = structure
        self.leaderboard = leaderboard or []
        #: step index (on the training grid) of the step right after the data the twin keeps
        self.next_step = int(next_step)

    # ---- fitting --------------------------------------------------------------------------
    @classmethod
    @blas_single_threaded
    def fit_select(
        cls,
        data: str | Path | pd.DataFrame,
        *,
        time: str | None = None,
        values: list[str] | None = None,
        holdout: float | str | Path | pd.DataFrame = 0.2,
        structures: list[str] | str | None = None,
        max_lag: int | None = None,
        time_gaps: str = "error",
        refit: bool = True,
        exogenous: list[str] | str | None = None,
        seed: SeedLike = 0,
    ) -> SeriesTwin:
        """Fit every candidate on the training part, score on the holdout, keep the best.

        `time` names the time column (default: the first named time/date/...; "none": no
        time column, the rows are consecutive steps). `holdout` is the final fraction of the
        series (default 0.2) or data (a path or a DataFrame) that continues the series.
        `structures` restricts the families and/or
        transforms tried (names from FAMILIES and TRANSFORMS), or names leaderboard labels
        (`sqrt:ar(19)+seasonal+calendar`) to fit exactly: with the same data, holdout and
        `max_lag`, `fit_select(data, structures=twin.structure)` gives the same twin.
        `max_lag` is the largest AR order scanned (default two seasons, at least 24).
        `exogenous` names calendar columns (functions of the time stamp: weekday, work day,
        hour, ...) to score and simulate from the calendar; by default they are detected
        (few values, ≥ 95 % explained by the weekly pattern and the data's exception days);
        `exogenous=[]` turns detection off. `seed` is accepted for the common API; fitting is deterministic.
        """
        del seed
        request = parse_request(structures)
        sd, vals, n_train = _read_split(data, time, values, holdout, time_gaps)
        cols = Columns.infer(vals, sd.columns, sd.decimals)
        period, long_period = seasonal_period(sd.time)
        clock = Clock.of(sd.time, period)
        if isinstance(exogenous, str):
            exogenous = [c.strip() for c in exogenous.split(",") if c.strip()]
        cal_cols = resolve(exogenous, sd.columns, vals[:n_train], sd.decimals, clock)
        if cal_cols:
            progress.note(
                "calendar columns (scored and simulated from the calendar in +exog candidates): "
                + ", ".join(sd.columns[j] for j in cal_cols)
            )
        plan = Plan.make(n_train, period, long_period, max_lag, clock)
        search = SeriesSearch(vals, cols, n_train, plan, request, refit, clock, cal_cols)
        sel = select(search)
        win: SeriesCandidate = sel.model
        prep, model = win.prep, win.model
        twin = cls(
            cols,
            prep.transforms,
            prep.center,
            prep.scale,
            model,
            missing_rate(vals) if refit else search.rate,
            _tail(vals, prep, model.max_lag),
            end_axis(sd, len(vals)),
            sd.column_order,
            sel.best.structure.label,
            sel.leaderboard,
            len(vals),
        )
        twin.model.info.update({"period": period, "max_lag_scanned": plan.P, "refit": bool(refit)})
        return twin

    @property
    def params(self) -> dict[str, Any]:
        """The structure's parameters as data: family, order, transform and per-column
        transforms, difference lag, calendar phases, phase period, mixture columns, lag blocks,
        regime window, volatility windows, whether it is the long-horizon variant and its AR
        radius cap, and the largest order scanned (`max_lag`, to refit the label exactly)."""
        st = SeriesStructure.parse(self.structure)
        level = self.model.level
        ps = self.model.phase_scale
        return {
            "family": st.family,
            "order": st.order,
            "transform": st.transform,
            "transforms": list(self.transforms),
            "difference": st.diff_lag,
            "calendar": int(level.shape[1]) if st.calendar and level is not None else None,
            "phase": int(ps.shape[1]) if ps is not None else None,
            "mix": list(self.model.info.get("mixture_columns", [])) if st.mix else [],
            "fourier": list(self.model.info.get("fourier", [])) or None,
            "exog": list(self.model.info.get("exog", [])) if st.exog else [],
            "blocks": [list(b) for b in self.model.info.get("blocks", [])] or None,
            "regime": self.model.regime.k if self.model.regime is not None else None,
            "hetero": (
                [int(k) for k in self.model.hetero.windows]
                if self.model.hetero is not None
                else None
            ),
            "long": st.long,
            "radius_cap": self.model.info.get("radius_cap"),
            "max_lag": self.model.info.get("max_lag_scanned"),
        }

    # ---- likelihood -----------------------------------------------------------------------
    def _prepare(self, vals: np.ndarray, where: str) -> Prepared:
        return prepare(vals, self.cols, self.transforms, self.center, self.scale, where)

    def _read(self, data: Any) -> SeriesData:
        if isinstance(data, SeriesData):
            return data
        return read_series(data, time=self.time.column, values=self.cols.names, min_steps=1)

    @blas_single_threaded
    def log_prob(self, data: Any, history: Any = None) -> np.ndarray:
        """Log-probability (nats) of each step of `data`, a continuation of the series.

        With `history` (steps just before `data`) the model conditions on it; otherwise on the
        training tail it keeps when `data` continues the training series in time (or has no
        time column), and else on the first `max_lag` steps of `data` itself (not scored).
        Values outside a column's support get its escape mass (finite; see `precision`).
        """
        sd = self._read(data)
        where = "data"
        m = self.tail.shape[0]
        first_idx = self.time.index_of(sd.times[0]) if sd.times else None
        offset = 0  # rows of `vals` before the data's first row
        if history is not None:
            hist = self._read(history).values
            if len(hist) < self.model.max_lag:
                raise InputError(
                    f"history has {len(hist)} steps; this model conditions on {self.model.max_lag}"
                )
            vals = np.vstack([_fill_raw(hist[-m:], self), sd.values])
            start = offset = m
        elif self._continues(sd):
            vals = np.vstack([self.tail, sd.values])
            start = offset = m
            first_idx = self.next_step
        else:
            need = self.model.max_lag
            if len(sd.values) <= need:
                raise InputError(
                    f"{where} does not continue the training series and has {len(sd.values)} "
                    f"steps; it needs more than {need} (its first {need} steps are used as history)"
                )
            progress.note(
                f"the data does not continue the training series in time; its first {need} "
                "steps are used as history and not scored"
            )
            vals = sd.values
            start = max(need, 0)
            if start == 0:
                vals = np.vstack([self.tail, vals])
                start = offset = m
        prep = self._prepare(vals, where)
        rows = np.arange(start, len(vals))
        base = self.next_step if first_idx is None else first_idx
        lp = log_prob_rows(
            self.model, self.cols, self.missing_rate, prep, rows, base + rows - offset
        )
        if not np.all(np.isfinite(lp)):
            raise AssertionError("internal error: non-finite log-probability")
        return lp

    def _continues(self, sd: SeriesData) -> bool:
        return self.continues_from(None if sd.times is None else sd.times[0])

    def continues_from(self, first: str | None) -> bool:
        """Whether data whose first time reads `first` (None: no time column) continues the
        training series (its first step is the one after the training data's last)."""
        if self.time.kind == "none" or first is None or self.time.last is None:
            return True
        expected = self.time.following(None, 1)[0]
        if self.time.kind == "datetime":
            return pd.Timestamp(first) == pd.Timestamp(expected)
        return abs(float(first) - float(expected)) <= max(1e-6 * abs(self.time.step), 1e-9)

    # ---- simulation -----------------------------------------------------------------------
    @blas_single_threaded
    def sample(
        self,
        n: int,
        seed: SeedLike = None,
        *,
        paths: int = 1,
        history: Any = None,
        **unknown: Any,
    ) -> pd.DataFrame:
        """Simulate `paths` futures of `n` steps after the training data (or after `history`).

        Returns a DataFrame with a ``path`` column (when paths > 1), the time column continuing
        the data's spacing (when the data had one) and the value columns. Values stay inside
        each column's support (the likelihood's escape mass for values outside is not sampled).
        `seed` is an int, None (fresh entropy) or a numpy Generator (core.seeding).
        """
        check_keywords(self.sample, unknown, "series sample")
        rng = np.random.default_rng(seed_sequence(seed))
        if n < 0 or paths < 1:
            raise InputError("need n ≥ 0 steps and at least 1 path")
        last = None
        step0 = self.next_step
        if history is not None:
            hs = self._read(history)
            if len(hs.values) < self.model.max_lag:
                raise InputError(
                    f"history has {len(hs.values)} steps; this model conditions on the last "
                    f"{self.model.max_lag}"
                )
            hist = _fill_raw(hs.values[-self.tail.shape[0] :], self)
            if hs.times:
                last = hs.times[-1]
                idx = self.time.index_of(last)
                step0 = self.next_step if idx is None else idx + 1
        else:
            hist = self.tail
        prep = self._prepare(hist, "history")
        vals = self.model.simulate(
            self.cols,
            self.transforms,
            self.center,
            self.scale,
            self.missing_rate,
            prep.Z,
            int(n),
            int(paths),
            rng,
            step0,
        )
        frames = {}
        times = self.time.following(last, n) if self.time.kind != "none" else None
        if paths > 1:
            frames["path"] = np.repeat(np.arange(paths), n)
        for name in self.column_order:
            if times is not None and name == self.time.column:
                frames[name] = np.tile(np.array(times, dtype=object), paths)
            elif name in self.cols.names:
                j = self.cols.names.index(name)
                frames[name] = vals[:, :, j].reshape(-1)
        return pd.DataFrame(frames)

    # ---- persistence ----------------------------------------------------------------------
    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON metadata and arrays describing the twin."""
        meta = {
            **self.cols.to_meta(),
            "transforms": self.transforms,
            "time": self.time.to_json(),
            "column_order": self.column_order,
            "info": _jsonable(self.model.info),
            "next_step": self.next_step,
        }
        model = self.model.to_arrays()
        arrays = {k: model[k] for k in ("lags", "intercept", "A", "B", "mix_w", "mix_mu", "mix_sd")}
        arrays.update(
            center=self.center,
            scale=self.scale,
            missing_rate=self.missing_rate,
            tail=self.tail,
            level=model["level"],
            phase_scale=model["phase_scale"],
            **self.model.extra_arrays(),
        )
        return meta, arrays

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> SeriesTwin:
        """Rebuild and validate a series twin from a model file."""
        names = meta["columns"]
        require(isinstance(names, list) and len(names) > 0, source, "no columns")
        d = len(names)
        transforms: list[str] = meta.get("transforms") or []
        require(isinstance(transforms, list) and len(transforms) == d, source, "bad transforms")
        require(all(t in TRANSFORMS for t in transforms), source, "unknown transform")
        next_step = meta.get("next_step", 0)
        require(isinstance(next_step, int) and next_step >= 0, source, "next_step")

        def spread(j: int) -> float:  # files written before `spread` existed
            return _default_spread(transforms[j], arrays, j, meta["decimals"][j])

        # files written before the escape mass existed: ε = 1/(n+1) of the steps it kept
        cols = Columns.from_meta(meta, source, 1.0 / (next_step + 1.0), spread)
        info = meta.get("info") or {}
        require(isinstance(info, dict), source, "info")
        model = LinearModel.from_arrays(arrays, info, d, source)
        for key in _TWIN_ARRAYS:
            require(key in arrays, source, f"array {key} missing")
            require(arrays[key].dtype.kind in "fiu", source, f"array {key} is not numeric")
            require(bool(np.all(np.isfinite(arrays[key]))), source, f"{key} not finite")
        require(arrays["center"].shape == (d,), source, "center shape")
        require(arrays["scale"].shape == (d,), source, "scale shape")
        require(bool(np.all(arrays["scale"] > 0)), source, "scales must be > 0")
        mr = arrays["missing_rate"]
        require(bool(mr.shape == (d,) and np.all((mr >= 0) & (mr < 1))), source, "missing rates")
        tail = arrays["tail"]
        require(
            tail.ndim == 2 and tail.shape[1] == d and tail.shape[0] >= max(model.max_lag, 1),
            source,
            "tail shorter than the largest lag",
        )
        axis = TimeAxis.from_json(meta["time"])
        require(axis.kind in ("none", "datetime", "numeric"), source, "time kind")
        return cls(
            cols,
            list(transforms),
            arrays["center"].astype(float),
            arrays["scale"].astype(float),
            model,
            mr.astype(float),
            tail.astype(float),
            axis,
            list(meta.get("column_order") or names),
            str(meta.get("structure", "")),
            None,
            int(next_step),
        )

    # ---- command line ---------------------------------------------------------------------
    @classmethod
    def cli_add_options(cls, fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
        """Series options: --time/--values/--max-lag/--time-gaps (fit), --paths/--history (sample)."""
        g = fit.add_argument_group("series (--kind series)")
        g.add_argument(
            "--time",
            metavar="COL",
            help="time column (default: a column named time/date/...; none: rows are steps)",
        )
        g.add_argument("--values", metavar="A,B,..", help="value columns (default: all but time)")
        g.add_argument(
            "--max-lag",
            type=int,
            metavar="P",
            help="largest AR order tried (default: 2 seasons, ≥ 24)",
        )
        g.add_argument(
            "--exogenous",
            metavar="A,B,..",
            help="calendar columns (weekday, work day, hour, ...) scored and simulated from the "
            "calendar (default: detected; --exogenous '' turns detection off)",
        )
        g.add_argument(
            "--time-gaps",
            choices=["error", "fill"],
            default="error",
            help="irregular time: error (default) or fill missing steps as missing values",
        )
        s = sample.add_argument_group("series")
        s.add_argument(
            "--paths", type=int, default=1, metavar="K", help="simulated futures (default 1)"
        )
        s.add_argument(
            "--history",
            metavar="FILE",
            help="CSV of steps to continue (default: the training tail)",
        )

    @classmethod
    def cli_fit(cls, path: Path, args: argparse.Namespace) -> SeriesTwin:
        """Fit from the command line."""
        values = getattr(args, "values", None)
        return cls.fit_select(
            path,
            time=getattr(args, "time", None),
            values=[v.strip() for v in values.split(",")] if values else None,
            holdout=args.holdout if args.holdout is not None else 0.2,
            structures=args.structures,
            max_lag=getattr(args, "max_lag", None),
            time_gaps=getattr(args, "time_gaps", "error") or "error",
            refit=not getattr(args, "no_refit", False),
            exogenous=getattr(args, "exogenous", None),
            seed=getattr(args, "seed", 0),
        )

    def cli_read(self, path: Path, args: argparse.Namespace) -> SeriesData:
        """Read a continuation file to score."""
        return self._read(path)

    def cli_sample(self, args: argparse.Namespace) -> pd.DataFrame:
        """Simulate `-n` steps on `--paths` paths."""
        paths = getattr(args, "paths", None)
        paths = 1 if paths is None else paths
        if paths < 1:
            raise InputError("--paths must be at least 1")
        n = 100 if args.n is None else args.n
        return self.sample(n, seed=args.seed, paths=paths, history=getattr(args, "history", None))

    def cli_write(self, samples: pd.DataFrame, fh, args: argparse.Namespace) -> None:
        """Write samples as CSV, each column at its recorded precision."""
        cols = list(samples.columns)
        text = {}
        for c in cols:
            if c in self.cols.names:
                k = self.cols.decimals[self.cols.names.index(c)]
                x = samples[c].to_numpy(dtype=float)
                text[c] = ["" if math.isnan(v) else format_number(v, k) for v in x]
            else:
                text[c] = [str(v) for v in samples[c].tolist()]
        lines = [",".join(_csv_field(c) for c in cols)]
        lines += [",".join(row) for row in zip(*(text[c] for c in cols), strict=True)]
        fh.write(("\n".join(lines) + "\n").encode("utf-8"))


def _read_split(
    data: str | Path | pd.DataFrame,
    time: str | None,
    values: list[str] | None,
    holdout: float | str | Path | pd.DataFrame,
    time_gaps: str,
) -> tuple[SeriesData, np.ndarray, int]:
    """The series, its values with any holdout file appended, and the training steps."""
    sd = read_series(data, time=time, values=values, gaps=time_gaps)
    if sd.filled_gaps:
        progress.note(f"{sd.filled_gaps} missing time steps filled as missing values")
    vals = sd.values
    n_train = len(vals)
    if isinstance(holdout, (str, Path, pd.DataFrame)) and not _is_number(holdout):
        hd = read_series(holdout, time=sd.time.column, values=sd.columns, gaps=time_gaps)
        check_continues(sd.time, hd, "holdout")
        vals = np.vstack([vals, hd.values])
    else:
        frac = (
            float(holdout) if isinstance(holdout, (int, float, np.number)) else float(str(holdout))
        )
        if not 0.0 < frac < 1.0:
            raise InputError(f"holdout must be a fraction in (0, 1) or a file, not {holdout}")
        n_hold = max(1, int(round(frac * len(vals))))
        n_train = len(vals) - n_hold
    if n_train < MIN_STEPS:
        raise InputError(
            f"too short: {n_train} training steps; a series needs at least {MIN_STEPS} "
            "before the holdout"
        )
    if np.isnan(vals).any():
        progress.note(
            f"{int(np.isnan(vals).sum())} missing values: modelled as missing with a fitted "
            "rate per column, carried forward as history for the next steps"
        )
    return sd, vals, n_train


def _default_spread(transform: str, arrays: dict[str, np.ndarray], j: int, decimals: int) -> float:
    """A column's spread (about its range) from its standardiser, for files without `spread`."""
    delta = 10.0 ** (-decimals)
    try:
        c, s = float(arrays["center"][j]), float(arrays["scale"][j])
        ends = inverse(np.array([c - 3.0 * s, c + 3.0 * s]), transform)
        v = abs(float(ends[1] - ends[0]))
    except (KeyError, IndexError, TypeError, ValueError):
        return delta
    return v if math.isfinite(v) and v > delta else delta


def _csv_field(s: str) -> str:
    return f'"{s}"' if ("," in s or '"' in s) else s


def _is_number(x: Any) -> bool:
    if isinstance(x, pd.DataFrame):
        return False
    try:
        float(str(x))
    except ValueError:
        return False
    return not Path(str(x)).exists()


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.integer):
            v = int(v)
        elif isinstance(v, np.floating):
            v = float(v)
        out[k] = v
    return out


def _fill_raw(vals: np.ndarray, twin: SeriesTwin) -> np.ndarray:
    """Forward-fill missing raw values (the column centre before any value)."""
    out = vals.copy()
    for j in range(out.shape[1]):
        col = out[:, j]
        first = inverse(np.array([twin.center[j]]), twin.transforms[j])[0]
        last = first
        for i in range(len(col)):
            if np.isnan(col[i]):
                col[i] = last
            else:
                last = col[i]
    return out


def _tail(vals: np.ndarray, prep: Prepared, max_lag: int) -> np.ndarray:
    """The last steps of the data the model conditions on, missing values carried forward."""
    m = max(max_lag, 1)
    Zt = prep.Z[-m:]
    out = vals[-m:].copy()
    for j in range(out.shape[1]):
        miss = np.isnan(out[:, j])
        if miss.any():
            g = prep.center[j] + prep.scale[j] * Zt[:, j]
            out[miss, j] = inverse(g, prep.transforms[j])[miss]
    return out


__all__ = ["FAMILIES", "SeriesTwin"]
