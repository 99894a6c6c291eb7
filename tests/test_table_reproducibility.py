"""Same data + same seed: the same leaderboard, structure and samples; other seeds differ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.tabular.rows import holdout_mask, split_key
from datatwin.tabular.twin import TableTwin


def mixed_frame(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < 0.7, np.where(a == "x", "p", "q"), "r")
    age = np.round(rng.normal(np.where(b == "p", 30, 50), 8)).astype(int)
    amount = np.round(rng.gamma(2.0, np.where(a == "z", 50.0, 10.0)), 2)
    amount[rng.random(n) < 0.3] = 0.0
    amount_tok = np.array([f"{v:.2f}" for v in amount], dtype=object)
    amount_tok[rng.random(n) < 0.05] = ""
    return pd.DataFrame({"a": a, "b": b, "age": age, "amount": amount_tok})


def _board_core(twin) -> list[tuple]:
    return [
        (e["structure"], e["train_bits"], e["holdout_bits"], e.get("edges"), e.get("selected"))
        for e in twin.leaderboard
    ]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame()


def test_same_seed_same_selection_and_edges(frame):
    t1 = datatwin.fit(frame, seed=4)
    t2 = datatwin.fit(frame.copy(), seed=4)
    assert _board_core(t1) == _board_core(t2)
    assert t1.structure == t2.structure
    assert t1.edges == t2.edges
    np.testing.assert_array_equal(t1.log_prob(frame), t2.log_prob(frame))
    s1, s2 = t1.sample(2_000, seed=9), t2.sample(2_000, seed=9)
    assert s1.equals(s2)


def test_same_seed_same_samples(frame):
    twin = TableTwin.fit(frame, structure="bayesnet")
    for kw in ({}, {"novel": True}):
        s1 = twin.sample(3_000, seed=123, **kw)
        s2 = twin.sample(3_000, seed=123, **kw)
        assert s1.equals(s2)
        t1 = twin.sample_tokens(3_000, seed=123, **kw)
        t2 = twin.sample_tokens(3_000, seed=123, **kw)
        assert t1.equals(t2)


def test_different_seeds_differ(frame):
    twin = TableTwin.fit(frame, structure="bayesnet")
    s1 = twin.sample(1_000, seed=1)
    s2 = twin.sample(1_000, seed=2)
    assert not s1.equals(s2)
    for col in frame.columns:  # every column is actually random
        assert not s1[col].equals(s2[col]), col


def test_different_split_seeds_give_different_holdouts(frame):
    t1 = datatwin.fit(frame, seed=1, structures=["independent"])
    t2 = datatwin.fit(frame, seed=2, structures=["independent"])
    assert t1.leaderboard[0]["holdout_bits"] != t2.leaderboard[0]["holdout_bits"]


def test_fitting_does_not_depend_on_row_order_of_equal_data(frame):
    """The fitted probabilities are functions of counts: shuffling the rows changes nothing
    (for a fixed structure)."""
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    t1 = TableTwin.fit(frame, structure="dag", edges=[("a", "b"), ("b", "age"), ("a", "amount")])
    t2 = TableTwin.fit(shuffled, structure="dag", edges=[("a", "b"), ("b", "age"), ("a", "amount")])
    np.testing.assert_allclose(t1.log_prob(frame), t2.log_prob(frame), rtol=1e-12)


def test_sample_count_is_exact(frame):
    twin = TableTwin.fit(frame, structure="chow-liu")
    for n in (0, 1, 7, 1_001):
        assert len(twin.sample(n, seed=3)) == n


def test_leaderboard_bits_split_the_data_without_overlap(frame):
    """Without the refit, the chosen twin is the one fit on the training split: its bits on
    all rows are exactly the row-weighted mix of the leaderboard's train and holdout bits."""
    twin = datatwin.fit(frame, seed=3, refit=False, holdout=0.25)
    entry = next(e for e in twin.leaderboard if e["selected"])
    n = len(frame)
    n_hold = int(holdout_mask(0, n, 0.25, split_key(3)).sum())  # a hash of each row's place
    assert abs(n_hold - 0.25 * n) < 4 * (0.25 * 0.75 * n) ** 0.5
    mixed = ((n - n_hold) * entry["train_bits"] + n_hold * entry["holdout_bits"]) / n
    assert twin.bits(frame) == pytest.approx(mixed, rel=1e-9)
    held = holdout_mask(0, n, 0.25, split_key(3))
    assert twin.bits(frame[held]) == pytest.approx(entry["holdout_bits"], rel=1e-12)


def test_the_holdout_split_is_a_hash_of_each_rows_place_the_same_in_any_pieces():
    key = split_key(11)
    whole = holdout_mask(0, 100_000, 0.2, key)
    pieces = [holdout_mask(a, b - a, 0.2, key) for a, b in [(0, 7), (7, 40_000), (40_000, 100_000)]]
    assert np.array_equal(whole, np.concatenate(pieces))
    assert abs(whole.mean() - 0.2) < 0.005  # binomial: sd 0.0013
    assert not np.array_equal(whole, holdout_mask(0, 100_000, 0.2, split_key(12)))
    # rows held out at 0.1 are a subset of those at 0.2: one uniform draw per row
    assert not (holdout_mask(0, 100_000, 0.1, key) & ~whole).any()
