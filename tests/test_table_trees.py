"""The `trees` structure: decision-tree conditional tables.

Splits recover a known threshold and a known group of categories, leaves recover the
known probabilities, independent columns get no split, every table and the whole joint sum
to one, samples follow the model, files round-trip exactly and damaged trees are refused,
and conditioning (`given=`) is exact on both paths (elimination and rejection).
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from test_table_normalisation import _joint_over_states

import datatwin
from datatwin import ModelFileError
from datatwin.tabular import inference
from datatwin.tabular.trees import TreeCPT
from datatwin.tabular.twin import TableTwin

GROUP = {"c1", "c4", "c6"}  # the categories under which "hit" is likely


def known_frame(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """x: integers 0..29 (all atoms); y depends on x < 12; cat: 7 levels; z on cat's group;
    noise: independent of everything."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 30, n)
    y = np.where(rng.random(n) < np.where(x < 12, 0.85, 0.15), "yes", "no")
    cat = rng.choice([f"c{i}" for i in range(7)], n)
    z = np.where(rng.random(n) < np.where(np.isin(cat, list(GROUP)), 0.7, 0.1), "hit", "miss")
    noise = rng.choice(["u", "v", "w"], n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame({"x": x.astype(str), "y": y, "cat": cat, "z": z, "noise": noise})


@pytest.fixture(scope="module")
def ordered() -> TableTwin:
    return TableTwin.fit(known_frame(), structure="trees", order=["x", "cat", "noise", "y", "z"])


def _tree(twin: TableTwin, column: str) -> TreeCPT:
    t = twin.net.cpts[twin.modelled.index(column)]
    assert isinstance(t, TreeCPT)
    return t


def test_threshold_split_is_found_and_leaves_recover_the_probabilities(ordered):
    t = _tree(ordered, "y")
    assert t.parents == (ordered.modelled.index("x"),)
    assert t.n_leaves == 2
    df = pd.DataFrame({"x": [str(v) for v in range(30)], "y": "yes"})
    p_yes = np.exp(t.log_prob(*_encoded(ordered, df, "y")))
    np.testing.assert_allclose(p_yes[:12], 0.85, atol=0.015)
    np.testing.assert_allclose(p_yes[12:], 0.15, atol=0.015)
    assert len(np.unique(p_yes[:12])) == 1 and len(np.unique(p_yes[12:])) == 1


def _encoded(twin: TableTwin, df: pd.DataFrame, child: str):
    """(columns, cards, child states) for a frame holding some of the twin's columns."""
    cols = []
    for c in twin.codecs:
        name = c.spec.name
        tokens = df[name].astype(str).to_numpy(object) if name in df else np.array(["0"] * len(df))
        cols.append(c.encode(tokens)[0])
    v = twin.modelled.index(child)
    return cols, twin.net.cards, cols[v]


def test_group_of_categories_is_split_off(ordered):
    t = _tree(ordered, "z")
    assert t.parents == (ordered.modelled.index("cat"),)
    assert t.n_leaves == 2
    df = pd.DataFrame({"cat": [f"c{i}" for i in range(7)], "z": "hit"})
    cols, cards, x = _encoded(ordered, df, "z")
    p_hit = np.exp(t.log_prob(cols, cards, x))
    for i, p in enumerate(p_hit):
        assert p == pytest.approx(0.7 if f"c{i}" in GROUP else 0.1, abs=0.02)


def test_independent_column_gets_no_split(ordered):
    t = _tree(ordered, "noise")
    assert t.parents == () and t.n_leaves == 1
    np.testing.assert_allclose(t.probs[0][:3], [0.5, 0.3, 0.2], atol=0.015)


def test_every_table_and_the_joint_sum_to_one():
    rng = np.random.default_rng(4)
    n = 3000
    a = rng.choice(["a1", "a2", "a3", "a4"], n)
    b = np.where(rng.random(n) < np.where(np.isin(a, ["a1", "a3"]), 0.9, 0.2), "b1", "b2")
    c = np.where(rng.random(n) < np.where(b == "b1", 0.8, 0.3), "c1", "c2")
    twin = TableTwin.fit(
        pd.DataFrame({"a": a, "b": b, "c": c}), structure="trees", order=["a", "b", "c"]
    )
    assert sum(t.n_leaves for t in twin.net.cpts) > 3, "the data should produce splits"
    for t in twin.net.cpts:
        table = t.dense()
        assert table.shape == (t.space, t.k)
        assert np.all(table > 0)
        np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-12)
    assert _joint_over_states(twin, exclude_escape=False) == pytest.approx(1.0, abs=1e-12)


def test_log_prob_agrees_with_the_dense_table(ordered):
    df = known_frame(500, seed=9)
    cols, cards, _ = _encoded(ordered, df, "y")
    for t in ordered.net.cpts:
        v = ordered.net.cpts.index(t)
        table = t.dense()
        key = np.zeros(len(df), dtype=np.int64)
        for q in t.parents:
            key = key * int(cards[q]) + cols[q]
        np.testing.assert_array_equal(t.log_prob(cols, cards, cols[v]), np.log(table[key, cols[v]]))


def test_sample_frequencies_match_the_model(ordered):
    n = 200_000
    s = ordered.sample(n, seed=3)
    low = s["x"].astype(int) < 12
    for mask, p in ((low, 0.85), (~low, 0.15)):
        got = float((s.loc[mask, "y"] == "yes").mean())
        t = _tree(ordered, "y")
        leaf = t.probs[t.leaves([np.array([0 if p > 0.5 else 20])], 1)[0]]
        want = leaf[ordered.codecs[ordered.modelled.index("y")].tokens.index("yes")]
        se = np.sqrt(want * (1 - want) / mask.sum())
        assert abs(got - want) < 5 * se, (got, want)
    assert s["noise"].isin(["u", "v", "w"]).all()


def test_fit_select_offers_trees_and_picks_them_when_they_win():
    twin = datatwin.fit(known_frame(8000, seed=2), seed=0)
    names = [e["structure"] for e in twin.leaderboard]
    assert "trees" in names
    board = {e["structure"]: e["holdout_bits"] for e in twin.leaderboard}
    assert twin.structure == min(board, key=board.get)


def test_trees_beat_the_bayesnet_on_a_many_state_parent():
    """y depends on a 30-state parent only through x < 12: one split instead of 30 rows."""
    df = known_frame(1500, seed=7)
    hold = known_frame(1500, seed=8)
    bn = TableTwin.fit(df, structure="bayesnet")
    tr = TableTwin.fit(df, structure="trees")
    assert tr.bits(hold) < bn.bits(hold)


def test_fit_is_reproducible_and_round_trips_exactly(ordered, tmp_path):
    again = TableTwin.fit(known_frame(), structure="trees", order=["x", "cat", "noise", "y", "z"])
    for a, b in zip(ordered.net.cpts, again.net.cpts, strict=True):
        for key, arr in a.to_arrays("").items():
            np.testing.assert_array_equal(arr, b.to_arrays("")[key])
    path = tmp_path / "t.twin"
    ordered.save(path)
    loaded = datatwin.load(path)
    df = known_frame(2000, seed=5)
    np.testing.assert_array_equal(loaded.log_prob(df), ordered.log_prob(df))
    pd.testing.assert_frame_equal(loaded.sample(500, seed=1), ordered.sample(500, seed=1))
    assert loaded.params["order"] == ["x", "cat", "noise", "y", "z"]


def _tamper(path, change) -> None:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())


def _tree_prefix(twin: TableTwin) -> str:
    return f"n{next(i for i, t in enumerate(twin.net.cpts) if t.n_leaves > 1)}_"


@pytest.mark.parametrize(
    "damage",
    [
        lambda a, p: a.__setitem__(f"{p}tree_probs", a[f"{p}tree_probs"] * 1.2),
        lambda a, p: a.__setitem__(f"{p}tree_probs", -a[f"{p}tree_probs"]),
        lambda a, p: a.__setitem__(f"{p}tree_left", np.zeros_like(a[f"{p}tree_left"])),
        lambda a, p: a.__setitem__(f"{p}tree_leaf", a[f"{p}tree_leaf"][:-1]),
        lambda a, p: a.__setitem__(f"{p}tree_feature", a[f"{p}tree_feature"] + 50),
        lambda a, p: a.__setitem__(f"{p}tree_mask", a[f"{p}tree_mask"][:1]),
    ],
    ids=["sum", "negative", "loop", "short", "feature", "mask"],
)
def test_damaged_tree_is_refused_with_one_line(ordered, tmp_path, damage):
    path = tmp_path / "t.twin"
    ordered.save(path)
    prefix = _tree_prefix(ordered)
    _tamper(path, lambda a: damage(a, prefix))
    with pytest.raises(ModelFileError) as info:
        datatwin.load(path)
    assert "\n" not in str(info.value)


def _posterior(twin: TableTwin, given: dict[str, str], free: dict[str, list[str]]) -> dict:
    combos = pd.DataFrame(list(itertools.product(*free.values())), columns=list(free))
    for k, v in given.items():
        combos[k] = v
    p = np.exp(twin.log_prob(combos[twin.modelled]))
    p /= p.sum()
    return dict(zip(map(tuple, combos[list(free)].to_numpy()), p, strict=True))


@pytest.mark.parametrize(
    ("path", "given"),
    [("elimination", "c"), ("rejection", "c"), ("rejection", "a")],
)
def test_given_matches_brute_force_posterior(monkeypatch, path, given):
    """Evidence on the last column (every column its ancestor) or on the first (the rest
    sampled forward after the rejection step)."""
    rng = np.random.default_rng(6)
    n = 6000
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < np.where(a == "x", 0.8, 0.3), "on", "off")
    c = np.where(rng.random(n) < np.where(b == "on", 0.9, 0.2), "hi", "lo")
    twin = TableTwin.fit(
        pd.DataFrame({"a": a, "b": b, "c": c}), structure="trees", order=["a", "b", "c"]
    )
    if path == "rejection":
        monkeypatch.setattr(inference, "_MAX_CELLS", 0)
    values = {"a": ["x", "y", "z"], "b": ["on", "off"], "c": ["hi", "lo"]}
    ev = {"c": "lo"} if given == "c" else {"a": "y"}
    free = {k: v for k, v in values.items() if k not in ev}
    expected = _posterior(twin, ev, free)
    m = 100_000
    s = twin.sample(m, seed=5, given=ev)
    assert len(s) == m and (s[given] == ev[given]).all()
    freq = s.groupby(list(free)).size() / m
    for key, prob in expected.items():
        se = np.sqrt(prob * (1 - prob) / m)
        assert abs(float(freq.get(key, 0.0)) - prob) < 5 * se + 1e-4, (key, prob)
    again = twin.sample(1000, seed=5, given=ev)
    pd.testing.assert_frame_equal(again, twin.sample(1000, seed=5, given=ev))


def test_rejection_gives_up_on_evidence_too_rare_with_a_clear_error(monkeypatch):
    twin = TableTwin.fit(
        known_frame(3000), structure="trees", order=["x", "cat", "noise", "y", "z"]
    )
    monkeypatch.setattr(inference, "_MAX_CELLS", 0)
    monkeypatch.setattr(inference, "_MAX_REJECTION_DRAWS", 5000)
    with pytest.raises(datatwin.InputError, match="too rare"):
        twin.sample(10, seed=0, given={"x": "3", "cat": "c2", "noise": "w", "y": "no"})


def test_order_must_name_every_column_once():
    with pytest.raises(datatwin.InputError, match="order"):
        TableTwin.fit(known_frame(200), structure="trees", order=["x", "y"])


def test_edge_weights_count_the_splits_on_each_parent(ordered):
    weights = ordered.edge_weights()
    assert len(weights) == len(ordered.edges)
    for (parent, child), w in zip(ordered.edges, weights, strict=True):
        t = _tree(ordered, child)
        assert w == np.sum(t.feature == ordered.modelled.index(parent)) >= 1
    assert TableTwin.fit(known_frame(500), structure="bayesnet").edge_weights() is None


def _random_table(seed: int) -> pd.DataFrame:
    """Small tables of mixed, dependent columns with missing values, junk tokens and a
    constant column: what trees must survive."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    a = rng.choice(["p", "q", "r", ""], n, p=[0.5, 0.3, 0.15, 0.05])
    x = np.round(rng.normal(np.where(a == "p", 20, 40), 7, n), int(rng.integers(0, 2)))
    x_tok = np.array([str(v) for v in x], dtype=object)
    x_tok[rng.random(n) < 0.05] = "?"
    b = np.where(rng.random(n) < 0.8, np.where(x > 30, "hi", "lo"), "mid")
    k = rng.integers(0, int(rng.integers(2, 60)), n).astype(str)
    return pd.DataFrame({"a": a, "x": x_tok, "b": b, "k": k, "const": "c"})


@pytest.mark.parametrize("seed", range(8))
def test_random_tables_fit_score_sample_and_round_trip(seed, tmp_path):
    df = _random_table(seed)
    twin = TableTwin.fit(
        df, structure="trees", bins=int(np.random.default_rng(seed).integers(2, 40))
    )
    lp = twin.log_prob(df)
    assert np.all(np.isfinite(lp)) and np.all(lp < 0)
    for t in twin.net.cpts:
        np.testing.assert_allclose(t.probs.sum(axis=1), 1.0, atol=1e-12)
        assert np.all(t.probs > 0)
    other = _random_table(seed + 100)  # unseen categories and values score finitely
    assert np.all(np.isfinite(twin.log_prob(other)))
    s = twin.sample(300, seed=seed)
    assert list(s.columns) == list(df.columns) and len(s) == 300
    path = tmp_path / "r.twin"
    twin.save(path)
    back = datatwin.load(path)
    np.testing.assert_array_equal(back.log_prob(other), twin.log_prob(other))
    pd.testing.assert_frame_equal(back.sample(300, seed=seed), s)
