"""A bounded summary of a column with too many distinct values: the stated fallback of issue 10.

A column's sufficient statistic is its value counts (`ValueCounts`): exact, mergeable, and as
large as the column's distinct values. Above `MAX_DISTINCT` distinct texts a column is
summarised instead by a `ColumnSketch` whose size does not grow with the distinct values:
- `sample`: the `SAMPLE_SIZE` distinct texts of smallest 64-bit hash, with their exact counts
  (a text among the k smallest hashes of the whole column is among the k smallest of every
  chunk that holds it, so its chunks' counts add up exactly): the same texts however the rows
  are partitioned — a uniform sample of the distinct values, for bin edges and spellings;
- `heavy`: candidates for the texts in at least 1 in `HEAVY_ONE_IN` rows (every such text is
  one; `Heavy`), counted exactly by a second pass (`tally.py`) and then kept by that exact
  count alone, so the kept set does not depend on the partitioning either;
- `facts`: what type inference needs (numbers, decimals, date formats, missing markers,
  non-numeric tokens up to `MAX_TOKENS`), each an AND, OR, max or exact count.
Merging two summaries (`merge_summaries`) keeps exact counts while the union has at most
`MAX_DISTINCT` texts and switches to a sketch past it, so a column becomes a sketch exactly
when the whole column has more distinct texts than the cap, in memory or through Dask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..reader import MISSING_MARKERS, ValueCounts
from .frames import looks_like_formula
from .schema import _DATE_FORMATS, parse_numbers, recorded_decimals

#: distinct texts of a column above which its summary is a bounded `ColumnSketch`
MAX_DISTINCT = 500_000
#: distinct texts in a sketch's hashed sample (bin edges, the spelling of rare values)
SAMPLE_SIZE = 65_536
#: texts in at least 1 in this many rows are counted exactly (categories kept, atoms)
HEAVY_ONE_IN = 10_000
#: non-numeric texts of a sketched column counted exactly (a numeric column has few)
MAX_TOKENS = 1_000
_FIRST = 16  # first distinct texts kept, in order of appearance (type inference reads them)


@dataclass(frozen=True)
class Bounds:
    """The caps, read once on the client and handed to every partition's task."""

    max_distinct: int
    sample_size: int
    heavy_one_in: int
    max_tokens: int

    @classmethod
    def current(cls) -> Bounds:
        return cls(MAX_DISTINCT, SAMPLE_SIZE, HEAVY_ONE_IN, MAX_TOKENS)

    def heavy_threshold(self, n_rows: int) -> int:
        """⌈n / HEAVY_ONE_IN⌉: integer, so ⌈a/D⌉ + ⌈b/D⌉ ≤ ⌈(a+b)/D⌉ + 1 exactly."""
        return max(1, -(-int(n_rows) // self.heavy_one_in))


def text_hash(texts: np.ndarray) -> np.ndarray:
    """A fixed 64-bit hash of each text (pandas' keyed SipHash: the same in every process)."""
    return pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False)


@dataclass
class BottomK:
    """The k distinct texts of smallest (hash, text), with their exact counts."""

    hashes: np.ndarray  # uint64, ascending
    texts: np.ndarray  # object
    counts: np.ndarray  # int64

    @classmethod
    def of(cls, vc: ValueCounts, k: int) -> BottomK:
        h = text_hash(vc.values)
        if len(h) > k:  # a superset of the k smallest, then their exact order
            cut = np.partition(h, k - 1)[k - 1]
            keep = h <= cut
            return cls._top(h[keep], vc.values[keep], vc.counts[keep], k)
        return cls._top(h, vc.values, vc.counts, k)

    @staticmethod
    def _top(h: np.ndarray, texts: np.ndarray, counts: np.ndarray, k: int) -> BottomK:
        order = sorted(range(len(h)), key=lambda i: (int(h[i]), str(texts[i])))[:k]
        idx = np.asarray(order, dtype=np.int64)
        return BottomK(h[idx], np.asarray(texts, dtype=object)[idx], counts[idx])

    def merge(self, other: BottomK, k: int) -> BottomK:
        texts = np.concatenate([self.texts, other.texts])
        codes, uniq = pd.factorize(texts, use_na_sentinel=False)
        counts = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(counts, codes, np.concatenate([self.counts, other.counts]))
        first = np.unique(codes, return_index=True)[1]
        hashes = np.concatenate([self.hashes, other.hashes])[first]
        return self._top(hashes, np.asarray(uniq, dtype=object), counts, k)


@dataclass
class Heavy:
    """Candidates for the texts in at least ⌈n / HEAVY_ONE_IN⌉ of n rows.

    A chunk reports each text with count ≥ its threshold t(n_p); a text it does not report
    has count ≤ t(n_p) - 1 there (`slack`). Upper bound of a text's count in a merged set:
    reported + the slack of the chunks that did not report it. A text with count ≥ t(n) in
    the union has count ≥ t in one of the two halves (the thresholds add up to at most one
    more), so along that path its bound never falls below the threshold: pruning the
    candidates whose bound is below it loses no heavy text."""

    texts: np.ndarray  # object
    reported: np.ndarray  # int64: the reported counts
    unreported: np.ndarray  # int64: slack of the chunks that did not report the text
    slack: int  # Σ over chunks of t(n_p) - 1
    n_rows: int

    @classmethod
    def of(cls, vc: ValueCounts, bounds: Bounds) -> Heavy:
        n = vc.n_rows
        t = bounds.heavy_threshold(n)
        hit = vc.counts >= t
        zero = np.zeros(int(hit.sum()), dtype=np.int64)
        return cls(vc.values[hit], vc.counts[hit], zero, t - 1, n)

    def merge(self, other: Heavy, bounds: Bounds) -> Heavy:
        texts = np.concatenate([self.texts, other.texts])
        codes, uniq = pd.factorize(texts, use_na_sentinel=False)
        reported = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(reported, codes, np.concatenate([self.reported, other.reported]))
        # a text missing from one side takes that side's whole slack
        in_self = np.isin(np.arange(len(uniq)), codes[: len(self.texts)])
        in_other = np.isin(np.arange(len(uniq)), codes[len(self.texts) :])
        unrep = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(unrep, codes, np.concatenate([self.unreported, other.unreported]))
        unrep += np.where(in_self, 0, self.slack) + np.where(in_other, 0, other.slack)
        n = self.n_rows + other.n_rows
        keep = reported + unrep >= bounds.heavy_threshold(n)
        uniq = np.asarray(uniq, dtype=object)
        return Heavy(uniq[keep], reported[keep], unrep[keep], self.slack + other.slack, n)


@dataclass
class TextFacts:
    """What type inference reads of a column, over its texts that are not missing markers:
    each merges by AND, OR, max, or exact counts (`merge`)."""

    any_numeric: bool
    all_int: bool  # every number is a plain integer
    padded: bool  # a number is written with a leading zero (codes, not counts)
    decimals: int  # most decimals recorded
    maxabs: float
    int_like: bool  # every text a plain integer (identifiers)
    max_int: int | None
    first: tuple[str, ...]  # the first distinct texts, in order of appearance
    dates: tuple[tuple[bool, bool], ...]  # per date format: (all parse, a time is set)
    formula: bool
    nonnumeric: ValueCounts | None  # non-numeric texts (markers too); None past MAX_TOKENS
    markers: ValueCounts  # the default missing markers present

    @classmethod
    def of(cls, vc: ValueCounts, bounds: Bounds) -> TextFacts:
        is_marker = np.isin(vc.values, list(MISSING_MARKERS))
        texts = vc.values[~is_marker]
        vals_all, int_all = parse_numbers(vc.values)
        vals, is_int = vals_all[~is_marker], int_all[~is_marker]
        ok = ~np.isnan(vals)
        word = np.isnan(vals_all)  # not a number: a token of a numeric column
        non = ValueCounts(vc.values[word], vc.counts[word])
        s = pd.Series(texts, dtype=object).astype(str).str.strip()
        int_like = s.str.match(r"^[+-]?(0|[1-9]\d*)$").to_numpy(bool)
        return cls(
            any_numeric=bool(ok.any()),
            all_int=bool(is_int[ok].all()),
            padded=bool(s[ok].str.match(r"^\s*[+-]?0\d").any()),
            decimals=recorded_decimals(texts[ok]) if ok.any() else 0,
            maxabs=float(np.abs(vals[ok]).max()) if ok.any() else 0.0,
            int_like=bool(int_like.all()),
            max_int=max(int(t) for t in s[int_like]) if int_like.any() else None,
            first=tuple(str(t) for t in texts[:_FIRST]),
            dates=_date_facts(texts),
            formula=bool(looks_like_formula(vc.values).any()),
            nonnumeric=non if len(non.values) <= bounds.max_tokens else None,
            markers=ValueCounts(vc.values[is_marker], vc.counts[is_marker]),
        )

    def merge(self, other: TextFacts, bounds: Bounds) -> TextFacts:
        non = None
        if self.nonnumeric is not None and other.nonnumeric is not None:
            non = ValueCounts.merge([self.nonnumeric, other.nonnumeric])
            non = non if len(non.values) <= bounds.max_tokens else None
        ints = [m for m in (self.max_int, other.max_int) if m is not None]
        first = self.first + tuple(t for t in other.first if t not in self.first)
        return TextFacts(
            any_numeric=self.any_numeric or other.any_numeric,
            all_int=self.all_int and other.all_int,
            padded=self.padded or other.padded,
            decimals=max(self.decimals, other.decimals),
            maxabs=max(self.maxabs, other.maxabs),
            int_like=self.int_like and other.int_like,
            max_int=max(ints) if ints else None,
            first=first[:_FIRST],
            dates=tuple(
                (a[0] and b[0], a[1] or b[1]) for a, b in zip(self.dates, other.dates, strict=True)
            ),
            formula=self.formula or other.formula,
            nonnumeric=non,
            markers=ValueCounts.merge([self.markers, other.markers]),
        )


DATE_START = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


def _date_facts(texts: np.ndarray) -> tuple[tuple[bool, bool], ...]:
    """Per date format: whether every text parses with it, and whether one has a time of
    day other than midnight (a format is tried on every text only if the first 2,000 do)."""
    out = []
    for fmt in _DATE_FORMATS:
        head = pd.to_datetime(pd.Series(texts[:2000], dtype=object), format=fmt, errors="coerce")
        if len(texts) == 0 or not head.notna().all():
            out.append((len(texts) == 0, False))
            continue
        full = pd.to_datetime(pd.Series(texts, dtype=object), format=fmt, errors="coerce")
        timed = bool(((full.dt.hour != 0) | (full.dt.minute != 0) | (full.dt.second != 0)).any())
        out.append((bool(full.notna().all()), timed))
    return tuple(out)


@dataclass
class ColumnSketch:
    """A column's bounded summary: rows, hashed sample, heavy candidates, facts."""

    n_rows: int
    sample: BottomK
    heavy: Heavy
    facts: TextFacts

    @classmethod
    def of(cls, vc: ValueCounts, bounds: Bounds) -> ColumnSketch:
        return cls(
            vc.n_rows,
            BottomK.of(vc, bounds.sample_size),
            Heavy.of(vc, bounds),
            TextFacts.of(vc, bounds),
        )

    def merge(self, other: ColumnSketch, bounds: Bounds) -> ColumnSketch:
        return ColumnSketch(
            self.n_rows + other.n_rows,
            self.sample.merge(other.sample, bounds.sample_size),
            self.heavy.merge(other.heavy, bounds),
            self.facts.merge(other.facts, bounds),
        )

    def size(self) -> int:
        """Texts held (sample, heavy candidates, tokens): bounded whatever the column."""
        non = self.facts.nonnumeric
        return len(self.sample.texts) + len(self.heavy.texts) + (len(non.values) if non else 0)


#: a column's statistic: exact value counts, or a sketch past `MAX_DISTINCT` distinct texts
Summary = ValueCounts | ColumnSketch


def summarise(vc: ValueCounts, bounds: Bounds) -> Summary:
    """The value counts themselves up to the cap, else their sketch."""
    return ColumnSketch.of(vc, bounds) if len(vc.values) > bounds.max_distinct else vc


def merge_summaries(a: Summary | None, b: Summary | None, bounds: Bounds) -> Summary | None:
    """The summary of two chunks' rows (in row order): exact while the union is within the
    cap. The same statistic however the rows were chunked (see the module docstring)."""
    if a is None or b is None:
        return a if b is None else b
    if isinstance(a, ValueCounts) and isinstance(b, ValueCounts):
        return summarise(ValueCounts.merge([a, b]), bounds)
    sa = a if isinstance(a, ColumnSketch) else ColumnSketch.of(a, bounds)
    sb = b if isinstance(b, ColumnSketch) else ColumnSketch.of(b, bounds)
    return sa.merge(sb, bounds)
