"""`SeriesTwin`: a time-series twin chosen by holdout bits per time step.

Candidates (all scored on the same final holdout steps, each conditioning on the steps before):

- ``iid``        no memory (the columns of a step still depend on each other)
- ``ar``         AR(p) / vector AR(p), p = 1..P, P from the season (24 monthly, 96 half-hourly)
- ``seasonal``   AR(p) plus seasonal lags (k·season ± 1, and the weekly lag for sub-daily data)
- ``diff``       AR(p) of first differences (ARIMA(p,1,0)), no drift
- ``sdiff``      AR(p) of seasonal differences y_t − y_{t−season}, no drift
- ``calendar``   the best level structure reverting to a mean per phase of the week/season
- ``phase``      the best so far with a residual scale per phase of the season
- ``mix``        the best so far with Gaussian-mixture residuals (per column, when it helps)

``iid`` and ``ar`` are tried under the transforms ``none``, ``sqrt`` (non-negative columns),
``log`` (positive ones) and the per-column best of those; the others use the winning one.
"""

from __future__ import annotations

import argparse
import math
import time as _time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import progress
from ..base import Twin
from ..errors import InputError
from ..leaderboard import best as best_entry
from ..leaderboard import entry, mark_selected
from ..modelfile import require
from ..units import LN2
from .ar import (
    Columns,
    LinearModel,
    Prepared,
    Scan,
    Sequence,
    fit_mixture,
    fit_phase_scale,
    level_table,
    prepare,
    residuals,
    standardiser,
)
from .blas import blas_single_threaded
from .io import MIN_STEPS, SeriesData, TimeAxis, format_number, read_series, seasonal_period
from .precision import TRANSFORMS, inverse, log_cell_mass
from .simulate import simulate

FAMILIES = ("iid", "ar", "seasonal", "diff", "sdiff", "calendar", "phase", "mix")
#: the level a model reverts to: the training mean, or (``calendar``) a mean per phase of the
#: week (sub-daily data) or of the season
_MIX_K = 3


def _family_name(family: str, order: int, transform: str, period: int | None) -> str:
    name = {
        "iid": "iid",
        "ar": f"ar({order})",
        "seasonal": f"ar({order})+seasonal",
        "diff": f"ar({order}) of Δ1",
        "sdiff": f"ar({order}) of Δ{period}",
    }[family]
    return name if transform == "none" else f"{transform}:{name}"


class SeriesTwin(Twin):
    """A twin of a regular multivariate time series (one unit = one time step, all columns)."""

    kind = "series"
    unit = "step"

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
        seed: int = 0,
        **_: Any,
    ) -> SeriesTwin:
        """Fit every candidate on the training part, score on the holdout, keep the best.

        `holdout` is the final fraction of the series (default 0.2) or data (a path or a
        DataFrame) that continues the series. `structures` restricts the families and/or
        transforms tried (names from FAMILIES and TRANSFORMS).
        """
        del seed  # fitting is deterministic; kept for the common API
        sd = read_series(data, time=time, values=values, gaps=time_gaps)
        if sd.filled_gaps:
            progress.note(f"{sd.filled_gaps} missing time steps filled as missing values")
        vals = sd.values
        n_train = len(vals)
        if isinstance(holdout, (str, Path, pd.DataFrame)) and not _is_number(holdout):
            hd = read_series(holdout, time=sd.time.column, values=sd.columns, gaps=time_gaps)
            _check_continues(sd.time, hd, "holdout")
            vals = np.vstack([vals, hd.values])
        else:
            frac = float(holdout)
            if not 0.0 < frac < 1.0:
                raise InputError(f"--holdout must be a fraction in (0, 1) or a file, not {holdout}")
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
        fams, trans = _parse_structures(structures)
        cols = Columns.infer(vals, sd.columns, sd.decimals)
        period, long_period = seasonal_period(sd.time)
        plan = _plan(n_train, period, long_period, max_lag)
        train_rows = np.arange(plan["T0"], n_train)
        hold_rows = np.arange(n_train, len(vals))
        rate = _missing_rate(vals[:n_train])
        cands: list[dict[str, Any]] = []

        def add(scan: Scan, family: str, order: int, transform: str, secs: float, prep: Prepared):
            model = scan.model(family, order)
            tw = cls._assemble(cols, prep, model, rate)
            cands.append(
                {
                    "family": family,
                    "transform": transform,
                    "transforms": "/".join(prep.transforms),
                    "order": order,
                    "model": model,
                    "prep": prep,
                    "seconds": secs,
                    "name": _family_name(family, order, transform, period),
                    "train_bits": tw._bits_rows(prep, train_rows),
                    "holdout_bits": tw._bits_rows(prep, hold_rows),
                }
            )

        level = [
            s for s in plan["level"] if s.family in fams or (s.family == "ar" and "iid" in fams)
        ]
        preps: dict[str, Prepared] = {}
        scans: dict[str, tuple[Scan, float]] = {}
        options = [
            (t, cols.transforms_for(t))
            for t in TRANSFORMS
            if t in trans and (t == "none" or any(x != "none" for x in cols.transforms_for(t)))
        ]
        k = 0
        while k < len(options):
            tname, tr = options[k]
            k += 1
            c, s = standardiser(vals[:n_train], tr)
            preps[tname] = prep = prepare(vals, cols, tr, c, s)
            if not level:
                continue
            with progress.step(f"fitting AR orders 0..{plan['P']} [{tname}]"):
                t0 = _time.perf_counter()
                m0 = level_table(prep.Z, prep.observed, train_rows, 1)
                sc = Scan(prep, train_rows, hold_rows, level, 0, m0)
                has_ar = any(q.family == "ar" for q in level)
                if has_ar:
                    sc.run("ar")
                secs = _time.perf_counter() - t0
                scans[tname] = (sc, secs)
            if "iid" in fams:
                add(sc, "ar", 0, tname, secs, prep)
                cands[-1]["family"] = "iid"
                cands[-1]["name"] = _family_name("iid", 0, tname, period)
            if "ar" in fams and plan["P"] >= 1:
                add(sc, "ar", sc.best_order("ar", 1), tname, secs, prep)
            if (
                has_ar
                and k == len(options)
                and len(scans) > 1
                and len(cols.names) > 1
                and "mixed" not in scans
            ):
                mixed = _per_column_transforms(scans, preps, plan["P"])
                if all(mixed != tr2 for _, tr2 in options):
                    options.append(("mixed", mixed))
        if not preps:
            raise InputError("no candidate structure applies; check --structures")
        t_best = (
            min(cands, key=lambda r: r["holdout_bits"])["transform"] if cands else next(iter(preps))
        )
        prep = preps[t_best]
        if t_best in scans and any(q.family == "seasonal" for q in level):
            sc, secs = scans[t_best]
            t0 = _time.perf_counter()
            order = sc.best_order("seasonal")
            add(sc, "seasonal", order, t_best, _time.perf_counter() - t0 + secs, prep)
        with progress.step("fitting differenced structures"):
            for fam, D in (("diff", 1), ("sdiff", plan["sdiff"])):
                if fam in fams and D:
                    t0 = _time.perf_counter()
                    seq = Sequence(fam, plan["ar_lags"], [(p, p) for p in range(plan["P"] + 1)])
                    sc = Scan(prep, train_rows, hold_rows, [seq], D)
                    add(sc, fam, sc.best_order(fam), t_best, _time.perf_counter() - t0, prep)
        if not cands:
            raise InputError(
                "no candidate structure applies to this series; calendar, phase and mix modify a "
                "base structure, so --structures needs one of iid, ar, seasonal, diff, sdiff"
            )
        if "calendar" in fams and period and period > 1:
            base = min(cands, key=lambda r: r["holdout_bits"])
            if base["family"] in ("iid", "ar", "seasonal"):
                fam = "ar" if base["family"] == "iid" else base["family"]
                seq = next(q for q in plan["level"] if q.family == fam)
                pm = int(long_period) if long_period == 7 * period else int(period)
                if len(train_rows) < 10 * pm:
                    pm = int(period)
                bp: Prepared = base["prep"]
                with progress.step("fitting calendar levels"):
                    t0 = _time.perf_counter()
                    m = level_table(bp.Z, bp.observed, train_rows, pm)
                    sc = Scan(bp, train_rows, hold_rows, [seq], 0, m)
                    order = sc.best_order(fam, 1 if fam == "ar" else 0)
                    add(sc, fam, order, base["transform"], _time.perf_counter() - t0, base["prep"])
                cands[-1]["calendar"] = pm
                cands[-1]["name"] += "+calendar"
        if "phase" in fams and period and period > 1:
            base = min(cands, key=lambda r: r["holdout_bits"])
            rec = cls._phase_candidate(base, cols, rate, train_rows, hold_rows, period)
            if rec is not None:
                cands.append(rec)
        if "mix" in fams:
            base = min(cands, key=lambda r: r["holdout_bits"])
            rec = cls._mixture_candidate(base, cols, rate, train_rows, hold_rows)
            if rec is not None:
                cands.append(rec)
        board = [
            entry(
                r["name"],
                r["train_bits"],
                r["holdout_bits"],
                r["seconds"],
                order=r["order"],
                transform=r["transforms"],
                params=r["model"].n_params(),
            )
            for r in cands
        ]
        chosen = best_entry(board)
        mark_selected(board, chosen["structure"])
        win = cands[board.index(chosen)]
        if refit:
            win = cls._refit(win, vals, cols, plan)
        model: LinearModel = win["model"]
        prep = win["prep"]
        twin = cls(
            cols,
            prep.transforms,
            prep.center,
            prep.scale,
            model,
            _missing_rate(vals) if refit else rate,
            _tail(vals, prep, model.max_lag),
            _end_axis(sd, len(vals)),
            sd.column_order,
            chosen["structure"],
            board,
            len(vals),
        )
        twin.model.info.update(
            {"period": period, "max_lag_scanned": plan["P"], "refit": bool(refit)}
        )
        return twin

    @classmethod
    def _assemble(
        cls, cols: Columns, prep: Prepared, model: LinearModel, rate: np.ndarray
    ) -> SeriesTwin:
        return cls(
            cols,
            prep.transforms,
            prep.center,
            prep.scale,
            model,
            rate,
            np.zeros((max(model.max_lag, 1), len(cols.names))),
            TimeAxis(),
            cols.names,
            "",
        )

    @classmethod
    def _mixture_candidate(
        cls,
        base: dict[str, Any],
        cols: Columns,
        rate: np.ndarray,
        train_rows: np.ndarray,
        hold_rows: np.ndarray,
    ) -> dict[str, Any] | None:
        """The best Gaussian candidate with mixture residuals on the columns where it helps."""
        t0 = _time.perf_counter()
        prep: Prepared = base["prep"]
        m0: LinearModel = base["model"]
        d = len(cols.names)
        W = np.zeros((d, _MIX_K))
        MU = np.zeros((d, _MIX_K))
        SD = np.ones((d, _MIX_K))
        used = []
        res = residuals(m0, prep, train_rows)
        hm = m0.means(prep.Z, hold_rows)
        for j in range(d):
            W[j, 0], SD[j, 0] = 1.0, m0.mix_sd[j, 0]
            if cols.upper[j] is not None:  # indicator columns keep their Gaussian
                continue
            w, mu, sd = fit_mixture(res[:, j] / m0.step_scale(j, train_rows), _MIX_K)
            o = prep.observed[hold_rows, j]
            a, b = prep.a[hold_rows, j][o], prep.b[hold_rows, j][o]
            mean = hm[o, j]
            steps = hold_rows[o]
            sc = m0.step_scale(j, steps)
            g = float(np.sum(m0.column_logp(j, a, b, mean, steps)))
            zero = np.zeros_like(mean)
            mx = float(np.sum(log_cell_mass((a - mean) / sc, (b - mean) / sc, zero, w, mu, sd)))
            if mx > g:
                W[j], MU[j], SD[j] = w, mu, sd
                used.append(cols.names[j])
        if not used:
            return None
        model = replace(m0, mix_w=W, mix_mu=MU, mix_sd=SD, info=dict(m0.info))
        model.info["mixture_columns"] = used
        return cls._derived(base, cols, model, rate, train_rows, hold_rows, "mix", t0)

    @classmethod
    def _phase_candidate(
        cls,
        base: dict[str, Any],
        cols: Columns,
        rate: np.ndarray,
        train_rows: np.ndarray,
        hold_rows: np.ndarray,
        period: int,
    ) -> dict[str, Any] | None:
        """The best candidate with a residual scale per seasonal phase (step mod period)."""
        t0 = _time.perf_counter()
        prep: Prepared = base["prep"]
        m0: LinearModel = base["model"]
        res = residuals(m0, prep, train_rows)
        ps = fit_phase_scale(res, train_rows, m0.mix_sd[:, 0], period)
        model = replace(m0, phase_scale=ps, info=dict(m0.info))
        model.info["phase_period"] = int(period)
        return cls._derived(base, cols, model, rate, train_rows, hold_rows, "phase", t0)

    @classmethod
    def _derived(
        cls,
        base: dict[str, Any],
        cols: Columns,
        model: LinearModel,
        rate: np.ndarray,
        train_rows: np.ndarray,
        hold_rows: np.ndarray,
        feature: str,
        t0: float,
    ) -> dict[str, Any]:
        """A candidate made from `base` with `model` (base + `feature`), scored like the rest."""
        prep: Prepared = base["prep"]
        tw = cls._assemble(cols, prep, model, rate)
        return {
            **base,
            "model": model,
            "name": base["name"] + "+" + feature,
            feature: True,
            "seconds": base["seconds"] + _time.perf_counter() - t0,
            "train_bits": tw._bits_rows(prep, train_rows),
            "holdout_bits": tw._bits_rows(prep, hold_rows),
        }

    @classmethod
    def _refit(
        cls, win: dict[str, Any], vals: np.ndarray, cols: Columns, plan: dict[str, Any]
    ) -> dict[str, Any]:
        """The winning structure refit on all the data (train + holdout)."""
        fam = win["family"]
        order = win["order"]
        tr = win["prep"].transforms
        c, s = standardiser(vals, tr)
        prep = prepare(vals, cols, tr, c, s)
        if fam in ("iid", "ar", "seasonal"):
            seq = next(q for q in plan["level"] if q.family == ("ar" if fam == "iid" else fam))
            D = 0
        else:
            seq = Sequence(fam, plan["ar_lags"], [(p, p) for p in range(plan["P"] + 1)])
            D = 1 if fam == "diff" else plan["sdiff"]
        seq = Sequence(seq.family, seq.lags, [c for c in seq.candidates if c[0] == order])
        rows = np.arange(plan["T0"], len(vals))
        level = level_table(prep.Z, prep.observed, rows, int(win.get("calendar") or 1))
        model = Scan(prep, rows, np.arange(0), [seq], D, level).model(seq.family, order)
        old: LinearModel = win["model"]
        res = residuals(model, prep, rows)
        if old.phase_scale is not None:
            ps = fit_phase_scale(res, rows, model.mix_sd[:, 0], old.phase_scale.shape[1])
            model.phase_scale = ps
            res = res / ps[:, rows % ps.shape[1]].T
        if win.get("mix"):
            W, MU, SD = old.mix_w.copy(), old.mix_mu.copy(), old.mix_sd.copy()
            for j in range(len(cols.names)):
                if old.mix_w[j, 1:].any():
                    W[j], MU[j], SD[j] = fit_mixture(res[:, j], W.shape[1])
                else:
                    W[j], MU[j], SD[j] = 0.0, 0.0, 1.0
                    W[j, 0], SD[j, 0] = 1.0, model.mix_sd[j, 0]
            model = replace(model, mix_w=W, mix_mu=MU, mix_sd=SD)
        model.info = dict(old.info)
        return {**win, "model": model, "prep": prep}

    # ---- likelihood -----------------------------------------------------------------------
    def _bits_rows(self, prep: Prepared, rows: np.ndarray) -> float:
        if len(rows) == 0:
            return float("nan")
        lp = self._logp_rows(prep, rows)
        return float(-np.sum(lp) / len(rows) / LN2)

    def _logp_rows(
        self, prep: Prepared, rows: np.ndarray, steps: np.ndarray | None = None
    ) -> np.ndarray:
        """Per-step log-probability (nats) of `rows` of a prepared series.

        `steps` are the rows' step indices on the training grid (for seasonal-phase scales);
        by default the rows themselves (the training data's own indices).
        """
        steps = rows if steps is None else steps
        M = self.model.means(prep.Z, rows, steps)
        out = np.zeros(len(rows))
        for j in range(len(self.cols.names)):
            o = prep.observed[rows, j]
            lp = np.zeros(len(rows))
            lp[o] = prep.cell_logp(
                rows[o],
                j,
                self.model.column_logp(
                    j, prep.a[rows, j][o], prep.b[rows, j][o], M[o, j], steps[o]
                ),
            )
            r = self.missing_rate[j]
            if r > 0:
                lp = np.where(o, lp + math.log1p(-r), math.log(r))
            elif not o.all():
                raise InputError(
                    f"column {self.cols.names[j]!r} has missing values but the training data "
                    "had none, so this model gives them no probability"
                )
            out += lp
        return out

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
        lp = self._logp_rows(prep, rows, base + rows - offset)
        if not np.all(np.isfinite(lp)):
            raise AssertionError("internal error: non-finite log-probability")
        return lp

    def _continues(self, sd: SeriesData) -> bool:
        if self.time.kind == "none" or sd.times is None or self.time.last is None:
            return True
        expected = self.time.following(None, 1)[0]
        first = sd.times[0]
        if self.time.kind == "datetime":
            return pd.Timestamp(first) == pd.Timestamp(expected)
        return abs(float(first) - float(expected)) <= max(1e-6 * abs(self.time.step), 1e-9)

    # ---- simulation -----------------------------------------------------------------------
    @blas_single_threaded
    def sample(
        self, n: int, seed: int | None = None, paths: int = 1, history: Any = None, **_: Any
    ) -> pd.DataFrame:
        """Simulate `paths` futures of `n` steps after the training data (or after `history`).

        Returns a DataFrame with a ``path`` column (when paths > 1), the time column continuing
        the data's spacing (when the data had one) and the value columns. Values stay inside
        each column's support (the likelihood's escape mass for values outside is not sampled).
        """
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
        vals = simulate(
            self.model,
            self.cols,
            self.transforms,
            self.center,
            self.scale,
            self.missing_rate,
            prep.Z,
            int(n),
            int(paths),
            seed,
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
            "columns": self.cols.names,
            "decimals": self.cols.decimals,
            "lower": self.cols.lower,
            "upper": self.cols.upper,
            "sqrt_ok": self.cols.sqrt_ok,
            "log_ok": self.cols.log_ok,
            "escape": [float(v) for v in self.cols.escape],
            "spread": [float(v) for v in self.cols.spread],
            "transforms": self.transforms,
            "time": self.time.to_json(),
            "column_order": self.column_order,
            "info": _jsonable(self.model.info),
            "next_step": self.next_step,
        }
        arrays = {
            "lags": self.model.lags.astype(np.int64),
            "intercept": self.model.intercept,
            "A": self.model.A,
            "B": self.model.B,
            "mix_w": self.model.mix_w,
            "mix_mu": self.model.mix_mu,
            "mix_sd": self.model.mix_sd,
            "center": self.center,
            "scale": self.scale,
            "missing_rate": self.missing_rate,
            "tail": self.tail,
            "level": (
                self.model.level
                if self.model.level is not None
                else np.zeros((len(self.cols.names), 1))
            ),
            "phase_scale": (
                self.model.phase_scale
                if self.model.phase_scale is not None
                else np.ones((len(self.cols.names), 1))
            ),
        }
        return meta, arrays

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> SeriesTwin:
        """Rebuild and validate a series twin from a model file."""
        names = meta["columns"]
        require(isinstance(names, list) and len(names) > 0, source, "no columns")
        d = len(names)
        for key in ("decimals", "lower", "upper", "sqrt_ok", "log_ok", "transforms"):
            require(isinstance(meta.get(key), list) and len(meta[key]) == d, source, f"bad {key}")
        require(all(t in TRANSFORMS for t in meta["transforms"]), source, "unknown transform")
        require(
            all(isinstance(k, int) and 0 <= k <= 15 for k in meta["decimals"]), source, "decimals"
        )
        next_step = meta.get("next_step", 0)
        require(isinstance(next_step, int) and next_step >= 0, source, "next_step")
        # model files written before the escape mass existed: ε = 1/(n+1) of the steps it kept
        escape = meta.get("escape", [1.0 / (next_step + 1.0)] * d)
        spread = meta.get("spread")
        if spread is None:
            spread = [
                _default_spread(meta["transforms"][j], arrays, j, meta["decimals"][j])
                for j in range(d)
            ]
        for key, vals in (("escape", escape), ("spread", spread)):
            require(
                isinstance(vals, list)
                and len(vals) == d
                and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in vals
                ),
                source,
                f"bad {key}",
            )
        require(all(0.0 < v < 1.0 for v in escape), source, "escape masses must be in (0, 1)")
        require(all(v > 0.0 for v in spread), source, "spreads must be > 0")
        for key in (
            "lags",
            "intercept",
            "A",
            "B",
            "mix_w",
            "mix_mu",
            "mix_sd",
            "center",
            "scale",
            "missing_rate",
            "tail",
        ):
            require(key in arrays, source, f"array {key} missing")
            require(arrays[key].dtype.kind in "fiu", source, f"array {key} is not numeric")
        lags = arrays["lags"].astype(np.int64)
        L = len(lags)
        require(lags.ndim == 1 and np.all(lags >= 1), source, "lags must be ≥ 1")
        require(L == 0 or np.all(np.diff(lags) > 0), source, "lags must increase")
        require(arrays["intercept"].shape == (d,), source, "intercept shape")
        require(arrays["A"].shape == (d, d), source, "A shape")
        require(np.all(np.triu(arrays["A"]) == 0), source, "A must be strictly lower triangular")
        require(arrays["B"].shape == (d, L, d), source, "B shape")
        w = arrays["mix_w"]
        require(w.ndim == 2 and w.shape[0] == d and w.shape[1] >= 1, source, "mix_w shape")
        K = w.shape[1]
        require(arrays["mix_mu"].shape == (d, K), source, "mix_mu shape")
        require(arrays["mix_sd"].shape == (d, K), source, "mix_sd shape")
        require(np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0, atol=1e-9), source, "weights")
        require(np.all(arrays["mix_sd"] > 0), source, "residual scales must be > 0")
        require(arrays["center"].shape == (d,), source, "center shape")
        require(arrays["scale"].shape == (d,), source, "scale shape")
        require(np.all(arrays["scale"] > 0), source, "scales must be > 0")
        mr = arrays["missing_rate"]
        require(mr.shape == (d,) and np.all((mr >= 0) & (mr < 1)), source, "missing rates")
        tail = arrays["tail"]
        require(
            tail.ndim == 2
            and tail.shape[1] == d
            and tail.shape[0] >= max(int(lags[-1]) if L else 0, 1),
            source,
            "tail shorter than the largest lag",
        )
        for key in ("intercept", "A", "B", "mix_w", "mix_mu", "mix_sd", "center", "scale", "tail"):
            require(bool(np.all(np.isfinite(arrays[key]))), source, f"{key} not finite")
        phase = arrays.get("phase_scale", np.ones((d, 1)))
        require(
            phase.ndim == 2 and phase.shape[0] == d and phase.shape[1] >= 1, source, "phase_scale"
        )
        require(bool(np.all(np.isfinite(phase)) and np.all(phase > 0)), source, "phase_scale > 0")
        phase = phase.astype(float)
        level = arrays.get("level", np.zeros((d, 1)))
        require(
            level.ndim == 2 and level.shape[0] == d and level.shape[1] >= 1, source, "level shape"
        )
        require(bool(np.all(np.isfinite(level))), source, "level not finite")
        level = level.astype(float)
        cols = Columns(
            list(names),
            [int(k) for k in meta["decimals"]],
            [None if v is None else float(v) for v in meta["lower"]],
            [None if v is None else float(v) for v in meta["upper"]],
            [bool(v) for v in meta["sqrt_ok"]],
            [bool(v) for v in meta["log_ok"]],
            [float(v) for v in escape],
            [float(v) for v in spread],
        )
        model = LinearModel(
            lags,
            arrays["intercept"].astype(float),
            arrays["A"].astype(float),
            arrays["B"].astype(float),
            w.astype(float),
            arrays["mix_mu"].astype(float),
            arrays["mix_sd"].astype(float),
            dict(meta.get("info") or {}),
            phase if phase.shape[1] > 1 else None,
            level,
        )
        axis = TimeAxis.from_json(meta["time"])
        require(axis.kind in ("none", "datetime", "numeric"), source, "time kind")
        return cls(
            cols,
            list(meta["transforms"]),
            arrays["center"].astype(float),
            arrays["scale"].astype(float),
            model,
            mr.astype(float),
            tail.astype(float),
            axis,
            list(meta.get("column_order") or names),
            str(meta.get("structure", "")),
            None,
            int(meta.get("next_step", 0)),
        )

    # ---- command line ---------------------------------------------------------------------
    @classmethod
    def cli_add_options(cls, fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
        """Series options: --time/--values/--max-lag/--time-gaps (fit), --paths/--history (sample)."""
        g = fit.add_argument_group("series (--kind series)")
        g.add_argument(
            "--time", metavar="COL", help="time column (default: a column named time/date/...)"
        )
        g.add_argument("--values", metavar="A,B,..", help="value columns (default: all but time)")
        g.add_argument(
            "--max-lag",
            type=int,
            metavar="P",
            help="largest AR order tried (default: 2 seasons, ≥ 24)",
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


def _per_column_transforms(
    scans: dict[str, tuple[Scan, float]], preps: dict[str, Prepared], P: int
) -> list[str]:
    """Each column's transform from the AR scans: the one with its fewest holdout bits."""
    best: list[tuple[float, str]] = []
    for tname, (sc, _) in scans.items():
        order = sc.best_order("ar", 1 if P >= 1 else 0)
        i = [c[0] for c in sc.sequences["ar"].candidates].index(order)
        col_nats = sc.holdout_cols["ar"][:, i]
        for j, v in enumerate(col_nats):
            t = preps[tname].transforms[j]
            if len(best) <= j:
                best.append((float(v), t))
            elif v < best[j][0]:
                best[j] = (float(v), t)
    return [t for _, t in best]


def _plan(
    n_train: int, period: int | None, long_period: int | None, max_lag: int | None
) -> dict[str, Any]:
    """Orders, seasonal lags and the first scored training step, shared by all candidates."""
    if max_lag is not None and max_lag < 0:
        raise InputError("--max-lag must be ≥ 0")
    P = max_lag if max_lag is not None else max(24, 2 * period if period else 0)
    P = int(min(P, max(1, n_train // 5)))
    seas: list[int] = []
    if period:
        seas = [k * period + o for k in (1, 2, 3) for o in (-1, 0, 1)]
        if long_period:
            seas += [long_period - 1, long_period, long_period + 1]
        seas = sorted({s for s in seas if s >= 1 and s + P <= n_train // 2})
    sdiff = period if period and period > 1 and period + P <= n_train // 2 else 0
    ar_lags = list(range(1, P + 1))
    level = [Sequence("ar", ar_lags, [(p, p) for p in range(P + 1)])]
    if seas:
        rest = [lag for lag in ar_lags if lag not in seas]
        cands = [(p, len(seas) + sum(1 for lag in rest if lag <= p)) for p in range(P + 1)]
        level.append(Sequence("seasonal", seas + rest, cands))
    T0 = max(P + 1, max(seas, default=0), P + sdiff + 1)
    T0 = min(T0, n_train - 2)
    return {"P": P, "seas": seas, "sdiff": sdiff, "ar_lags": ar_lags, "level": level, "T0": T0}


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


def _parse_structures(structures: list[str] | str | None) -> tuple[set[str], set[str]]:
    if structures is None:
        return set(FAMILIES), set(TRANSFORMS)
    items = structures.split(",") if isinstance(structures, str) else list(structures)
    items = [s.strip().lower() for s in items if s.strip()]
    fams = {s for s in items if s in FAMILIES}
    trans = {s for s in items if s in TRANSFORMS}
    bad = [s for s in items if s not in FAMILIES and s not in TRANSFORMS]
    if bad:
        raise InputError(
            f"unknown series structure {bad[0]!r}; choose from {', '.join(FAMILIES)} "
            f"and transforms {', '.join(TRANSFORMS)}"
        )
    return fams or set(FAMILIES), trans or set(TRANSFORMS)


def _missing_rate(vals: np.ndarray) -> np.ndarray:
    """Per-column missing rate (add-½), zero for columns with no missing value."""
    n = len(vals)
    miss = np.isnan(vals).sum(axis=0)
    return np.where(miss > 0, (miss + 0.5) / (n + 1.0), 0.0)


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


def _end_axis(sd: SeriesData, n_total: int) -> TimeAxis:
    """The time axis with `last` moved to the end of train (+ holdout file) data."""
    axis = TimeAxis(**sd.time.to_json())
    if axis.kind != "none" and sd.times:
        extra = n_total - len(sd.values)
        if extra > 0:
            axis.last = axis.following(sd.times[-1], extra)[-1]
        else:
            axis.last = sd.times[-1]
    return axis


def _check_continues(axis: TimeAxis, hd: SeriesData, what: str) -> None:
    if axis.kind == "none" or not hd.times:
        return
    exp = axis.following(None, 1)[0]
    ok = (
        pd.Timestamp(hd.times[0]) == pd.Timestamp(exp)
        if axis.kind == "datetime"
        else abs(float(hd.times[0]) - float(exp)) <= max(1e-6 * axis.step, 1e-9)
    )
    if not ok:
        raise InputError(
            f"the {what} file starts at {hd.times[0]} but should continue the series at {exp}"
        )


__all__ = ["FAMILIES", "SeriesTwin"]
