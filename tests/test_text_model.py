"""Core n-gram maths: counts, Kneser-Ney / Witten-Bell values, normalisation, sampling."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from datatwin.text.counts import BOS, EOS, N_SPECIAL, UNK, Segment, count, layout
from datatwin.text.family import fit_family
from datatwin.text.model import NgramModel
from datatwin.text.sampling import Sampler, novelty_ngrams
from datatwin.text.smoothing import FALLBACK_DISCOUNTS, estimate_discounts

CORPORA = [
    ["abab"],
    ["abracadabra", "cadabra", "abba"],
    ["abcdefg"],  # deduplicated: every n-gram once, counts-of-counts estimates fail
    ["aaaa", "a", "ba"],
]


def _encode(docs: list[str]) -> tuple[list[Segment], dict[str, int], int]:
    alphabet = sorted(set("".join(docs)))
    ids = {c: i + N_SPECIAL for i, c in enumerate(alphabet)}
    segs = [Segment(np.array([ids[c] for c in d], np.int64)) for d in docs]
    return segs, ids, len(alphabet) + N_SPECIAL


def _model(docs: list[str], order: int, smoother: str) -> tuple[NgramModel, dict[str, int]]:
    segs, ids, base = _encode(docs)
    return NgramModel.from_tables(count(segs, base, order), order, smoother), ids


def test_counts_and_continuation_counts_by_hand():
    segs, ids, base = _encode(["abab"])
    t = count(segs, base, 1)
    a, b = ids["a"], ids["b"]
    raw0 = dict(zip(t.keys[0].tolist(), t.raw[0].tolist(), strict=True))
    assert raw0 == {BOS: 0, EOS: 1, a: 2, b: 2}
    cont0 = dict(zip(t.keys[0].tolist(), t.cont[0].tolist(), strict=True))
    # a follows BOS and b; b follows a; EOS follows b
    assert cont0[a] == 2 and cont0[b] == 1 and cont0[EOS] == 1
    pairs = {
        (int(t.keys[0][k // base]), int(k % base)): int(c)
        for k, c in zip(t.keys[1], t.raw[1], strict=True)
    }
    assert pairs == {(BOS, a): 1, (a, b): 2, (b, a): 1, (b, EOS): 1}


def test_kneser_ney_matches_hand_computation():
    model, ids = _model(["abab"], 1, "kn")
    # level 0 (continuation counts a=2, b=1, EOS=1): D1=0.5, D2 falls back to 1.0, gamma=0.5,
    # uniform over 4 outcomes (EOS, UNK, a, b): p0(a)=.375, p0(b)=.25, p0(EOS)=.25, p0(UNK)=.125
    # level 1 raw counts: D1 = 1 - 2*0.6*1/3 = 0.6, D2 falls back to 1.0
    expected = 0.625 * 0.625 * 0.425 * 0.625 * 0.35
    lp = model.log_prob_segments([Segment(np.array([ids["a"], ids["b"]] * 2))])
    assert math.isclose(float(np.exp(lp.sum())), expected, rel_tol=1e-12)
    p = model.distribution(np.array([BOS]))
    assert math.isclose(p[ids["a"]], 0.625) and math.isclose(p[UNK], 0.6 * 0.125)


def test_witten_bell_matches_hand_computation():
    model, ids = _model(["abab"], 1, "wb")
    a, b = ids["a"], ids["b"]
    # level 0 raw a=2,b=2,EOS=1: c=5, T=3 -> p0(a)=(2+3/4)/8, p0(EOS)=(1+3/4)/8, p0(UNK)=(3/4)/8
    p0a, p0eos = 2.75 / 8, 1.75 / 8
    # context b: a=1, EOS=1: c=2, T=2
    p_ab = (1 + 2 * p0a) / 4
    got = model.distribution(np.array([BOS, a, b]))
    assert math.isclose(got[a], p_ab) and math.isclose(got[EOS], (1 + 2 * p0eos) / 4)
    assert math.isclose(model.distribution(np.array([BOS]))[UNK], 1 / 2 * (0.75 / 8))


def test_unigram_is_smoothed_mle():
    model, ids = _model(["aab"], 0, "wb")
    p = model.distribution(np.array([BOS]))
    # raw a=2, b=1, EOS=1 (c=4, T=3), uniform over 4 outcomes
    assert math.isclose(p[ids["a"]], (2 + 3 / 4) / 7)
    assert math.isclose(p.sum(), 1.0)


@pytest.mark.parametrize("docs", CORPORA)
@pytest.mark.parametrize("smoother", ["kn", "wb"])
def test_every_context_sums_to_one_over_the_whole_alphabet(docs, smoother):
    order = 3
    model, ids = _model(docs, order, smoother)
    outcomes = [EOS, UNK, *ids.values()]
    histories = [[]]
    for n in range(1, order + 1):
        histories += [list(h) for h in itertools.product(outcomes, repeat=n)]
    for h in histories:
        for hist in ([BOS, *h], h):
            p = model.distribution(np.array(hist, np.int64))
            assert p[BOS] == 0.0
            assert math.isclose(p.sum(), 1.0, rel_tol=0, abs_tol=1e-12), (hist, p.sum())
            assert p[1:].min() > 0
    model.check_normalised("test")


@pytest.mark.parametrize("smoother", ["kn", "wb"])
def test_vectorised_scoring_matches_dense_distributions(smoother):
    docs = ["abracadabra", "cadabra", "abba"]
    model, ids = _model(docs, 3, smoother)
    text = "abcabrxdabra"
    toks = np.array([ids.get(c, UNK) for c in text], np.int64)
    lp = model.log_prob_segments([Segment(toks)])
    hist = [BOS]
    for i, w in enumerate([*toks.tolist(), EOS]):
        p = model.distribution(np.array(hist[-4:] if len(hist) > 3 else hist, np.int64))
        assert math.isclose(lp[i], math.log(p[w]), rel_tol=1e-12)
        hist.append(w)


def test_discounts_fall_back_soundly_on_deduplicated_counts():
    d, fallback = estimate_discounts(np.ones(50, np.int64))
    assert fallback and d == FALLBACK_DISCOUNTS
    d, fallback = estimate_discounts(np.array([1] * 40 + [2] * 10 + [3] * 5 + [4] * 3 + [9] * 2))
    assert not fallback and all(0 < x < c for x, c in zip(d, (1, 2, 3), strict=True))


def test_family_scores_equal_standalone_models():
    segs, ids, base = _encode(["abracadabra", "cadabra abba"])
    hold = [Segment(np.array([ids[c] for c in "abrac"], np.int64))]
    _, rows = fit_family(segs, hold, base, 3)
    tables = count(segs, base, 3)
    for r in rows:
        m = NgramModel.from_tables(tables, r["order"], r["smoother"])
        bits = -m.log_prob_segments(hold).sum() / math.log(2)
        assert math.isclose(bits, r["holdout_total_bits"], rel_tol=1e-10)


def test_tail_history_is_conditioned_on_not_counted():
    lay = layout([Segment(np.array([5, 6, 7, 8]), begin=False, end=True, n_context=2)])
    assert lay.t.tolist() == [5, 6, 7, 8, EOS]
    assert lay.pred.tolist() == [False, False, True, True, True]


@pytest.mark.parametrize("smoother", ["kn", "wb"])
def test_sample_frequencies_match_the_model(smoother):
    model, ids = _model(["abracadabra", "cadabra", "abba"], 2, smoother)
    sampler = Sampler(model)
    rng = np.random.default_rng(0)
    for hist in ([BOS], [BOS, ids["a"]], [BOS, ids["a"], ids["b"]], [BOS, ids["d"], ids["a"]]):
        p = model.distribution(np.array(hist))
        state = sampler.walk(np.array(hist[1:]))
        assert np.allclose(sampler.distribution(state), p, atol=1e-12)
        n = 20000
        freq = np.zeros(model.base)
        for _ in range(n):
            out, ended = sampler.generate(1, rng, state)
            freq[EOS if ended else out[0]] += 1
        sd = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(freq / n - p) <= 5 * sd + 1e-4), (hist, freq / n, p)


def test_temperature_sampling_follows_sharpened_distribution():
    model, ids = _model(["abracadabra", "cadabra"], 1, "kn")
    sampler = Sampler(model)
    state = sampler.walk(np.array([ids["a"]]))
    q = model.distribution(np.array([BOS, ids["a"]])) ** 2
    q /= q.sum()
    rng = np.random.default_rng(1)
    n = 20000
    freq = np.zeros(model.base)
    for _ in range(n):
        out, ended = sampler.generate(1, rng, state, temperature=0.5)
        freq[EOS if ended else out[0]] += 1
    assert np.all(np.abs(freq / n - q) <= 5 * np.sqrt(q * (1 - q) / n) + 1e-4)


def test_novelty_counts_verbatim_windows():
    train = np.arange(100)
    assert novelty_ngrams(np.arange(10, 40), train, 20) == 1.0
    assert novelty_ngrams(np.arange(200, 240), train, 20) == 0.0
