"""A Dask DataFrame's rows as a `RowSource`: statistics per partition, added up on the client.

Every statistic a count structure needs is a sum over rows (`rows.py`), so each partition
computes its own — the value counts of each column, and under a set of codecs its distinct
state rows with their counts — and the client merges them in partition order, which gives
exactly the statistics of the whole table read in one piece. The holdout split is a hash of
each row's position (`rows.holdout_mask`), so workers need only their partition's offset.
The fitted twin is therefore the same model file as an in-memory fit of the same rows.

Only statistics travel: the client holds the distinct state rows of the table (at most one
row of small integers per distinct record) and each column's distinct texts, never the
cells; a column past `sketch.MAX_DISTINCT` distinct texts travels as a bounded sketch and
its tally instead (`sketch.py`, `tally.py`). Summaries are merged pairwise on the workers
in partition order (`_reduce`), so the client receives one summary per column. Structures that need the rows themselves (gaussian, neural) are not offered here.
A worker that dies is retried by Dask's scheduler (tasks are pure functions of a partition);
if it keeps failing, the fit stops with a one-line error and writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import progress
from ..errors import InputError
from ..reader import RawTable, ValueCounts, from_frame
from .ids import IdGenerator, int_like
from .rows import (
    EncodedRows,
    encode_table,
    exact_columns,
    holdout_mask,
    merge_encoded,
    merge_exact,
    within_terms,
)
from .sketch import Bounds, ColumnSketch, Summary, merge_summaries, summarise
from .tally import Tally, TallyPlan, merge_tallies, tally_of

if TYPE_CHECKING:
    from .codec import ColumnCodec

#: the rows kept: every (fraction, key, held) condition holds, i.e. `holdout_mask(fraction,
#: key)` of the row's position in the whole table is `held` (a split's side, a sample)
Selection = tuple[tuple[float, int, bool], ...]


def _part_rows(part: pd.DataFrame, start: int, selection: Selection) -> RawTable | None:
    """A partition's selected rows as a table of texts (None when it has none)."""
    if len(part) == 0:
        return None
    raw = from_frame(part, source="a partition")
    if selection:
        keep = np.ones(len(part), dtype=bool)
        for fraction, key, held in selection:
            keep &= holdout_mask(start, len(part), fraction, key) == held
        if not keep.any():
            return None
        raw = raw.take(keep)
    return raw


def _part_counts(
    part: pd.DataFrame, start: int, selection: Selection, bounds: Bounds
) -> dict[str, Summary] | None:
    raw = _part_rows(part, start, selection)
    if raw is None:
        return None
    return {c: summarise(raw.value_counts(c), bounds) for c in raw.columns}


def _merge_counts(
    a: dict[str, Summary] | None, b: dict[str, Summary] | None, bounds: Bounds
) -> dict[str, Summary] | None:
    if a is None or b is None:
        return a if b is None else b
    return {c: merge_summaries(a[c], b[c], bounds) for c in a}  # type: ignore[misc]


def _part_tallies(
    part: pd.DataFrame,
    start: int,
    selection: Selection,
    plans: dict[str, TallyPlan],
    bounds: Bounds,
) -> dict[str, Tally] | None:
    raw = _part_rows(part, start, selection)
    if raw is None:
        return None
    return {name: tally_of(plan, raw.value_counts(name), bounds) for name, plan in plans.items()}


def _part_encode(
    part: pd.DataFrame,
    start: int,
    selection: Selection,
    codecs: list[ColumnCodec],
    exact: frozenset[str],
) -> EncodedRows | None:
    raw = _part_rows(part, start, selection)
    return None if raw is None else encode_table(raw, codecs, True, exact)


class DaskRows:
    """The rows of a Dask DataFrame (or a split of them) as a `RowSource`."""

    def __init__(
        self,
        frame: Any,
        selection: Selection = (),
        starts: list[int] | None = None,
        source: str = "a Dask DataFrame",
        bounds: Bounds | None = None,
    ):
        self.frame = frame
        self.bounds = bounds or Bounds.current()
        self.selection = selection
        self.columns = [str(c) for c in frame.columns]
        self.dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        self.source = source
        self.starts = starts if starts is not None else self._starts()
        self._counts: dict[str, Summary] | None = None
        self._tallies: dict[str, tuple[str, Tally]] = {}

    def _starts(self) -> list[int]:
        with progress.step(f"counting the rows of {self.frame.npartitions} partitions"):
            lengths = self._compute(lambda part, start: len(part), per_part=True)
        if sum(lengths) == 0:
            raise InputError(f"{self.source} has no rows (no file matches, or they are empty)")
        progress.note(
            f"{self.source}: {sum(lengths):,} rows in {len(lengths)} partitions, fit from "
            "statistics computed per partition by Dask and merged (exact)"
        )
        return [int(s) for s in np.r_[0, np.cumsum(lengths)[:-1]]]

    def _compute(self, func: Any, *args: Any, per_part: bool = False) -> list[Any]:
        """func(partition, its first row's position, *args) for every partition, in order."""
        import dask

        parts = self.frame.to_delayed()
        starts = [0] * len(parts) if per_part else self.starts
        tasks = [dask.delayed(func)(p, s, *args) for p, s in zip(parts, starts, strict=True)]
        return self._run(tasks)

    def _reduce(self, func: Any, merge: Any, *args: Any) -> Any:
        """func(partition, start, *args) for every partition, merged pairwise on the workers
        by merge(left, right, bounds) in partition order: one result reaches the client."""
        import dask

        parts = self.frame.to_delayed()
        tasks = [dask.delayed(func)(p, s, *args) for p, s in zip(parts, self.starts, strict=True)]
        while len(tasks) > 1:
            pairs = [tasks[i : i + 2] for i in range(0, len(tasks), 2)]
            tasks = [dask.delayed(merge)(*p, self.bounds) if len(p) == 2 else p[0] for p in pairs]
        return self._run(tasks)[0]

    def _run(self, tasks: list[Any]) -> list[Any]:
        import dask

        try:
            return list(dask.compute(*tasks))
        except InputError:
            raise
        except Exception as exc:  # a worker that died past its retries, a bad partition
            name = type(exc).__name__
            raise InputError(
                f"the Dask computation failed ({name}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "nothing was written — check the workers and run the fit again"
            ) from None

    @property
    def n_rows(self) -> int:
        counts = self.value_counts(self.columns[0]) if self.columns else None
        return counts.n_rows if counts is not None else 0

    def value_counts(self, name: str) -> Summary:
        if self._counts is None:
            with progress.step(f"value counts of {len(self.columns)} columns over partitions"):
                merged = self._reduce(_part_counts, _merge_counts, self.selection, self.bounds)
            empty = ValueCounts(np.empty(0, object), np.empty(0, np.int64))
            self._counts = {c: (merged or {}).get(c, empty) for c in self.columns}
        return self._counts[name]

    def tallies(self, plans: dict[str, TallyPlan]) -> dict[str, Tally]:
        # a column's plan is a function of its spec (the sketch is these rows')
        todo = {n: p for n, p in plans.items() if self._tallies.get(n, ("",))[0] != repr(p.spec)}
        if todo:
            with progress.step(f"counting {len(todo)} many-valued columns over partitions"):
                merged = self._reduce(
                    _part_tallies, merge_tallies, self.selection, todo, self.bounds
                )
            for name, plan in todo.items():
                self._tallies[name] = (repr(plan.spec), merged[name])
        return {name: self._tallies[name][1] for name in plans}

    def encode(self, codecs: list[ColumnCodec]) -> EncodedRows:
        exact = exact_columns(codecs, lambda n: isinstance(self.value_counts(n), ColumnSketch))
        with progress.step("encoding the partitions' rows"):
            parts = self._compute(_part_encode, self.selection, codecs, exact)
        parts = [p for p in parts if p is not None]
        within = within_terms(codecs, self.value_counts, merge_exact(parts, exact))
        return merge_encoded(parts, within)

    def id_generator(self, name: str) -> IdGenerator:
        vc = self.value_counts(name)
        assert isinstance(vc, ValueCounts), "a sketched identifier column has its own generator"
        return IdGenerator.fit(np.repeat(vc.values, vc.counts), int_like(vc.values))

    def _with(self, condition: tuple[float, int, bool]) -> DaskRows:
        selection = (*self.selection, condition)
        return DaskRows(self.frame, selection, self.starts, self.source, self.bounds)

    def split(self, fraction: float, key: int) -> tuple[DaskRows, DaskRows]:
        return self._with((fraction, key, False)), self._with((fraction, key, True))

    def sample(self, fraction: float, key: int) -> DaskRows:
        return self._with((fraction, key, True))


# ---- the command line: --engine dask [--scheduler ADDRESS] --------------------------------
def read_frame(pattern: str, sep: str | None = None) -> Any:
    """A Dask DataFrame of Parquet or CSV files (a path, a folder or a glob); CSV cells are
    read as their exact text, as the in-memory reader keeps them."""
    try:
        import dask.dataframe as dd
    except ImportError:
        raise InputError(
            '--engine dask needs the dask extra: pip install "datatwin[dask]"'
        ) from None
    low = pattern.lower()
    try:
        if any(s in low for s in (".csv", ".tsv", ".txt")):
            delimiter = sep or ("\t" if ".tsv" in low else ",")
            return dd.read_csv(pattern, dtype=str, keep_default_na=False, sep=delimiter)
        return dd.read_parquet(pattern)
    except Exception as exc:  # dask and pyarrow raise many kinds for a missing or bad file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{pattern}: Dask cannot read it ({first})") from None


@contextmanager
def dask_client(address: str | None) -> Iterator[None]:
    """A Dask client for the block: the scheduler at `address`, or a local cluster of one
    worker process per core."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            '--engine dask needs the dask extra: pip install "datatwin[dask]"'
        ) from None
    if address:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
        with client:
            progress.note(
                f"Dask scheduler {address}: {len(client.scheduler_info()['workers'])} workers"
            )
            yield
        return
    workers = max(1, os.cpu_count() or 1)
    # the scheduler's HTTP server on any free port: on a busy 8787 it printed a warning
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        progress.note(f"Dask: a local cluster of {workers} worker processes")
        yield
