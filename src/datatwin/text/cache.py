"""A document cache on top of a static n-gram model: the text adapts to what it has said so far.

Compressors such as PPMd learn a document as they read it; a fixed n-gram model cannot (new
character names in a new play stay surprising forever). The cache model keeps the static
model as its base and layers the counts of the current document so far on top, for a few
context lengths L (default 4, 6, 8), from short to long:

    q_L(w | h) = (s c_L(h, w) + e_L(h) q_{L-}(w | h)) / (s c_L(h) + e_L(h)),
    e_L(h) = a + b T_L(h),   s = min(1, cap / c_L(h))

where c_L counts earlier occurrences *in the same document* of the last L symbols followed by
w, c_L(h) = sum_w c_L(h, w), T_L(h) is the number of distinct symbols seen after h so far,
and q_{L-} is the next shorter cache level (the static model below the shortest). The cap
keeps the copy weight s c / (s c + e) below cap / (cap + a + b), so a long generated document
cannot lock itself into repeating one thing forever (an unbounded cache is a Polya urn). Since
sum_w c_L(h, w) = c_L(h) and e > 0, every q sums to one and is never zero; the likelihood is
exact and sequential (each symbol depends on the whole document before it). Sampling runs the
same mixture forward: with probability c/(c + e) copy what followed an earlier occurrence of
the context, otherwise fall through to the shorter level and finally the static sampler.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import numpy as np

from .counts import BOS, EOS, Layout, bool_cumsum, ngram_ids
from .protocols import SymbolSampler
from .sampling import tempered


@dataclass(frozen=True)
class CacheSpec:
    """Context lengths and escape strength (a + b * distinct successors) of a document cache."""

    orders: tuple[int, ...] = (4, 6, 8)
    a: float = 2.0
    b: float = 8.0
    cap: float = 32.0

    def to_json(self) -> dict[str, Any]:
        return {"orders": list(self.orders), "a": self.a, "b": self.b, "cap": self.cap}

    @classmethod
    def from_json(cls, d: Any) -> CacheSpec:
        if not isinstance(d, dict):
            raise ValueError("cache spec must be an object")
        orders = tuple(int(x) for x in d["orders"])
        a, b, cap = float(d["a"]), float(d["b"]), float(d["cap"])
        if not (cap > 0 and np.isfinite(cap)):
            raise ValueError("bad cache cap")
        if (
            not orders
            or any(o < 1 or o > 64 for o in orders)
            or list(orders) != sorted(set(orders))
        ):
            raise ValueError(f"bad cache orders {orders}")
        if not (a > 0 and b >= 0 and np.isfinite(a) and np.isfinite(b)):
            raise ValueError("bad cache strengths")
        return cls(orders, a, b, cap)


def _occurrences_before(keys: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same key."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    s = keys[order]
    start = np.empty(n, bool)
    start[0] = True
    np.not_equal(s[1:], s[:-1], out=start[1:])
    grp = bool_cumsum(start) - 1
    rank = np.arange(n) - np.flatnonzero(start)[grp]
    out = np.empty(n, np.int64)
    out[order] = rank
    return out


def _distinct_before(gkeys: np.ndarray, ckeys: np.ndarray) -> np.ndarray:
    """For each position, how many distinct gkeys occurred earlier with the same ckey."""
    n = len(gkeys)
    if n == 0:
        return np.zeros(0, np.int64)
    first = _occurrences_before(gkeys) == 0
    order = np.argsort(ckeys, kind="stable")
    s = ckeys[order]
    start = np.empty(n, bool)
    start[0] = True
    np.not_equal(s[1:], s[:-1], out=start[1:])
    f = first[order].astype(np.int64)
    cs = np.cumsum(f) - f
    grp = bool_cumsum(start) - 1
    rel = cs - cs[np.flatnonzero(start)][grp]
    out = np.empty(n, np.int64)
    out[order] = rel
    return out


def cache_stats(lay: Layout, base: int, spec: CacheSpec) -> list[tuple[np.ndarray, ...]]:
    """Per cache level, at the predicted positions of `lay`: earlier occurrences in the same
    block of (context, symbol), of the context, and distinct symbols seen after the context.
    History positions of a block count as the document so far. The layout's n-gram ids are
    made one level at a time; only the current and previous level are kept."""
    block = bool_cumsum(lay.offset == 0) - 1
    where = np.flatnonzero(lay.pred)
    out: list[tuple[np.ndarray, ...]] = []
    h_prev = np.zeros(0, np.int64)
    for k, (*_, h) in enumerate(ngram_ids(lay.t, lay.offset, base, max(spec.orders))):
        if k in spec.orders:
            out.append(_level_stats(h, h_prev, block, where))
        h_prev = h
    return out


def _level_stats(
    g: np.ndarray, h_prev: np.ndarray, block: np.ndarray, where: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The three statistics of one cache level from its n-gram ids and the level below."""
    n = len(g)
    ctx = np.empty(n, np.int64)
    ctx[:1] = -1
    ctx[1:] = h_prev[:-1]
    vpos = np.flatnonzero(g >= 0)
    cg = np.zeros(n, np.int64)
    cc = np.zeros(n, np.int64)
    tt = np.zeros(n, np.int64)
    if len(vpos):
        gk = block[vpos] * (int(g.max()) + 1) + g[vpos]
        ck = block[vpos] * (int(ctx[vpos].max()) + 1) + ctx[vpos]
        cg[vpos] = _occurrences_before(gk)
        cc[vpos] = _occurrences_before(ck)
        tt[vpos] = _distinct_before(gk, ck)
    return cg[where], cc[where], tt[where]


def apply_cache(
    stats: list[tuple[np.ndarray, ...]], p_static: np.ndarray, spec: CacheSpec
) -> np.ndarray:
    """Cache-model probabilities from `cache_stats` and the static probabilities (a slice of
    SLICE positions at a time: elementwise, so the same values with bounded temporaries)."""
    n = len(p_static)
    if n <= SLICE:
        return _apply_cache(stats, p_static, spec)
    out = np.empty(n)
    for a in range(0, n, SLICE):
        part = [tuple(x[a : a + SLICE] for x in level) for level in stats]
        out[a : a + SLICE] = _apply_cache(part, p_static[a : a + SLICE], spec)
    return out


#: positions the cache is applied to at once
SLICE = 1 << 20


def _apply_cache(
    stats: list[tuple[np.ndarray, ...]], p_static: np.ndarray, spec: CacheSpec
) -> np.ndarray:
    q = p_static
    for cg, cc, tt in stats:
        e = spec.a + spec.b * tt
        scale = np.minimum(1.0, spec.cap / np.maximum(cc, 1))
        q = (scale * cg + e * q) / (scale * cc + e)
    return q


def cache_probs(lay: Layout, base: int, p_static: np.ndarray, spec: CacheSpec) -> np.ndarray:
    """Cache-model probabilities at the predicted positions of `lay`."""
    return apply_cache(cache_stats(lay, base, spec), p_static, spec)


class CacheState:
    """The document so far, as successor lists per context, for sampling with a cache.

    Contexts are integer keys (the last L symbol ids as base-`base` digits, updated as a
    rolling number), mapped to (successor list, successor set).
    """

    def __init__(self, spec: CacheSpec, history: list[int], base: int) -> None:
        self.spec = spec
        self.base = base
        self.n = 1  # symbols in the document so far, counting the leading BOS
        self.mods = {L: base**L for L in spec.orders}
        self.keys = {L: BOS for L in spec.orders}
        self.tables: dict[int, dict[int, tuple[list[int], set[int]]]] = {L: {} for L in spec.orders}
        for w in history:
            self.push(w)

    def entries(self) -> list[tuple[dict, int, tuple[list[int], set[int]] | None]]:
        """(table, key, entry or None) of the current contexts, longest first."""
        out = []
        for L in reversed(self.spec.orders):
            if self.n >= L:
                table = self.tables[L]
                key = self.keys[L]
                out.append((table, key, table.get(key)))
        return out

    def push(self, w: int, entries=None) -> None:
        """Append symbol w to the document and count it after each context."""
        for table, key, entry in self.entries() if entries is None else entries:
            if entry is None:
                table[key] = ([w], {w})
            else:
                entry[0].append(w)
                entry[1].add(w)
        base = self.base
        keys = self.keys
        for L, mod in self.mods.items():
            keys[L] = (keys[L] * base + w) % mod
        self.n += 1

    def dense(self, q: np.ndarray) -> np.ndarray:
        """Apply the cache levels (shortest first) to a dense static distribution."""
        for _, _, entry in reversed(self.entries()):
            if entry is None:
                continue
            c = np.bincount(entry[0], minlength=len(q)).astype(np.float64)
            e = self.spec.a + self.spec.b * len(entry[1])
            scale = min(1.0, self.spec.cap / len(entry[0]))
            q = (scale * c + e * q) / (scale * len(entry[0]) + e)
        return q


def generate_cached(
    sampler: SymbolSampler,
    spec: CacheSpec,
    history: list[int],
    n: int,
    rng: np.random.Generator,
    state: int,
    temperature: float = 1.0,
) -> tuple[list[int], bool]:
    """Up to n symbols from the cache model over `sampler`'s static model."""
    # the cache holds millions of small containers: keep the cyclic GC from rescanning them
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate_cached(sampler, spec, history, n, rng, state, temperature)
    finally:
        if enabled:
            gc.enable()


def _generate_cached(
    sampler: SymbolSampler,
    spec: CacheSpec,
    history: list[int],
    n: int,
    rng: np.random.Generator,
    state: int,
    temperature: float,
) -> tuple[list[int], bool]:
    cache = CacheState(spec, history, sampler.base)
    if temperature != 1.0:
        return _generate_dense(sampler, cache, n, rng, state, temperature)
    out: list[int] = []
    a, b, cap = spec.a, spec.b, spec.cap
    base = cache.base
    # the hot loop keeps everything in locals: contexts longest first as [L, table, key, mod]
    levels = [[L, cache.tables[L], cache.keys[L], cache.mods[L]] for L in reversed(spec.orders)]
    count = cache.n
    s = state
    buf = rng.random(min(8192, max(16, 4 * n + 8))).tolist()
    pos = 0
    refill = len(buf)

    def next_u() -> float:  # for the static sampler's back-off draws
        nonlocal pos, buf
        if pos >= len(buf):
            buf = rng.random(refill).tolist()
            pos = 0
        v = buf[pos]
        pos += 1
        return v

    draw, advance = sampler.draw, sampler.advance
    append = out.append
    ended = False
    while len(out) < n:
        w = -1
        nx = -1
        ents = []
        for lev in levels:
            if count < lev[0]:
                continue
            entry = lev[1].get(lev[2])
            ents.append((lev[1], lev[2], entry))
            if w >= 0 or entry is None:
                continue
            succ = entry[0]
            c = len(succ)
            scale = cap / c if c > cap else 1.0
            if pos >= len(buf):
                buf = rng.random(refill).tolist()
                pos = 0
            u = buf[pos] * (scale * c + a + b * len(entry[1]))
            pos += 1
            if u < scale * c:
                w = succ[min(int(u / scale), c - 1)]
        if w < 0:
            w, nx = draw(s, next_u, rng)
        if w == EOS:
            ended = True
            break
        append(w)
        s = nx if nx >= 0 else advance(s, w)
        for table, key, entry in ents:
            if entry is None:
                table[key] = ([w], {w})
            else:
                entry[0].append(w)
                entry[1].add(w)
        for lev in levels:
            lev[2] = (lev[2] * base + w) % lev[3]
        count += 1
    return out, ended


def _generate_dense(
    sampler: SymbolSampler, cache: CacheState, n: int, rng, state: int, temperature: float
):
    """Temperature sampling: the dense cache distribution at every step."""
    out: list[int] = []
    s = state
    while len(out) < n:
        p = tempered(cache.dense(sampler.distribution(s)), temperature)
        w = min(int(np.searchsorted(np.cumsum(p), rng.random(), "right")), len(p) - 1)
        if w == EOS:
            return out, True
        out.append(w)
        s = sampler.advance(s, w)
        cache.push(w)
    return out, False
