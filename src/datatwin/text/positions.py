"""Scored positions of held-out (or training) blocks with bounded memory: n-gram ids looked up
one level at a time, cache statistics computed a group of blocks at a time.

The statistic of a scored position at level k is the id of the string of length k+1 ending
there and of its context (level k-1 one position back); both are functions of the symbols at
and before the position inside its block, so computing them in slices of positions gives the
same integers as one pass. The document cache's statistics are counts inside one block, so
computing them a group of whole blocks at a time gives the same integers as well. Only the
current and the previous level's ids are alive at once (not every level's), and symbols and
offsets are kept in the narrowest integer type that holds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .cache import CacheSpec, cache_stats
from .counts import Layout, Segment, find, layout
from .merge import index_dtype

#: positions looked up in one slice; blocks grouped for cache statistics up to this many symbols
PIECE = 1 << 22
#: layouts up to this many positions keep every level's ids (looked up once for all chains)
MEMO_POSITIONS = 1 << 22


def narrow(a: np.ndarray) -> np.ndarray:
    """`a` (non-negative integers) in the narrowest of uint8, uint16, int32, int64 holding it."""
    top = int(a.max(initial=0))
    for dt in (np.uint8, np.uint16, np.int32):
        if top <= np.iinfo(dt).max:
            return a.astype(dt)
    return a.astype(np.int64)


@dataclass
class Positions:
    """The scored positions of a layout: symbols and offsets (narrowed), predicted indices."""

    t: np.ndarray
    offset: np.ndarray
    where: np.ndarray  # indices of the predicted positions (int32 while they fit)
    _memo: list[tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, lay: Layout) -> Positions:
        where = np.flatnonzero(lay.pred)
        return cls(narrow(lay.t), narrow(lay.offset), where.astype(index_dtype(len(lay.t) + 1)))

    def __len__(self) -> int:
        return len(self.where)

    def _level(self, table: np.ndarray, base: int, k: int, h_prev: np.ndarray | None):
        """Ids of level k at every position (as `counts.lookup`), a slice at a time."""
        n = len(self.t)
        h = np.empty(n, index_dtype(len(table) + 1))
        for a in range(0, n, PIECE):
            b = min(n, a + PIECE)
            t = self.t[a:b].astype(np.int64)
            if h_prev is None:
                h[a:b] = find(table, t, np.ones(b - a, bool))
                continue
            prev = np.empty(b - a, np.int64)
            prev[0] = -1 if a == 0 else h_prev[a - 1]
            prev[1:] = h_prev[a : b - 1]
            ok = (prev >= 0) & (self.offset[a:b] >= k)
            h[a:b] = find(table, np.where(ok, prev * base + t, 0), ok)
        return h

    def levels(
        self, keys: list[np.ndarray], base: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Per level k: the n-gram ids of level k and of level k-1 (None at level 0) at every
        position, -1 where unseen (`smoothing.apply_level_at` gathers the scored ones)."""
        if self._memo is not None:
            yield self._memo[0][0], None
            yield from self._memo[1:]
            return
        memo: list[tuple[np.ndarray, np.ndarray]] | None = (
            [] if len(self.t) <= MEMO_POSITIONS else None
        )
        h_prev: np.ndarray | None = None
        for k, table in enumerate(keys):
            h = self._level(table, base, k, h_prev)
            if memo is not None:
                memo.append((h, h if h_prev is None else h_prev))
            yield h, h_prev
            h_prev = h
        if memo is not None and len(memo) == len(keys):
            self._memo = memo


def cache_stats_pieces(
    segments: list[Segment], base: int, spec: CacheSpec
) -> list[tuple[np.ndarray, ...]]:
    """`cache.cache_stats` of the segments laid out, computed on groups of whole blocks of
    about PIECE symbols (each block's statistics depend on that block alone) and narrowed."""
    parts: list[list[tuple[np.ndarray, ...]]] = []
    group: list[Segment] = []
    size = 0
    for s in [*segments, None]:
        if s is not None:
            group.append(s)
            size += len(s.tokens) + 2
        if group and (s is None or size >= PIECE):
            stats = cache_stats(layout(group), base, spec)
            parts.append([tuple(narrow(x) for x in level) for level in stats])
            group, size = [], 0
    if not parts:
        return cache_stats(layout([]), base, spec)
    return [
        tuple(np.concatenate([p[i][j] for p in parts]) for j in range(len(parts[0][i])))
        for i in range(len(parts[0]))
    ]
