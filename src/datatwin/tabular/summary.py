"""A column's statistic wherever its rows live: exact value counts, or past `MAX_DISTINCT`
distinct texts a sketch (`sketch.py`) and the second pass's tally (`tally.py`).

In memory the whole column is one chunk; a `RowSource` merges its partitions' summaries. Both
summaries are the same statistic however the rows are chunked, so the codecs, the schema and
the identifier generators fit from them are the same in memory and through Dask.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..reader import RawTable, ValueCounts
from . import bounded
from .codec import ColumnCodec
from .ids import IdGenerator
from .schema import ColumnSpec
from .sketch import Bounds, ColumnSketch, Summary
from .tally import Tally, TallyPlan, tally_of

if TYPE_CHECKING:
    from .rows import Rows

_CACHED = 64  # in-memory columns whose sketch or tally is kept (they take a pass to make)
_cache: OrderedDict[tuple[Any, ...], tuple[object, Any]] = OrderedDict()


def _memo(owner: object, key: tuple[Any, ...], make: Any) -> Any:
    """make(), kept while `owner` (a column) is the object it was made for."""
    full = (id(owner), *key)
    hit = _cache.get(full)
    if hit is not None and hit[0] is owner:
        _cache.move_to_end(full)
        return hit[1]
    value = make()
    _cache[full] = (owner, value)
    while len(_cache) > _CACHED:
        _cache.popitem(last=False)
    return value


def column_summary(rows: Rows, name: str) -> Summary:
    """Column `name`'s value counts, or its sketch when it has more distinct texts than the
    cap (`sketch.MAX_DISTINCT`)."""
    if not isinstance(rows, RawTable):
        return rows.value_counts(name)
    col, bounds = rows.cells[name], Bounds.current()
    if len(col.uniques) <= bounds.max_distinct:
        return col.value_counts()
    return _memo(col, ("sketch", bounds), lambda: ColumnSketch.of(col.value_counts(), bounds))


def exact_counts(rows: Rows, name: str) -> ValueCounts:
    """The value counts of a column that is not sketched."""
    summary = column_summary(rows, name)
    assert isinstance(summary, ValueCounts), f"column {name!r} is sketched"
    return summary


def is_sketched(rows: Rows, name: str) -> bool:
    return isinstance(column_summary(rows, name), ColumnSketch)


@dataclass
class BoundedColumn:
    """A sketched column's sketch, second-pass plan and tally: what its codec is fit from."""

    sketch: ColumnSketch
    plan: TallyPlan
    tally: Tally

    def codec(self, bins: int, max_categories: int, min_count: int) -> ColumnCodec:
        return bounded.fit_codec(
            self.plan, self.tally, self.sketch, bins, max_categories, min_count
        )

    def id_generator(self) -> IdGenerator:
        return bounded.id_generator(self.plan, self.tally, self.sketch)


def bounded_columns(rows: Rows, specs: list[ColumnSpec]) -> dict[str, BoundedColumn]:
    """The sketched columns among `specs`, each with its tally (one pass for all of them)."""
    bounds = Bounds.current() if isinstance(rows, RawTable) else rows.bounds
    sketches = {s.name: column_summary(rows, s.name) for s in specs}
    plans = {
        s.name: TallyPlan.of(s, sk, bounds)
        for s in specs
        if isinstance(sk := sketches[s.name], ColumnSketch)
    }
    if not plans:
        return {}
    if isinstance(rows, RawTable):
        tallies = {
            name: _memo(
                rows.cells[name],
                ("tally", bounds, repr(plan.spec)),
                lambda p=plan, n=name: tally_of(p, rows.cells[n].value_counts(), bounds),
            )
            for name, plan in plans.items()
        }
    else:
        tallies = rows.tallies(plans)
    return {
        name: BoundedColumn(sketches[name], plan, tallies[name])  # type: ignore[arg-type]
        for name, plan in plans.items()
    }


#: numbers of bins for named columns, overriding a fit's `bins`: sorted (name, bins) pairs
ColumnBins = tuple[tuple[str, int], ...]


def fit_codecs(
    rows: Rows,
    specs: list[ColumnSpec],
    bins: int,
    max_categories: int,
    min_count: int,
    column_bins: ColumnBins = (),
) -> list[ColumnCodec]:
    """Each column's codec: from its value counts, or from its sketch and tally; a numeric
    column's coarse bins are `column_bins`' number for it, else `bins`."""
    sketched = bounded_columns(rows, specs)
    own = dict(column_bins)
    return [
        sketched[s.name].codec(own.get(s.name, bins), max_categories, min_count)
        if s.name in sketched
        else ColumnCodec.fit(
            s, exact_counts(rows, s.name), own.get(s.name, bins), max_categories, min_count
        )
        for s in specs
    ]
