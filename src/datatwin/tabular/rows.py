"""The rows a table fit sees, as sufficient statistics, wherever they live.

A fit needs two statistics of its rows, and nothing else, for every count structure:
- each column's distinct texts and counts (`ValueCounts`): the schema and the codecs;
- under a set of codecs, the rows' state rows with how often each occurs, and the summed
  log P(value | state) (`EncodedRows`): every family count, score and holdout bit.

Both are sums over rows, so they merge exactly over chunks or partitions (`merge_encoded`).
A `RawTable` in memory computes them at once; a `RowSource` (e.g. a Dask DataFrame,
`tabular/dask.py`) computes them per partition and adds them up.

The holdout split is decided per row by a seeded hash of the row's position
(`holdout_mask`), so it is the same on any partitioning of the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..core.seeding import SeedLike, seed_sequence
from ..reader import RawTable, small_codes
from .counting import distinct_rows, merge_rows
from .exactsum import ExactSum
from .sketch import ColumnSketch
from .summary import is_sketched

if TYPE_CHECKING:
    from .codec import ColumnCodec
    from .ids import IdGenerator
    from .sketch import Bounds, Summary
    from .tally import Tally, TallyPlan


@dataclass
class EncodedRows:
    """Rows under a set of codecs: their state rows (the distinct ones, each standing for
    `counts` rows, when counts is not None) and Σ log P(value | state) over all the rows.

    Σ_rows log P(row) = Σ_distinct counts · log P(states) + within. `within` is computed from
    each column's value counts, Σ_columns Σ_texts n_text · log P(text | its state)
    (`within_terms`), so it is the same float however the rows were chunked; for a column
    too many-valued to count (`exact_columns`) each chunk's term is an exact sum (`exact`)
    and the chunks' sums add up exactly. `within_columns` holds each column's term (their
    sum in column order is `within`), for scoring one column's conditional alone."""

    columns: list[np.ndarray]
    counts: np.ndarray | None
    within: float  # nats
    n_rows: int
    exact: dict[str, ExactSum] = field(default_factory=dict)
    within_columns: tuple[float, ...] = ()

    def total_log_prob(self, log_prob_states: np.ndarray) -> float:
        """Σ_rows log P(row) (nats), given log P(states) of each row of `columns`."""
        if self.counts is None:
            return float(np.sum(log_prob_states)) + self.within
        return float(np.sum(self.counts * log_prob_states)) + self.within

    def distinct(self) -> EncodedRows:
        """The same rows as distinct state rows with counts."""
        if self.counts is not None:
            return self
        cols, counts = distinct_rows(self.columns)
        return EncodedRows(cols, counts, self.within, self.n_rows, self.exact, self.within_columns)


def merge_encoded(parts: list[EncodedRows], within: list[float]) -> EncodedRows:
    """Several chunks' encoded rows (in row order) as the distinct rows of all of them;
    each column's within term for all the rows comes from the merged value counts
    (`within_terms`)."""
    parts = [p.distinct() for p in parts if p.n_rows]
    if not parts:
        raise ValueError("no rows to merge")
    cols, counts = merge_rows([(p.columns, p.counts) for p in parts])  # type: ignore[misc]
    n = sum(p.n_rows for p in parts)
    return EncodedRows(cols, counts, ordered_sum(within), n, within_columns=tuple(within))


def merge_exact(parts: list[EncodedRows], names: frozenset[str]) -> dict[str, ExactSum]:
    """The chunks' exact within sums of the columns `names`, added up (exactly)."""
    out = {name: ExactSum() for name in names}
    for p in parts:
        for name, s in p.exact.items():
            out[name] = out[name].add(s)
    return out


def exact_columns(codecs: list[ColumnCodec], sketched: Callable[[str], bool]) -> frozenset[str]:
    """The columns whose within sum is exact (`ExactSum`): those fit from a bounded summary
    or too many-valued in these rows to sum over their value counts."""
    return frozenset(c.spec.name for c in codecs if c.bounded or sketched(c.spec.name))


def within_terms(
    codecs: list[ColumnCodec],
    counts_of: Callable[[str], Summary],
    exact: dict[str, ExactSum],
) -> list[float]:
    """Each column's Σ over rows of log P(value | state) (nats), from its value counts:
    Σ_texts n_text · log P(text | its state) (a column in `exact`: its exact sum, rounded
    once). `ordered_sum` of them is the rows' within total."""
    terms = []
    for codec in codecs:
        if codec.spec.name in exact:
            terms.append(exact[codec.spec.name].value())
            continue
        vc = counts_of(codec.spec.name)
        assert not isinstance(vc, ColumnSketch), "a sketched column's within sum is exact"
        terms.append(_within(vc.counts, codec.encode_texts(vc.values)[1]))
    return terms


def ordered_sum(terms: list[float]) -> float:
    """0.0 + terms[0] + terms[1] + ..., left to right: the same float on every Python
    (`sum` of floats compensates its rounding from Python 3.12 on)."""
    total = 0.0
    for t in terms:
        total += t
    return total


def _within(counts: np.ndarray, within_of_text: np.ndarray) -> float:
    return float(np.sum(counts * within_of_text))


def encode_table(
    raw: RawTable,
    codecs: list[ColumnCodec],
    distinct: bool,
    exact: frozenset[str] = frozenset(),
) -> EncodedRows:
    """`raw`'s rows under `codecs`: each column's distinct texts encoded once, for the state
    columns (the smallest integer type) and for the within total (`within_terms`'s sum;
    the columns in `exact` summed exactly, `exact_columns`)."""
    cols, terms, sums = [], [], {}
    for codec in codecs:
        col = raw.cells[codec.spec.name]
        states, within = codec.encode_texts(col.uniques)
        cols.append(small_codes(col.per_cell(states), codec.n_states))
        if codec.spec.name in exact:
            sums[codec.spec.name] = ExactSum.of(within, col.value_counts().counts)
            terms.append(sums[codec.spec.name].value())
        else:
            terms.append(_within(col.value_counts().counts, within))
    rows = EncodedRows(cols, None, ordered_sum(terms), raw.n_rows, sums, tuple(terms))
    return rows.distinct() if distinct else rows


@runtime_checkable
class RowSource(Protocol):
    """Rows that are not in memory: they give their statistics, not their cells."""

    columns: list[str]
    dtypes: dict[str, str]
    source: str
    bounds: Bounds  # the caps of `sketch.py`, read once where the rows were opened

    @property
    def n_rows(self) -> int: ...

    def value_counts(self, name: str) -> Summary:
        """Column `name`'s distinct texts (in order of first appearance) and counts, or
        past `bounds.max_distinct` of them a `ColumnSketch`."""
        ...

    def tallies(self, plans: dict[str, TallyPlan]) -> dict[str, Tally]:
        """The second pass over the sketched columns of `plans` (`tally.py`)."""
        ...

    def encode(self, codecs: list[ColumnCodec]) -> EncodedRows:
        """The distinct state rows under `codecs`, with counts and Σ within (`within_terms`
        of the merged value counts)."""
        ...

    def id_generator(self, name: str) -> IdGenerator:
        """The generator of new identifiers for identifier column `name`."""
        ...

    def split(self, fraction: float, key: int) -> tuple[RowSource, RowSource]:
        """(training rows, held-out rows): row i is held out iff `holdout_mask` says so."""
        ...

    def sample(self, fraction: float, key: int) -> RowSource:
        """These rows where `holdout_mask(fraction, key)` of the position in the whole table
        is true (the same rows a `RawTable` of the whole table would pick)."""
        ...


Rows = RawTable | RowSource


def encode_rows(rows: Rows, codecs: list[ColumnCodec], distinct: bool) -> EncodedRows:
    """The rows under `codecs`: distinct state rows with counts when asked (or when the rows
    live elsewhere: only their statistics travel)."""
    if isinstance(rows, RawTable):
        exact = exact_columns(codecs, lambda name: is_sketched(rows, name))
        return encode_table(rows, codecs, distinct, exact)
    return rows.encode(codecs)


# ---- the holdout split --------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def split_key(seed: SeedLike) -> int:
    """The 64-bit key of a seed's holdout split."""
    return int(seed_sequence(seed).generate_state(1, np.uint64)[0])


def holdout_mask(start: int, n: int, fraction: float, key: int) -> np.ndarray:
    """Whether rows start .. start+n-1 (positions in the whole table) are held out: row i
    is iff u_i < fraction, u_i uniform in [0, 1) from SplitMix64(key + i·φ), a hash of the
    row's position alone, so any partitioning of the rows gives the same split."""
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (np.arange(start, start + n, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return u < fraction
