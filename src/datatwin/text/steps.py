"""Incremental next-symbol distributions of a text or events twin: for the coder (coding/)
and for sampling a network mixed with the chain (`neural.MixSampler`).

`LayeredModel.next_distribution(context)` rebuilds the cache from the whole context on every
call (O(n^2) over a document). `Steps` walks the document instead: the n-gram state advances
symbol by symbol through the sampler's state machine (`Sampler.advance`), the static
distribution of a state is its suffix state's distribution times gamma plus its seen
children's alpha (memoised per state, the same float operations in the same order as
`Sampler.distribution`), and the cache counts are updated in place after each symbol. Each
step then costs O(vocabulary). The static rows reproduce `next_distribution`'s exactly; the
cache levels are mixed as one unrolled sum (`_walk_cached`), which rounds differently from
the nested form (the tests hold them within 1e-13 relative). The decoder calls
`distribution` / `push` and the encoder `text_rows.rows`, which does the same float
operations on all positions at once, so their float64 distributions are identical (tested
bit for bit).

The decoder runs one Python step per symbol, so a step is kept short: a block is walked by a
generator (`Steps.walk`) holding its state in local variables; the scalars of the row
operations are 0-d arrays (numpy's array-array path is about twice as fast as a Python
float's on rows this short); the mixed row is a reused buffer; the per-state arrays the
static rows and transitions read are gathered once (`_StateTable`). The document cache keeps,
per level, a table from a context key (the last L symbols as base-`base` digits) to the
symbol that followed it, for a context seen once (most are), or else to its entry
[successor counts (symbol -> int, in the order they first followed it; small ints are shared
objects, no float is allocated per update), total count, and
once there are more than `_DENSE` successors the counts as a dense row (added in one
operation: adding 0.0 leaves the other elements as they are) with a memoryview for its
updates]. The levels whose context occurred before form a prefix of the levels (a context
that did not occur has no longer one that did), so the look-ups stop at the first miss.

The same walk is compiled (`_walker.c`, built by setup.py when a C compiler is there: the
package's one compiled part, optional): the static rows, the transitions and the cache with
the same float operations in the same order, so its rows equal these bit for bit (tested);
`walk` uses it when it was built, and `document_rows` gives the encoder a block's rows in one
call. It codes text about 4 times faster. Without it everything runs here, with the same
rows.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from .counts import BOS, EOS
from .layers import LayeredModel
from .sampling import Sampler

Walker: type[_walker.Walker] | None
try:  # the compiled walk (setup.py); without it the same walk runs in Python
    from . import _walker

    Walker = _walker.Walker
except ImportError:  # pragma: no cover - an install without a C compiler
    Walker = None

#: memoised static distributions: at most this many float64 numbers (then the older half goes)
_MEMO_FLOATS = 8 << 20
#: a cache context's counts are also kept as a dense row once it has more successors than this
_DENSE = 3
#: the distributions of a block: yields q(. | block so far), is sent the next symbol
Walk = Generator[np.ndarray, int, None]


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


@dataclass(frozen=True)
class _StateTable:
    """The sampler's arrays as the per-step code reads them: per state (states are numbered
    level by level, so the levels' context arrays concatenate into state arrays) a row
    [suffix state, lo, hi, seen] and gamma; per entry (the levels' entries concatenated, as
    `Sampler.entry_off` numbers them) its symbol, alpha and next state. The symbols are
    also kept as bytes when they fit (a child is then found with `bytes.find`)."""

    meta: np.ndarray
    gamma: np.ndarray
    sym: np.ndarray
    alpha: np.ndarray
    nxt: np.ndarray
    sym_bytes: bytes | None

    def child(self, lo: int, hi: int, w: int) -> int:
        """The entry of symbol w among the children lo..hi (sorted by symbol), or -1."""
        if self.sym_bytes is not None:
            return self.sym_bytes.find(w, lo, hi) if 0 <= w < 256 else -1
        j = bisect_left(self.sym[lo:hi].tolist(), w) + lo
        return j if j < hi and self.sym.item(j) == w else -1

    @classmethod
    def of(cls, sm: Sampler) -> _StateTable:
        levels = sm.model.levels
        seen = np.concatenate([lev.seen for lev in levels])
        n = len(sm.lo)
        if len(seen) != n or int(sm.entry_off[-1]) != len(sm.sym):
            raise ValueError("the sampler's states do not match its model's levels")
        cols = [sm.suffix_state, sm.lo, sm.hi, seen]
        meta = np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.int64)
        gamma = np.concatenate([lev.gamma for lev in levels]).astype(np.float64)
        alpha = np.concatenate([lev.alpha for lev in levels]).astype(np.float64)
        small = sm.base <= 256
        sym_bytes = sm.sym.astype(np.uint8).tobytes() if small else None
        sym, nxt = (np.ascontiguousarray(a, dtype=np.int64) for a in (sm.sym, sm.nxt))
        return cls(meta, gamma, sym, alpha, nxt, sym_bytes)


class Steps:
    """q(. | block so far) of a `LayeredModel` over an n-gram model, one symbol at a time."""

    def __init__(
        self, chain: LayeredModel, python_only: bool = False, memo_rows: int | None = None
    ) -> None:
        """`python_only`: walk in Python even when the compiled walk is there (the tests
        compare the two); `memo_rows`: static rows kept (default: 2^23 numbers' worth)."""
        sampler = chain.model.sampler()
        if not isinstance(sampler, Sampler):
            raise TypeError("incremental coding needs an n-gram model's state machine")
        self.sampler = sampler
        self.model = sampler.model
        self.base = int(sampler.base)
        self.spec = chain.cache
        self.hazard = chain.hazard
        self._memo: dict[int, np.ndarray] = {}
        default = max(1024, _MEMO_FLOATS // max(self.base, 1))
        self._memo_max = default if memo_rows is None else memo_rows
        self._end_cache: dict[tuple[float, int], float] = {}
        self._trans: dict[int, int] = {}  # state * base + symbol -> next state
        self._g = np.zeros(())  # a 0-d scalar for the static rows' multiplication
        self._tab = _StateTable.of(sampler)
        self.python_only = python_only
        self._compiled: _walker.Walker | None = None
        self._walks = 0
        if self.spec is not None:  # the escape strength a + b distinct, by distinct
            self._es = [self.spec.a + self.spec.b * k for k in range(self.base + 1)]
        self.reset()

    def reset(self) -> None:
        """Start a new block at a document beginning (the context is BOS)."""
        self._walk = self.walk()
        self._p = next(self._walk)

    def distribution(self) -> np.ndarray:
        """q(. | the block so far): float64, length `base`, identical on both coder sides (do
        not modify it; it may be overwritten by the next `push`)."""
        return self._p

    def push(self, w: int) -> None:
        """Append symbol `w` to the block."""
        self._p = self._walk.send(w)

    def walk(self) -> Walk:
        """A new block from a document start, independent of `reset`/`push`: yields each
        distribution (as `distribution`, valid until the next symbol is sent), is sent each
        symbol (as `push`)."""
        if self.compiled:
            return self._walk_compiled()
        return self._walk_cached() if self.spec is not None else self._walk_static()

    @property
    def compiled(self) -> bool:
        """Whether `walk` runs compiled (`_walker.c`: the same rows bit for bit): when it was
        built and `python_only` is not set."""
        return Walker is not None and not self.python_only

    def _walker(self) -> tuple[_walker.Walker, int]:
        """The compiled walker (`_walker.Walker`, made once: its static rows stay memoised)
        restarted at a document start, and the walk's number: a walk that is not the newest
        refuses to go on (the walker holds one block at a time)."""
        if self._compiled is None:
            assert Walker is not None
            tab, spec = self._tab, self.spec
            self._compiled = Walker(
                tab.meta,
                tab.gamma,
                tab.sym,
                tab.alpha,
                tab.nxt,
                1.0 / self.model.n_outcomes,
                BOS,
                int(self.sampler.start),
                self._memo_max,
                [] if spec is None else list(spec.orders),
                [0.0] * (self.base + 1) if spec is None else self._es,
                1.0 if spec is None else float(spec.cap),
            )
        self._compiled.reset()
        self._walks += 1
        return self._compiled, self._walks

    def _stale(self, walk: int) -> None:
        if walk != self._walks:
            raise RuntimeError("a newer walk of these Steps restarted the compiled walker")

    def _walk_compiled(self) -> Walk:
        """`_walk_cached` (or `_walk_static`) in C: the same static rows, transitions,
        cache counts and float operations; the ends stay here."""
        walker, walk = self._walker()
        hazard = self.hazard
        out = np.zeros(self.base)  # the row (reused: valid until the next symbol)
        walker.row(out)
        step, t = walker.step, 0
        while True:
            w = yield out if hazard is None else self._end(out, t)
            if walk != self._walks:
                self._stale(walk)
            step(w, out)
            t += 1

    def document_rows(self, ids: np.ndarray, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first position, rows) of every `chunk` of the len(ids) + 1 positions of a block
        from a document start (the rows `walk` yields, without the ends): in C, needs
        `compiled`."""
        (walker, walk), n = self._walker(), len(ids)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        for i0 in range(0, n + 1, chunk):
            self._stale(walk)
            P = np.empty((min(chunk, n + 1 - i0), self.base))
            k = min(len(P), n - i0)  # the symbols inside this chunk
            walker.rows(ids[i0 : i0 + k], P[:k])
            if k < len(P):
                walker.row(P[k])
            yield i0, P

    # ---- the static model ---------------------------------------------------------------
    def static(self, s: int) -> np.ndarray:
        """p(. | state s) of the n-gram model (do not modify the result: a state whose level
        adds nothing shares its suffix state's row). The rows of s and of its suffix states
        not yet memoised are computed from the longest memoised one down: a state's row is
        its suffix state's times gamma plus its seen children's alpha (one multiplication
        and at most one addition per entry)."""
        memo = self._memo
        p = memo.get(s)
        if p is not None:
            return p
        tab, g, mul = self._tab, self._g, np.multiply
        meta, gamma, sym, alpha = tab.meta, tab.gamma, tab.sym, tab.alpha
        chain = [s]
        while s:
            s = meta.item(s, 0)
            p = memo.get(s)
            if p is not None:
                break
            chain.append(s)
        else:
            p = np.full(self.base, 1.0 / self.model.n_outcomes)
            p[BOS] = 0.0
        for s in reversed(chain):
            _, lo, hi, seen = meta[s].tolist()
            if seen:
                g[()] = gamma.item(s)
                p = mul(p, g)
                if hi - lo <= 2:  # scalar updates: the same float operations as below
                    for j in range(lo, hi):
                        w = sym.item(j)
                        p[w] = p.item(w) + alpha.item(j)
                else:
                    p[sym[lo:hi]] += alpha[lo:hi]
            if len(memo) >= self._memo_max:  # forget the older half (insertion order)
                for old in list(islice(memo, len(memo) // 2)):
                    del memo[old]
            memo[s] = p
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

    # ---- one step ------------------------------------------------------------------------
    def next_state(self, state: int, w: int) -> int:
        """The state after `w`: the longest seen context (as `Sampler.advance`, but an UNK
        is followed through the trie like any symbol: word twins count UNKs in training).
        A state's children are the entries lo..hi of the sampler's arrays, sorted by symbol;
        without a child `w` the state after is the suffix state's (memoised transitions)."""
        trans, base = self._trans, self.base
        tk = state * base + w
        nxt = trans.get(tk)
        if nxt is not None:
            return nxt
        tab = self._tab
        suffix, lo, hi, _ = tab.meta[state].tolist()
        j = tab.child(lo, hi, w)
        if j >= 0:
            nxt = tab.nxt.item(j)
        elif state:  # not a child: the suffix state's transition
            nxt = self.next_state(suffix, w)
        else:
            nxt = 0
        if len(trans) >= 1 << 21:
            trans.clear()
        trans[tk] = nxt
        return nxt

    def _end(self, p: np.ndarray, t: int) -> np.ndarray:
        """The length-aware end after t symbols of the block applied to `p` (a new row)."""
        assert self.hazard is not None
        pe = float(p[EOS])
        key = (pe, t)
        e = self._end_cache.get(key)
        if e is None:
            e = float(self.hazard.end_prob(np.array([pe]), np.array([t]))[0])
            if len(self._end_cache) < 1 << 20:
                self._end_cache[key] = e
        p = p * (1.0 - e) / (1.0 - p[EOS])
        p[EOS] = e
        return p

    def _walk_static(self) -> Walk:
        """`walk` without a cache: each row is its state's static row (then the ends)."""
        memo, hazard = self._memo, self.hazard
        state, t = int(self.sampler.start), 0
        while True:
            p = memo.get(state)
            if p is None:
                p = self.static(state)
            w = yield p if hazard is None else self._end(p, t)
            state = self.next_state(state, w)
            t += 1

    def _walk_cached(self) -> Walk:
        """`walk` with the document cache (see the module docstring). The levels whose
        context occurred before in the document (shortest first, as CacheState.dense) map p
        to `q = (e p + scale c) / (scale total + e)`, `e = a + b distinct`,
        `scale = min(1, cap / total)`. Unrolled, the mixed row is `f p + sum_k g_k c_k`:
        from the longest level down, `g_k = f (scale_k / d_k)` then `f = f (e_k / d_k)`
        (`d_k = scale_k total_k + e_k`; f starts at 1). The row is then one multiplication
        and, per level, one addition per counted symbol (the counts, or a dense row where
        adding 0.0 leaves the others as they are), shortest level first: the float
        operations of `text_rows.mix`, so the encoder's rows are the same bit for bit."""
        assert self.spec is not None
        cap, hazard, es = self.spec.cap, self.hazard, self._es
        memo, trans, base, zeros = self._memo, self._trans, self.base, np.zeros
        mul, add = np.multiply, np.add
        s0 = zeros(())
        s0m: Any = s0.data  # (setting an element through a view is faster)
        out = zeros(base)  # the mixed row (reused: a distribution is valid until the next push)
        tmp, om = zeros(base), out.data
        levels: list[tuple[int, int, dict[int, Any]]] = [
            (L, base**L, {}) for L in self.spec.orders
        ]
        top = max(self.spec.orders)
        ctx_mod = base**top
        state, t, n, ctx = int(self.sampler.start), 0, 1, BOS
        live = [lv for lv in levels if lv[0] <= n]  # the levels the document is long enough for
        found: list[list[Any]] = []
        coefs: list[float] = []
        while True:
            p = memo.get(state)
            if p is None:
                p = self.static(state)
            if found:
                f = 1.0
                coefs.clear()
                for counts, total, _, _ in reversed(found):
                    e = es[len(counts)]
                    scale = cap / total
                    if scale >= 1.0:
                        d = total + e
                        coefs.append(f * (1.0 / d))
                    else:
                        d = scale * total + e
                        coefs.append(f * (scale / d))
                    f = f * (e / d)
                s0m[()] = f
                mul(p, s0, out)
                p = out
                for (counts, _, dense, _), g in zip(found, reversed(coefs), strict=True):
                    if dense is None:
                        for x, c in counts.items():
                            om[x] = om[x] + g * c
                    else:
                        s0m[()] = g
                        add(out, mul(dense, s0, tmp), out)
            w = yield p if hazard is None else self._end(p, t)
            nxt = trans.get(state * base + w)
            state = self.next_state(state, w) if nxt is None else nxt
            t += 1
            for entry in found:  # count w after the contexts that occurred before
                counts = entry[0]
                counts[w] = c = counts.get(w, 0) + 1
                entry[1] += 1
                if entry[3] is not None:
                    entry[3][w] = float(c)
                elif c == 1 and len(counts) > _DENSE:
                    row = zeros(base)
                    row[list(counts)] = list(counts.values())
                    entry[2:] = row, row.data
            for _, mod, table in live[len(found) :]:  # and the new ones: just w
                table[ctx % mod] = w
            n += 1
            if n <= top:
                live = [lv for lv in levels if lv[0] <= n]
            ctx = (ctx * base + w) % ctx_mod
            found = []
            for _, mod, table in live:
                key = ctx % mod
                got = table.get(key)
                if got is None:
                    break
                if got.__class__ is int:  # a context seen once (most are): its entry now
                    table[key] = got = [{got: 1}, 1, None, None]
                found.append(got)
