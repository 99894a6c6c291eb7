"""Tables past one machine: a Dask DataFrame is fit from statistics per partition, and the
model file is byte-identical to the in-memory fit of the same rows; a worker that dies is
retried (the same twin) or the fit stops with one line and writes nothing."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.cli import main
from datatwin.errors import InputError
from datatwin.tabular import sketch

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from test_table_bounded import many_valued  # noqa: E402


def frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Categories, integers, 2-decimal floats with missing values, dates and an identifier."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    x = np.round(rng.normal(a * 3.0, 1.0, n), 2)
    x[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "a": [f"c{v}" for v in a],
            "b": (a + rng.integers(0, 2, n)) % 5,
            "x": x,
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
            "id": np.arange(n) + 1000,
        }
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parts")
    dd.from_pandas(frame(), npartitions=7).to_parquet(folder / "data")
    return folder / "data"


def assert_same_twin(dask_twin, memory_twin, folder: Path) -> None:
    """The same leaderboard bits and the same model file, byte for byte."""
    assert [r["holdout_bits"] for r in dask_twin.leaderboard] == [
        r["holdout_bits"] for r in memory_twin.leaderboard
    ]
    dask_twin.save(folder / "dask.twin")
    memory_twin.save(folder / "memory.twin")
    assert digest(folder / "dask.twin") == digest(folder / "memory.twin")


def test_the_dask_fit_writes_the_same_model_file_as_the_in_memory_fit(cluster, parts, tmp_path):
    ddf = dd.read_parquet(parts)
    assert ddf.npartitions == 7
    twin = datatwin.fit(ddf, seed=5)
    assert_same_twin(twin, datatwin.fit(ddf.compute(), seed=5), tmp_path)
    # and on another partitioning of the same rows
    other = datatwin.fit(dd.from_pandas(ddf.compute(), npartitions=3), seed=5)
    other.save(tmp_path / "other.twin")
    assert digest(tmp_path / "other.twin") == digest(tmp_path / "memory.twin")


def test_per_column_bins_through_dask_give_the_same_model_file(cluster, parts, tmp_path):
    """The trees' search of each column's bins scores terms from the partitions' merged
    statistics: the same counts, the same twin as in memory."""
    ddf = dd.read_parquet(parts)
    twin = datatwin.fit(ddf, structures="trees", seed=5)
    assert twin.structure == "trees[bins=per-column]", twin.leaderboard
    assert_same_twin(twin, datatwin.fit(ddf.compute(), structures="trees", seed=5), tmp_path)


def test_a_search_on_a_sample_picks_the_same_rows_through_dask(
    cluster, parts, tmp_path, monkeypatch, caplog
):
    """Above SEARCH_ROWS training rows the candidates see a hashed sample: the hash is of the
    row's position in the whole table, so Dask partitions pick the rows memory picks."""
    monkeypatch.setattr("datatwin.tabular.select.SEARCH_ROWS", 900)
    ddf = dd.read_parquet(parts)
    with caplog.at_level(logging.INFO, logger="datatwin"):
        twin = datatwin.fit(ddf, seed=5)
    assert "candidates are fit on a sample of" in caplog.text
    assert_same_twin(twin, datatwin.fit(ddf.compute(), seed=5), tmp_path)


def test_structures_that_need_rows_in_memory_are_skipped_with_a_note(cluster, caplog):
    numeric = pd.DataFrame({"u": np.arange(300) % 17, "v": (np.arange(300) * 7) % 23})
    with caplog.at_level(logging.INFO, logger="datatwin"):
        twin = datatwin.fit(
            dd.from_pandas(numeric, npartitions=2), seed=0, structures="gaussian,bayesnet"
        )
    assert [r["structure"] for r in twin.leaderboard] == ["bayesnet"]
    assert "needs the rows in memory" in caplog.text


def test_a_dask_frame_takes_a_holdout_fraction_and_fits_tables_only(cluster, parts):
    ddf = dd.read_parquet(parts)
    with pytest.raises(InputError, match="holdout fraction"):
        datatwin.fit(ddf, holdout=frame(50))
    with pytest.raises(InputError, match="table twin"):
        datatwin.fit(ddf, kind="events", sequence_id="a", order_by="b", event="a")


def _die_once(part: pd.DataFrame, flag: str) -> pd.DataFrame:
    """The first worker to run this dies (its process exits); the flag file remembers."""
    if len(part) and not os.path.exists(flag):
        Path(flag).touch()
        os._exit(1)
    return part


def test_a_worker_dying_mid_fit_is_retried_and_gives_the_same_twin(cluster, parts, tmp_path):
    ddf = dd.read_parquet(parts)
    dying = ddf.map_partitions(_die_once, str(tmp_path / "died"), meta=ddf._meta)
    twin = datatwin.fit(dying, seed=5)
    assert (tmp_path / "died").exists()  # a worker did die
    expected = datatwin.fit(ddf.compute(), seed=5)
    twin.save(tmp_path / "a.twin")
    expected.save(tmp_path / "b.twin")
    assert digest(tmp_path / "a.twin") == digest(tmp_path / "b.twin")


def _always_fail(part: pd.DataFrame) -> pd.DataFrame:
    raise MemoryError("the worker ran out of memory")


def test_a_partition_that_keeps_failing_is_one_line_and_no_model_file(cluster, parts, tmp_path):
    ddf = dd.read_parquet(parts).map_partitions(_always_fail, meta=frame(2).iloc[:0])
    with pytest.raises(InputError, match=r"the Dask computation failed \(MemoryError"):
        datatwin.fit(ddf, seed=0)


def test_cli_fits_a_glob_of_parquet_files_through_a_local_cluster(parts, tmp_path, capsys):
    out = tmp_path / "cli.twin"
    code = main(["-q", "fit", str(parts / "*.parquet"), "--engine", "dask", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    expected = datatwin.fit(dd.read_parquet(parts).compute(), seed=0)
    expected.save(tmp_path / "memory.twin")
    assert digest(out) == digest(tmp_path / "memory.twin")
    code = main(["-q", "fit", str(tmp_path / "none*.parquet"), "--engine", "dask", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "has no rows" in err and len(err.strip().splitlines()) == 1


def test_many_valued_columns_fall_back_to_the_same_bounded_summary_through_dask(
    cluster, tmp_path, monkeypatch
):
    """Past the cap of distinct values a column is sketched (hashed sample, heavy candidates)
    and tallied in a second pass; both merge exactly over partitions, so the model file is
    the in-memory one byte for byte, on any partitioning and with a sampled search too."""
    monkeypatch.setattr(sketch, "MAX_DISTINCT", 200)
    monkeypatch.setattr(sketch, "SAMPLE_SIZE", 300)
    monkeypatch.setattr(sketch, "HEAVY_ONE_IN", 100)
    monkeypatch.setattr("datatwin.tabular.select.SEARCH_ROWS", 1500)
    dd.from_pandas(many_valued(), npartitions=7).to_parquet(tmp_path / "many")
    ddf = dd.read_parquet(tmp_path / "many")
    twin = datatwin.fit(ddf, seed=3)
    assert {c.spec.name for c in twin.codecs if c.bounded} == {"x", "word", "t"}
    assert {s.name for s in twin.schema if "bounded summary" in s.note} == {
        "x",
        "word",
        "t",
        "code",
        "serial",
    }
    assert_same_twin(twin, datatwin.fit(ddf.compute(), seed=3), tmp_path)
    other = datatwin.fit(dd.from_pandas(ddf.compute(), npartitions=2), seed=3)
    other.save(tmp_path / "other.twin")
    assert digest(tmp_path / "other.twin") == digest(tmp_path / "memory.twin")
