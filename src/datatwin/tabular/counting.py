"""Sufficient statistics: counts of (parent configuration, child state) families.

Families are packed into one integer key per row (mixed radix), counted with `bincount`
when the key space is small and with a sort (`np.unique`) otherwise, so memory stays
proportional to the configurations actually seen. Results are cached by family. A structure
search scores many families one parent apart (v with parents S ∪ {u} for every u): the keys
of (v, S) are kept a while, and the family's keys made from them in two passes, in an order
with u last; the few keys seen are then renumbered and sorted as the plain order has them,
so the counts are the same arrays.

The rows may come as their distinct rows with multiplicities w (`distinct_rows`): every count
is then n_cx = Σ_rows w·[cfg = c, x], the same integers. Distinct rows with their counts are
a sufficient statistic of every family and merge over chunks of a table (`merge_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_DENSE_LIMIT = 1 << 21
#: family keys kept (`FamilyCounter._base`), while they take at most `_BASE_BYTES`
_BASES = 8
_BASE_BYTES = 1 << 26
_MAX_KEY = 1 << 62


@dataclass
class FamilyCounts:
    """Sparse counts of one family: seen configurations and seen (configuration, state) pairs."""

    cfg_keys: np.ndarray  # sorted int64 keys of the parent configurations seen
    cfg_n: np.ndarray  # rows seen in each configuration
    fam_cfg: np.ndarray  # index into cfg_keys of each seen pair (sorted by cfg, then state)
    fam_x: np.ndarray  # child state of each seen pair
    fam_n: np.ndarray  # count of each seen pair


def config_space(cards: np.ndarray, parents: list[int] | tuple[int, ...]) -> int:
    space = 1
    for p in parents:
        space *= int(cards[p])
    return space


def config_keys(columns: list[np.ndarray], cards: np.ndarray, parents) -> np.ndarray:
    """Mixed-radix key of each row's parent configuration (first parent most significant)."""
    parents = list(parents)
    n = len(columns[parents[0]]) if parents else (len(columns[0]) if columns else 0)
    key = np.zeros(n, dtype=np.int64)
    for p in parents:
        key *= int(cards[p])
        key += columns[p]
    return key


def distinct_rows(
    columns: list[np.ndarray], weights: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of the state columns (in order of first appearance) and how often
    each occurs (the sum of their `weights` when the rows are themselves counts).

    Rows are numbered by hashing: key ← key·(max state + 1) + state column by column, the key
    renumbered densely (`pd.factorize`) whenever it would overflow; memory O(rows)."""
    n = len(columns[0]) if columns else 0
    if n == 0:
        return columns, np.zeros(0, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    space = 1
    for c in columns:
        k = int(c.max()) + 1 if len(c) else 1
        if space * k >= 1 << 62:
            key, uniq = pd.factorize(key)
            space = len(uniq)
        key = key * k + c
        space *= k
    ids, uniq = pd.factorize(key)
    top = np.maximum.accumulate(ids)  # ids number rows in order of first appearance
    first = np.flatnonzero(np.r_[True, top[1:] > top[:-1]])
    counts = np.bincount(ids, weights=weights, minlength=len(uniq))
    return [c[first] for c in columns], counts.astype(np.int64)


def merge_rows(
    parts: list[tuple[list[np.ndarray], np.ndarray]],
) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows and counts of several chunks (each `distinct_rows` of a chunk, in row
    order) as one: the same as `distinct_rows` of the whole table."""
    cols = [np.concatenate([p[0][j] for p in parts]) for j in range(len(parts[0][0]))]
    return distinct_rows(cols, np.concatenate([p[1] for p in parts]))


class FamilyCounter:
    """Counts families over a fixed matrix of states (one integer array per column), each
    row counted `weights` times (once when None)."""

    def __init__(
        self, columns: list[np.ndarray], cards: np.ndarray, weights: np.ndarray | None = None
    ):
        self.columns = columns
        self.cards = np.asarray(cards, dtype=np.int64)
        self.weights = weights
        rows = len(columns[0]) if columns else 0
        self.n = int(weights.sum()) if weights is not None else rows
        self._cache: dict[tuple[int, tuple[int, ...]], FamilyCounts] = {}
        #: the family keys (`config_keys`·k + x) of the latest families made (`_keys`)
        self._bases: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._last: dict[int, tuple[int, ...]] = {}  # per child, its latest parents counted
        self._keep = rows * 8 * _BASES <= _BASE_BYTES

    def marginal(self, v: int) -> np.ndarray:
        """Counts of column v's states."""
        c = np.bincount(self.columns[v], weights=self.weights, minlength=int(self.cards[v]))
        return c.astype(np.int64)

    def too_big(self, child: int, parents) -> bool:
        return config_space(self.cards, parents) * int(self.cards[child]) >= _MAX_KEY

    def counts(self, child: int, parents: tuple[int, ...]) -> FamilyCounts:
        key = (child, parents)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._count(child, parents)
            self._cache[key] = hit
        return hit

    def _base(self, child: int, parents: tuple[int, ...]) -> np.ndarray:
        """The family keys of (child, sorted parents), made now (and kept a while)."""
        key = (child, parents)
        fam = self._bases.pop(key, None)
        if fam is None:
            fam = config_keys(self.columns, self.cards, parents)
            fam *= int(self.cards[child])
            fam += self.columns[child]
        if self._keep:
            self._bases[key] = fam  # the latest last
            while len(self._bases) > _BASES:
                del self._bases[next(iter(self._bases))]
        return fam

    def _keys(self, child: int, parents: tuple[int, ...]) -> tuple[np.ndarray, int | None]:
        """Each row's key of the family (child, sorted parents) and None; or, when the
        keys of the family without one parent u are at hand (kept, or shared with the
        child's previous family: a search scores many families one parent apart), the
        keys (base keys)·card(u) + state of u, and u (`_canonical` reorders them)."""
        last = self._last.get(child, ())
        self._last[child] = parents
        without = [parents[:i] + parents[i + 1 :] for i in range(len(parents))]
        i = next((i for i, rest in enumerate(without) if (child, rest) in self._bases), -1)
        if i < 0:  # the base the child's previous family shares, when one parent apart
            new = [i for i, p in enumerate(parents) if p not in last]
            if not self._keep or len(parents) < 2 or len(new) != 1:
                return self._base(child, parents), None
            i = new[0]
        u = parents[i]
        base = self._base(child, without[i])
        fam = base * int(self.cards[u])
        fam += self.columns[u]
        return fam, u

    def _canonical(
        self, keys: np.ndarray, child: int, parents: tuple[int, ...], u: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The seen keys of `_keys`'s other order as `config_keys`·k + x keys, and the
        order that sorts them."""
        keys, su = np.divmod(keys, int(self.cards[u]))
        cfg, x = np.divmod(keys, int(self.cards[child]))
        digits: dict[int, np.ndarray] = {u: su}
        for p in reversed([p for p in parents if p != u]):  # the last parent is the lowest
            cfg, digits[p] = np.divmod(cfg, int(self.cards[p]))
        canon = np.zeros(len(keys), dtype=np.int64)
        for p in parents:
            canon *= int(self.cards[p])
            canon += digits[p]
        canon = canon * int(self.cards[child]) + x
        order = np.argsort(canon)
        return canon[order], order

    def _count(self, child: int, parents: tuple[int, ...]) -> FamilyCounts:
        k = int(self.cards[child])
        fam, u = self._keys(child, parents)
        space = config_space(self.cards, parents) * k
        w = self.weights
        if space <= max(_DENSE_LIMIT, 4 * len(fam)):
            c = np.bincount(fam, weights=w, minlength=space)
            fam_keys = np.flatnonzero(c)
            fam_n = c[fam_keys]
        elif w is None:
            fam_keys, fam_n = np.unique(fam, return_counts=True)
        else:
            fam_keys, inverse = np.unique(fam, return_inverse=True)
            fam_n = np.bincount(inverse, weights=w)
        if u is not None:
            fam_keys, order = self._canonical(fam_keys, child, parents, u)
            fam_n = fam_n[order]
        fam_cfg_key = fam_keys // k
        fam_x = fam_keys - fam_cfg_key * k
        start = np.r_[True, fam_cfg_key[1:] != fam_cfg_key[:-1]]
        cfg_keys = fam_cfg_key[start]
        grp = np.cumsum(start) - 1
        fam_n = fam_n.astype(np.int64)
        cfg_n = np.bincount(grp, weights=fam_n).astype(np.int64)
        return FamilyCounts(cfg_keys, cfg_n, grp.astype(np.int64), fam_x, fam_n)

    def clear(self) -> None:
        self._cache.clear()
