"""The SequenceModel protocol and what is built on it: the step-by-step next-symbol
distribution agrees with the vectorised scoring (sums to one; the product along a sequence is
exp(log_prob)), structure labels round-trip through the registry and through `fit`, events
read through the one table reader, seeds."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import InputError
from datatwin.text.counts import BOS, EOS, N_SPECIAL, Segment, count
from datatwin.text.model import NgramModel
from datatwin.text.protocols import SequenceModel, SymbolSampler
from datatwin.text.sequence import rng_of
from datatwin.text.structures import (
    EVENTS_STRUCTURES,
    TEXT_STRUCTURES,
    chain_label,
    parse_label,
    plan,
)
from datatwin.text.twin import EventsTwin, TextTwin

TEXT = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away.\n"
    "A lazy afternoon: the brown dog dreams of foxes, the quick fox of nothing at all.\n"
) * 6
COLS = {"sequence_id": "S", "order_by": "P", "event": "E"}


def _lengths_table(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 8, n)
    return pd.DataFrame(
        {
            "S": np.repeat([f"s{i}" for i in range(n)], lengths),
            "P": np.concatenate([np.arange(k) for k in lengths]),
            "E": rng.choice(["a", "b"], int(lengths.sum()), p=[0.7, 0.3]),
        }
    )


def _stepwise_nats(twin, ids: list[int]) -> float:
    """log of the product of next_distribution along BOS ids EOS, checking each step."""
    total = 0.0
    for i, w in enumerate([*ids, EOS]):
        q = twin.next_distribution(np.array([BOS, *ids[:i]], np.int64))
        assert q[BOS] == 0.0 and math.isclose(q.sum(), 1.0, abs_tol=1e-12)
        assert q[1:].min() > 0
        total += math.log(q[w])
    return total


def test_ngram_model_and_its_sampler_implement_the_protocols():
    segs = [Segment(np.array([3, 4, 3, 5, 4], np.int64)), Segment(np.array([4, 4, 3], np.int64))]
    model = NgramModel.from_tables(count(segs, 6, 2), 2, "kn")
    assert isinstance(model, SequenceModel) and isinstance(model.sampler(), SymbolSampler)
    assert model.n_params == sum(len(k) for k in model.keys)
    sampler = model.sampler()
    for ctx in ([BOS], [BOS, 3], [BOS, 3, 4], [4, 4], [BOS, 5, 5, 5], [2, 3]):
        ctx_a = np.array(ctx, np.int64)
        np.testing.assert_allclose(
            sampler.distribution(sampler.state_of(ctx_a)),
            model.next_distribution(ctx_a),
            atol=1e-15,
        )


def test_text_next_distribution_agrees_with_log_prob_cache_included():
    twin = TextTwin.fit_select(TEXT, structures="markov3+kn+cache", baselines=False)
    assert twin.cache is not None
    doc = "The lazy fox dreams of the quick dog."
    ids = twin.vocab.encode(doc).tolist()
    assert math.isclose(_stepwise_nats(twin, ids), twin.log_prob(doc).sum(), rel_tol=1e-12)


def test_events_next_distribution_agrees_with_log_prob_len_included():
    twin = EventsTwin.fit_select(_lengths_table(), **COLS, max_order=2, baselines=False)
    assert twin.hazard is not None
    seq = ["a", "b", "a", "a", "b", "a"]
    ids = [twin.events.index(e) + N_SPECIAL for e in seq]
    df = pd.DataFrame({"S": "x", "P": range(len(seq)), "E": seq})
    assert math.isclose(_stepwise_nats(twin, ids), twin.log_prob(df).sum(), rel_tol=1e-12)


def test_registry_labels_and_params_go_both_ways():
    for name in ("unigram", "markov", "kn", "wb", "cache"):
        assert name in TEXT_STRUCTURES and name in TEXT_STRUCTURES.help_text()
    assert "len" in EVENTS_STRUCTURES and "len" not in TEXT_STRUCTURES
    for order, smoother, cache, w in [
        (0, "kn", False, None),
        (5, "wb", True, None),
        (6, "kn", False, 1.5),
    ]:
        label = chain_label(order, smoother, cache, w)
        p = parse_label(label, EVENTS_STRUCTURES)
        assert p["order"] == order and p["smoother"] == smoother
        assert bool(p.get("cache")) == cache and p.get("len_weight") == w
    for bad in ("markov2+kn+len", "markov2+zz", "unigram+kn+cache", "kn+markov2", "markov0+kn"):
        with pytest.raises(InputError):
            plan(bad, 8, True, TEXT_STRUCTURES)
    with pytest.raises(InputError):
        plan("markov2+kn+cache+len", 8, True, EVENTS_STRUCTURES)
    with pytest.raises(InputError, match="max_order"):
        plan(None, 40, True, TEXT_STRUCTURES)


def test_text_structure_round_trips_to_the_same_twin():
    twin = TextTwin.fit_select(TEXT, structures="kn", max_order=4, baselines=False)
    assert twin.structure.endswith("+kn+cache"), twin.leaderboard
    assert twin.params == {
        "order": twin.model.order,
        "smoother": "kn",
        "cache": True,
        "len_weight": None,
        "tokens": "chars",
    }
    again = datatwin.fit(TEXT, kind="text", structures=twin.structure, baselines=False)
    assert again.structure == twin.structure and again.params == twin.params
    assert [r["structure"] for r in again.leaderboard] == [twin.structure]
    row = {r["structure"]: r for r in twin.leaderboard}[twin.structure]
    assert again.leaderboard[0]["holdout_bits"] == row["holdout_bits"]
    np.testing.assert_array_equal(again.log_prob(TEXT[:500]), twin.log_prob(TEXT[:500]))


def test_events_len_structure_round_trips_to_the_same_twin():
    df = _lengths_table()
    twin = EventsTwin.fit_select(df, **COLS, max_order=2, baselines=False)
    assert "+len[w=" in twin.structure and twin.params["len_weight"] == twin.hazard.weight
    again = datatwin.fit(df, kind="events", **COLS, structures=twin.structure, baselines=False)
    assert again.structure == twin.structure and again.params == twin.params
    assert [r["structure"] for r in again.leaderboard] == [twin.structure]
    row = {r["structure"]: r for r in twin.leaderboard}[twin.structure]
    assert again.leaderboard[0]["holdout_bits"] == row["holdout_bits"]
    probe = _lengths_table(50, seed=3)
    np.testing.assert_array_equal(again.log_prob(probe), twin.log_prob(probe))
    np.testing.assert_array_equal(again.hazard.offsets, twin.hazard.offsets)


def test_events_read_through_the_table_reader(tmp_path):
    """CSV, TSV, .csv.gz, Parquet and DataFrames give the same sequences; a numeric order
    column sorts as numbers (10 after 9), a text one as text; encodings are passed on."""
    rows = [("w1", p, f"e{p}") for p in range(12)] + [("w2", 1, "b"), ("w2", 0, "a")]
    df = pd.DataFrame(rows, columns=["S", "P", "E"]).sample(frac=1, random_state=0)
    ev, starts, lengths = EventsTwin.sequences(*EventsTwin.read_table(df, "S", "P", "E"))
    first = ev[starts[0] : starts[0] + lengths[0]].tolist()
    assert sorted(lengths.tolist()) == [2, 12]
    want = {12: [f"e{p}" for p in range(12)], 2: ["a", "b"]}
    assert first == want[int(lengths[0])]
    df.to_csv(tmp_path / "e.csv", index=False)
    df.to_csv(tmp_path / "e.tsv", index=False, sep="\t")
    with gzip.open(tmp_path / "e.csv.gz", "wt") as fh:
        df.to_csv(fh, index=False)
    df.to_parquet(tmp_path / "e.parquet")
    for name in ("e.csv", "e.tsv", "e.csv.gz", "e.parquet"):
        got = EventsTwin.sequences(*EventsTwin.read_table(tmp_path / name, "S", "P", "E"))
        for a, b in zip(got, (ev, starts, lengths), strict=True):
            np.testing.assert_array_equal(a, b)
    text_order = pd.DataFrame({"S": ["x"] * 3, "P": ["b", "a", "c"], "E": ["2", "1", "3"]})
    assert EventsTwin.sequences(text_order, COLS | {"sequence_id": "S"})[0].tolist() == [
        "1",
        "2",
        "3",
    ]
    (tmp_path / "l.csv").write_bytes(
        "S,P,E\nx,0,caf\xe9\nx,1,th\xe9\ny,0,caf\xe9\n".encode("latin-1")
    )
    with pytest.raises(InputError, match="latin-1"):
        EventsTwin.read_table(tmp_path / "l.csv", "S", "P", "E")
    raw, cols = EventsTwin.read_table(tmp_path / "l.csv", "S", "P", "E", encoding="latin-1")
    assert EventsTwin.sequences(raw, cols)[0].tolist() == ["café", "thé", "café"]


def test_seeds_accept_ints_none_and_generators():
    assert rng_of(5).random(3).tolist() == np.random.default_rng(5).random(3).tolist()
    twin = TextTwin.fit_select(TEXT, max_order=2, baselines=False, seed=np.random.default_rng(1))
    assert isinstance(twin.sample(50, seed=np.random.default_rng(2)), str)
    assert isinstance(twin.sample(50, seed=None), str)
    assert twin.sample(50, seed=3) == twin.sample(50, seed=3)
    with pytest.raises(InputError, match="seed"):
        twin.sample(5, seed=-1)
    with pytest.raises(TypeError):
        TextTwin.fit_select(TEXT, "chars")  # options are keyword-only
