"""Length-aware sequence ends (`+len`) for event twins: every step's distribution sums to one
and scoring agrees with it, the probabilities of all sequences sum to one, samples follow the
model, the holdout picks `+len` when lengths are not Markov and files round-trip exactly."""

from __future__ import annotations

import io
import itertools
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin import ModelFileError
from datatwin.text.counts import BOS, EOS, N_SPECIAL
from datatwin.text.length import Ends, LengthHazard
from datatwin.text.twin import EventsTwin

COLS = {"sequence_id": "S", "order_by": "P", "event": "E"}


def non_markov_lengths(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Sequences of 4..7 events over {a, b}: where a sequence ends depends on its length,
    which no short context tells."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 8, n)
    seq = np.repeat([f"s{i}" for i in range(n)], lengths)
    pos = np.concatenate([np.arange(k) for k in lengths])
    ev = rng.choice(["a", "b"], len(seq), p=[0.7, 0.3])
    return pd.DataFrame({"S": seq, "P": pos, "E": ev})


@pytest.fixture(scope="module")
def twin() -> EventsTwin:
    t = EventsTwin.fit_select(non_markov_lengths(), **COLS, max_order=2, baselines=False)
    assert t.hazard is not None, t.leaderboard
    return t


def _step_probs(t: EventsTwin, history: list[int]) -> np.ndarray:
    """The length-aware next-symbol distribution after `history` (events so far)."""
    p = t.model.distribution(np.array([BOS, *history], np.int64))
    e = float(t.hazard.end_prob(np.array([p[EOS]]), np.array([len(history)]))[0])
    q = p * (1 - e) / (1 - p[EOS])
    q[EOS] = e
    return q


def test_holdout_picks_length_aware_ends_and_they_fit_the_lengths(twin):
    board = {e["structure"]: e["holdout_bits"] for e in twin.leaderboard}
    assert twin.structure.startswith("markov") and "+len[w=" in twin.structure
    assert board[twin.structure] == min(board.values())
    plain = twin.structure.split("+len")[0]
    assert board[twin.structure] < board[plain] - 0.01
    real = non_markov_lengths(3000, seed=1).groupby("S").size()
    lens = twin.sample(4000, seed=3).groupby("S").size()
    assert lens.min() >= 1 and abs(lens.mean() - real.mean()) < 0.1
    assert (lens > 9).mean() < 0.01  # no sequence in the data is longer than 7


def test_every_step_sums_to_one_and_scoring_agrees_with_it(twin):
    a, b = (twin.events.index(x) + N_SPECIAL for x in ("a", "b"))
    for seq in ([a, a, b, a], [b] * 9, [a, b, a, b, a, b]):
        logp = 0.0
        for i in range(len(seq) + 1):
            q = _step_probs(twin, seq[:i])
            assert q[BOS] == 0 and math.isclose(q.sum(), 1.0, abs_tol=1e-12)
            logp += math.log(q[seq[i]] if i < len(seq) else q[EOS])
        names = [twin.events[s - N_SPECIAL] for s in seq]
        df = pd.DataFrame({"S": "x", "P": range(len(seq)), "E": names})
        assert twin.log_prob(df).sum() == pytest.approx(logp, abs=1e-9)


def test_all_sequences_sum_to_one(twin):
    """Σ over every sequence of up to 12 events of P(events, end), walking the prefix tree
    with the step distributions (which the previous test ties to scoring)."""
    a, b = (twin.events.index(x) + N_SPECIAL for x in ("a", "b"))
    total = 0.0
    frontier = [([], 1.0)]
    for _ in range(13):
        nxt = []
        for prefix, p in frontier:
            q = _step_probs(twin, prefix)
            total += p * q[EOS]
            nxt += [(prefix + [w], p * q[w]) for w in (a, b)]
        frontier = nxt
    # the rest of the mass: sequences with an unseen event, or longer than 12
    assert 0.99 < total <= 1.0 + 1e-9


def test_sample_frequencies_match_the_model(twin):
    """Sampled lengths 1..7 and first events against the model's exact probabilities
    (every sequence of up to 7 events over {a, b} enumerated)."""
    a, b = (twin.events.index(x) + N_SPECIAL for x in ("a", "b"))
    p_len = np.zeros(8)
    for k in range(1, 8):
        for seq in itertools.product([a, b], repeat=k):
            lp = 0.0
            for i in range(k + 1):
                q = _step_probs(twin, list(seq[:i]))
                lp += math.log(q[seq[i]] if i < k else q[EOS])
            p_len[k] += math.exp(lp)
    n = 20_000
    s = twin.sample(n, seed=5)
    lens = s.groupby("S").size().reindex([f"s{i}" for i in range(n)]).fillna(0).astype(int)
    for k in range(1, 8):
        got = float((lens == k).mean())
        se = math.sqrt(p_len[k] * (1 - p_len[k]) / n)
        assert abs(got - p_len[k]) < 5 * se + 1e-4, (k, got, p_len[k])
    q = _step_probs(twin, [])
    want = q[a]
    got = float((s[s["P"] == 0]["E"] == "a").sum() / n)
    assert abs(got - want) < 5 * math.sqrt(want * (1 - want) / n)


def test_round_trip_and_damaged_hazard(twin, tmp_path):
    path = tmp_path / "e.twin"
    twin.save(path)
    back = datatwin.load(path)
    df = non_markov_lengths(200, seed=9)
    assert back.structure == twin.structure
    np.testing.assert_array_equal(back.log_prob(df), twin.log_prob(df))
    pd.testing.assert_frame_equal(back.sample(100, seed=1), twin.sample(100, seed=1))
    for damage in (
        lambda a: a.__setitem__("len_offsets", a["len_offsets"] * np.nan),
        lambda a: a.__setitem__("len_offsets", a["len_offsets"] + 100.0),
        lambda a: a.__setitem__("len_weight", np.array([-1.0])),
        lambda a: a.__setitem__("len_weight", np.array([1.0, 2.0])),
    ):
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("model.json"))
            with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        damage(arrays)
        bad = tmp_path / "bad.twin"
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("model.json", json.dumps(meta))
            zf.writestr("arrays.npz", buf.getvalue())
        with pytest.raises(ModelFileError) as info:
            datatwin.load(bad)
        assert "\n" not in str(info.value)


def test_named_structures_add_len_only_when_asked():
    df = non_markov_lengths(600)
    plain = EventsTwin.fit_select(df, **COLS, structures="markov2+kn", baselines=False)
    assert plain.hazard is None and plain.structure == "markov2+kn"
    assert all("+len" not in e["structure"] for e in plain.leaderboard)
    asked = EventsTwin.fit_select(df, **COLS, structures="markov2+kn+len", baselines=False)
    assert any("+len" in e["structure"] for e in asked.leaderboard)


def test_offsets_make_expected_ends_match_seen_ends():
    """With an uninformative chain (P(end) = 0.2 everywhere) the fitted ends after t events
    are the data's end rates after t events (to the pseudo-step's pull)."""
    lengths = np.repeat([1, 2, 3], [500, 300, 200])
    t = np.concatenate([np.arange(k + 1) for k in lengths])
    is_end = np.concatenate([np.arange(k + 1) == k for k in lengths])
    h = LengthHazard.fit(Ends(np.full(len(t), 0.2), is_end, t))
    e = h.end_prob(np.full(5, 0.2), np.arange(5))
    assert e[0] < 1e-3  # no sequence is empty
    assert e[1] == pytest.approx(500 / 1000, abs=2e-3)
    assert e[2] == pytest.approx(300 / 500, abs=2e-3)
    assert e[3] == pytest.approx(1.0, abs=1e-2) and e[4] == e[3]  # everything ends at 3
    assert LengthHazard.fit(Ends(np.full(len(t), 0.2), is_end, t), 0.0).end_prob(
        np.array([0.2]), np.array([2])
    )[0] == pytest.approx(0.2)
