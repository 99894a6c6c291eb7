"""Sufficient statistics: counts of (parent configuration, child state) families.

Families are packed into one integer key per row (mixed radix), counted with `bincount`
when the key space is small and with a sort (`np.unique`) otherwise, so memory stays
proportional to the configurations actually seen. Results are cached by family.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DENSE_LIMIT = 1 << 21
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


class FamilyCounter:
    """Counts families over a fixed matrix of states (one int64 array per column)."""

    def __init__(self, columns: list[np.ndarray], cards: np.ndarray):
        self.columns = columns
        self.cards = np.asarray(cards, dtype=np.int64)
        self.n = len(columns[0]) if columns else 0
        self._cache: dict[tuple[int, tuple[int, ...]], FamilyCounts] = {}

    def too_big(self, child: int, parents) -> bool:
        return config_space(self.cards, parents) * int(self.cards[child]) >= _MAX_KEY

    def counts(self, child: int, parents: tuple[int, ...]) -> FamilyCounts:
        key = (child, parents)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._count(child, parents)
            self._cache[key] = hit
        return hit

    def _count(self, child: int, parents: tuple[int, ...]) -> FamilyCounts:
        k = int(self.cards[child])
        cfg = config_keys(self.columns, self.cards, parents)
        fam = cfg * k + self.columns[child]
        space = config_space(self.cards, parents) * k
        if space <= max(_DENSE_LIMIT, 4 * self.n):
            c = np.bincount(fam, minlength=space)
            fam_keys = np.flatnonzero(c)
            fam_n = c[fam_keys]
        else:
            fam_keys, fam_n = np.unique(fam, return_counts=True)
        fam_cfg_key = fam_keys // k
        fam_x = fam_keys - fam_cfg_key * k
        start = np.r_[True, fam_cfg_key[1:] != fam_cfg_key[:-1]]
        cfg_keys = fam_cfg_key[start]
        grp = np.cumsum(start) - 1
        cfg_n = np.bincount(grp, weights=fam_n).astype(np.int64)
        return FamilyCounts(cfg_keys, cfg_n, grp.astype(np.int64), fam_x, fam_n.astype(np.int64))

    def clear(self) -> None:
        self._cache.clear()
