"""A whole document's next-symbol distributions at once, for the encoder.

When encoding, every context is known up front, so the distributions `Steps` computes one
symbol at a time can be computed for all positions together:

* the n-gram state of each position (the same transition memo as `Steps.push`) and its
  static distribution (the same memoised rows as `Steps.static`);
* per cache level L (shortest first), at each position whose document so far has at least L
  symbols: the context key (the last L symbols as base-`base` digits, as `Steps` rolls it),
  how often that context occurred before (`total`), how many distinct symbols followed it
  (`distinct`) and how often each of them did. The level maps p to
  `q = (e p + scale c) / (scale total + e)`, `e = a + b distinct`, `scale = min(1, cap/total)`;
  `mix` applies all levels as one unrolled sum `f p + sum_k g_k c_k`, exactly the float
  operations of `Steps._walk_cached` (the weights from the longest level down, one
  multiplication of the row, one addition per counted symbol and level), so the rows are
  bit-identical to the decoder's and the coder sees the same quantised frequencies.

The per-symbol counts are a list of (position, symbol, count) triples: for each context and
each symbol that followed it, one triple per later occurrence of the context. Models with
length-aware ends, or whose keys would overflow int64, keep the sequential path.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from ..text.counts import BOS, EOS
from ..text.steps import Steps
from .coder import Encoder

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_CHUNK = 16384  # positions whose rows are built at once
_CHUNK_FLOATS = 1 << 22  # and at most this many numbers (a word vocabulary's rows are long)


def vectorisable(steps: Steps) -> bool:
    """Whether `encode_document` applies: no length hazard, and the walk is compiled or the
    cache's keys fit in int64 (the numpy rows)."""
    if steps.hazard is not None:
        return False
    if steps.compiled or steps.spec is None:
        return True
    return steps.base ** (max(steps.spec.orders) + 1) < 1 << 62


def states(steps: Steps, ids: IntArray) -> IntArray:
    """The n-gram state before each of the n + 1 positions (ids, then EOS)."""
    out = np.empty(len(ids) + 1, np.int64)
    trans, state, base = steps._trans, int(steps.sampler.start), steps.base
    out[0] = state
    for i, w in enumerate(ids.tolist()):
        nxt = trans.get(state * base + w)
        state = steps.next_state(state, w) if nxt is None else nxt
        out[i + 1] = state
    return out


class Level:
    """One cache level's statistics at every position of a document."""

    def __init__(self, L: int, ids: IntArray, base: int) -> None:
        n = len(ids)
        x = np.concatenate([np.zeros(L - 1, np.int64), [BOS], ids])
        key = np.zeros(n + 1, np.int64)
        for d in range(L):
            key = key * base + x[d : d + n + 1]
        pos = np.arange(L - 1, n + 1)  # positions where the document has >= L symbols
        order = pos[np.lexsort((pos, key[pos]))]
        k = key[order]
        start = np.ones(len(order), bool)
        start[1:] = k[1:] != k[:-1]
        group = np.cumsum(start) - 1
        first = np.flatnonzero(start)
        rank = np.arange(len(order)) - first[group]
        self.total = np.zeros(n + 1, np.int64)
        self.total[order] = rank
        ev = order < n  # positions followed by a symbol (all but the last)
        self._pairs(order, group, rank, first, ids, base, ev)

    def _pairs(
        self,
        order: IntArray,
        group: IntArray,
        rank: IntArray,
        first: IntArray,
        ids: IntArray,
        base: int,
        ev: npt.NDArray[np.bool_],
    ) -> None:
        """(position, symbol, count) of every symbol seen after a position's context.

        Per-pair values are spread over their triples with `np.repeat` (no gathers through
        a triple-to-pair index), in int32 when every triple index fits (half the memory)."""
        it = np.int32 if (len(self.total) + 1) * (base + 1) < 1 << 31 else np.int64
        size = np.diff(np.append(first, len(order))).astype(it)
        pid = group[ev] * base + ids[order[ev]]  # (context occurrence group, symbol)
        r_ev = rank[ev].astype(it)
        upid, at, dense = np.unique(pid, return_index=True, return_inverse=True)
        f = r_ev[at]  # the earliest occurrence's rank (ranks ascend within a group)
        g = upid // base
        # one triple per (pair, later rank r of its context): ranks f+1 .. size-1
        length = size[g] - 1 - f
        offset = (np.cumsum(length, dtype=it) - length).astype(it)
        m = int(length.sum())
        r = np.arange(m, dtype=it) + np.repeat((f + 1 - offset).astype(it), length)
        # count(r) = occurrences of the pair at ranks < r: mark each occurrence o at the
        # triple of rank o + 1 (the last rank has none) and sum along the pair's triples
        dense = dense.reshape(-1)
        o = r_ev - f[dense]
        inside = o < length[dense]
        marks = np.zeros(m, it)
        marks[offset[dense[inside]] + o[inside]] = 1
        count = np.cumsum(marks, dtype=it)
        count -= np.repeat(np.append(0, count)[offset], length)
        r += np.repeat(first[g].astype(it), length)
        position = order.astype(it)[r]
        by = np.argsort(position)
        self.pos, self.count = position[by], count[by]
        self.sym = np.repeat((upid % base).astype(it), length)[by]
        self.distinct = np.bincount(position, minlength=len(self.total))

    def weights(
        self, i0: int, i1: int, a: float, b: float, cap: float
    ) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
        """Positions i0..i1: whether the context occurred before, and the level's weight of
        the row below it (`e / d`) and of its counts (`scale / d`), `d = scale total + e`."""
        tot = self.total[i0:i1]
        e = a + b * self.distinct[i0:i1].astype(np.float64)
        scale = np.minimum(1.0, cap / np.maximum(tot, 1))
        d = scale * tot + e
        return tot > 0, e / d, scale / d

    def add_counts(self, P: FloatArray, i0: int, g: FloatArray) -> None:
        """Add `g` times the counts after each position's context to the rows P of
        positions i0 .. i0 + len(P) (in place; one addition per counted symbol)."""
        j0, j1 = np.searchsorted(self.pos, [i0, i0 + len(P)])
        rows = self.pos[j0:j1] - i0
        P[rows, self.sym[j0:j1]] += g[rows] * self.count[j0:j1]


def mix(P: FloatArray, i0: int, levels: list[Level], a: float, b: float, cap: float) -> None:
    """The cache levels mixed into the static rows P of positions i0 .. i0 + len(P), in
    place, with `Steps._walk_cached`'s float operations: the weights from the longest
    level down, the rows times f, then each level's counts, shortest first."""
    f = np.ones(len(P))
    g: list[FloatArray] = []
    for lev in reversed(levels):
        live, r, u = lev.weights(i0, i0 + len(P), a, b, cap)
        g.append(np.where(live, f * u, 0.0))
        f = np.where(live, f * r, f)
    P *= f[:, None]
    for lev, gk in zip(levels, reversed(g), strict=True):
        lev.add_counts(P, i0, gk)


def rows(steps: Steps, ids: IntArray) -> Iterator[tuple[int, FloatArray]]:
    """(first position, rows) of every chunk of the n + 1 positions' distributions."""
    if steps.compiled:  # one pass in C, a few times faster than the vectorised rows below
        yield from steps.document_rows(ids, max(1, min(_CHUNK, _CHUNK_FLOATS // steps.base)))
        return
    st = states(steps, ids)
    spec = steps.spec
    levels = [] if spec is None else [Level(L, ids, steps.base) for L in spec.orders]
    n = len(ids) + 1
    for i0 in range(0, n, _CHUNK):
        chunk = st[i0 : i0 + _CHUNK]
        uniq, inv = np.unique(chunk, return_inverse=True)
        P = steps.static_rows(uniq)[inv.reshape(-1)]
        if spec is not None and levels:
            mix(P, i0, levels, spec.a, spec.b, spec.cap)
        yield i0, P


def block_rows(
    steps: Steps, ids: IntArray, starts: list[int], lengths: list[int]
) -> Iterator[tuple[IntArray, FloatArray]]:
    """(symbols, rows) chunks of the blocks `text.code_blocks` codes (each block from a
    document start, then EOS) for a model without a cache: a row is its state's static row
    (`Steps.static_rows`), then the length-aware end as `Steps.distribution` applies it (the
    same elementwise operations, on all rows at once)."""
    assert steps.spec is None
    ids = np.asarray(ids, np.int64)
    st = [states(steps, ids[s0 : s0 + n]) for s0, n in zip(starts, lengths, strict=True)]
    sts = np.concatenate(st) if st else np.zeros(0, np.int64)
    size = np.asarray(lengths, np.int64) + 1  # each block's symbols and its EOS
    first = np.cumsum(size) - size
    t = np.arange(len(sts)) - np.repeat(first, size)  # symbols before, within the block
    syms = np.full(len(sts), EOS, np.int64)
    body = t < np.repeat(size - 1, size)
    syms[body] = ids[(np.repeat(np.asarray(starts, np.int64), size) + t)[body]]
    for i0 in range(0, len(sts), _CHUNK):
        uniq, inv = np.unique(sts[i0 : i0 + _CHUNK], return_inverse=True)
        P = steps.static_rows(uniq)[inv.reshape(-1)]
        if steps.hazard is not None:
            pe = P[:, EOS].copy()
            e = steps.hazard.end_prob(pe, t[i0 : i0 + _CHUNK])
            P = P * (1.0 - e)[:, None] / (1.0 - pe)[:, None]
            P[:, EOS] = e
        yield syms[i0 : i0 + _CHUNK], P


def encode_document(steps: Steps, ids: IntArray, enc: Encoder) -> float:
    """Code `ids` then EOS with the rows `Steps` would give one by one; the ideal bits."""
    syms = np.append(np.asarray(ids, np.int64), EOS)
    bits = 0.0
    for i0, P in rows(steps, np.asarray(ids, np.int64)):
        bits += enc.encode_categorical(syms[i0 : i0 + len(P)], P)
    return bits
