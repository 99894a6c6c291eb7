"""The second pass over a sketched column: exact counts of what its bounded codec needs.

A `ColumnSketch` (`sketch.py`) fixes, the same on any partitioning, which texts may be kept
exactly (heavy candidates) and where a numeric column's micro bins split (the grid values of
its hashed sample). Given the column's spec, one more pass over the rows counts, exactly and
per chunk (counts add up, minima and maxima merge):
- every candidate text (`counts`), so the kept categories and the value atoms are chosen by
  their exact counts;
- numeric: the rows in each micro bin and of each candidate grid value, the smallest and
  largest grid value, and the token texts (missing markers, junk) — the codec's bins are
  unions of micro bins, so their counts are exact too;
- string identifiers: for the template identifiers follow, the matching rows, the characters
  seen at each position and the largest matching identifier (`ids.IdGenerator.build`).
Each summary holds one number per micro bin or candidate: bounded whatever the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from ..reader import ValueCounts
from .codec import grid_of_texts
from .ids import template_of
from .schema import ColumnSpec
from .sketch import Bounds, ColumnSketch

NUMERIC = ("integer", "float", "datetime")


@dataclass(frozen=True)
class TallyPlan:
    """What the second pass counts for one column (made on the client from its sketch)."""

    spec: ColumnSpec
    candidates: np.ndarray  # heavy candidate texts (object, sorted)
    threshold: int  # a candidate is kept with at least this many rows (`Bounds.heavy_threshold`)
    edges: np.ndarray  # numeric: distinct sampled grid values, ascending (micro bin splits)
    cand_grid: np.ndarray  # numeric: distinct grid values of the candidates, ascending
    template: str = ""  # string identifiers: the template samples follow

    @classmethod
    def of(cls, spec: ColumnSpec, sketch: ColumnSketch, bounds: Bounds) -> TallyPlan:
        cands = np.array(sorted(str(t) for t in sketch.heavy.texts), dtype=object)
        threshold = bounds.heavy_threshold(sketch.n_rows)
        edges = cand_grid = np.empty(0)
        template = ""
        if spec.type in NUMERIC:
            edges = grids_of(spec, sketch.sample.texts)
            cand_grid = grids_of(spec, cands)
        elif spec.type == "id" and not sketch.facts.int_like:
            temps = [template_of(str(t)) for t in sketch.sample.texts]
            uniq, inv = np.unique(temps, return_inverse=True)
            rows = np.bincount(inv, weights=sketch.sample.counts, minlength=len(uniq))
            template = str(uniq[np.argmax(rows)])
        return cls(spec, cands, threshold, edges, cand_grid, template)


def grids_of(spec: ColumnSpec, texts: np.ndarray) -> np.ndarray:
    """Distinct grid values of the texts that are numbers and not missing markers."""
    texts = np.asarray(texts, dtype=object)
    texts = texts[~np.isin(texts, list(spec.missing))]
    g = grid_of_texts(spec, texts) if len(texts) else np.empty(0)
    return np.unique(g[~np.isnan(g)])


@dataclass
class Tally:
    """Exact counts of one column's rows under a `TallyPlan` (see the module docstring)."""

    n_rows: int
    counts: np.ndarray  # int64: rows of each candidate text
    micro: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    grid_counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    lo: float = np.inf
    hi: float = -np.inf
    tokens: ValueCounts | None = None
    id_rows: int = 0  # rows matching the identifier template
    id_chars: tuple[str, ...] = ()  # characters seen at each position (sorted)
    id_largest: str = ""

    def merge(self, other: Tally, bounds: Bounds, name: str) -> Tally:
        tokens = None
        if self.tokens is not None and other.tokens is not None:
            tokens = _check_tokens(ValueCounts.merge([self.tokens, other.tokens]), bounds, name)
        chars = self.id_chars or other.id_chars
        if self.id_chars and other.id_chars:
            chars = tuple(
                "".join(sorted(set(a) | set(b)))
                for a, b in zip(self.id_chars, other.id_chars, strict=True)
            )
        return Tally(
            self.n_rows + other.n_rows,
            self.counts + other.counts,
            self.micro + other.micro,
            self.grid_counts + other.grid_counts,
            min(self.lo, other.lo),
            max(self.hi, other.hi),
            tokens,
            self.id_rows + other.id_rows,
            chars,
            max(self.id_largest, other.id_largest),
        )


def _check_tokens(tokens: ValueCounts, bounds: Bounds, name: str) -> ValueCounts:
    if len(tokens.values) > bounds.max_tokens:
        raise InputError(
            f"column {name!r}: more than {bounds.max_tokens:,} distinct texts that are not "
            "numbers in a numeric column of too many distinct values to count exactly; "
            "give it the type categorical in the schema"
        )
    return tokens


def tally_of(plan: TallyPlan, vc: ValueCounts, bounds: Bounds) -> Tally:
    """The tally of one chunk's value counts of the column."""
    index = pd.Index(plan.candidates)
    where = index.get_indexer(pd.Index(np.asarray(vc.values, dtype=object))) if len(index) else None
    counts = np.zeros(len(plan.candidates), dtype=np.int64)
    if where is not None:
        hit = where >= 0
        np.add.at(counts, where[hit], vc.counts[hit])
    out = Tally(vc.n_rows, counts)
    if plan.spec.type in NUMERIC:
        _numeric(out, plan, vc, bounds)
    elif plan.template:
        _identifiers(out, plan.template, vc)
    return out


def _numeric(out: Tally, plan: TallyPlan, vc: ValueCounts, bounds: Bounds) -> None:
    g = grid_of_texts(plan.spec, vc.values) if len(vc.values) else np.empty(0)
    is_tok = np.isnan(g) | np.isin(vc.values, list(plan.spec.missing))
    out.tokens = _check_tokens(
        ValueCounts(vc.values[is_tok], vc.counts[is_tok]), bounds, plan.spec.name
    )
    gn, cn = g[~is_tok], vc.counts[~is_tok]
    out.micro = np.zeros(len(plan.edges) + 1, dtype=np.int64)
    np.add.at(out.micro, np.searchsorted(plan.edges, gn, "right"), cn)
    out.grid_counts = np.zeros(len(plan.cand_grid), dtype=np.int64)
    if len(plan.cand_grid):
        at = np.minimum(np.searchsorted(plan.cand_grid, gn), len(plan.cand_grid) - 1)
        hit = plan.cand_grid[at] == gn
        np.add.at(out.grid_counts, at[hit], cn[hit])
    if len(gn):
        out.lo, out.hi = float(gn.min()), float(gn.max())


def _identifiers(out: Tally, template: str, vc: ValueCounts) -> None:
    texts = [str(t) for t in vc.values]
    match = np.array([template_of(t) == template for t in texts], dtype=bool).reshape(-1)
    if not match.any():
        return
    chosen = [t for t, m in zip(texts, match, strict=True) if m]
    out.id_rows = int(vc.counts[match].sum())
    out.id_chars = tuple("".join(sorted({t[p] for t in chosen})) for p in range(len(chosen[0])))
    out.id_largest = max(chosen)


def merge_tallies(
    a: dict[str, Tally] | None, b: dict[str, Tally] | None, bounds: Bounds
) -> dict[str, Tally] | None:
    """Two chunks' tallies of the same columns, merged (None: a chunk without rows)."""
    if a is None or b is None:
        return a if b is None else b
    return {name: a[name].merge(b[name], bounds, name) for name in a}
