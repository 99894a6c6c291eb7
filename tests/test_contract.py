"""The twin contract, in the spirit of scikit-learn's `check_estimator`: every kind × structure
is held to the same properties through the public API only (`datatwin.fit`, `twin.log_prob`,
`twin.sample`, `twin.save`, `datatwin.load`, `twin.structure`, `twin.leaderboard`), so that a
structure registered later is tested by being registered.

Properties (one parametrised test each, so a failure names kind, structure and property):
1. fits on tiny data in seconds and `twin.structure` names the structure asked for;
2. probabilities sum to one over the whole domain, by enumeration through `log_prob`
   (and distinct unseen values share the escape mass instead of each getting all of it);
3. unseen values get a finite log-probability, lower than a typical value's;
4. save → load is exact (log_prob bit-identical, samples identical);
5. seeded sampling: same seed → same sample, different seeds → different samples;
6. a damaged model file is refused with a one-line `DataTwinError`;
7. the leaderboard has finite bits and exactly one selected row.

The cases, `CASES`, are every kind × `structures_of(kind)`, each with its tiny data, options and
domain-enumeration function (`KINDS`, `OVERRIDES`).

Units of `log_prob`: nats per record (table), per symbol including each document's /
sequence's end (text, events), per time step (series).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.kinds import twin_class

SEED = 0
HOLDOUT = 0.2
#: the escape mass (values never seen) a tiny twin may set aside, at most
ESCAPE_BOUND = 0.1
#: relative tolerance of "sums to exactly one"
EXACT = 1e-9
#: relative tolerance of a series step summed over a grid of cells
SERIES_EXACT = 1e-6
#: a tiny fit must take no more than this (generous: a shared 2-core machine)
FIT_SECONDS = 10.0
UNSEEN = "zz-never-seen"
UNSEEN_2 = "zz-never-seen-either"


# ---- tiny data ----------------------------------------------------------------------------
def table_categorical() -> pd.DataFrame:
    """Three categorical columns with a chain of dependencies a → b → c (60 rows)."""
    rng = np.random.default_rng(5)
    n = 60
    a = rng.choice(["a1", "a2", "a3"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < 0.8, np.where(a == "a1", "b1", "b2"), "b3")
    c = np.where(rng.random(n) < 0.7, np.where(b == "b1", "c1", "c2"), "c1")
    return pd.DataFrame({"a": a, "b": b, "c": c})


def table_numeric() -> pd.DataFrame:
    """Two correlated integer columns (recorded precision 1), for the `gaussian` structure."""
    rng = np.random.default_rng(6)
    x = np.round(rng.normal(0.0, 3.0, 80)).astype(int)
    y = np.round(0.5 * x + rng.normal(0.0, 2.0, 80)).astype(int)
    return pd.DataFrame({"x": x, "y": y})


def text_bytes() -> list[bytes]:
    """Four short documents, modelled as raw bytes (every byte value is in the alphabet)."""
    return [b"abracadabra", b"cadabra abba", b"banana bandana", b"alakazam"]


EVENT_COLUMNS = {"sequence_id": "S", "order_by": "P", "event": "E"}


def events_table() -> pd.DataFrame:
    """80 sequences of 2..5 events over {x, y, z}: where a sequence ends depends on its
    length, so length-aware ends (`+len`) win the holdout."""
    rng = np.random.default_rng(7)
    n = 80
    lengths = rng.integers(2, 6, n)
    seq = np.repeat([f"s{i}" for i in range(n)], lengths)
    pos = np.concatenate([np.arange(k) for k in lengths])
    ev = rng.choice(["x", "y", "z"], len(seq), p=[0.5, 0.3, 0.2])
    return pd.DataFrame({"S": seq, "P": pos, "E": ev})


SERIES_STEPS = 144  # 12 years of months: enough for seasonal lags with max_lag=3
SERIES_NEXT = 12


def _series_all() -> pd.DataFrame:
    """A monthly AR(1) series with an annual cycle, integers (precision 1), negative values
    too (an unbounded column, no transform), and 12 months beyond the training data."""
    rng = np.random.default_rng(8)
    n = SERIES_STEPS + SERIES_NEXT
    y = np.zeros(n + 50)
    e = rng.normal(0.0, 2.0, n + 50)
    for t in range(1, n + 50):
        y[t] = 0.6 * y[t - 1] + e[t] + 3.0 * math.sin(2 * math.pi * t / 12)
    months = pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    return pd.DataFrame({"month": months, "y": np.round(y[50:]).astype(int)})


def series_monthly() -> pd.DataFrame:
    return _series_all().iloc[:SERIES_STEPS].reset_index(drop=True)


def series_continuation() -> pd.DataFrame:
    """The 12 steps that continue `series_monthly` in time."""
    return _series_all().iloc[SERIES_STEPS:].reset_index(drop=True)


# ---- domain enumeration: each returns nothing and asserts the mass sums to one ---------------
def _rows(columns: list[str], values: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(itertools.product(*values)), columns=columns)


def _mass(twin, rows: pd.DataFrame) -> float:
    lp = twin.log_prob(rows)
    assert lp.shape == (len(rows),), "table log_prob must give one value per record"
    assert np.all(np.isfinite(lp))
    return float(np.exp(lp).sum())


def _extra_mass(twin, rows: pd.DataFrame, new: list[str]) -> float:
    """Σ P(row) over the rows holding at least one of the values `new` (summed apart from
    the rest: their mass can be far below the rounding error of the rest's total)."""
    has_new = rows.isin(new).any(axis=1).to_numpy()
    assert has_new.any()
    return _mass(twin, rows[has_new])


def table_categorical_mass(twin, data: pd.DataFrame) -> None:
    """Tables: a column's domain is its seen values plus infinitely many unseen ones, so
    (a) Σ over every combination of seen values of P(row) lies in [1 − ESCAPE_BOUND, 1], and
    (b) one unseen value per column added strictly increases the total, which stays ≤ 1."""
    cols = list(data.columns)
    seen = [sorted(data[c].unique()) for c in cols]
    total = _mass(twin, _rows(cols, seen))
    assert total <= 1.0 + EXACT
    assert total >= 1.0 - ESCAPE_BOUND, f"the seen values get only {total:.6f}"
    extra = _extra_mass(twin, _rows(cols, [v + [UNSEEN] for v in seen]), [UNSEEN])
    assert extra > 0.0, "unseen values get no mass"
    assert total + extra <= 1.0 + EXACT


def table_numeric_mass(twin, data: pd.DataFrame) -> None:
    """All-numeric tables (e.g. `gaussian`): values are recorded at a finite precision (here
    integers), so P(row) is the mass of the row's cell, and Σ over the whole 2-D grid of cells
    is P(every column is a number). The grid runs over each column's range ± 12 standard
    deviations (we check its border cells are negligible, so nothing numeric is left out); the
    rest of the mass belongs to non-numeric tokens (missing values, junk, which every table
    twin scores as finite), so the total lies in [1 − ESCAPE_BOUND, 1]. Adding the tokens
    "" (missing) and "?" to each column strictly increases the total and keeps it ≤ 1."""
    cols = list(data.columns)
    assert len(cols) == 2, "this check enumerates a 2-D grid"
    grids = []
    for c in cols:
        x = data[c].to_numpy(float)
        sd = float(x.std()) or 1.0
        grids.append(list(range(math.floor(x.min() - 12 * sd), math.ceil(x.max() + 12 * sd) + 1)))
    rows = _rows(cols, grids)
    lp = twin.log_prob(rows.astype(str))
    assert np.all(np.isfinite(lp))
    p = np.exp(lp).reshape(len(grids[0]), len(grids[1]))
    total = float(p.sum())
    border = float(p[0].sum() + p[-1].sum() + p[:, 0].sum() + p[:, -1].sum())
    assert border <= 1e-12 * total, "the grid does not cover the numeric mass"
    assert total <= 1.0 + EXACT
    assert total >= 1.0 - ESCAPE_BOUND, f"numbers get only {total:.6f}"
    tokens = [[str(v) for v in g] + ["", "?"] for g in grids]
    extra = _extra_mass(twin, _rows(cols, tokens), ["", "?"])
    assert extra > 0.0, "non-numeric tokens get no mass"
    assert total + extra <= 1.0 + EXACT


def _split(lp: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    """log_prob's flat output cut per document/sequence (`lengths`: symbols + 1 end each)."""
    assert len(lp) == sum(lengths), (
        f"log_prob gave {len(lp)} values for {sum(lengths)} symbols + ends: one per symbol "
        "and one for each document's / sequence's end"
    )
    return np.split(lp, np.cumsum(lengths)[:-1])


def _check_step(parts: list[np.ndarray], ended: np.ndarray | None, k: int, what: str) -> None:
    """`parts`: log_prob of p·s for every next symbol s (k = |p|); `ended`: log_prob of p as
    a whole document/sequence (None when it cannot be written). Checks that the prefix p
    scores the same whatever follows, and Σ_s P(s | p) + P(end | p) = 1."""
    ref = parts[0][:k]
    for q in parts[1:]:
        np.testing.assert_array_equal(q[:k], ref, err_msg="a prefix's probability changed")
    prefix = float(np.exp(ref.sum()))
    total = float(sum(np.exp(q[: k + 1].sum()) for q in parts))
    if ended is None:
        # P(end | p) cannot be observed: the mass of the next symbols alone
        assert total <= prefix * (1.0 + EXACT), what
        assert total >= prefix * (1.0 - ESCAPE_BOUND), what
        return
    np.testing.assert_array_equal(ended[:k], ref, err_msg="a prefix's probability changed")
    total += float(np.exp(ended.sum()))
    assert total == pytest.approx(prefix, rel=EXACT), what


def text_byte_steps(twin, data: list[bytes]) -> None:
    """Text as bytes: every byte value is a symbol (unseen ones share the escape), so the
    chain rule is checked exactly: for prefixes p, Σ over all 256 bytes b of P(p·b as a
    prefix) + P(document = p) = P(p as a prefix), where a prefix's probability is the
    product of its symbols' log_prob (without the end) and a document's includes its end.
    The long prefix repeats itself, so that a document cache is in play."""
    doc = data[0]
    for p in (b"", doc[:1], doc[:2], b"\x00", doc + doc[:6]):
        docs = [p + bytes([b]) for b in range(256)] + [p]
        parts = _split(twin.log_prob(docs), [len(p) + 2] * 256 + [len(p) + 1])
        _check_step(parts[:-1], parts[-1], len(p), f"after prefix {p!r}")


def _events(sequences: list[list[str]]) -> pd.DataFrame:
    rows = [(f"q{i}", j, e) for i, s in enumerate(sequences) for j, e in enumerate(s)]
    return pd.DataFrame(rows, columns=["S", "P", "E"])


def event_steps(twin, data: pd.DataFrame) -> None:
    """Events: the step after a prefix p runs over the seen events, the unseen ones and the
    end: Σ_e P(p·e as a prefix) + P(sequence = p) = P(p as a prefix), for p of one and two
    events. All the unseen events together are one unseen event's probability divided by
    its share of them, `twin.unseen` (the spelling of names never seen, which sums to one
    over those names). The empty sequence cannot be written as a table (it has no rows), so
    after the empty prefix only Σ_e P(e first) ∈ [1 − ESCAPE_BOUND, 1] is checked."""
    alphabet = sorted(data["E"].unique()) + [UNSEEN]
    share = float(twin.unseen.nats_many([UNSEEN])[0])
    first = data[data["S"] == data["S"].iloc[0]].sort_values("P")["E"].tolist()
    for p in ([], first[:1], first[:2]):
        seqs = [p + [e] for e in alphabet] + ([p] if p else [])
        lengths = [len(s) + 1 for s in seqs]
        parts = _split(twin.log_prob(_events(seqs)), lengths)
        ended = parts.pop() if p else None
        parts[len(alphabet) - 1][len(p)] += share  # every unseen event: P(UNK | p)
        _check_step(parts, ended, len(p), f"after prefix {p}")


def series_next_step(twin, data: pd.DataFrame) -> None:
    """Series: one step given its history (`log_prob(step, history=data)`). The column is an
    unbounded integer column (precision 1), so the next value's cells are the integers; their
    masses over a grid of the data's range ± 12 standard deviations sum to one (border cells
    negligible, so the grid holds all the mass) but for the finer mass φ: the values with
    more decimals, each with its cell's mass times φ · P(d) / (9 · 10^(d-1))."""
    nxt = series_continuation().iloc[:1]
    y = data["y"].to_numpy(float)
    sd = float(y.std())
    grid = range(math.floor(y.min() - 12 * sd), math.ceil(y.max() + 12 * sd) + 1)
    lp = np.array([twin.log_prob(nxt.assign(y=v), history=data)[0] for v in grid])
    assert np.all(np.isfinite(lp))
    p = np.exp(lp)
    assert p[0] + p[-1] <= 1e-12, "the grid does not cover the step's mass"
    phi = twin.cols.finer[0]
    assert float(p.sum()) + phi == pytest.approx(1.0, rel=SERIES_EXACT)
    assert float(p.sum()) + phi <= 1.0 + EXACT
    v = int(np.argmax(p))  # a value one decimal finer in the likeliest cell: φ/(1-φ) · ½ · 1/9
    finer = float(twin.log_prob(nxt.assign(y=grid[v] + 0.3), history=data)[0])
    assert finer - lp[v] == pytest.approx(math.log(phi / (1 - phi) / 18), abs=1e-9)


# ---- the contract cases -----------------------------------------------------------------
#: registered names that are not whole structures on their own: text/events smoothers and
#: layers are parts of a label (markov2+kn+cache); series modifiers need a base family
_PARTS = {"text": {"unigram", "markov"}, "events": {"unigram", "markov"}, "series": set()}
#: series: need seasons or a base family
_MODIFIERS = {"calendar", "fourier", "exog", "phase", "mix", "sdiff"}
#: neural structures (torch extra), with tiny fixed training so that fits take seconds: the
#: table's registered `neural` runs as `neural[epochs=3]`; text and events add these labels
NEURAL = {
    "table": ["neural[epochs=3]"],
    "text": ["neural[steps=15]", "markov2+kn+cache+neural[w=0.5,steps=15]"],
    "events": ["neural[steps=300]"],
}
try:
    import torch  # noqa: F401  (imported once here, not inside a timed fit)

    import datatwin.text.neural_select as _ns

    _TINY = {"cell": "gru", "hidden": 16, "embed": 8, "window": 16, "batch": 8, "threads": 1}
    _ns.NET.update(text=_TINY, events=_TINY)
    HAVE_TORCH = True
except ImportError:  # without the extra, tests/test_neural.py checks the skip note
    HAVE_TORCH = False


def structures_of(kind: str) -> list[str]:
    """The structures (as `structures=` takes them) the contract covers for `kind`, from the
    kind's structure registry, so that registering a structure puts it under contract.

    Tables and series: every registered name (series modifiers, which need a base family and
    seasons the tiny series lacks, are covered by the series tests). Text and events: each
    registered smoother on an order-2 chain, and each registered layer on `markov2+kn`.
    """
    reg = twin_class(kind).structure_registry
    assert reg is not None, f"kind {kind!r} has no structure registry"
    names = [n for n in reg.names() if n != "neural"]  # neural: tiny labels below
    neural = NEURAL.get(kind, []) if HAVE_TORCH else []
    if kind == "table":
        return names + neural
    if kind == "series":
        return [n for n in names if n not in _MODIFIERS]
    smoothers = [n for n in names if n in ("kn", "wb")]
    layers = [n for n in names if n not in smoothers and n not in _PARTS[kind]]
    # (an events unigram ends an empty sequence with real probability, which the empty-
    # prefix bound of `event_steps` cannot see: unigrams are checked on text only)
    unigram = ["unigram+wb"] if kind == "text" else []
    chains = [f"markov2+{s}" for s in smoothers] + unigram
    return chains + [f"markov2+kn+{x}" for x in layers] + neural


@dataclass(frozen=True)
class Kind:
    """How the contract drives one kind: tiny data, options, domain enumeration."""

    data: Callable[[], Any]
    options: dict[str, Any]
    domain: Callable[[Any, Any], None]


KINDS = {
    "table": Kind(table_categorical, {}, table_categorical_mass),
    "text": Kind(text_bytes, {"tokens": "bytes", "baselines": False}, text_byte_steps),
    "events": Kind(events_table, {**EVENT_COLUMNS, "baselines": False}, event_steps),
    "series": Kind(series_monthly, {"time": "month", "max_lag": 3}, series_next_step),
}

#: what a (kind, structure) needs beyond its kind's defaults
OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("table", "dag"): {"options": {"edges": [("a", "c"), ("b", "c")]}},
    ("table", "gaussian"): {"data": table_numeric, "domain": table_numeric_mass},
}

#: the name `twin.structure` takes for a structure family (default: the name itself)
NAMES: dict[tuple[str, str], str] = {
    ("events", "markov2+kn+len"): r"markov2\+kn\+len\[w=[0-9.]+\]",
    ("series", "ar"): r"ar\(\d+\)",
    ("series", "seasonal"): r"ar\(\d+\)\+seasonal",
    ("series", "diff"): r"ar\(\d+\) of Δ1",
    ("series", "blocks"): r"(\w+:)?ar\(\d+\)(\+seasonal)?\+blocks",
    ("series", "regime"): r"(\w+:)?ar\(\d+\)(\+seasonal)?\+regime",
    ("series", "hetero"): r"(\w+:)?ar\(\d+\)(\+seasonal)?\+hetero",
}


@dataclass(frozen=True)
class Case:
    kind: str
    structure: str
    data: Callable[[], Any]
    options: dict[str, Any]
    domain: Callable[[Any, Any], None]  # enumerates the domain, asserts the mass is one
    name: str  # regular expression `twin.structure` must match

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.structure}"


def _case(kind: str, structure: str) -> Case:
    k = KINDS[kind]
    extra = OVERRIDES.get((kind, structure), {})
    return Case(
        kind,
        structure,
        extra.get("data", k.data),
        {**k.options, **extra.get("options", {})},
        extra.get("domain", k.domain),
        NAMES.get((kind, structure), re.escape(structure)),
    )


CASES = [_case(kind, s) for kind in KINDS for s in structures_of(kind)]


def _params(cases: list[Case], xfail: dict[tuple[str, str], Any] | None = None) -> list[Any]:
    out = []
    for c in cases:
        mark = (xfail or {}).get((c.kind, c.structure))
        out.append(pytest.param(c, id=c.id, marks=[mark] if mark else []))
    return out


ALL = _params(CASES)


@dataclass
class Fitted:
    twin: Any
    data: Any
    seconds: float


@pytest.fixture(scope="module")
def _fits() -> dict[str, Fitted]:
    return {}


@pytest.fixture
def fitted(case: Case, _fits: dict[str, Fitted]) -> Fitted:
    """The twin of `case` on its tiny data, fitted once per module."""
    if case.id not in _fits:
        data = case.data()
        t0 = time.perf_counter()
        twin = datatwin.fit(
            data,
            kind=case.kind,
            structures=case.structure,
            holdout=HOLDOUT,
            seed=SEED,
            **case.options,
        )
        _fits[case.id] = Fitted(twin, data, time.perf_counter() - t0)
    return _fits[case.id]


# ---- per-kind data to score, unseen values, sample comparison -------------------------------
def probe(case: Case, data: Any) -> Any:
    """Data to score (for a series: the steps that continue the training data)."""
    if case.kind == "series":
        return series_continuation()
    if case.kind == "text":
        return [*data, data[0][:3] + b"\x00" + data[0][3:]]
    return data


def _unseen_table(twin, data: pd.DataFrame) -> list[tuple[str, float, float]]:
    base = data.iloc[[0]].astype(str).reset_index(drop=True)
    typical = float(twin.log_prob(base)[0])
    out = []
    for c in data.columns:
        news = ["1000000", "-1000000"] if pd.api.types.is_numeric_dtype(data[c]) else [UNSEEN]
        for v in news:
            lp = twin.log_prob(base.assign(**{c: v}))
            out.append((f"{c}={v}", float(lp[0]), typical))
    return out


def _unseen_text(twin, data: list[bytes]) -> list[tuple[str, float, float]]:
    doc = data[0]
    i = len(doc) // 2
    seen = set(b"".join(data))
    byte = next(b for b in range(256) if b not in seen)
    lp = _split(twin.log_prob([doc, doc[:i] + bytes([byte]) + doc[i + 1 :]]), [len(doc) + 1] * 2)
    return [(f"byte {byte:#04x}", float(lp[1][i]), float(lp[0][i]))]


def _unseen_events(twin, data: pd.DataFrame) -> list[tuple[str, float, float]]:
    seq = data[data["S"] == data["S"].iloc[0]].sort_values("P")["E"].tolist()
    i = len(seq) // 2
    other = seq[:i] + [UNSEEN] + seq[i + 1 :]
    lp = _split(twin.log_prob(_events([seq, other])), [len(seq) + 1] * 2)
    return [(f"event {UNSEEN}", float(lp[1][i]), float(lp[0][i]))]


def _unseen_series(twin, data: pd.DataFrame) -> list[tuple[str, float, float]]:
    nxt = series_continuation()
    typical = twin.log_prob(nxt)
    out = []
    for v in (10**6, -(10**6), 10**12):
        y = nxt["y"].to_numpy(float)
        y[0] = v
        lp = twin.log_prob(nxt.assign(y=y))
        assert np.all(np.isfinite(lp)), f"a later step became non-finite after y={v}"
        out.append((f"y={v}", float(lp[0]), float(typical[0])))
    return out


UNSEEN_VALUES = {
    "table": _unseen_table,
    "text": _unseen_text,
    "events": _unseen_events,
    "series": _unseen_series,
}


def assert_same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        assert type(a) is type(b)
        assert a == b


def same(a: Any, b: Any) -> bool:
    try:
        assert_same(a, b)
    except AssertionError:
        return False
    return True


SAMPLE_N = {"table": 50, "text": 200, "events": 30, "series": 24}


# ---- 1. fits ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL)
def test_fits_and_names_its_structure(case: Case, fitted: Fitted):
    assert fitted.seconds < FIT_SECONDS, f"fit took {fitted.seconds:.1f} s on tiny data"
    assert isinstance(fitted.twin, datatwin.Twin)
    assert re.fullmatch(case.name, fitted.twin.structure), (
        f"asked for {case.structure!r}, got {fitted.twin.structure!r}"
    )


# ---- 2. probabilities sum to one ----------------------------------------------------------
@pytest.mark.parametrize("case", ALL)
def test_probabilities_sum_to_one_over_the_domain(case: Case, fitted: Fitted):
    case.domain(fitted.twin, fitted.data)


SHARE_CASES = [c for c in CASES if c.kind in ("table", "events") and c.structure != "gaussian"]


@pytest.mark.parametrize("case", _params(SHARE_CASES))
def test_distinct_unseen_values_share_the_escape_mass(case: Case, fitted: Fitted):
    """Two different values never seen must share the escape mass, not each take all of it:
    with two unseen values added the total still is at most one (tables: every combination;
    events: the step after a one-event prefix). Text bytes enumerate every unseen byte in
    property 2 already; series values are numbers on a grid."""
    twin, data = fitted.twin, fitted.data
    if case.kind == "table":
        cols = list(data.columns)
        values = [sorted(data[c].unique()) + [UNSEEN, UNSEEN_2] for c in cols]
        assert _mass(twin, _rows(cols, values)) <= 1.0 + EXACT
        return
    alphabet = sorted(data["E"].unique()) + [UNSEEN, UNSEEN_2]
    p = data[data["S"] == data["S"].iloc[0]].sort_values("P")["E"].tolist()[:1]
    seqs = [p + [e] for e in alphabet] + [p]
    parts = _split(twin.log_prob(_events(seqs)), [len(s) + 1 for s in seqs])
    ended = parts.pop()
    total = sum(float(np.exp(q[:2].sum())) for q in parts) + float(np.exp(ended.sum()))
    assert total <= float(np.exp(ended[:1].sum())) * (1.0 + EXACT)


# ---- 3. unseen values --------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL)
def test_unseen_values_are_finite_and_less_probable(case: Case, fitted: Fitted):
    checks = UNSEEN_VALUES[case.kind](fitted.twin, fitted.data)
    assert checks
    for what, lp, typical in checks:
        assert math.isfinite(lp), f"{what}: log-probability {lp}"
        assert lp < typical, f"{what}: {lp} is not below a typical value's {typical}"


# ---- 4. save → load --------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL)
def test_save_load_is_exact(case: Case, fitted: Fitted, tmp_path: Path):
    twin = fitted.twin
    path = tmp_path / "model.twin"
    twin.save(path)
    back = datatwin.load(path)
    assert type(back) is type(twin)
    assert back.structure == twin.structure
    # wall-clock seconds stay out of the file (same data + seed, same bytes)
    timeless = [{k: v for k, v in row.items() if k != "fit_seconds"} for row in twin.leaderboard]
    assert back.leaderboard == timeless
    data = probe(case, fitted.data)
    before, after = twin.log_prob(data), back.log_prob(data)
    assert np.all(np.isfinite(before))
    np.testing.assert_array_equal(after, before)
    n = SAMPLE_N[case.kind]
    for seed in (1, 2):
        assert_same(back.sample(n, seed=seed), twin.sample(n, seed=seed))


# ---- 5. seeded sampling ------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL)
def test_seeded_sampling(case: Case, fitted: Fitted):
    twin, n = fitted.twin, SAMPLE_N[case.kind]
    samples = [twin.sample(n, seed=s) for s in range(6)]
    for s, a in enumerate(samples):
        assert_same(twin.sample(n, seed=s), a)
    distinct = []
    for a in samples:
        if not any(same(a, b) for b in distinct):
            distinct.append(a)
    # a text sample is one document and may end early, so allow a few coincidences
    assert len(distinct) >= 4, f"6 seeds gave only {len(distinct)} different samples"


# ---- 6. damaged files -------------------------------------------------------------------
def _read_zip(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def _write_zip(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())


def _refused(path: Path) -> str | None:
    """None when `path` loads; else the one-line error message (asserting it is one line)."""
    try:
        datatwin.load(path)
    except datatwin.DataTwinError as exc:
        msg = str(exc)
        assert msg.strip() and "\n" not in msg, f"not a one-line message: {msg!r}"
        return msg
    return None


def _with_nan(path: Path, tmp: Path, kinds: str) -> list[str]:
    """Rewrite each array whose dtype kind is in `kinds`, one at a time, as float64 with a
    NaN in its middle; the names of those the loader accepts."""
    meta, arrays = _read_zip(path)
    names = [k for k, v in arrays.items() if v.dtype.kind in kinds and v.size]
    if not names:
        pytest.skip(f"the model file has no array of dtype kind {kinds!r}")
    accepted = []
    for name in names:
        bad = arrays[name].astype(np.float64)
        bad.flat[bad.size // 2] = np.nan
        out = tmp / f"nan-{name}.twin"
        _write_zip(out, meta, {**arrays, name: bad})
        if _refused(out) is None:
            accepted.append(name)
    return accepted


DAMAGES = ["truncated", "flipped", "nan-float", "nan-int"]


def _damage_params() -> list[Any]:
    out = []
    for c in CASES:
        for d in DAMAGES:
            out.append(pytest.param(c, d, id=f"{c.id}-{d}"))
    return out


@pytest.mark.parametrize(("case", "damage"), _damage_params())
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_damaged_file_is_refused_in_one_line(
    case: Case, damage: str, fitted: Fitted, tmp_path: Path
):
    path = tmp_path / "model.twin"
    fitted.twin.save(path)
    raw = path.read_bytes()
    assert _refused(path) is None  # the undamaged file loads
    if damage == "truncated":
        for keep in (len(raw) // 2, len(raw) - 10):
            path.write_bytes(raw[:keep])
            assert _refused(path) is not None, f"a file cut to {keep} bytes loaded"
    elif damage == "flipped":
        mid = len(raw) // 2
        path.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid : mid + 16]) + raw[mid + 16 :])
        assert _refused(path) is not None, "a file with flipped bytes loaded"
    else:
        # float arrays keep their dtype; integer arrays (a NaN cannot be stored in one) are
        # rewritten as float64, which the loader must refuse as well
        accepted = _with_nan(path, tmp_path, "f" if damage == "nan-float" else "iub")
        assert not accepted, f"NaN accepted in {accepted}"


# ---- 7. leaderboard ---------------------------------------------------------------------
@pytest.mark.parametrize("case", ALL)
def test_leaderboard_is_sane(case: Case, fitted: Fitted):
    board = fitted.twin.leaderboard
    assert board, "empty leaderboard"
    for row in board:
        for key in ("train_bits", "holdout_bits"):
            assert math.isfinite(row[key]), f"{row['structure']}: {key} = {row[key]}"
    selected = [r for r in board if r.get("selected")]
    assert len(selected) == 1, f"{len(selected)} selected rows"
    assert selected[0]["structure"] == fitted.twin.structure
    candidates = [r for r in board if not r.get("baseline")]
    best = min(r["holdout_bits"] for r in candidates)
    assert selected[0]["holdout_bits"] == best, "the selected row is not the holdout's best"
