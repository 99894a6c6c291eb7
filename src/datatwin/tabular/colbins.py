"""Numbers of bins per numeric column, each chosen by its own column's holdout bits.

A trees twin's holdout bits are a sum over its columns, bits = Σ_c bits_c, with

    bits_c = −log2 P(state_c | the columns before c) − log2 P(value_c | state_c),

averaged over the held-out rows. A numeric column's number of bins sets how its values
split between the two terms: finer bins make P(value | state) sharper and the tree's
P(state | ...) harder to learn. One number of bins for every column (the uniform search
of `select.py`) makes each column take the count that is best for the sum; on census the
instance weight is best at 20 bins while the capital gains and losses still gain at 320.

So, from a trees fit at the base number of bins: the trees of the numeric columns alone
are grown again at 20, 40, 80, ... bins (every numeric column at that count, in the base
fit's column order), and each column keeps the count under which its bits_c was lowest.
A column that two doublings in a row do not improve stops being regrown; the doubling
stops when none is left (or after the last of `FINER`, 640). Columns that no finer count
improved then try `COARSER` bins. The counts chosen are fit as one twin (every tree, each column at its own
count), scored on the holdout like every other candidate.

A column's count also sets how finely the trees of later columns can split on it, which its
own term does not see: on sachs (11 proteins, each a strong predictor of the others) the
columns' own choices sum to 145.43 bits but the twin scores 145.97, worse than 40 bins for
all (145.75). So the best uniform count of the search (`ColumnBinsSearch.uniform`: the
lowest sum over the counts at which every numeric column was regrown) is fit too when the
per-column twin's numeric columns score worse together than they did at that count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import progress
from ..units import LN2
from .growth import grow_some
from .protocols import ConditionalTable
from .rows import Rows
from .schema import ColumnSpec
from .structures import FitCache
from .summary import ColumnBins

#: the finer counts tried, doubling from the base's
FINER = (20, 40, 80, 160, 320, 640)
COARSER = 5


@dataclass
class ColumnBinsSearch:
    """Each numeric column's holdout bits per held-out row (its own term, bits_c) under
    every number of bins tried for it."""

    bits: dict[str, dict[int, float]] = field(default_factory=dict)
    #: Σ of every numeric column's bits_c at the counts where all were regrown
    sums: dict[int, float] = field(default_factory=dict)

    def add(self, bins: int, terms: dict[str, float]) -> list[str]:
        """Record one count's terms; the columns whose best it is (improved)."""
        improved = []
        for name, b in terms.items():
            tried = self.bits.setdefault(name, {})
            if not tried or b < min(tried.values()):
                improved.append(name)
            tried[bins] = b
        return improved

    def add_all(self, bins: int, terms: dict[str, float]) -> list[str]:
        """`add` of a count at which every numeric column was regrown."""
        self.sums[bins] = sum(terms.values())
        return self.add(bins, terms)

    def uniform(self) -> tuple[int, float]:
        """The count with the lowest sum over every numeric column (the smaller on a tie)."""
        b = min(self.sums, key=lambda k: (self.sums[k], k))
        return b, self.sums[b]

    def chosen(self) -> dict[str, int]:
        """Each column's count with the fewest bits (the smaller count on a tie)."""
        return {name: min(tried, key=lambda b: (tried[b], b)) for name, tried in self.bits.items()}

    def summary(self) -> str:
        return ", ".join(
            f"{name} {b} ({self.bits[name][b]:.4f} bits)" for name, b in self.chosen().items()
        )


@dataclass
class TermScorer:
    """Grows the trees of some columns at a number of bins and scores each one's own term on
    the held-out rows (the training rows' encodings shared through `cache`)."""

    train: Rows
    hold: Rows
    specs: list[ColumnSpec]  # the modelled columns, in order
    order: list[str]  # the base fit's column order
    max_categories: int
    min_count: int
    cache: FitCache

    def terms(
        self,
        bins: int,
        names: list[str],
        trees: dict[int, ConditionalTable] | None = None,
        column_bins: ColumnBins = (),
    ) -> dict[str, float]:
        """bits_c of each column in `names` under `bins` bins (`column_bins` for the columns
        it names), from `trees` when given (a fitted twin's), else from trees grown now."""
        enc = self.cache.encoding(
            self.train, self.specs, bins, self.max_categories, self.min_count, column_bins
        )
        index = {s.name: i for i, s in enumerate(self.specs)}
        children = [index[n] for n in names]
        tables: dict[int, ConditionalTable] = {}
        if trees is None:
            with progress.step(f"bins per column: {len(names)} trees at {bins} bins"):
                order = [index[n] for n in self.order]
                ranks = [c.threshold_ranks() for c in enc.codecs]
                tables.update(grow_some(enc.counter, enc.pseudo(), order, ranks, children))
        else:
            tables = trees
        held = enc.encoded(self.hold)
        counts = held.counts if held.counts is not None else np.ones(len(held.columns[0]))
        out = {}
        for name, v in zip(names, children, strict=True):
            logp = tables[v].log_prob(held.columns, enc.cards, held.columns[v])
            nats = float(np.sum(counts * logp)) + held.within_columns[v]
            out[name] = -nats / LN2 / held.n_rows
        return out


def search_column_bins(
    scorer: TermScorer, numeric: list[str], base: int, base_trees: dict[int, ConditionalTable]
) -> ColumnBinsSearch:
    """Each numeric column's bits_c under the base count (from `base_trees`) and the counts
    tried after it (see the module docstring)."""
    found = ColumnBinsSearch()
    found.add_all(base, scorer.terms(base, numeric, base_trees))
    stale = dict.fromkeys(numeric, 0)  # doublings in a row that did not improve a column
    for bins in (b for b in FINER if b > base):
        active = [n for n in numeric if stale[n] < 2]
        if not active:
            break
        terms = scorer.terms(bins, active)
        add = found.add_all if len(active) == len(numeric) else found.add
        improved = set(add(bins, terms))
        for n in active:
            stale[n] = 0 if n in improved else stale[n] + 1
    coarse = [n for n, b in found.chosen().items() if b == base]
    if coarse and base > COARSER:
        terms = scorer.terms(COARSER, coarse)
        (found.add_all if len(coarse) == len(numeric) else found.add)(COARSER, terms)
    return found
