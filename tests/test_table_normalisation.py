"""Probabilities sum to one: CPT rows, whole tables of categorical rows, and the numeric
within-state model summed over every point of the recorded-precision grid."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from datatwin.tabular import cpt as cpt_module
from datatwin.tabular.twin import TableTwin


def tiny_categorical() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 60
    a = rng.choice(["a1", "a2", "a3"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < 0.8, np.where(a == "a1", "b1", "b2"), "b3")
    c = np.where(rng.random(n) < 0.7, np.where(b == "b1", "c1", "c2"), "c1")
    return pd.DataFrame({"a": a, "b": b, "c": c})


STRUCTS = [
    ("independent", None),
    ("chow-liu", None),
    ("bayesnet", None),
    ("trees", None),
    ("dag", [("a", "c"), ("b", "c")]),  # two parents
]


def _joint_over_states(twin: TableTwin, exclude_escape: bool) -> float:
    """Σ over every state combination of Π P(state | parents), from the dense tables."""
    cards = twin.net.cards
    dense = [c.dense() for c in twin.net.cpts]
    total = 0.0
    ranges = [
        range(int(k) - 1) if exclude_escape else range(int(k)) for k in cards
    ]  # escape is the last state
    for combo in itertools.product(*ranges):
        p = 1.0
        for v, cpt in enumerate(twin.net.cpts):
            key = 0
            for q in cpt.parents:
                key = key * int(cards[q]) + combo[q]
            p *= dense[v][key, combo[v]]
        total += p
    return total


@pytest.mark.parametrize(("structure", "edges"), STRUCTS)
def test_cpt_rows_sum_to_one(structure, edges):
    twin = TableTwin.fit(tiny_categorical(), structure=structure, edges=edges)
    for cpt in twin.net.cpts:
        table = cpt.dense()
        assert table.shape == (cpt.space, cpt.k)
        assert np.all(table > 0)
        np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-12)
    assert _joint_over_states(twin, exclude_escape=False) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("structure", "edges"), STRUCTS)
def test_seen_combinations_sum_to_one_minus_escape(structure, edges):
    df = tiny_categorical()
    twin = TableTwin.fit(df, structure=structure, edges=edges)
    seen = [sorted(df[c].unique()) for c in df.columns]
    combos = pd.DataFrame(list(itertools.product(*seen)), columns=list(df.columns))
    total = float(np.exp(twin.log_prob(combos)).sum())
    # escape mass: the largest chance, in any parent configuration, of an unseen value
    escape = sum(float(c.dense()[:, -1].max()) for c in twin.net.cpts)
    assert total <= 1.0 + 1e-12
    assert total >= 1.0 - escape
    assert escape < 0.1  # smoothing must not eat the table
    # exactly the probability that no column takes its escape state
    assert total == pytest.approx(_joint_over_states(twin, exclude_escape=True), rel=1e-10)
    # one unseen value per column added: still at most one, and strictly more than before
    wider = [v + ["zz-unseen"] for v in seen]
    combos = pd.DataFrame(list(itertools.product(*wider)), columns=list(df.columns))
    lp = twin.log_prob(combos)
    assert np.isfinite(lp).all()
    has_unseen = (combos == "zz-unseen").any(axis=1).to_numpy()
    extra = float(np.exp(lp[has_unseen]).sum())
    assert extra > 0.0
    assert total + extra <= 1.0 + 1e-12


@pytest.mark.parametrize(("structure", "edges"), STRUCTS)
def test_unseen_value_per_column_gets_part_of_the_escape_mass(structure, edges):
    df = tiny_categorical()
    twin = TableTwin.fit(df, structure=structure, edges=edges)
    base = {"a": "a1", "b": "b1", "c": "c1"}
    for col in df.columns:
        row = pd.DataFrame([{**base, col: "zz-unseen"}])
        lp = twin.log_prob(row)
        assert np.isfinite(lp).all()
        i = twin.modelled.index(col)
        esc_max = float(twin.net.cpts[i].dense()[:, -1].max())
        assert np.exp(lp[0]) < esc_max


def test_sparse_lookup_matches_dense(monkeypatch):
    df = tiny_categorical()
    twin = TableTwin.fit(df, structure="dag", edges=[("a", "c"), ("b", "c"), ("a", "b")])
    seen = [sorted(df[c].unique()) + ["new"] for c in df.columns]
    combos = pd.DataFrame(list(itertools.product(*seen)), columns=list(df.columns))
    dense_lp = twin.log_prob(combos)
    monkeypatch.setattr(cpt_module, "_DENSE_CELLS", 0)
    for c in twin.net.cpts:
        c._dense_logp = None
    sparse_lp = twin.log_prob(combos)
    np.testing.assert_allclose(sparse_lp, dense_lp, rtol=1e-12, atol=1e-12)


# ---- numeric columns: Σ over the whole grid ---------------------------------------------
def numeric_frame(wide: bool, with_missing: bool) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 3000
    if wide:  # > 32 distinct values: value atoms + interval bins
        x = np.round(rng.normal(40, 8, n)).astype(int)
        x[rng.random(n) < 0.2] = 0
    else:  # small range: every value an atom
        x = rng.integers(3, 15, n)
    tokens = x.astype(str).astype(object)
    if with_missing:
        tokens[rng.random(n) < 0.05] = ""
        tokens[rng.random(n) < 0.02] = "?"
    k = rng.choice(["a", "b"], n)
    f = np.round(rng.gamma(3.0, 2.0, n), 1)
    return pd.DataFrame({"k": k, "x": tokens, "f": [f"{v:.1f}" for v in f]})


def _other_columns_logp(twin: TableTwin, fixed: dict[str, str], skip: str) -> float:
    """log P of the fixed values of the other columns (independent structure)."""
    out = 0.0
    for name, tok in fixed.items():
        if name == skip:
            continue
        i = twin.modelled.index(name)
        codec = twin.codecs[i]
        state, within = codec.encode(np.array([tok], dtype=object))
        out += float(np.log(twin.net.cpts[i].dense()[0, state[0]]) + within[0])
    return out


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("with_missing", [False, True])
def test_integer_column_sums_to_one_over_the_grid(wide, with_missing):
    df = numeric_frame(wide, with_missing)
    twin = TableTwin.fit(df, structure="independent")
    assert twin.schema[1].type == "integer"
    fixed = {"k": "a", "x": "7", "f": df["f"].iloc[0]}
    grid = np.arange(-20_000, 20_001)
    rows = pd.DataFrame({"k": "a", "x": grid.astype(str), "f": fixed["f"]})
    lp = twin.log_prob(rows) - _other_columns_logp(twin, fixed, "x")
    total = float(np.exp(lp).sum())
    if with_missing:
        miss = pd.DataFrame({"k": "a", "x": ["", "?"], "f": fixed["f"]})
        total += float(np.exp(twin.log_prob(miss) - _other_columns_logp(twin, fixed, "x")).sum())
    assert total <= 1.0 + 1e-9
    assert total >= 0.999


@pytest.mark.parametrize("wide", [False, True])
def test_within_state_probabilities_sum_to_one(wide):
    df = numeric_frame(wide, with_missing=True)
    twin = TableTwin.fit(df, structure="independent")
    for name, grid in [
        ("x", np.arange(-20_000, 20_001).astype(str)),
        ("f", np.array([f"{v / 10:.1f}" for v in range(-5_000, 15_000)])),
    ]:
        codec = twin.codecs[twin.modelled.index(name)]
        states, within = codec.encode(grid.astype(object))
        sums = np.bincount(states, weights=np.exp(within), minlength=codec.n_states)
        regular = codec.state_kind[: codec.escape_state] != 0  # numeric (non-token) states
        np.testing.assert_allclose(sums[: codec.escape_state][regular], 1.0, atol=1e-9)
        # the escape state gives half its mass to numbers (the other half spells junk
        # tokens): a quarter to each tail beyond the seen range, half uniformly inside it
        assert 0.25 - 1e-9 < sums[codec.escape_state] <= 0.5 + 1e-9


def test_float_column_sums_to_one_over_the_grid():
    df = numeric_frame(wide=True, with_missing=False)
    twin = TableTwin.fit(df, structure="independent")
    spec = twin.schema[2]
    assert spec.type == "float" and spec.decimals == 1
    fixed = {"k": "b", "x": "40", "f": "1.0"}
    grid = [f"{v / 10:.1f}" for v in range(-5_000, 15_000)]
    rows = pd.DataFrame({"k": "b", "x": "40", "f": grid})
    lp = twin.log_prob(rows) - _other_columns_logp(twin, fixed, "f")
    total = float(np.exp(lp).sum())
    assert 0.999 <= total <= 1.0 + 1e-9


def test_same_number_written_differently_has_the_same_probability():
    df = numeric_frame(wide=True, with_missing=False)
    twin = TableTwin.fit(df, structure="independent")
    rows = pd.DataFrame({"k": "a", "x": ["40", "40", "+40"], "f": ["4.3", "4.30", "4.3"]})
    lp = twin.log_prob(rows)
    assert np.isfinite(lp).all()
    assert lp[0] == lp[1] == lp[2]


def test_spelling_model_of_unseen_values_is_normalised():
    """Unseen categories are spelled: P(s) = geometric(len) · Π P(char); summed over every
    string of the seen characters it gives exactly the closed form, and never above one."""
    from datatwin.tabular.spelling import SpellingModel

    model = SpellingModel.fit(["ab", "ba", "aab"])
    strings = ["".join(t) for n in range(0, 9) for t in itertools.product("ab", repeat=n)]
    lp = model.log_prob_many(strings)
    np.testing.assert_allclose(lp, [model.log_prob(s) for s in strings], rtol=0, atol=1e-12)
    stop = 1.0 / (model.mean_len + 1.0)
    p_seen = float(np.exp(model.logp).sum())
    closed = sum(stop * ((1 - stop) * p_seen) ** n for n in range(9))
    assert float(np.exp(lp).sum()) == pytest.approx(closed, rel=1e-10)
    assert p_seen + np.exp(model.log_escape) == pytest.approx(1.0, abs=1e-12)
    # a string with characters never seen is still finite
    assert np.isfinite(model.log_prob_many(["ΩΩ", "a\U0001f600"])).all()
