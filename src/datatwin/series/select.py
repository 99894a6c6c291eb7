"""The series candidate search, run through `core.candidates.select`.

Stages (all candidates scored on the same final holdout steps):

1. level structures per transform: one `Scan` per transform fits every AR order of ``ar``
   (and ``seasonal``) at once; ``iid`` (order 0) and the best ``ar(p)`` are candidates, and
   for several columns each column's best transform (``mixed``) is tried too;
2. ``seasonal`` under the best transform so far;
3. ``diff`` / ``sdiff``: AR of first / seasonal differences under that transform;
4. ``calendar``: the best level structure reverting to a mean per phase of the week/season;
5. ``fourier``: the best level structure reverting to a level with Fourier terms of several
   seasonal periods at once (day, week, year from the time column's spacing), the number of
   harmonics of each chosen by holdout bits from a short list;
6. ``exog``: the best so far with its calendar columns (detected, or declared `exogenous`)
   scored and drawn from the calendar (calendar.py) and first in the chain, so that the other
   columns condition on them within the step; the order is chosen again on the other columns
   (when that took a Fourier level, the calendar columns are also tried on the best without);
7. ``blocks``, then ``regime`` (regime.py): the best so far with long-memory means of lag
   blocks beyond its order, with a second regime of the mean while the recent change is
   positive (on level structures; also on the best without fourier/exog when that differs);
8. ``hetero``, ``phase``, then ``mix``: the best so far with a residual scale following the
   recent residuals' size (hetero.py), with per-phase residual scales, with mixture residuals.

A request of only ``blocks`` / ``regime`` / ``hetero`` fits the level structures, shows them (not
selectable) and selects among the modified ones.

The winner is refit on all rows (`refit`). With `structures` given as leaderboard labels
(`sqrt:ar(19)+seasonal+calendar`), each label is fit exactly instead (same plan, same scans,
same holdout), so a leaderboard row can be handed back to `fit` and reproduce its twin.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import progress
from ..core.candidates import Board, Candidate, Structure, stopwatch
from ..core.registry import StructureRegistry
from ..errors import InputError
from . import drift
from .ar import (
    Columns,
    LinearModel,
    Prepared,
    Scan,
    Sequence,
    fourier_level,
    level_table,
    prepare,
    standardiser,
)
from .calendar import Clock, fit_calendar
from .horizon import choose, drift_score, long_variant, refit_structure
from .precision import TRANSFORMS
from .scoring import bits_rows, missing_rate
from .structures import SeriesStructure


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
    #: seasonal periods (steps) of the Fourier level terms, and the harmonic counts tried
    seasons: list[float] = field(default_factory=list)
    harmonic_grid: list[tuple[int, ...]] = field(default_factory=list)

    @classmethod
    def make(
        cls,
        n_train: int,
        period: int | None,
        long_period: int | None,
        max_lag: int | None,
        clock: Clock | None = None,
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
        seasons, grid = _fourier_grid(n_train, period, clock)
        return cls(P, seas, sdiff, ar_lags, level, T0, period, long_period, seasons, grid)

    def harmonic_periods(self, harmonics: tuple[int, ...]) -> np.ndarray:
        """The periods of the Fourier terms: season / k for k = 1..K of each season (no
        repeats: the 7th weekly harmonic is the daily one)."""
        out: list[float] = []
        for P, K in zip(self.seasons, harmonics, strict=False):
            for k in range(1, K + 1):
                p = P / k
                if p > 2.0 and all(abs(p - q) > 1e-9 * q for q in out):
                    out.append(p)
        return np.array(out)

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


def _fourier_grid(
    n_train: int, period: int | None, clock: Clock | None
) -> tuple[list[float], list[tuple[int, ...]]]:
    """Seasons (day, week, year of sub-daily data; week, year of daily data; the season
    otherwise) and the harmonic counts tried for them, each season at most ~ the data's span."""
    grid: list[tuple[int, ...]]
    if clock is not None and clock.kind == "datetime":
        p = clock.per_day
        if p > 1:
            seasons = [float(p), 7.0 * p, 365.25 * p]
            grid = [(6, 3, 0), (10, 5, 0), (16, 8, 0), (24, 12, 0), (10, 5, 3)]
        else:
            seasons, grid = [7.0, 365.25], [(3, 0), (3, 2), (3, 4)]
    elif period and period > 1:
        seasons, grid = [float(period)], [(2,), (4,)]
    else:
        return [], []
    # a season needs half a cycle of training data for its terms
    keep = [i for i, per in enumerate(seasons) if per <= 2.0 * n_train]
    grid = sorted({tuple(k if i in keep else 0 for i, k in enumerate(g)) for g in grid})
    grid = [g for g in grid if any(g)]
    return seasons, grid


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
    #: harmonics of each Fourier season (empty: no Fourier terms)
    harmonics: tuple[int, ...] = ()
    #: calendar columns scored and drawn from the calendar
    exog: list[str] = field(default_factory=list)

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
            "fourier": list(self.harmonics) or None,
            "exog": list(self.exog),
            "long": st.long,
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
            fourier=",".join(map(str, p["fourier"])) if p["fourier"] else None,
            exog=",".join(p["exog"]) or None,
            long=True if p["long"] else None,
        )


#: the base families (the others modify one)
BASE_FAMILIES = {"iid", "ar", "seasonal", "diff", "sdiff"}
#: modifiers of a level structure's mean, tried in this order (regime.py)
MEAN_MODS = ("blocks", "regime")
#: modifiers that may be asked for alone (built on the best level structure)
STACKED = (*MEAN_MODS, "hetero")

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
        clock: Clock | None = None,
        cal_cols: list[int] | None = None,
    ) -> None:
        self.vals, self.cols, self.n_train, self.plan = vals, cols, n_train, plan
        self.clock = clock
        self.cal_cols = list(cal_cols or [])
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

    def rows_for(self, model: LinearModel) -> np.ndarray:
        """The training rows with the history `model` conditions on (long lag blocks and
        regime windows reach further back than the scanned orders)."""
        return self.train_rows[self.train_rows >= model.max_lag]

    def score(self, cand: SeriesCandidate, seconds: float) -> Candidate[SeriesCandidate]:
        """The candidate's bits per step on the training and the holdout rows."""
        bits = [
            bits_rows(cand.model, self.cols, self.rate, cand.prep, rows)
            for rows in (self.rows_for(cand.model), self.hold_rows)
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

    def level_parts(
        self, prep: Prepared, rows: np.ndarray, pm: int, harmonics: tuple[int, ...]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The level a structure reverts to: a table by phase (pm phases; 1: one mean) and
        Fourier terms with `harmonics` per season, fit on `rows`."""
        table = level_table(prep.Z, prep.observed, rows, pm or 1)
        if not harmonics:
            return table, None
        periods = self.plan.harmonic_periods(harmonics)
        table, coef = fourier_level(prep.Z, prep.observed, rows, periods, table)
        return table, (periods, coef)

    def chain_of(self, cand: SeriesCandidate) -> tuple[list[int] | None, frozenset[int]]:
        """(chain order, calendar columns) of a candidate (calendar columns first)."""
        if not cand.exog:
            return None, frozenset()
        cal = [self.cols.names.index(c) for c in cand.exog]
        rest = [j for j in range(len(self.cols.names)) if j not in cal]
        return cal + rest, frozenset(cal)

    def calendar_fit(self, prep: Prepared, rows: np.ndarray) -> Any:
        """The calendar model of the calendar columns, fit on `rows`."""
        assert self.clock is not None
        return fit_calendar(
            self.vals, rows, self.cal_cols, self.cols.decimals, prep.center, prep.scale, self.clock
        )

    # ---- the Search protocol ---------------------------------------------------------------
    def candidates(self, board: Board[SeriesCandidate]) -> Iterator[Candidate[SeriesCandidate]]:
        """The search's candidates, the best one's long-horizon variant (horizon.py), then
        the drift of the best ones (drift.py)."""
        yield from self._search(board)
        staged = not isinstance(self.request, list)
        best = board.best() if staged and board.contenders() else None
        if best is not None and best.model is not None:
            with progress.step("fitting the long-horizon variant"), stopwatch() as secs:
                long = long_variant(self, best.model)
            if long is not None:
                yield self.score(long, best.fit_seconds + secs())
        with progress.step("simulating the best candidates over the holdout"):
            drift.annotate(self, board)

    def choose(self, board: Board[SeriesCandidate]) -> Candidate[SeriesCandidate]:
        """The best by holdout bits, or its long-horizon variant (horizon.choose)."""
        chosen, best = choose(board), board.best()
        if chosen is not best:
            progress.note(
                f"selected {chosen.structure.label}: {chosen.holdout_bits - best.holdout_bits:+.4f} "
                f"bits per step against {best.structure.label}, and less drift over the "
                f"held-out span ({drift_score(chosen):.3f} against {drift_score(best):.3f})"
            )
        return chosen

    def _search(self, board: Board[SeriesCandidate]) -> Iterator[Candidate[SeriesCandidate]]:
        if isinstance(self.request, list):
            from .builders import build_exact  # the builders module registers every family

            for st in self.request:
                yield build_exact(self, st)
            return
        fams, trans = self.request
        if not fams & BASE_FAMILIES and fams <= set(STACKED):
            yield from self._mean_mods_only(fams, trans)
            return
        yield from self._levels(fams, trans)
        yield from self._seasonal_and_diffs(board, fams)
        if not board.contenders():
            raise InputError(
                "no candidate structure applies to this series; calendar, phase and mix modify a "
                "base structure, so structures needs one of iid, ar, seasonal, diff, sdiff"
            )
        yield from self._calendar(board, fams)
        before = board.best()  # the best without several-season Fourier and calendar columns
        for mod in ("fourier", "exog"):
            if mod in fams:
                best = board.best()
                with stopwatch() as secs:
                    built = self._modify(mod, best)
                if built is not None:
                    yield self.score(built, best.fit_seconds + secs())
        period = self.plan.period
        residual_mods: list[str] = [m for m in ("hetero", "phase", "mix") if m in fams]
        if not (period and period > 1) and "phase" in residual_mods:
            residual_mods.remove("phase")
        roots = [board.best()]
        if roots[0] is not before and before.structure.label in {c.structure.label for c in board}:
            # the greedy path took fourier/exog: also refine the best without them, so the
            # selection can never end worse than it did before those terms existed
            roots.append(before)
            plain = yield from self._exog_without_fourier(fams, roots[0], before)
            if plain is not None:
                roots.append(plain)
        for i, root in enumerate(roots):  # lag blocks and regimes: on the best only (time)
            base = (yield from self._mean_chain(fams, root)) if i == 0 else root
            yield from self._residual_chain(residual_mods, base)

    def _calendar(
        self, board: Board[SeriesCandidate], fams: set[str]
    ) -> Iterator[Candidate[SeriesCandidate]]:
        """Stage 4: the best level structure reverting to a mean per calendar phase."""
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

    def _exog_without_fourier(
        self, fams: set[str], best: Candidate[SeriesCandidate], before: Candidate[SeriesCandidate]
    ) -> Generator[Candidate[SeriesCandidate], None, Candidate[SeriesCandidate] | None]:
        """When the greedy path put the calendar columns on a Fourier level, the calendar
        columns on the best without Fourier terms too (the two differ in how the level is
        written; holdout bits decide, and each gets its residual chain)."""
        assert best.model is not None and before.model is not None
        if "exog" not in fams or not (best.model.exog and best.model.harmonics):
            return None
        if before.model.exog or before.model.harmonics:
            return None
        with stopwatch() as secs:
            built = self._modify("exog", before)
        if built is None:
            return None
        scored = self.score(built, before.fit_seconds + secs())
        yield scored
        return scored

    def _mean_chain(
        self, fams: set[str], base: Candidate[SeriesCandidate]
    ) -> Generator[Candidate[SeriesCandidate], None, Candidate[SeriesCandidate]]:
        """`blocks` then `regime` (those asked for), chained; returns the best of them."""
        return (yield from self._chained([m for m in MEAN_MODS if m in fams], base))

    def _chained(
        self, mods: list[str], base: Candidate[SeriesCandidate]
    ) -> Generator[Candidate[SeriesCandidate], None, Candidate[SeriesCandidate]]:
        """Each of `mods` in turn, built on the better of its base and what the previous one
        built; returns the best."""
        for mod in mods:
            with stopwatch() as secs:
                cand = self._modify(mod, base)
            if cand is None:
                continue
            scored = self.score(cand, base.fit_seconds + secs())
            yield scored
            if scored.holdout_bits < base.holdout_bits:
                base = scored
        return base

    def _mean_mods_only(
        self, fams: set[str], trans: set[str]
    ) -> Iterator[Candidate[SeriesCandidate]]:
        """A request of only `blocks` / `regime` / `hetero`: the level structures (iid, ar,
        seasonal) are fit and shown for comparison, not selected; each modifier builds on the
        best of them."""
        shown: Board[SeriesCandidate] = Board()
        for cand in self._levels({"iid", "ar", "seasonal"}, trans):
            shown.add(cand)
        for cand in self._seasonal_and_diffs(shown, {"seasonal"}):
            shown.add(cand)
        for cand in shown:
            yield replace(cand, baseline=True)
        built = False
        for mod in STACKED:
            if mod in fams:
                with stopwatch() as secs:
                    ext = self._modify(mod, shown.best())
                if ext is not None:
                    built = True
                    yield self.score(ext, shown.best().fit_seconds + secs())
        if not built:
            raise InputError(
                f"{' and '.join(sorted(fams))} apply to none of this series' level structures "
                "(too short for lag blocks or regime windows)"
            )

    def _modify(self, mod: str, base: Candidate[SeriesCandidate]) -> SeriesCandidate | None:
        assert base.model is not None
        cand: SeriesCandidate | None = SERIES_STRUCTURES.get(mod).builder(self, base.model)
        return cand

    def _residual_chain(
        self, mods: list[str], base: Candidate[SeriesCandidate]
    ) -> Iterator[Candidate[SeriesCandidate]]:
        """`hetero`, `phase` then `mix`, chained (`_chained`)."""
        yield from self._chained(mods, base)

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
        tr = win.prep.transforms
        c, s = standardiser(self.vals, tr)
        prep = prepare(self.vals, self.cols, tr, c, s)
        rows = np.arange(self.plan.T0, len(self.vals))
        cap = win.model.info.get("radius_cap")
        model = refit_structure(
            self, win, prep, rows, win.harmonics, None if cap is None else float(cap)
        )
        return replace(win, prep=prep, model=model)
