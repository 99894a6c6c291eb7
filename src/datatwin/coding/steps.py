"""Incremental next-symbol distributions of a text or events twin, for the coder.

`LayeredModel.next_distribution(context)` rebuilds the cache from the whole context on every
call (O(n^2) over a document). `Steps` walks the document instead: the n-gram state advances
symbol by symbol through the sampler's state machine (`Sampler.advance`), the static
distribution of a state is its suffix state's distribution times gamma plus its seen
children's alpha (memoised per state, the same float operations in the same order as
`Sampler.distribution`), and the cache counts are updated in place after each symbol. Each
step then costs O(vocabulary). The arithmetic reproduces `next_distribution` exactly (the
tests compare them bit for bit), and the encoder and decoder call the same `distribution`
/ `push` pair, so their float64 distributions are identical.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..text.counts import BOS, EOS
from ..text.layers import LayeredModel
from ..text.sampling import Sampler

#: memoised static distributions: at most this many float64 numbers (then the memo restarts)
_MEMO_FLOATS = 8 << 20


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cache holds many small containers: keep the cyclic GC from rescanning them while
    coding (about 3x faster steps); restored afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Steps:
    """q(. | block so far) of a `LayeredModel` over an n-gram model, one symbol at a time."""

    def __init__(self, chain: LayeredModel) -> None:
        sampler = chain.model.sampler()
        if not isinstance(sampler, Sampler):
            raise TypeError("incremental coding needs an n-gram model's state machine")
        self.sampler = sampler
        self.model = sampler.model
        self.base = int(sampler.base)
        self.spec = chain.cache
        self.hazard = chain.hazard
        self._memo: dict[int, np.ndarray] = {}
        self._memo_max = max(1024, _MEMO_FLOATS // max(self.base, 1))
        self._end_cache: dict[tuple[float, int], float] = {}
        self._trans: dict[int, int] = {}  # state * base + symbol -> next state
        self.reset()

    def reset(self) -> None:
        """Start a new block at a document beginning (the context is BOS)."""
        self.state = int(self.sampler.start)
        self.t = 0  # symbols in the block so far
        if self.spec is not None:
            self.n = 1  # symbols in the document so far, counting BOS (as CacheState)
            # per level, shortest first: [L, table, current context key, base**L]; a table
            # maps a context key to [its successors' counts (symbol -> float, in the order
            # they first followed it), total count]
            self.levels: list[list[Any]] = [[L, {}, BOS, self.base**L] for L in self.spec.orders]

    # ---- the static model ---------------------------------------------------------------
    def static(self, s: int) -> np.ndarray:
        """p(. | state s) of the n-gram model (do not modify the result: a state whose level
        adds nothing shares its suffix state's row)."""
        p = self._memo.get(s)
        if p is not None:
            return p
        sm = self.sampler
        if s == 0:
            p = np.full(self.base, 1.0 / self.model.n_outcomes)
            p[BOS] = 0.0
        else:
            p = self.static(sm.suffix_state.item(s))
        k = sm.state_level.item(s)
        ctx = 0 if k == 0 else s - sm.state_off.item(k)
        lev = self.model.levels[k]
        if lev.seen[ctx]:
            lo, hi = sm.lo.item(s), sm.hi.item(s)
            loc = lo - sm.entry_off.item(k)
            p = p * lev.gamma.item(ctx)
            if hi - lo <= 8:  # scalar updates: the same float operations as below
                sym, alpha = sm.sym, lev.alpha
                for j in range(hi - lo):
                    w = sym.item(lo + j)
                    p[w] = p.item(w) + alpha.item(loc + j)
            else:
                p[sm.sym[lo:hi]] += lev.alpha[loc : loc + (hi - lo)]
        if len(self._memo) >= self._memo_max:
            self._memo.clear()
        self._memo[s] = p
        return p

    def static_rows(self, wanted: np.ndarray) -> np.ndarray:
        """`Steps.static(s)` for each of the distinct states `wanted` (sorted), computed a level
        at a time: a state's row is its suffix state's row times gamma plus its children's
        alpha (one multiplication and at most one addition per entry, as `Steps.static`)."""
        sm, model = self.sampler, self.model
        need = [wanted]
        cur = wanted
        while True:  # close under suffix links
            cur = np.unique(sm.suffix_state[cur[sm.state_level[cur] > 0]])
            if not len(cur):
                break
            need.append(cur)
        closed = np.unique(np.concatenate(need + [np.zeros(1, np.int64)]))
        level = sm.state_level[closed]
        R = np.empty((len(closed), self.base))
        R[0] = self.static(0)  # the root (closed[0] == 0)
        for k in range(1, int(level.max(initial=0)) + 1):
            at = np.flatnonzero(level == k)
            if not len(at):
                continue
            st = closed[at]
            rows = R[np.searchsorted(closed, sm.suffix_state[st])]
            lev = model.levels[k]
            ctx = st - sm.state_off[k]
            seen = lev.seen[ctx]
            rows[seen] *= lev.gamma[ctx[seen]][:, None]
            lo, hi = sm.lo[st[seen]], sm.hi[st[seen]]
            n = hi - lo
            rep = np.repeat(np.flatnonzero(seen), n)
            entry = np.repeat(lo, n) + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
            rows[rep, sm.sym[entry]] += lev.alpha[entry - sm.entry_off[k]]
            R[at] = rows
        return R[np.searchsorted(closed, wanted)]

    # ---- one step -------------------------------------------------------------------------
    def distribution(self) -> np.ndarray:
        """q(. | the block so far): float64, length `base`, identical on both coder sides."""
        p = self._memo.get(self.state)
        if p is None:
            p = self.static(self.state)
        if self.spec is not None:
            a, b, cap = self.spec.a, self.spec.b, self.spec.cap
            n = self.n
            for L, table, key, _ in self.levels:  # shortest first, as CacheState.dense
                if n < L:
                    break  # and the longer levels
                entry = table.get(key)
                if entry is None:
                    continue
                counts, total = entry
                e = a + b * len(counts)
                scale = cap / total
                if scale > 1.0:  # min(1, cap / total)
                    scale = 1.0
                q = e * p
                if len(counts) <= 8:  # scalar updates: the same float operations as below
                    for w, c in counts.items():
                        q[w] = q.item(w) + scale * c
                else:
                    q[list(counts)] += scale * np.fromiter(counts.values(), np.float64, len(counts))
                q /= scale * total + e
                p = q
        if self.hazard is not None:
            pe = float(p[EOS])
            key = (pe, self.t)
            got = self._end_cache.get(key)
            if got is None:
                e = float(self.hazard.end_prob(np.array([pe]), np.array([self.t]))[0])
                if len(self._end_cache) < 1 << 20:
                    self._end_cache[key] = e
            else:
                e = got
            p = p * (1.0 - e) / (1.0 - p[EOS])
            p[EOS] = e
        return p

    def _advance(self, state: int, w: int) -> int:
        """The state after `w`: the longest seen context (as `Sampler.advance`, but an UNK
        is followed through the trie like any symbol: word twins count UNKs in training).
        A state's children are the entries lo..hi of the sampler's arrays, sorted by symbol,
        so each try is a bisection bounded to them."""
        sm = self.sampler
        sym, lo, hi, nxt, suffix = sm.sym, sm.lo, sm.hi, sm.nxt, sm.suffix_state
        s = state
        while True:
            a, b = int(lo[s]), int(hi[s])
            j = bisect_left(sym, w, a, b)
            if j < b and sym[j] == w:
                return int(nxt[j])
            if s == 0:
                return 0
            s = int(suffix[s])

    def push(self, w: int) -> None:
        """Append symbol `w` to the block."""
        state = self.state
        tk = state * self.base + w
        nxt = self._trans.get(tk)
        if nxt is None:
            nxt = self._advance(state, w)
            if len(self._trans) >= 1 << 21:
                self._trans.clear()
            self._trans[tk] = nxt
        self.state = nxt
        self.t += 1
        if self.spec is None:
            return
        base, n = self.base, self.n
        for lev in self.levels:
            key = lev[2]
            if n >= lev[0]:
                entry = lev[1].get(key)
                if entry is None:
                    lev[1][key] = [{w: 1.0}, 1]
                else:
                    counts = entry[0]
                    counts[w] = counts.get(w, 0.0) + 1.0
                    entry[1] += 1
            lev[2] = (key * base + w) % lev[3]
        self.n = n + 1
