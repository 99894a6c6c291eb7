"""The series candidate search, run through `core.candidates.select`.

Stages (all candidates scored on the same final holdout steps):

1. level structures per transform: one `Scan` per transform fits every AR order of ``ar``
   (and ``seasonal``) at once; ``iid`` (order 0) and the best ``ar(p)`` are candidates, and
   for several columns each column's best transform (``mixed``) is tried too;
2. ``seasonal`` under the best transform so far;
3. ``diff`` / ``sdiff``: AR of first / seasonal differences under that transform;
4. ``calendar``: the best level structure reverting to a mean per phase of the week/season;
5. ``phase``, then ``mix``: the best so far with per-phase residual scales, with mixture
   residuals.

The winner is refit on all rows (`refit`). With `structures` given as leaderboard labels
(`sqrt:ar(19)+seasonal+calendar`), each label is fit exactly instead (same plan, same scans,
same holdout), so a leaderboard row can be handed back to `fit` and reproduce its twin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import progress
from ..core.candidates import Board, Candidate, Structure, stopwatch
from ..core.registry import StructureRegistry
from ..errors import InputError
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
from .precision import TRANSFORMS, log_cell_mass
from .scoring import bits_rows, missing_rate
from .structures import SeriesStructure

_MIX_K = 3


@dataclass
class Plan:
    """Orders, seasonal lags and the first scored training step, shared by all candidates."""

    P: int
    seas: list[int]
    sdiff: int
    ar_lags: list[int]
    level: list[Sequence]
    T0: int
    period: int | None
    long_period: int | None

    @classmethod
    def make(
        cls, n_train: int, period: int | None, long_period: int | None, max_lag: int | None
    ) -> Plan:
        if max_lag is not None and max_lag < 0:
            raise InputError(f"max_lag must be ≥ 0, not {max_lag}")
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
        return cls(P, seas, sdiff, ar_lags, level, T0, period, long_period)

    def level_sequence(self, family: str) -> Sequence | None:
        """The nested orders of a level family (`iid` is order 0 of `ar`)."""
        fam = "ar" if family == "iid" else family
        return next((q for q in self.level if q.family == fam), None)

    def diff_sequence(self, family: str) -> Sequence:
        return Sequence(family, self.ar_lags, [(p, p) for p in range(self.P + 1)])

    def calendar_period(self, n_rows: int) -> int:
        """Phases of the calendar level: the week for sub-daily data, else the season."""
        assert self.period
        pm = int(self.long_period) if self.long_period == 7 * self.period else int(self.period)
        return int(self.period) if n_rows < 10 * pm else pm


@dataclass
class SeriesCandidate:
    """What a series candidate carries: its structure, the prepared data it was fit on
    (transforms, standardiser, cells) and the fitted conditional."""

    structure: SeriesStructure
    prep: Prepared
    model: LinearModel
    #: phases of the calendar level (0: one mean, or a difference structure)
    calendar: int = 0
    mix_columns: list[str] = field(default_factory=list)

    @property
    def phase(self) -> int:
        """The seasonal period of the residual scales (0: none)."""
        ps = self.model.phase_scale
        return 0 if ps is None else int(ps.shape[1])

    def params(self) -> dict[str, Any]:
        """The structure's parameters as data (see `SeriesTwin.params`)."""
        st = self.structure
        return {
            "family": st.family,
            "order": st.order,
            "transform": st.transform,
            "transforms": list(self.prep.transforms),
            "difference": st.diff_lag,
            "calendar": self.calendar or None,
            "phase": self.phase or None,
            "mix": list(self.mix_columns),
        }

    def core_structure(self) -> Structure:
        p = self.params()
        return Structure.of(
            p["family"],
            label=self.structure.label,
            order=p["order"],
            transform=p["transform"],
            transforms="/".join(p["transforms"]),
            difference=p["difference"],
            calendar=p["calendar"],
            phase=p["phase"],
            mix=",".join(p["mix"]) or None,
        )


Builder = Callable[..., Any]
#: the series families and modifiers; `builder(search, structure[, base])` fits one exactly
SERIES_STRUCTURES: StructureRegistry[Builder] = StructureRegistry("series")


class SeriesSearch:
    """The candidates of one series (`core.candidates.Search`): the staged search, or the
    exact structures asked for; `refit` refits the winner on all rows."""

    def __init__(
        self,
        vals: np.ndarray,
        cols: Columns,
        n_train: int,
        plan: Plan,
        request: tuple[set[str], set[str]] | list[SeriesStructure],
        refit: bool,
    ) -> None:
        self.vals, self.cols, self.n_train, self.plan = vals, cols, n_train, plan
        self.request = request
        self.do_refit = refit
        self.train_rows = np.arange(plan.T0, n_train)
        self.hold_rows = np.arange(n_train, len(vals))
        self.holdout_units = len(self.hold_rows)  # the selection notes when too few decide
        self.rate = missing_rate(vals[:n_train])
        self.preps: dict[str, Prepared] = {}
        self.scans: dict[str, tuple[Scan, float]] = {}

    # ---- shared pieces ---------------------------------------------------------------------
    def prepared(self, tname: str, transforms: list[str]) -> Prepared:
        """The series under per-column `transforms`, standardised on the training rows."""
        if tname not in self.preps:
            c, s = standardiser(self.vals[: self.n_train], transforms)
            self.preps[tname] = prepare(self.vals, self.cols, transforms, c, s)
        return self.preps[tname]

    def level_scan(self, tname: str, transforms: list[str], level: list[Sequence]) -> Scan:
        """The one-mean level scan of a transform (every order of `level` at once)."""
        prep = self.prepared(tname, transforms)
        with progress.step(f"fitting AR orders 0..{self.plan.P} [{tname}]"), stopwatch() as secs:
            m0 = level_table(prep.Z, prep.observed, self.train_rows, 1)
            sc = Scan(prep, self.train_rows, self.hold_rows, level, 0, m0)
            if any(q.family == "ar" for q in level):
                sc.run("ar")
        self.scans[tname] = (sc, secs())
        return sc

    def calendar_scan(self, family: str, prep: Prepared) -> tuple[Scan, str, int]:
        """A level scan of `family` reverting to a mean per calendar phase."""
        fam = "ar" if family == "iid" else family
        seq = self.plan.level_sequence(fam)
        if seq is None or not self.plan.period or self.plan.period <= 1:
            raise InputError("calendar levels need a seasonal time axis and a level structure")
        pm = self.plan.calendar_period(len(self.train_rows))
        m = level_table(prep.Z, prep.observed, self.train_rows, pm)
        return Scan(prep, self.train_rows, self.hold_rows, [seq], 0, m), fam, pm

    def diff_scan(self, family: str, prep: Prepared) -> Scan:
        D = 1 if family == "diff" else self.plan.sdiff
        seq = self.plan.diff_sequence(family)
        return Scan(prep, self.train_rows, self.hold_rows, [seq], D)

    def score(self, cand: SeriesCandidate, seconds: float) -> Candidate[SeriesCandidate]:
        """The candidate's bits per step on the training and the holdout rows."""
        bits = [
            bits_rows(cand.model, self.cols, self.rate, cand.prep, rows)
            for rows in (self.train_rows, self.hold_rows)
        ]
        return Candidate(
            cand.core_structure(),
            bits[0],
            bits[1],
            seconds,
            cand,
            {
                "order": cand.structure.order,
                "transform": "/".join(cand.prep.transforms),
                "params": cand.model.n_params(),
            },
        )

    # ---- the Search protocol ---------------------------------------------------------------
    def candidates(self, board: Board[SeriesCandidate]) -> Iterator[Candidate[SeriesCandidate]]:
        if isinstance(self.request, list):
            for st in self.request:
                yield build_exact(self, st)
            return
        fams, trans = self.request
        yield from self._levels(fams, trans)
        yield from self._seasonal_and_diffs(board, fams)
        if not board.contenders():
            raise InputError(
                "no candidate structure applies to this series; calendar, phase and mix modify a "
                "base structure, so structures needs one of iid, ar, seasonal, diff, sdiff"
            )
        period = self.plan.period
        if "calendar" in fams and period and period > 1:
            base = board.best().model
            assert base is not None
            if base.structure.levels:
                with progress.step("fitting calendar levels"), stopwatch() as secs:
                    sc, fam, pm = self.calendar_scan(base.structure.family, base.prep)
                    order = sc.best_order(fam, 1 if fam == "ar" else 0)
                    st = replace(base.structure, family=fam, order=order, calendar=True)
                    cand = SeriesCandidate(st, base.prep, sc.model(fam, order), pm)
                yield self.score(cand, secs())
        for mod in ("phase", "mix"):
            if mod in fams and (mod == "mix" or (period and period > 1)):
                best = board.best()
                assert best.model is not None
                with stopwatch() as secs:
                    cand = SERIES_STRUCTURES.get(mod).builder(self, best.model)
                if cand is not None:
                    yield self.score(cand, best.fit_seconds + secs())

    def _levels(self, fams: set[str], trans: set[str]) -> Iterator[Candidate[SeriesCandidate]]:
        """Stage 1: iid and the best ar(p) under each transform (and per-column `mixed`)."""
        cols, P = self.cols, self.plan.P
        level = [
            s for s in self.plan.level if s.family in fams or (s.family == "ar" and "iid" in fams)
        ]
        options = [
            (t, cols.transforms_for(t))
            for t in TRANSFORMS
            if t in trans and (t == "none" or any(x != "none" for x in cols.transforms_for(t)))
        ]
        k = 0
        while k < len(options):
            tname, tr = options[k]
            k += 1
            prep = self.prepared(tname, tr)
            if not level:
                continue
            sc = self.level_scan(tname, tr, level)
            secs = self.scans[tname][1]
            if "iid" in fams:
                st = SeriesStructure("iid", 0, tname)
                yield self.score(SeriesCandidate(st, prep, sc.model("ar", 0)), secs)
            if "ar" in fams and P >= 1:
                order = sc.best_order("ar", 1)
                st = SeriesStructure("ar", order, tname)
                yield self.score(SeriesCandidate(st, prep, sc.model("ar", order)), secs)
            has_ar = any(q.family == "ar" for q in level)
            last = k == len(options) and "mixed" not in self.scans
            if has_ar and last and len(self.scans) > 1 and len(cols.names) > 1:
                mixed = self.per_column_transforms()
                if all(mixed != tr2 for _, tr2 in options):
                    options.append(("mixed", mixed))
        if not self.preps:
            raise InputError("no candidate structure applies; check structures")

    def _seasonal_and_diffs(
        self, board: Board[SeriesCandidate], fams: set[str]
    ) -> Iterator[Candidate[SeriesCandidate]]:
        """Stages 2 and 3, under the transform of the best candidate so far."""
        if board.contenders():
            best = board.best().model
            assert best is not None
            t_best = best.structure.transform
        else:
            t_best = next(iter(self.preps))
        prep = self.preps[t_best]
        if t_best in self.scans and "seasonal" in fams and self.plan.level_sequence("seasonal"):
            sc, scan_secs = self.scans[t_best]
            with stopwatch() as secs:
                order = sc.best_order("seasonal")
                cand = SeriesCandidate(
                    SeriesStructure("seasonal", order, t_best), prep, sc.model("seasonal", order)
                )
            yield self.score(cand, secs() + scan_secs)
        with progress.step("fitting differenced structures"):
            for fam, D in (("diff", 1), ("sdiff", self.plan.sdiff)):
                if fam in fams and D:
                    with stopwatch() as secs:
                        sc = self.diff_scan(fam, prep)
                        order = sc.best_order(fam)
                        st = SeriesStructure(fam, order, t_best, D)
                        cand = SeriesCandidate(st, prep, sc.model(fam, order))
                    yield self.score(cand, secs())

    def per_column_transforms(self) -> list[str]:
        """Each column's transform from the AR scans: the one with its fewest holdout bits."""
        best: list[tuple[float, str]] = []
        for tname, (sc, _) in self.scans.items():
            order = sc.best_order("ar", 1 if self.plan.P >= 1 else 0)
            i = [c[0] for c in sc.sequences["ar"].candidates].index(order)
            col_nats = sc.holdout_cols["ar"][:, i]
            for j, v in enumerate(col_nats):
                t = self.preps[tname].transforms[j]
                if len(best) <= j:
                    best.append((float(v), t))
                elif v < best[j][0]:
                    best[j] = (float(v), t)
        return [t for _, t in best]

    def refit(self, best: Candidate[SeriesCandidate]) -> SeriesCandidate:
        """The winning structure refit on all the data (train + holdout), or as it is."""
        win = best.model
        assert win is not None
        if not self.do_refit:
            return win
        vals, plan, st = self.vals, self.plan, win.structure
        tr = win.prep.transforms
        c, s = standardiser(vals, tr)
        prep = prepare(vals, self.cols, tr, c, s)
        if st.levels:
            seq = plan.level_sequence(st.family)
            assert seq is not None
            D = 0
        else:
            seq = plan.diff_sequence(st.family)
            D = 1 if st.family == "diff" else plan.sdiff
        seq = Sequence(seq.family, seq.lags, [c for c in seq.candidates if c[0] == st.order])
        rows = np.arange(plan.T0, len(vals))
        level = level_table(prep.Z, prep.observed, rows, win.calendar or 1)
        model = Scan(prep, rows, np.arange(0), [seq], D, level).model(seq.family, st.order)
        old = win.model
        res = residuals(model, prep, rows)
        if old.phase_scale is not None:
            ps = fit_phase_scale(res, rows, model.mix_sd[:, 0], old.phase_scale.shape[1])
            model.phase_scale = ps
            res = res / ps[:, rows % ps.shape[1]].T
        if st.mix:
            W, MU, SD = old.mix_w.copy(), old.mix_mu.copy(), old.mix_sd.copy()
            for j in range(len(self.cols.names)):
                if old.mix_w[j, 1:].any():
                    W[j], MU[j], SD[j] = fit_mixture(res[:, j], W.shape[1])
                else:
                    W[j], MU[j], SD[j] = 0.0, 0.0, 1.0
                    W[j, 0], SD[j, 0] = 1.0, model.mix_sd[j, 0]
            model = replace(model, mix_w=W, mix_mu=MU, mix_sd=SD)
        model.info = dict(old.info)
        return replace(win, prep=prep, model=model)


# ---- builders: one structure, exactly ------------------------------------------------------
def _transform_prep(search: SeriesSearch, tname: str) -> Prepared:
    """The prepared series of a label's transform (`mixed`: per column, from the AR scans of
    every transform, as the staged search finds it)."""
    cols = search.cols
    if tname in search.preps:
        return search.preps[tname]
    if tname != "mixed":
        tr = cols.transforms_for(tname)
        if tname != "none" and all(x == "none" for x in tr):
            raise InputError(f"the {tname} transform applies to no column of this series")
        return search.prepared(tname, tr)
    for t in TRANSFORMS:
        tr = cols.transforms_for(t)
        if t not in search.scans and (t == "none" or any(x != "none" for x in tr)):
            search.level_scan(t, tr, search.plan.level)
    return search.prepared("mixed", search.per_column_transforms())


def _check_order(search: SeriesSearch, st: SeriesStructure) -> None:
    if st.order > search.plan.P:
        raise InputError(
            f"{st.label}: order {st.order} is above the largest order scanned here "
            f"({search.plan.P}); pass max_lag={st.order} (as when it was fit)"
        )


def build_level(search: SeriesSearch, st: SeriesStructure) -> SeriesCandidate:
    """A level structure (optionally with calendar levels), at the label's order."""
    _check_order(search, st)
    prep = _transform_prep(search, st.transform)
    if st.calendar:
        sc, fam, pm = search.calendar_scan(st.family, prep)
    else:
        fam, pm = "ar" if st.family == "iid" else st.family, 0
        if search.plan.level_sequence(fam) is None:
            raise InputError(f"{st.label}: this series is too short for seasonal lags")
        cached = search.scans.get(st.transform)
        sc = (
            cached[0]
            if cached
            else search.level_scan(st.transform, prep.transforms, search.plan.level)
        )
    return SeriesCandidate(replace(st, phase=False, mix=False), prep, sc.model(fam, st.order), pm)


def build_diff(search: SeriesSearch, st: SeriesStructure) -> SeriesCandidate:
    """A differenced structure at the label's order (Δ must be 1 or this series' season)."""
    _check_order(search, st)
    sdiff = search.plan.sdiff
    if st.family == "sdiff" and st.diff_lag != sdiff:
        raise InputError(f"{st.label}: seasonal differences of this series are Δ{sdiff or '-'}")
    prep = _transform_prep(search, st.transform)
    sc = search.diff_scan(st.family, prep)
    return SeriesCandidate(replace(st, phase=False, mix=False), prep, sc.model(st.family, st.order))


def build_calendar(search: SeriesSearch, st: SeriesStructure) -> SeriesCandidate:
    """A level structure with calendar levels (the label names its family and order)."""
    return build_level(search, st)


def build_phase(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate:
    """`base` with a residual scale per seasonal phase (step mod period), fit on the training
    residuals and shrunk toward 1."""
    period = search.plan.period
    if not period or period <= 1:
        raise InputError("phase scales need a seasonal time axis (period > 1)")
    prep, m0 = base.prep, base.model
    res = residuals(m0, prep, search.train_rows)
    ps = fit_phase_scale(res, search.train_rows, m0.mix_sd[:, 0], period)
    model = replace(m0, phase_scale=ps, info=dict(m0.info))
    model.info["phase_period"] = int(period)
    return replace(base, structure=replace(base.structure, phase=True), model=model)


def build_mix(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` with mixture residuals on the columns where they make the holdout more probable
    (None when no column gains)."""
    cols, prep, m0 = search.cols, base.prep, base.model
    train_rows, hold_rows = search.train_rows, search.hold_rows
    d = len(cols.names)
    W, MU, SD = np.zeros((d, _MIX_K)), np.zeros((d, _MIX_K)), np.ones((d, _MIX_K))
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
    return replace(base, structure=replace(base.structure, mix=True), model=model, mix_columns=used)


SERIES_STRUCTURES.add(
    "iid", "no memory (the columns of a step still depend on each other)", build_level
)
SERIES_STRUCTURES.add(
    "ar", "AR(p) / vector AR(p), p = 1..max_lag chosen by holdout bits", build_level
)
SERIES_STRUCTURES.add("seasonal", "AR(p) plus lags k·season ± 1 (and the weekly lag)", build_level)
SERIES_STRUCTURES.add("diff", "AR(p) of first differences (ARIMA(p,1,0)), no drift", build_diff)
SERIES_STRUCTURES.add("sdiff", "AR(p) of seasonal differences y_t − y_{t−season}", build_diff)
SERIES_STRUCTURES.add(
    "calendar", "the best level structure reverting to a mean per phase", build_calendar
)
SERIES_STRUCTURES.add(
    "phase", "the best so far with a residual scale per seasonal phase", build_phase
)
SERIES_STRUCTURES.add(
    "mix", "the best so far with Gaussian-mixture residuals per column", build_mix
)
FAMILIES = tuple(SERIES_STRUCTURES.names())


def build_exact(search: SeriesSearch, st: SeriesStructure) -> Candidate[SeriesCandidate]:
    """The candidate a label names, fit and scored as the staged search fits it."""
    with progress.step(f"fitting {st.label}"), stopwatch() as secs:
        first = "calendar" if st.calendar else st.family
        cand = SERIES_STRUCTURES.get(first).builder(search, st)
        if st.phase:
            cand = SERIES_STRUCTURES.get("phase").builder(search, cand)
        if st.mix:
            cand = SERIES_STRUCTURES.get("mix").builder(search, cand)
            if cand is None:
                raise InputError(f"{st.label}: mixture residuals help no column on this holdout")
    return search.score(cand, secs())


def parse_request(
    structures: list[str] | str | None,
) -> tuple[set[str], set[str]] | list[SeriesStructure]:
    """`structures` as (families, transforms) to search, or as exact leaderboard labels."""
    if structures is None:
        return set(FAMILIES), set(TRANSFORMS)
    items = structures.split(",") if isinstance(structures, str) else list(structures)
    items = [str(s).strip() for s in items if str(s).strip()]
    names = [s.lower() for s in items if s.lower() in FAMILIES or s.lower() in TRANSFORMS]
    if len(names) == len(items):
        fams = {s for s in names if s in FAMILIES}
        trans = {s for s in names if s in TRANSFORMS}
        return fams or set(FAMILIES), trans or set(TRANSFORMS)
    labels = [s for s in items if s.lower() not in names]
    for s in labels:
        if not any(ch in s for ch in "(:+") and s.lower() != "iid":
            raise InputError(
                f"unknown series structure {s!r}; choose from {', '.join(FAMILIES)} and "
                f"transforms {', '.join(TRANSFORMS)}, or give a leaderboard label such as "
                "sqrt:ar(19)+seasonal"
            )
    if names:
        raise InputError(
            f"structures: give family/transform names ({', '.join(names)}) or leaderboard "
            f"labels ({', '.join(labels)}), not both"
        )
    out = [SeriesStructure.parse(s) for s in labels]
    return out
