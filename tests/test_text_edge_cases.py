"""Tiny and degenerate text / events data: orders no block can fill, one event type, length-1
sequences, a two-character corpus. Each must fit, score finite bits, sample and round-trip."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.cli import main
from datatwin.text.counts import BOS, EOS, N_SPECIAL, UNK, Segment, count, layout, lookup
from datatwin.text.family import fit_family
from datatwin.text.model import NgramModel, chain_probs
from datatwin.text.sampling import Sampler
from datatwin.text.smoothing import SMOOTHERS, apply_level, make_level
from datatwin.text.tokenize import Document
from datatwin.text.twin import EventsTwin, TextTwin, _split_docs

COLS = {"sequence_id": "S", "order_by": "P", "event": "E"}


def _event_table(n: int, min_len: int, max_len: int, n_types: int, seed: int = 0) -> pd.DataFrame:
    """`n` random sequences of lengths min_len..max_len over `n_types` event names (seeded)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    seq = np.repeat([f"s{i}" for i in range(n)], lengths)
    pos = np.concatenate([np.arange(k) for k in lengths])
    names = np.array([f"e{j}" for j in range(n_types)])
    ev = names[rng.integers(0, n_types, size=len(seq))]
    return pd.DataFrame({"S": seq, "P": pos, "E": ev})


def _assert_normalised(model: NgramModel, max_len: int = 3) -> None:
    """Every context's distribution sums to one over the whole alphabet (all p > 0, BOS 0):
    every history of up to `max_len` outcomes (with and without BOS), plus long histories."""
    model.check_normalised("test")
    outcomes = list(range(1, model.base))
    histories = [[]]
    for n in range(1, max_len + 1):
        histories += [list(h) for h in itertools.product(outcomes, repeat=n)]
    longest = max(model.order + 2, 4)
    histories += [[w] * longest for w in outcomes] + [(outcomes * longest)[:longest]]
    for h in histories:
        for hist in ([BOS, *h], h):
            p = model.distribution(np.array(hist, np.int64))
            assert p[BOS] == 0.0
            assert math.isclose(p.sum(), 1.0, rel_tol=0, abs_tol=1e-12), (hist, p.sum())
            assert p[1:].min() > 0


def _check_events_twin(t: EventsTwin, df: pd.DataFrame, tmp_path: Path) -> None:
    _assert_normalised(t.model)
    s = t.score(df)
    assert s["count"] == len(df) and math.isfinite(s["total_bits"])
    assert math.isfinite(s["bits_per_unit"])
    assert all(math.isfinite(r["holdout_bits"]) for r in t.leaderboard)
    out = t.sample(50, seed=1)
    assert list(out.columns) == ["S", "P", "E"]
    # a name outside the training names is one the twin spelled where it drew UNK
    assert np.all(np.isfinite(t.log_prob(out)))
    assert len(t.sample(5, seed=2, temperature=0.5)["S"].unique()) <= 5
    path = tmp_path / "e.twin"
    t.save(path)
    back = datatwin.load(path)
    assert isinstance(back, EventsTwin) and back.structure == t.structure
    np.testing.assert_array_equal(back.log_prob(df), t.log_prob(df))
    pd.testing.assert_frame_equal(back.sample(50, seed=1), out)


def _check_text_twin(t: TextTwin, text: str, tmp_path: Path) -> None:
    _assert_normalised(t.model)
    for probe in (text, text + "zz", "b" + text):
        s = t.score(probe)
        assert s["count"] == len(probe) and math.isfinite(s["total_bits"])
    out = t.sample(30, seed=0)
    assert isinstance(out, str) and len(out) <= 30
    assert t.sample(10, seed=0, prefix=text[:1], temperature=0.7).startswith(text[:1])
    path = tmp_path / "t.twin"
    t.save(path)
    back = datatwin.load(path)
    assert isinstance(back, TextTwin) and back.structure == t.structure
    np.testing.assert_array_equal(back.log_prob(text + "q"), t.log_prob(text + "q"))
    assert back.sample(30, seed=0) == out


# ---- the reported crash ---------------------------------------------------------------------
def test_cli_events_on_tiny_data_with_the_default_max_order(tmp_path, capsys):
    """400 sequences of 2-6 events over 4 types: orders 7-8 have (almost) nothing to count."""
    df = _event_table(400, 2, 6, 4)
    csv = tmp_path / "events.csv"
    df.to_csv(csv, index=False)
    model = tmp_path / "ev.twin"
    argv = ["fit", str(csv), "--kind", "events", "--sequence-id", "S", "--order-by", "P"]
    assert main([*argv, "--event", "E", "-o", str(model), "--no-baselines"]) == 0
    capsys.readouterr()
    assert main(["score", str(model), str(csv), "--json"]) == 0
    assert '"bits_per_unit"' in capsys.readouterr().out
    assert main(["sample", str(model), "-n", "20", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("S,P,E")
    t = datatwin.load(model)
    _check_events_twin(t, df, tmp_path)


def test_events_tiny_data_fits_every_order_up_to_the_default(tmp_path):
    df = _event_table(400, 2, 6, 4)
    t = EventsTwin.fit_select(df, **COLS, baselines=False)
    names = {r["structure"] for r in t.leaderboard}
    assert {"markov8+kn", "markov8+wb"} <= names
    _check_events_twin(t, df, tmp_path)


# ---- smoothing levels with nothing to add ---------------------------------------------------
@pytest.mark.parametrize("smoother", SMOOTHERS)
@pytest.mark.parametrize("n_ctx", [0, 5])
def test_an_empty_level_is_a_pass_through(smoother, n_ctx):
    empty = np.zeros(0, np.int64)
    lev = make_level(smoother, empty, empty, 7, n_ctx)
    assert len(lev.alpha) == 0 and len(lev.gamma) == n_ctx and not lev.seen.any()
    p = np.array([0.1, 0.2, 0.3, 0.4])
    ctx = np.array([-1, 0, 4, -1]) if n_ctx else np.full(4, -1)
    np.testing.assert_array_equal(apply_level(lev, p, np.full(4, -1), ctx), p)


@pytest.mark.parametrize("smoother", SMOOTHERS)
def test_orders_beyond_every_block_change_nothing_and_stay_normalised(smoother):
    rng = np.random.default_rng(3)
    segs = [Segment(rng.integers(N_SPECIAL, N_SPECIAL + 3, size=n)) for n in (1, 2, 3, 2)]
    base = N_SPECIAL + 3
    hold = [Segment(rng.integers(N_SPECIAL, base, size=6)), Segment(np.array([UNK, 4]))]
    tables = count(segs, base, 9)
    # the longest block is BOS + 3 tokens + EOS: level 4 holds its EOS, levels 5..9 are empty
    assert [len(k) for k in tables.keys[5:]] == [0] * 5 and len(tables.keys[4]) > 0
    _, rows = fit_family(segs, hold, base, 9, (smoother,))
    bits = {r["order"]: r["holdout_total_bits"] for r in rows}
    assert all(math.isfinite(b) for b in bits.values())
    for k in range(5, 10):
        m = NgramModel.from_tables(tables, k, smoother)
        _assert_normalised(m, max_len=2)
        lp = m.log_prob_segments(hold)
        assert np.all(np.isfinite(lp))
        assert math.isclose(-lp.sum() / math.log(2), bits[k], rel_tol=1e-10)
        if smoother == "wb":  # raw counts at every level: exactly the order-4 model
            four = NgramModel.from_tables(tables, 4, smoother)
            np.testing.assert_allclose(lp, four.log_prob_segments(hold), rtol=1e-12)
            assert bits[k] == pytest.approx(bits[4], rel=1e-12)
        # the vectorised chain equals the dense distributions, even past the empty levels
        lay = layout(hold)
        p = chain_probs(m.levels, lookup(m.keys, base, lay), lay.pred, m.n_outcomes)
        np.testing.assert_allclose(np.log(p), lp, rtol=1e-12)
    sampler = Sampler(NgramModel.from_tables(tables, 9, smoother))
    out, _ = sampler.generate(50, np.random.default_rng(0))
    assert all(N_SPECIAL <= w < base or w == UNK for w in out)


# ---- degenerate event data ------------------------------------------------------------------
def test_events_with_a_single_event_type(tmp_path):
    df = _event_table(200, 2, 6, 1)
    t = EventsTwin.fit_select(df, **COLS, baselines=False)
    assert t.events == ["e0"]
    _check_events_twin(t, df, tmp_path)
    # the model learns the lengths: nearly all the mass is on e0 or the end
    p = t.model.distribution(np.array([BOS, N_SPECIAL]))
    assert p[N_SPECIAL] + p[EOS] > 0.9


def test_events_sequences_of_length_one(tmp_path):
    df = _event_table(200, 1, 1, 4)
    t = EventsTwin.fit_select(df, **COLS, baselines=False)
    _check_events_twin(t, df, tmp_path)
    lens = t.sample(200, seed=0).groupby("S").size()
    assert (lens == 1).mean() > 0.8


def test_events_single_type_length_one_and_a_huge_max_order(tmp_path):
    df = _event_table(50, 1, 1, 1)
    t = EventsTwin.fit_select(df, **COLS, max_order=32, baselines=False)
    _check_events_twin(t, df, tmp_path)


@pytest.mark.parametrize("structures", [None, "markov12+kn", "markov12+wb", "markov9+kn+cache"])
def test_events_max_order_longer_than_every_sequence(tmp_path, structures):
    df = _event_table(200, 2, 4, 4)
    t = EventsTwin.fit_select(df, **COLS, max_order=12, structures=structures, baselines=False)
    if structures:
        assert t.structure == structures
        assert len(t.model.keys[-1]) == 0  # the top levels are empty
    _check_events_twin(t, df, tmp_path)


def test_cli_events_max_order_longer_than_every_sequence(tmp_path, capsys):
    csv = tmp_path / "ev.csv"
    _event_table(100, 2, 3, 2, seed=5).to_csv(csv, index=False)
    model = tmp_path / "ev.twin"
    argv = ["fit", str(csv), "--kind", "events", "--sequence-id", "S", "--order-by", "P"]
    argv += ["--event", "E", "--max-order", "20", "--no-baselines", "-o", str(model)]
    assert main([*argv, "--arpa", str(tmp_path / "ev.arpa")]) == 0
    assert (tmp_path / "ev.arpa").read_text().startswith("\\data\\")
    capsys.readouterr()
    assert main(["sample", str(model), "-n", "5", "--seed", "0"]) == 0


# ---- a very short text ----------------------------------------------------------------------
def test_two_character_document_holds_out_its_last_character():
    train, hold = _split_docs([Document("d", "ab")], 0.2, 0)
    assert train == [("a", False)] and hold == [("b", "a", True)]
    train, hold = _split_docs([Document("d", "x"), Document("e", "ab")], 0.2, 0)
    assert train == [("x", True), ("a", False)] and hold == [("b", "a", True)]
    train, hold = _split_docs([Document("d", "x")], 0.2, 0)
    assert train == [("x", True)] and hold == []


@pytest.mark.parametrize("tokens", ["chars", "bytes"])
def test_one_very_short_document(tmp_path, tokens):
    t = TextTwin.fit_select("ab", tokens=tokens, baselines=False)
    assert t.info["holdout_characters"] == 1
    if tokens == "chars":
        _check_text_twin(t, "ab", tmp_path)
    else:
        _assert_normalised(t.model)
        assert math.isfinite(t.score("ab")["total_bits"])
        t.save(tmp_path / "b.twin")
        assert datatwin.load(tmp_path / "b.twin").sample(20, seed=0) == t.sample(20, seed=0)


@pytest.mark.parametrize("refit", [True, False])
def test_one_very_short_document_with_a_large_max_order(tmp_path, refit):
    t = TextTwin.fit_select("abc", max_order=32, refit=refit, cache=True, baselines=False)
    _check_text_twin(t, "abc", tmp_path)


def test_words_with_no_repeated_word_round_trip(tmp_path):
    """No word is seen twice: an empty word list (alphabet EOS, UNK only) still loads."""
    t = TextTwin.fit_select("ab cd", tokens="words", baselines=False)
    assert t.model.base == N_SPECIAL
    _assert_normalised(t.model)
    assert math.isfinite(t.score("ab cd")["total_bits"])
    t.save(tmp_path / "w.twin")
    back = datatwin.load(tmp_path / "w.twin")
    assert back.sample(20, seed=0) == t.sample(20, seed=0)
    np.testing.assert_array_equal(back.log_prob("ab cd"), t.log_prob("ab cd"))
