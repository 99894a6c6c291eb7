"""Sufficient statistics of tables: column value counts merge exactly over chunks, codecs fit
from them equal codecs fit on the whole column, and the streamed reader gives the same table
whatever its block size."""

from __future__ import annotations

import numpy as np
import pytest

from datatwin.errors import InputError
from datatwin.reader import TokenColumn, ValueCounts, read_table
from datatwin.tabular.codec import ColumnCodec
from datatwin.tabular.schema import infer_column


def _column(n: int, seed: int) -> np.ndarray:
    """Numbers with a few junk tokens and missing markers, as text."""
    rng = np.random.default_rng(seed)
    vals = np.round(rng.gamma(2.0, 30.0, n), 1).astype(str).astype(object)
    vals[rng.random(n) < 0.05] = "0"
    vals[rng.random(n) < 0.02] = "?"
    vals[rng.random(n) < 0.01] = "n/a"
    return vals


def test_value_counts_of_chunks_merge_to_the_whole_in_first_appearance_order():
    cells = _column(5000, 1)
    whole = TokenColumn.of(cells).value_counts()
    parts = [TokenColumn.of(c).value_counts() for c in np.array_split(cells, 7)]
    merged = ValueCounts.merge(parts)
    assert list(merged.values) == list(whole.values)
    assert np.array_equal(merged.counts, whole.counts) and merged.n_rows == 5000


@pytest.mark.parametrize("bins", [5, 40, 160])
def test_codec_fit_from_merged_counts_equals_the_fit_on_the_whole_column(bins):
    cells = _column(20000, 2)
    spec = infer_column("x", cells)
    assert spec.type == "float" and spec.decimals == 1
    merged = ValueCounts.merge([TokenColumn.of(c).value_counts() for c in np.array_split(cells, 5)])
    assert infer_column("x", merged) == spec
    a, b = ColumnCodec.fit(spec, cells, bins), ColumnCodec.fit(spec, merged, bins)
    assert a.tokens == b.tokens
    for name in ("value_atoms", "coarse_edges", "fine_edges", "fine_logp"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # quantile bins hold (about) equal shares of the non-atom values
    states, _ = a.encode(cells)
    inner = np.bincount(states[a.state_kind[states] == 2] - a.off_interval)
    assert inner.max() < 3 * inner.min()


def test_the_streamed_reader_gives_the_same_table_at_any_block_size(tmp_path, monkeypatch):
    rows = [f'{i},{"abc"[i % 3]}{i % 11},"q,{i % 5}"\n' for i in range(3000)]
    path = tmp_path / "t.csv"
    path.write_text("n,code,quoted\n" + "".join(rows))
    whole = read_table(path)
    monkeypatch.setattr("datatwin.reader.BLOCK_BYTES", 1 << 10)  # about 40 blocks
    small = read_table(path)
    for c in whole.columns:
        assert list(small.text(c)) == list(whole.text(c))
        assert list(small.cells[c].uniques) == list(whole.cells[c].uniques)
    assert small.cells["code"].codes.dtype == np.int8  # 33 distinct texts: a byte a cell


def test_a_ragged_row_deep_in_a_file_is_named_by_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr("datatwin.reader.BLOCK_BYTES", 1 << 12)
    lines = ["a,b\n"] + [f"{i},{i}\n" for i in range(20000)]
    lines[15001] = "1,2,3\n"  # file line 15,002
    path = tmp_path / "bad.csv"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=r"line 15002: ragged row .* 2 fields"):
        read_table(path)


def test_a_parquet_sample_is_written_in_row_groups_with_the_csv_samples_cells(tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    import datatwin
    from datatwin.cli import main

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.choice(["x", "y", "=z"], 500), "n": rng.integers(0, 9, 500)})
    datatwin.fit(df, seed=0).save(tmp_path / "m.twin")
    common = ["-q", "sample", str(tmp_path / "m.twin"), "-n", "230000", "--seed", "3"]
    assert main([*common, "-o", str(tmp_path / "s.parquet")]) == 0
    assert main([*common, "-o", str(tmp_path / "s.csv")]) == 0
    got = pd.read_parquet(tmp_path / "s.parquet")
    want = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert got.shape == (230000, 2) and (got.to_numpy() == want.to_numpy()).all()
    assert pq.ParquetFile(tmp_path / "s.parquet").num_row_groups == 3  # blocks of 100,000


def test_trees_grown_on_several_cores_are_the_serial_trees(monkeypatch):
    import pandas as pd

    import datatwin
    from datatwin.core import parallel

    rng = np.random.default_rng(4)
    a = rng.integers(0, 5, 3000)
    df = pd.DataFrame(
        {"a": a, "b": (a * 3 + rng.integers(0, 3, 3000)) % 7, "x": np.round(rng.normal(a, 1), 1)}
    )
    monkeypatch.setattr("datatwin.tabular.growth._PARALLEL_CELLS", 0)
    calls = []
    real = parallel.ProcessPoolExecutor

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", spy)
    monkeypatch.setenv("DATATWIN_WORKERS", "2")
    forked = datatwin.fit(df, structures="trees", seed=0)
    monkeypatch.setenv("DATATWIN_WORKERS", "1")
    serial = datatwin.fit(df, structures="trees", seed=0)
    assert calls or not parallel._fork_safe()  # (nothing forks with torch or other threads)
    assert forked.leaderboard[0]["holdout_bits"] == serial.leaderboard[0]["holdout_bits"]
    assert np.array_equal(forked.log_prob(df), serial.log_prob(df))


def chain_frame(n: int, seed: int):
    """A chain a -> b -> c of small categorical columns."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(0, 2, n)) % 4
    return pd.DataFrame({"a": a, "b": b, "c": (b * 2 + rng.integers(0, 2, n)) % 5})


def test_a_large_training_split_is_searched_on_a_sample_then_counted_on_every_row(
    monkeypatch, caplog
):
    import logging

    import datatwin

    df = chain_frame(4000, seed=7)
    monkeypatch.setattr("datatwin.tabular.select.SEARCH_ROWS", 800)
    with caplog.at_level(logging.INFO, logger="datatwin"):
        twin = datatwin.fit(df, structures="bayesnet", seed=0)
    assert "candidates are fit on a sample of" in caplog.text
    sampled_rows = int(caplog.text.split("a sample of ")[1].split(" ")[0].replace(",", ""))
    assert 600 < sampled_rows < 1000  # about 800 of the 3,200 training rows
    # the chosen structure's tables are the counts of every row, with the sample's edges
    counted = datatwin.fit(df, structures="dag", edges=twin.edges, holdout=df.iloc[:5], refit=False)
    assert np.array_equal(twin.log_prob(df), counted.log_prob(df))
    assert twin.structure == "bayesnet"


def test_an_explicit_holdout_with_a_large_training_split_is_also_searched_on_a_sample(
    monkeypatch, caplog
):
    import logging

    import datatwin

    df = chain_frame(5000, seed=8)
    train, hold = df.iloc[:4000], df.iloc[4000:]
    monkeypatch.setattr("datatwin.tabular.select.SEARCH_ROWS", 800)
    with caplog.at_level(logging.INFO, logger="datatwin"):
        twin = datatwin.fit(train, holdout=hold, structures="bayesnet", seed=0, refit=False)
    assert "candidates are fit on a sample of" in caplog.text
    # without a refit the final tables are still the counts of every training row
    counted = datatwin.fit(train, structures="dag", edges=twin.edges, holdout=hold, refit=False)
    assert np.array_equal(twin.log_prob(df), counted.log_prob(df))


def _bins_tried(rows: list[dict]) -> list[int]:
    return [int(r["bins"]) for r in rows if r["structure"].startswith("bayesnet[bins=")]


def test_the_bins_search_doubles_until_two_doublings_in_a_row_miss():
    """The tried bins follow the rule, replayed from the leaderboard's own holdout bits
    (a bayesnet's: trees choose their bins per column, `test_table_colbins.py`)."""
    import pandas as pd

    import datatwin

    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": np.round(x, 3),
            "y": np.round(x**2 + 0.1 * rng.normal(size=n), 3),
            "g": np.where(x > 0, "p", "n"),
        }
    )
    twin = datatwin.fit(df, structures="bayesnet", seed=0)
    rows = twin.leaderboard
    bits = {int(r["bins"]): r["holdout_bits"] for r in rows if r["structure"].startswith("bayes")}
    expected, best, misses = [], 10, 0
    for b in (20, 40, 80, 160):
        expected.append(b)
        if bits[b] < bits[best]:
            best, misses = b, 0
        else:
            misses += 1
            if misses == 2:
                break
    if best == 10:
        expected.append(5)
    assert _bins_tried(rows) == expected


def _square(item: int, offset: int) -> int:
    return item * item + offset


def test_a_parallel_map_ticks_once_per_result_in_order_forked_or_not(monkeypatch):
    from datatwin.core import parallel

    for workers in ("2", "1"):
        monkeypatch.setenv("DATATWIN_WORKERS", workers)
        ticks: list[float] = []
        got = parallel.parallel_map(_square, list(range(9)), 1, on_result=ticks.append)
        assert got == [i * i + 1 for i in range(9)] and ticks == [1] * 9


def test_workers_fork_while_a_spinner_turns():
    """On a terminal the command line's spinner redraws from a thread of its own; it is
    paused while the workers fork, so a map still runs on them (it used to fall back to the
    serial loop). Run in a fresh interpreter: torch, once imported, turns forking off."""
    import os
    import subprocess
    import sys

    code = """
import os, sys, threading
from datatwin import progress
from datatwin.core import parallel
progress.enable_cli(False)
sys.stderr.isatty = lambda: True
with progress.step("growing"):
    spinning = threading.active_count() > 1
    pids = parallel.parallel_map(lambda i: os.getpid(), [1, 2, 3, 4])
print(spinning, os.getpid() in pids)
"""
    env = {**os.environ, "DATATWIN_WORKERS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.stdout.split() == ["True", "False"], out.stderr  # spun; mapped on workers


def test_a_hill_climb_scored_on_workers_finds_the_serial_network():
    """Families are scored in batches on forked workers for large tables: the same scores,
    so the same network as scoring one by one (in a fresh interpreter: torch turns forking
    off)."""
    import os
    import subprocess
    import sys

    code = """
import os
import numpy as np
from datatwin.core import parallel
from datatwin.tabular import search
from datatwin.tabular.counting import FamilyCounter
rng = np.random.default_rng(0)
n = 3000
a = rng.integers(0, 4, n); b = (a + rng.integers(0, 2, n)) % 5; c = (b * 2 + rng.integers(0, 3, n)) % 7
d = (a + c + rng.integers(0, 2, n)) % 6; e = rng.integers(0, 3, n)
cols = [a, b, c, d, e]; cards = np.array([4, 5, 7, 6, 3])
search._PARALLEL_ROWS = 0
forks = []
real = parallel.ProcessPoolExecutor
parallel.ProcessPoolExecutor = lambda *a, **k: forks.append(1) or real(*a, **k)
def climb(workers):
    os.environ["DATATWIN_WORKERS"] = workers
    counter = FamilyCounter(cols, cards)
    scorer = search.LocalScorer(counter, [np.zeros(int(k)) for k in cards])
    tree = search.chow_liu(counter, scorer)
    return tree, search.hill_climb(scorer, max_parents=2), scorer._cache
t2, net2, cache2 = climb("2")
used = len(forks)
t1, net1, cache1 = climb("1")
print(used > 0, len(forks) == used, t1 == t2, net1 == net2, cache1 == cache2, len(cache1) > 20)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert out.stdout.split() == ["True"] * 6, out.stderr
