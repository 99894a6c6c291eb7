"""Columns with too many distinct values to count each (issue 10's bounded fallback): a
sketch whose size does not grow with the distinct values, the same statistic however the
rows are chunked; codecs fit from it stay exact probabilities, and the fallback is stated."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.reader import ValueCounts
from datatwin.tabular import sketch
from datatwin.tabular.exactsum import ExactSum
from datatwin.tabular.sketch import Bounds, ColumnSketch, merge_summaries, summarise


def many_valued(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A category, 3-decimal floats with an atom at 0 and missing cells, a long-tailed
    categorical, timestamps to the second and two identifier columns."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    x = np.round(rng.normal(a * 3.0, 1.0, n), 3)
    x[rng.random(n) < 0.1] = 0.0
    x[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "a": [f"c{v}" for v in a],
            "x": x,
            "word": [f"w{v}" for v in rng.zipf(1.3, n)],
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), "s"),
            "code": [f"CU-{v:06d}" for v in rng.permutation(n)],
            "serial": rng.permutation(n) * 7 + 100,
        }
    )


@pytest.fixture
def low_cap(monkeypatch):
    """Caps low enough for small tables: 200 distinct texts, a sample of 300, heavy at 1 %."""
    monkeypatch.setattr(sketch, "MAX_DISTINCT", 200)
    monkeypatch.setattr(sketch, "SAMPLE_SIZE", 300)
    monkeypatch.setattr(sketch, "HEAVY_ONE_IN", 100)


def counts_of(texts: list[str]) -> ValueCounts:
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    return ValueCounts(np.asarray(uniq, dtype=object), np.bincount(codes).astype(np.int64))


def test_exact_sums_do_not_depend_on_the_chunking():
    rng = np.random.default_rng(1)
    x = -np.exp(rng.normal(0, 8, 5000))
    n = rng.integers(1, 1000, 5000)
    whole = ExactSum.of(x, n).value()
    chunks = ExactSum()
    for lo in range(0, 5000, 700):
        chunks = chunks.add(ExactSum.of(x[lo : lo + 700], n[lo : lo + 700]))
    assert chunks.value() == whole
    exact = sum(Fraction(float(v)) * int(k) for v, k in zip(x, n, strict=True))
    assert whole == float(exact)


def test_a_summary_is_exact_up_to_the_cap_and_a_sketch_past_it_however_chunked():
    bounds = Bounds(max_distinct=50, sample_size=40, heavy_one_in=20, max_tokens=10)
    rng = np.random.default_rng(2)
    texts = [f"v{int(v)}" for v in rng.zipf(1.5, 4000)] + ["?"] * 30
    whole = summarise(counts_of(texts), bounds)
    assert isinstance(whole, ColumnSketch) and whole.n_rows == 4030
    for size in (500, 1333):
        merged = None
        for lo in range(0, len(texts), size):
            merged = merge_summaries(
                merged, summarise(counts_of(texts[lo : lo + size]), bounds), bounds
            )
        assert isinstance(merged, ColumnSketch)
        # the hashed sample, its exact counts and the facts are the same statistic
        assert list(merged.sample.texts) == list(whole.sample.texts)
        assert np.array_equal(merged.sample.counts, whole.sample.counts)
        truth = pd.Series(texts).value_counts()
        assert list(merged.sample.counts) == [truth[t] for t in merged.sample.texts]
        assert merged.facts.markers.counts.tolist() == [30]
        # every text in at least 1 in 20 rows is a heavy candidate
        heavy = set(truth[truth >= -(-4030 // 20)].index)
        assert heavy <= set(merged.heavy.texts)
    few = summarise(counts_of(texts[:200]), bounds)
    assert isinstance(few, ValueCounts) or len(set(texts[:200])) > 50


def test_the_sketch_does_not_grow_with_the_distinct_values():
    bounds = Bounds(max_distinct=100, sample_size=64, heavy_one_in=50, max_tokens=10)
    sizes = []
    for n in (2_000, 20_000, 200_000):
        texts = np.arange(n).astype(str).astype(object)
        sk = summarise(ValueCounts(texts, np.ones(n, np.int64)), bounds)
        assert isinstance(sk, ColumnSketch)
        sizes.append(sk.size())
    assert sizes == [64, 64, 64]


def test_many_valued_columns_fall_back_to_a_stated_bounded_summary(low_cap, caplog, tmp_path):
    df = many_valued()
    with caplog.at_level(logging.INFO, logger="datatwin"):
        twin = datatwin.fit(df, seed=3)
    bounded = {c.spec.name for c in twin.codecs if c.bounded}
    assert bounded == {"x", "word", "t"}
    types = {s.name: s.type for s in twin.schema}
    assert types == {
        "a": "categorical",
        "x": "float",
        "word": "categorical",
        "t": "datetime",
        "code": "id",
        "serial": "id",
    }
    for name in ("x", "word", "t", "code", "serial"):
        assert f"column {name!r}: " in caplog.text
        assert "bounded summary" in next(s.note for s in twin.schema if s.name == name)
    twin.save(tmp_path / "m.twin")
    again = datatwin.load(tmp_path / "m.twin")
    assert [c.bounded for c in again.codecs] == [c.bounded for c in twin.codecs]
    assert "bounded summary" in again.schema[1].note
    # identifiers continue past every training identifier
    sample = twin.sample(50, seed=1)
    assert not set(sample["code"]) & set(df["code"])
    assert sample["serial"].min() > df["serial"].max()


def test_below_the_cap_nothing_is_bounded(tmp_path):
    twin = datatwin.fit(many_valued(), seed=3)
    assert not any(c.bounded for c in twin.codecs)
    assert not any("bounded" in s.note for s in twin.schema)


def test_a_bounded_numeric_codec_is_an_exact_probability_of_each_grid_value(low_cap):
    twin = datatwin.fit(many_valued(), seed=3, structures="independent")
    codec = next(c for c in twin.codecs if c.spec.name == "x")
    assert codec.bounded and len(codec.value_atoms) >= 1  # the zeros are an atom
    lo, hi = codec.coarse_edges[0], codec.coarse_edges[-1]
    grid = np.arange(lo, hi)
    texts = np.array([f"{g / 1000:.3f}" for g in grid], dtype=object)
    states, within = codec.encode_texts(texts)
    interval = codec.state_kind[states] == 2
    mass = np.bincount(states[interval], weights=np.exp(within[interval]))
    used = np.unique(states[interval])
    assert np.allclose(mass[used], 1.0, atol=1e-9)
    assert len(used) == len(codec.coarse_edges) - 1


def test_held_out_rows_with_unseen_values_score_finite_exact_bits(low_cap):
    twin = datatwin.fit(many_valued(), seed=3)
    test = many_valued(800, seed=9)
    test.loc[:5, "word"] = "never-seen-before"
    test.loc[6:10, "x"] = 1e6
    test.loc[11:15, "t"] = pd.Timestamp("2031-05-05 10:00:00")
    lp = twin.log_prob(test)
    assert lp.shape == (800,) and np.all(np.isfinite(lp)) and np.all(lp < 0)
    assert np.isfinite(twin.bits(test))
    word = next(c for c in twin.codecs if c.spec.name == "word")
    assert word.has_rare and word.escape_pseudo == 0.0
    # the rare state's spelling model sums to at most one over the strings it can spell
    spelled = word.spelling.log_prob_many([f"w{k}" for k in range(1000, 2000)])
    assert np.all(np.isfinite(spelled)) and np.exp(spelled).sum() < 1.0


def test_in_memory_fits_of_the_same_rows_are_reproducible_under_the_fallback(low_cap, tmp_path):
    df = many_valued()
    datatwin.fit(df, seed=3).save(tmp_path / "a.twin")
    datatwin.fit(df.copy(), seed=3).save(tmp_path / "b.twin")
    assert (tmp_path / "a.twin").read_bytes() == (tmp_path / "b.twin").read_bytes()
