"""The series structures' builders: each fits one structure exactly (a leaderboard label
handed back to `fit`), and the modifiers (calendar, fourier, exog, phase, mix) build on the
best candidate so far. Registering a builder in `SERIES_STRUCTURES` is what makes a family
known to the search, the CLI and the contract suite."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .. import progress
from ..core.candidates import Candidate, stopwatch
from ..errors import InputError
from .ar import Prepared, Scan, Sequence
from .hetero import fit_hetero, hetero_windows
from .horizon import long_variant
from .precision import TRANSFORMS, log_cell_mass
from .regime import REACH, Design, block_spans, fit_extension, stabilize_regimes
from .residuals import fit_mixture, fit_phase_scale, scaled_residuals, stabilize
from .select import SERIES_STRUCTURES, SeriesCandidate, SeriesSearch
from .structures import SeriesStructure

#: components of a mixture of Gaussian residuals (`mix`)
_MIX_K = 3


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
    base = replace(
        st,
        fourier=False,
        exog=False,
        blocks=False,
        regime=False,
        hetero=False,
        phase=False,
        mix=False,
    )
    return SeriesCandidate(base, prep, sc.model(fam, st.order), pm)


def build_diff(search: SeriesSearch, st: SeriesStructure) -> SeriesCandidate:
    """A differenced structure at the label's order (Δ must be 1 or this series' season)."""
    _check_order(search, st)
    sdiff = search.plan.sdiff
    if st.family == "sdiff" and st.diff_lag != sdiff:
        raise InputError(f"{st.label}: seasonal differences of this series are Δ{sdiff or '-'}")
    prep = _transform_prep(search, st.transform)
    sc = search.diff_scan(st.family, prep)
    base = replace(st, exog=False, hetero=False, phase=False, mix=False)
    return SeriesCandidate(base, prep, sc.model(st.family, st.order))


def build_calendar(search: SeriesSearch, st: SeriesStructure) -> SeriesCandidate:
    """A level structure with calendar levels (the label names its family and order)."""
    return build_level(search, st)


def _base_sequence(search: SeriesSearch, st: SeriesStructure) -> tuple[Sequence, int, int]:
    """(nested orders, difference lag, smallest order) of a structure's family."""
    if st.levels:
        fam = "ar" if st.family == "iid" else st.family
        seq = search.plan.level_sequence(fam)
        assert seq is not None
        return seq, 0, 1 if st.family == "ar" else 0
    D = 1 if st.family == "diff" else search.plan.sdiff
    return search.plan.diff_sequence(st.family), D, 0


def build_fourier(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` (a level structure) reverting to a level with Fourier terms of several seasons;
    the harmonics of each season and the order are chosen by holdout bits (None: no season)."""
    st = base.structure
    if not st.levels or not search.plan.harmonic_grid or base.exog:
        return None
    seq, _, min_order = _base_sequence(search, st)
    best: tuple[float, Any] | None = None
    with progress.step("fitting Fourier levels"):
        for harm in search.plan.harmonic_grid:
            level, fourier = search.level_parts(base.prep, search.train_rows, base.calendar, harm)
            sc = Scan(base.prep, search.train_rows, search.hold_rows, [seq], 0, level, fourier)
            order = sc.best_order(seq.family, min_order)
            i = [c[0] for c in seq.candidates].index(order)
            nats = sc.holdout_nats[seq.family][i]
            if best is None or nats < best[0] - 1e-9:
                best = (nats, (harm, sc.model(seq.family, order), order))
    assert best is not None
    harm, model, order = best[1]
    stabilize(model)
    model.info["fourier"] = list(harm)
    fam = "ar" if st.family == "iid" and order > 0 else st.family
    new = replace(st, family=fam, order=order, fourier=True)
    return replace(base, structure=new, model=model, harmonics=tuple(harm))


def build_exog(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` with its calendar columns scored and drawn from the calendar, first in the chain;
    the order is chosen again on the other columns (None: no calendar column)."""
    if not search.cal_cols or search.clock is None:
        return None
    st, cols = base.structure, search.cols
    tr = [("none" if j in search.cal_cols else t) for j, t in enumerate(base.prep.transforms)]
    tname = st.transform if tr == base.prep.transforms else f"{st.transform}|exog"
    prep = search.prepared(tname, tr)
    seq, D, min_order = _base_sequence(search, st)
    names = [cols.names[j] for j in search.cal_cols]
    cand = replace(base, prep=prep, exog=names)
    level, fourier = search.level_parts(prep, search.train_rows, base.calendar, base.harmonics)
    chain, skip = search.chain_of(cand)
    with progress.step(f"fitting calendar columns {', '.join(names)}"):
        sc = Scan(prep, search.train_rows, search.hold_rows, [seq], D, level, fourier, chain, skip)
        order = sc.best_order(seq.family, min_order)
        model = stabilize(sc.model(seq.family, order))
        model.calendar = search.calendar_fit(prep, np.arange(search.n_train))
    if not st.levels:
        model.level = None
    model.info["calendar_clock"] = search.clock.to_json()
    model.info["exog"] = names
    if base.harmonics:
        model.info["fourier"] = list(base.harmonics)
    fam = "ar" if st.family == "iid" and order > 0 else st.family
    return replace(cand, structure=replace(st, family=fam, order=order, exog=True), model=model)


def _extend(
    search: SeriesSearch, base: SeriesCandidate, design: Design, mod: str
) -> SeriesCandidate | None:
    """`base` refit with `design` (lag blocks, regime) on the training rows (None: too few
    rows for its coefficients)."""
    m0 = base.model
    if not design.fits_in(base.prep, search.train_rows):
        return None
    model = fit_extension(base.prep, search.train_rows, m0, design, search.chain_of(base)[1])
    if "radius_cap" in m0.info:
        stabilize_regimes(model, float(m0.info["radius_cap"]))
    st = replace(base.structure, blocks=base.structure.blocks or mod == "blocks")
    st = replace(st, regime=mod == "regime")
    return replace(base, structure=st, model=model)


def _extensible(search: SeriesSearch, base: SeriesCandidate) -> bool:
    """A level structure without residual modifiers (blocks and regimes refit its mean)."""
    st = base.structure
    return st.levels and not (st.phase or st.mix) and search.plan.P >= 1


def build_blocks(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` with long-memory lag blocks beyond its order, up to REACH times the largest order
    scanned (a quarter of the training steps at most); None when there is no room or it has
    them already."""
    st = base.structure
    if not _extensible(search, base) or st.blocks or st.regime:
        return None
    d0 = Design.of(base.model)
    reach = min(REACH * search.plan.P, search.n_train // 4)
    spans = block_spans(d0.core, st.order, reach)
    if not spans:
        return None
    with progress.step("fitting long-memory lag blocks"):
        return _extend(search, base, Design(d0.core, spans, 0), "blocks")


def build_regime(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` with a second regime of the mean while each column's change over the last k
    steps is positive (k the season, else half the largest order scanned); None when the
    series is too short for it."""
    st = base.structure
    if not _extensible(search, base) or st.regime:
        return None
    period = search.plan.period
    k = int(period) if period and period > 1 else max(1, search.plan.P // 2)
    if 2 * k > search.n_train // 4:
        return None
    d0 = Design.of(base.model)
    with progress.step("fitting regimes of the mean"):
        return _extend(search, base, Design(d0.core, d0.spans, k), "regime")


def _gaussian_columns(search: SeriesSearch, model: Any) -> list[int]:
    """Columns with a Gaussian residual that may change (not indicators, not calendar)."""
    cal = model.calendar_index()
    return [
        j for j in range(len(search.cols.names)) if search.cols.upper[j] is None and j not in cal
    ]


def build_hetero(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` with a residual scale following the recent residuals' size (hetero.py), fit by
    maximum likelihood with the mean fixed (None: no Gaussian column, or too little history)."""
    st, m0 = base.structure, base.model
    if st.hetero or st.phase or st.mix:
        return None
    windows = hetero_windows(search.plan.period, search.plan.P)
    cols = _gaussian_columns(search, m0)
    if not cols or m0.max_lag + int(windows[1]) > search.n_train // 2:
        return None
    with progress.step("fitting volatility scales"):
        het, _ = fit_hetero(m0, base.prep, search.train_rows, windows, cols)
    model = replace(m0, hetero=het, info=dict(m0.info))
    model.info["hetero_windows"] = [int(k) for k in windows]
    return replace(base, structure=replace(st, hetero=True), model=model)


def build_phase(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate:
    """`base` with a residual scale per seasonal phase (step mod period), fit on the training
    residuals and shrunk toward 1."""
    period = search.plan.period
    if not period or period <= 1:
        raise InputError("phase scales need a seasonal time axis (period > 1)")
    prep, m0 = base.prep, base.model
    rows = search.rows_for(m0)
    res = scaled_residuals(m0, prep, rows)
    ps = fit_phase_scale(res, rows, m0.mix_sd[:, 0], period)
    model = replace(m0, phase_scale=ps, info=dict(m0.info))
    model.info["phase_period"] = int(period)
    return replace(base, structure=replace(base.structure, phase=True), model=model)


def build_mix(search: SeriesSearch, base: SeriesCandidate) -> SeriesCandidate | None:
    """`base` with mixture residuals on the columns where they make the holdout more probable
    (None when no column gains)."""
    cols, prep, m0 = search.cols, base.prep, base.model
    train_rows, hold_rows = search.rows_for(m0), search.hold_rows
    d = len(cols.names)
    W, MU, SD = np.zeros((d, _MIX_K)), np.zeros((d, _MIX_K)), np.ones((d, _MIX_K))
    used = []
    res = scaled_residuals(m0, prep, train_rows)
    hm, hs = m0.means_and_scales(prep.Z, hold_rows, hold_rows)
    for j in range(d):
        W[j, 0], SD[j, 0] = 1.0, m0.mix_sd[j, 0]
        if j not in _gaussian_columns(search, m0):  # indicator, calendar columns: no mixture
            continue
        w, mu, sd = fit_mixture(res[:, j], _MIX_K)
        o = prep.observed[hold_rows, j]
        a, b = prep.a[hold_rows, j][o], prep.b[hold_rows, j][o]
        mean = hm[o, j]
        sc = np.ones(len(mean)) if hs is None else hs[o, j]
        g = float(np.sum(m0.column_logp(j, a, b, mean, None if hs is None else sc)))
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
    "fourier",
    "the best level structure reverting to Fourier terms of several seasons (day, week, year)",
    build_fourier,
)
SERIES_STRUCTURES.add(
    "exog",
    "the best so far with calendar columns (weekday, work day, hour) drawn from the calendar",
    build_exog,
)
SERIES_STRUCTURES.add(
    "blocks",
    "the best level structure so far with long-memory means of lag blocks beyond its order",
    build_blocks,
)
SERIES_STRUCTURES.add(
    "regime",
    "the best level structure so far with a second regime of the mean (recent change > 0)",
    build_regime,
)
SERIES_STRUCTURES.add(
    "hetero",
    "the best so far with a residual scale following the recent residuals' size (ML)",
    build_hetero,
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
        for mod in ("fourier", "exog", "blocks", "regime"):
            if getattr(st, mod):
                nxt = SERIES_STRUCTURES.get(mod).builder(search, cand)
                if nxt is None:
                    raise InputError(f"{st.label}: {mod} does not apply to this series")
                cand = nxt
        if st.hetero:
            cand = SERIES_STRUCTURES.get("hetero").builder(search, cand)
            if cand is None:
                raise InputError(f"{st.label}: a volatility scale does not apply here")
        if st.phase:
            cand = SERIES_STRUCTURES.get("phase").builder(search, cand)
        if st.mix:
            cand = SERIES_STRUCTURES.get("mix").builder(search, cand)
            if cand is None:
                raise InputError(f"{st.label}: mixture residuals help no column on this holdout")
        if st.long:
            cand = long_variant(search, cand)
            if cand is None:
                raise InputError(f"{st.label}: +long applies to structures with +fourier")
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
