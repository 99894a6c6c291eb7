"""Numbers of bins per numeric column (`tabular/colbins.py`): each column's own holdout
term, the search's rule, `column_bins` in a fit, and the `trees[bins=per-column]` label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import InputError
from datatwin.reader import read_table
from datatwin.tabular import codec as codec_module
from datatwin.tabular.colbins import TermScorer, search_column_bins
from datatwin.tabular.rows import encode_table, ordered_sum
from datatwin.tabular.structures import FitCache
from datatwin.tabular.twin import TableTwin


def two_scales(n: int = 4_000, seed: int = 0) -> pd.DataFrame:
    """`fine` sits close to one of eight centres set by `g` (finer bins pay), `noisy` is
    independent noise on a 0.1 grid (coarse bins pay)."""
    rng = np.random.default_rng(seed)
    g = rng.choice(list("abcdefgh"), n)
    centre = {c: i * 1.7 for i, c in enumerate("abcdefgh")}
    return pd.DataFrame(
        {
            "g": g,
            "fine": np.round(np.array([centre[c] for c in g]) + 0.02 * rng.normal(size=n), 3),
            "noisy": np.round(rng.normal(size=n), 1),
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return two_scales()


def test_within_columns_add_up_to_the_within_total(frame):
    raw = read_table(frame)
    twin = TableTwin.fit(raw, structure="independent", bins=10)
    rows = encode_table(raw, twin.codecs, distinct=True)
    assert len(rows.within_columns) == len(twin.codecs)
    assert ordered_sum(list(rows.within_columns)) == rows.within
    for codec, term in zip(twin.codecs, rows.within_columns, strict=True):
        assert term == pytest.approx(float(np.sum(codec.encode(raw.cells[codec.spec.name])[1])))


def test_column_terms_add_up_to_the_twins_holdout_bits(frame):
    train, hold = read_table(frame.iloc[:3000]), read_table(frame.iloc[3000:])
    cache = FitCache()
    twin = TableTwin.fit(train, structure="trees", bins=10, _cache=cache)
    specs = [s for s in twin.schema if s.type != "id"]
    scorer = TermScorer(train, hold, specs, twin.params["order"], 2000, 1, cache)
    names = [s.name for s in specs]
    terms = scorer.terms(10, names, dict(enumerate(twin.net.cpts)))
    assert sum(terms.values()) == pytest.approx(twin.bits(hold), rel=1e-12)


class FakeScorer:
    """Terms from a table {bins: {column: bits}}; records what the search asked for."""

    def __init__(self, table: dict[int, dict[str, float]]):
        self.table, self.asked = table, []

    def terms(self, bins, names, trees=None):
        self.asked.append((bins, tuple(names), trees is not None))
        return {n: self.table[bins][n] for n in names}


def test_the_search_regrows_a_column_until_two_doublings_miss_then_tries_coarser():
    table = {
        10: {"a": 5.0, "b": 3.0, "c": 2.0},
        20: {"a": 4.0, "b": 3.1, "c": 2.0},
        40: {"a": 3.5, "b": 3.2, "c": 2.1},
        80: {"a": 3.6, "b": 9.0, "c": 9.0},
        160: {"a": 3.4, "b": 9.0, "c": 9.0},
        320: {"a": 3.41, "b": 9.0, "c": 9.0},
        640: {"a": 3.42, "b": 9.0, "c": 9.0},
        5: {"a": 9.0, "b": 2.5, "c": 2.0},
    }
    fake = FakeScorer(table)
    found = search_column_bins(fake, ["a", "b", "c"], 10, {})  # type: ignore[arg-type]
    assert fake.asked == [
        (10, ("a", "b", "c"), True),  # the base fit's own trees
        (20, ("a", "b", "c"), False),
        (40, ("a", "b", "c"), False),  # b and c missed twice: not regrown after 40
        (80, ("a",), False),
        (160, ("a",), False),  # a improves again: its count of misses starts over
        (320, ("a",), False),
        (640, ("a",), False),
        (5, ("b", "c"), False),  # best at the base count: coarser tried
    ]
    # fewest bits, the smaller count on a tie (c: 2.0 at 5, 10 and 20)
    assert found.chosen() == {"a": 160, "b": 5, "c": 5}
    # the best uniform count is over the counts at which every column was regrown only
    assert set(found.sums) == {10, 20, 40}
    assert found.uniform() == (40, pytest.approx(3.5 + 3.2 + 2.1))


def test_a_uniform_count_is_fit_when_the_columns_choices_hurt_each_other(
    shared_data, monkeypatch
):
    """sachs with plain quantile bins (no spikes): each protein predicts the others, so
    columns that pick coarse bins for their own term cost the later columns more than they
    gain; the best uniform count is fit too and the holdout keeps it. (With spikes, sachs's
    three significant digits make every column choose 640 bins: one uniform count.)"""
    monkeypatch.setattr(codec_module, "SPIKES", False)
    twin = datatwin.fit(shared_data / "tables" / "sachs" / "sachs.csv", seed=0)
    rows = {r["structure"]: r["holdout_bits"] for r in twin.leaderboard}
    uniform = [k for k in rows if k.startswith("trees[bins=") and k != "trees[bins=per-column]"]
    assert len(uniform) == 1, rows
    assert rows[uniform[0]] < rows["trees[bins=per-column]"]
    assert twin.structure == uniform[0]


def test_column_bins_set_each_columns_bins_and_save_exactly(frame, tmp_path):
    twin = TableTwin.fit(frame, structure="trees", bins=10, column_bins={"fine": 80})
    coarse = {c.spec.name: len(c.coarse_edges) - 1 for c in twin.codecs}
    assert coarse["fine"] == 80 and coarse["noisy"] == 10
    assert twin.params["column_bins"] == {"fine": 80}
    path = tmp_path / "t.twin"
    twin.save(path)
    again = datatwin.load(path)
    assert again.params == twin.params
    np.testing.assert_array_equal(again.log_prob(frame), twin.log_prob(frame))


@pytest.mark.parametrize(
    ("column_bins", "words"),
    [
        ({"nope": 20}, ["column_bins", "nope"]),
        ({"fine": 0}, ["column_bins['fine']", "positive"]),
        ({"fine": 2.5}, ["column_bins['fine']", "positive"]),
    ],
)
def test_bad_column_bins_are_one_clear_error(frame, column_bins, words):
    with pytest.raises(InputError) as err:
        TableTwin.fit(frame, structure="trees", column_bins=column_bins)
    for w in words:
        assert w in str(err.value)


def test_per_column_bins_are_chosen_kept_and_fit_again_from_the_label(frame):
    twin = datatwin.fit(frame, structures="trees", seed=0)
    assert twin.structure == "trees[bins=per-column]"
    own = twin.params["column_bins"]
    assert set(own) == {"fine", "noisy"}
    assert own["fine"] > own["noisy"], own  # the close follower takes finer bins
    rows = {r["structure"]: r for r in twin.leaderboard}
    assert rows["trees[bins=per-column]"]["holdout_bits"] < rows["trees"]["holdout_bits"]
    again = datatwin.fit(frame, structures=twin.structure, seed=0)
    assert again.structure == twin.structure and again.params == twin.params
    np.testing.assert_array_equal(again.log_prob(frame), twin.log_prob(frame))
    with pytest.raises(InputError, match="chosen on held-out rows"):
        TableTwin.fit(frame, structure="trees[bins=per-column]")
    with pytest.raises(InputError, match="is for trees and neural"):
        datatwin.fit(frame, structures="bayesnet[bins=per-column]")
