"""Samples: frequencies match the model's probabilities, dtypes and formats match the data,
and on the Adult census data the missing-value rates and frequent exact values are kept."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from datatwin import cli
from datatwin.tabular import cpt as cpt_module
from datatwin.tabular.twin import TableTwin


def chain_data(n: int = 20_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    pb = np.array([[0.8, 0.15, 0.05], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    b = (rng.random(n)[:, None] > np.cumsum(pb[a], axis=1)).sum(axis=1)
    pc = np.array([[0.7, 0.3], [0.5, 0.5], [0.1, 0.9]])
    c = (rng.random(n)[:, None] > np.cumsum(pc[b], axis=1)).sum(axis=1)
    # a numeric column (value atoms + intervals) depending on c
    x = np.where(c == 0, rng.poisson(20, n), rng.poisson(45, n))
    x[rng.random(n) < 0.25] = 0
    return pd.DataFrame(
        {
            "a": np.array(["a0", "a1", "a2"])[a],
            "b": np.array(["b0", "b1", "b2"])[b],
            "c": np.array(["c0", "c1"])[np.minimum(c, 1)],
            "x": x,
        }
    )


def joint_states(twin: TableTwin) -> np.ndarray:
    """The model's full joint distribution over state combinations, from the dense tables."""
    cards = [int(k) for k in twin.net.cards]
    dense = [c.dense() for c in twin.net.cpts]
    joint = np.zeros(cards)
    for combo in itertools.product(*[range(k) for k in cards]):
        p = 1.0
        for v, cpt in enumerate(twin.net.cpts):
            key = 0
            for q in cpt.parents:
                key = key * cards[q] + combo[q]
            p *= dense[v][key, combo[v]]
        joint[combo] = p
    return joint


def sampled_states(twin: TableTwin, samples: pd.DataFrame) -> list[np.ndarray]:
    toks = twin._tokens_from_frame(samples)
    return [c.encode(toks[c.spec.name].to_numpy(object))[0] for c in twin.codecs]


def assert_freqs_match(observed: np.ndarray, expected_p: np.ndarray, n: int) -> None:
    """Every cell within 4.5 standard errors, and a chi-square test on well-filled cells."""
    freq = observed / n
    se = np.sqrt(np.maximum(expected_p * (1 - expected_p), 1e-12) / n)
    z = np.abs(freq - expected_p) / se
    bad = (z > 4.5) & (np.abs(freq - expected_p) > 1e-5)
    assert not bad.any(), (np.argwhere(bad), freq[bad], expected_p[bad])
    big = expected_p * n >= 10
    chi2 = float(np.sum((observed[big] - n * expected_p[big]) ** 2 / (n * expected_p[big])))
    dof = int(big.sum()) - 1
    # a generous bound: mean dof, sd sqrt(2 dof); 6 sd is far beyond chance
    assert chi2 < dof + 6 * math.sqrt(2 * dof), (chi2, dof)


@pytest.fixture(scope="module")
def chain_twin() -> TableTwin:
    return TableTwin.fit(chain_data(), structure="dag", edges=[("a", "b"), ("b", "c"), ("c", "x")])


N_BIG = 200_000


@pytest.mark.parametrize("pair", [("a", "b"), ("b", "c"), ("a", "c")])
def test_pair_frequencies_match_model_with_novel(chain_twin, pair):
    twin = chain_twin
    samples = twin.sample(N_BIG, seed=11, novel=True)
    states = sampled_states(twin, samples)
    joint = joint_states(twin)
    i, j = (twin.modelled.index(p) for p in pair)
    other = tuple(k for k in range(joint.ndim) if k not in (i, j))
    model = joint.sum(axis=other)
    if i > j:
        model = model.T
    ki, kj = model.shape
    observed = np.bincount(states[i] * kj + states[j], minlength=ki * kj).reshape(ki, kj)
    assert_freqs_match(observed.ravel().astype(float), model.ravel(), N_BIG)


def test_default_samples_never_use_the_escape(chain_twin):
    twin = chain_twin
    samples = twin.sample(50_000, seed=2)
    states = sampled_states(twin, samples)
    for codec, st in zip(twin.codecs, states, strict=True):
        assert not (st == codec.escape_state).any(), codec.spec.name
    joint = joint_states(twin)
    # conditional on no escape anywhere
    keep = joint[tuple(slice(0, k - 1) for k in joint.shape)]
    keep = keep / keep.sum()
    i, j = twin.modelled.index("a"), twin.modelled.index("b")
    model = keep.sum(axis=tuple(k for k in range(keep.ndim) if k not in (i, j)))
    kj = model.shape[1]
    observed = np.bincount(states[i] * kj + states[j], minlength=model.size)
    assert_freqs_match(observed.astype(float), model.ravel(), len(samples))


def test_numeric_value_frequencies_match_log_prob():
    """Within-state sampling (atoms, fine bins, skipping atom grid points) matches the exact
    probabilities log_prob gives every integer."""
    df = chain_data(n=8_000)[["x"]]
    twin = TableTwin.fit(df, structure="independent")
    n = N_BIG
    samples = twin.sample(n, seed=5)
    values, counts = np.unique(samples["x"].to_numpy(), return_counts=True)
    grid = np.arange(-50, 200)
    p = np.exp(twin.log_prob(pd.DataFrame({"x": grid})))
    codec = twin.codecs[0]
    states, _ = codec.encode(grid.astype(str).astype(object))
    p[states == codec.escape_state] = 0.0  # by default samples keep to seen states
    p = p / (1.0 - twin.net.cpts[0].dense()[0, codec.escape_state])
    assert p.sum() == pytest.approx(1.0, abs=1e-6)
    assert p.sum() <= 1.0 + 1e-9
    obs = np.zeros(len(grid))
    inside = (values >= grid[0]) & (values <= grid[-1])
    assert inside.all()
    obs[values - grid[0]] = counts
    assert_freqs_match(obs, p, n)


def test_sparse_sampling_path_matches_model(monkeypatch, chain_twin):
    """The sparse (mixture) sampler of large parent spaces draws the same distribution."""
    twin = chain_twin
    joint = joint_states(twin)
    monkeypatch.setattr(cpt_module, "_DENSE_CELLS", 0)
    for c in twin.net.cpts:
        for attr in ("_dense_logp", "_cum", "_dense_cdf", "_cdf"):
            if hasattr(c, attr):
                setattr(c, attr, None)
    try:
        samples = twin.sample(N_BIG, seed=21, novel=True)
    finally:
        for c in twin.net.cpts:
            for attr in ("_dense_logp", "_cum", "_dense_cdf", "_cdf"):
                if hasattr(c, attr):
                    setattr(c, attr, None)
    states = sampled_states(twin, samples)
    i, j = twin.modelled.index("b"), twin.modelled.index("c")
    model = joint.sum(axis=tuple(k for k in range(joint.ndim) if k not in (i, j)))
    kj = model.shape[1]
    observed = np.bincount(states[i] * kj + states[j], minlength=model.size)
    assert_freqs_match(observed.astype(float), model.ravel(), N_BIG)


# ---- dtypes and formats ------------------------------------------------------------------
def typed_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "i": rng.integers(0, 100, n),
            "f": np.round(rng.normal(0, 1, n), 2),
            "b": rng.random(n) < 0.3,
            "s": rng.choice(["red", "green", "blue"], n),
            "cat": pd.Categorical(rng.choice(["lo", "hi"], n)),
            "d": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "ni": pd.array(
                np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64"
            ),
            "nf": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.normal(5, 1, n), 1)),
            "i32": rng.integers(0, 10, n).astype("int32"),
            "f32": np.round(rng.normal(0, 1, n), 2).astype("float32"),
            "tz": pd.Timestamp("2021-03-01", tz="Europe/Berlin")
            + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "bn": pd.Series(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype=object),
        }
    )


def test_samples_have_the_columns_and_dtypes_of_the_frame():
    df = typed_frame()
    twin = TableTwin.fit(df, structure="chow-liu")
    s = twin.sample(500, seed=1)
    assert list(s.columns) == list(df.columns)
    assert len(s) == 500
    for col in df.columns:
        assert s[col].dtype == df[col].dtype, (col, s[col].dtype, df[col].dtype)
    assert s["ni"].isna().any() and s["nf"].isna().any()
    assert set(s["s"].dropna()) <= {"red", "green", "blue"}
    assert set(s["cat"].cat.categories) <= {"lo", "hi"}
    assert s["bn"].isna().any()
    assert {type(v) for v in s["bn"].dropna()} == {bool}
    np.testing.assert_array_equal(s["f32"], np.round(s["f32"].astype(float), 2).astype("float32"))


def test_dates_keep_their_recorded_precision():
    df = typed_frame()
    twin = TableTwin.fit(df, structure="independent")
    s = twin.sample(500, seed=1)
    d = s["d"]
    assert (d == d.dt.normalize()).all(), "whole-day dates sampled with a time of day"
    assert d.min() >= df["d"].min() - pd.Timedelta(days=400)


def test_float_values_keep_their_decimals():
    df = typed_frame()
    twin = TableTwin.fit(df, structure="independent")
    s = twin.sample(2_000, seed=4)
    f = s["f"].to_numpy()
    np.testing.assert_array_equal(f, np.round(f, 2))
    toks = twin.sample_tokens(2_000, seed=4)
    assert toks["f"].str.fullmatch(r"-?\d+\.\d{2}").all()


def test_sample_zero_and_negative(tmp_path):
    twin = TableTwin.fit(typed_frame(), structure="independent")
    s = twin.sample(0, seed=1)
    assert len(s) == 0 and list(s.columns) == list(typed_frame().columns)
    with pytest.raises(ValueError):
        twin.sample(-5, seed=1)


def test_cli_sample_csv_keeps_decimals(tmp_path, capsys):
    rng = np.random.default_rng(9)
    n = 600
    data = tmp_path / "prices.csv"
    pd.DataFrame(
        {
            "price": [f"{v:.2f}" for v in rng.gamma(2.0, 10.0, n)],
            "rate": [f"{v:.3f}" for v in rng.random(n)],
            "qty": rng.integers(1, 9, n),
            "shop": rng.choice(["north", "south"], n),
        }
    ).to_csv(data, index=False)
    model = tmp_path / "prices.twin"
    out = tmp_path / "sample.csv"
    assert cli.main(["-q", "fit", str(data), "-o", str(model), "--json"]) == 0
    assert cli.main(["-q", "sample", str(model), "-n", "1000", "--seed", "3", "-o", str(out)]) == 0
    capsys.readouterr()
    s = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(s.columns) == ["price", "rate", "qty", "shop"]
    assert len(s) == 1000
    assert s["price"].str.fullmatch(r"\d+\.\d{2}").all()
    assert s["rate"].str.fullmatch(r"\d+\.\d{3}").all()
    assert s["qty"].str.fullmatch(r"\d+").all()
    assert set(s["shop"]) <= {"north", "south"}


# ---- Adult census: missing rates and frequent exact values -------------------------------
@pytest.fixture(scope="module")
def adult(shared_data):
    path = shared_data / "tables" / "adult" / "adult_train.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    twin = TableTwin.fit(path, structure="bayesnet")
    data = pd.read_csv(path, dtype=str, keep_default_na=False)
    return twin, data


def test_adult_missing_rates_and_zero_shares(adult, tmp_path):
    twin, data = adult
    toks = twin.sample_tokens(10_000, seed=1)
    assert list(toks.columns) == list(data.columns)
    for col in ("workclass", "occupation", "native-country"):
        want = float((data[col] == "").mean())
        got = float((toks[col] == "").mean())
        assert want > 0.01
        assert abs(got - want) < 0.01, (col, got, want)
    for col in ("capital-gain", "capital-loss"):
        want = float((data[col] == "0").mean())
        got = float((toks[col] == "0").mean())
        assert abs(got - want) < 0.01, (col, got, want)
    # typed samples agree with the token samples
    s = twin.sample(10_000, seed=1)
    assert s["capital-gain"].dtype == np.int64
    assert float((s["capital-gain"] == 0).mean()) == pytest.approx(
        float((toks["capital-gain"] == "0").mean()), abs=1e-12
    )
    assert s["workclass"].isna().mean() == pytest.approx((toks["workclass"] == "").mean())


def test_adult_numeric_ranges_are_plausible(adult):
    twin, data = adult
    s = twin.sample(10_000, seed=2)
    age = data["age"].astype(int)
    assert s["age"].between(age.min() - 5, age.max() + 5).mean() > 0.999
    assert abs(s["age"].mean() - age.mean()) < 1.0
    hours = data["hours-per-week"].astype(int)
    assert abs((s["hours-per-week"] == 40).mean() - (hours == 40).mean()) < 0.015


def test_frame_samples_score_like_the_frame():
    """A sample drawn as a typed DataFrame scores like its token form and like the data."""
    df = typed_frame()
    twin = TableTwin.fit(df, structure="chow-liu")
    typed = twin.sample(2_000, seed=8)
    toks = twin.sample_tokens(2_000, seed=8)
    np.testing.assert_allclose(twin.log_prob(typed), twin.log_prob(toks), rtol=1e-9)
    assert abs(twin.bits(typed) - twin.bits(df)) < 1.5


def test_rare_tail_of_a_high_cardinality_column_is_sampled():
    """Values beyond the kept categories share a 'rare' state: default samples draw it as
    often as the data holds such values (and spell new strings for it)."""
    rng = np.random.default_rng(12)
    n = 6_000
    names = np.array([f"u{v}" for v in rng.zipf(1.3, n) % 5_000])
    df = pd.DataFrame({"name": names, "g": rng.choice(["a", "b"], n)})
    twin = TableTwin.fit(df, structure="independent", max_categories=50)
    codec = twin.codecs[0]
    assert codec.has_rare and len(codec.tokens) == 50
    kept = set(codec.tokens)
    want = float(np.isin(names, list(kept)).mean())
    assert 0.2 < want < 0.95
    s = twin.sample(20_000, seed=4)
    got = float(s["name"].isin(kept).mean())
    assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / 20_000) + 0.005, (got, want)
    # kept values keep their relative frequencies
    top = codec.tokens[0]
    assert abs((s["name"] == top).mean() - (names == top).mean()) < 0.015


def test_joined_blocks_equal_their_values_in_order():
    """Blocks of a categorical column keep their values unbuilt (states + lookup); joined,
    they give the same values as joining built arrays, also when a block is built."""
    from datatwin.tabular.codec import Decoded

    lookup = np.array(["x", "y", "z"], dtype=object)
    rng = np.random.default_rng(0)
    blocks = [rng.integers(0, 3, size) for size in (5, 0, 7)]
    lazy = [Decoded(None, s == 2, None, s, lookup) for s in blocks]
    joined = Decoded.join(lazy)
    assert joined._values is None  # still unbuilt: one lookup for the whole sample
    want = lookup[np.concatenate(blocks)]
    assert list(joined.values) == list(want)
    assert list(joined.missing) == list(np.concatenate(blocks) == 2)
    built = [Decoded(lookup[blocks[0]], blocks[0] == 2, None, blocks[0]), *lazy[1:]]
    assert list(Decoded.join(built).values) == list(want)
    with pytest.raises(ValueError, match="needs states"):
        Decoded(None, np.zeros(1, bool))
