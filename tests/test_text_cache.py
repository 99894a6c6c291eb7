"""The document cache: exact sequential probabilities that sum to one, and exact sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

import datatwin
from datatwin.text.cache import CacheSpec, CacheState, cache_probs, generate_cached
from datatwin.text.counts import BOS, EOS, N_SPECIAL, Segment, count, layout
from datatwin.text.model import NgramModel
from datatwin.text.sampling import Sampler

SPEC = CacheSpec(orders=(1, 2, 3), a=1.5, b=2.0, cap=2.0)


def _setup():
    train = "abracadabra cadabra abba"
    alphabet = sorted(set(train + "xyz"))
    ids = {c: i + N_SPECIAL for i, c in enumerate(alphabet)}
    base = len(alphabet) + N_SPECIAL
    segs = [Segment(np.array([ids[c] for c in train], np.int64))]
    model = NgramModel.from_tables(count(segs, base, 2), 2, "kn")
    return model, ids


def test_cache_probabilities_match_the_dense_reference_and_sum_to_one():
    model, ids = _setup()
    doc = "xyzzy abra xyzzy abra xyz"
    toks = np.array([ids[c] for c in doc], np.int64)
    lay = layout([Segment(toks)])
    q = cache_probs(lay, model.base, model.prob_layout(lay), SPEC)
    state = CacheState(SPEC, [], model.base)
    hist = [BOS]
    for i, w in enumerate([*toks.tolist(), EOS]):
        dense = state.dense(model.distribution(np.array(hist[-2:] if len(hist) > 2 else hist)))
        assert math.isclose(dense.sum(), 1.0, abs_tol=1e-12) and dense[1:].min() > 0
        assert math.isclose(q[i], dense[w], rel_tol=1e-12), i
        state.push(w)
        hist.append(w)
    # repeated material gets cheaper the second time
    assert -np.log(q[17:22]).sum() < -np.log(q[0:5]).sum()


def test_history_counts_as_document_so_far():
    model, ids = _setup()
    toks = np.array([ids[c] for c in "xyzxyzxyz"], np.int64)
    whole = cache_probs(
        layout([Segment(toks)]), model.base, model.prob_layout(layout([Segment(toks)])), SPEC
    )
    tail_lay = layout([Segment(toks, True, True, n_context=6)])
    tail = cache_probs(tail_lay, model.base, model.prob_layout(tail_lay), SPEC)
    np.testing.assert_allclose(tail, whole[6:], rtol=1e-12)


def test_cached_sampling_matches_the_model():
    model, ids = _setup()
    sampler = Sampler(model)
    history = [ids[c] for c in "xyzzy abra xyz"]
    state = sampler.walk(np.array(history))
    ref = CacheState(SPEC, history, model.base)
    p = ref.dense(sampler.distribution(state))
    rng = np.random.default_rng(0)
    n = 20000
    freq = np.zeros(model.base)
    for _ in range(n):
        out, ended = generate_cached(sampler, SPEC, history, 1, rng, state)
        freq[EOS if ended else out[0]] += 1
    assert np.all(np.abs(freq / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-4)


@pytest.mark.parametrize("spec", [CacheSpec(), CacheSpec((2,), 0.5, 0.0, 1.0)])
def test_cache_spec_json_round_trip(spec):
    assert CacheSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError):
        CacheSpec.from_json({"orders": [3, 2], "a": 1, "b": 1, "cap": 4})
    with pytest.raises(ValueError):
        CacheSpec.from_json({"orders": [2], "a": 0, "b": 1, "cap": 4})


def test_cached_twin_round_trips_and_scores_consistently(tmp_path):
    text = ("the rain in spain stays mainly in the plain. " * 3 + "zorro rides. " * 4) * 3
    twin = datatwin.fit(text, kind="text", structures="markov3+kn+cache", baselines=False)
    assert twin.structure == "markov3+kn+cache" and twin.cache == CacheSpec()
    twin.save(tmp_path / "c.twin")
    back = datatwin.load(tmp_path / "c.twin")
    assert back.cache == twin.cache
    np.testing.assert_array_equal(back.log_prob(text[:200]), twin.log_prob(text[:200]))
    assert back.sample(300, seed=5, prefix="zorro") == twin.sample(300, seed=5, prefix="zorro")
    assert back.sample(50, seed=5, temperature=0.8) == twin.sample(50, seed=5, temperature=0.8)
