"""Smoothed conditional distributions, one level (context length) at a time, as arrays.

Both smoothers are *interpolated*: at level k, for context h and symbol w,

    p_k(w | h) = alpha_k(h, w) + gamma_k(h) * p_{k-1}(w | h')

where h' drops the oldest symbol of h, alpha is zero for n-grams not seen at this level, and
p_{-1} is uniform over the outcomes (EOS, UNK and the vocabulary). For every context,
sum_w alpha_k(h, w) + gamma_k(h) = 1, so every distribution sums to one over the whole
alphabet and, since gamma > 0 and the uniform base is > 0, no probability is ever zero.
Contexts never seen at level k simply use p_{k-1}.

- ``kn``: interpolated modified Kneser-Ney (Chen & Goodman 1998): three discounts per level
  (count 1, 2, 3+) estimated from counts of counts; continuation counts below the top level.
- ``wb``: interpolated Witten-Bell: alpha = c / (c(h) + T(h)), gamma = T(h) / (c(h) + T(h)),
  T(h) = number of distinct symbols seen after h.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

SMOOTHERS = ("kn", "wb")

#: one line of help per smoother (the structure registry shows it)
SMOOTHER_HELP = {
    "kn": "interpolated modified Kneser-Ney smoothing (three discounts per order)",
    "wb": "interpolated Witten-Bell smoothing",
}

#: discounts used when counts of counts cannot support an estimate (tiny or deduplicated data)
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass
class Level:
    """One level of a smoothed model: per n-gram alpha, per context gamma."""

    alpha: np.ndarray  # float64 per n-gram of this level
    gamma: np.ndarray  # float64 per context (index into the previous level; 1 entry at level 0)
    seen: np.ndarray  # bool per context: the context has at least one counted child
    discounts: tuple[float, float, float] | None = None
    fallback: bool = False


def estimate_discounts(counts: np.ndarray) -> tuple[tuple[float, float, float], bool]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from counts of counts (Chen & Goodman).

    Y = n1 / (n1 + 2 n2), D_c = c - (c + 1) Y n_{c+1} / n_c. When a needed count of counts is
    zero or an estimate falls outside (0, c) (small or deduplicated data, a classic failure of
    other tools), each bad discount falls back to a sound default (0.5, 1.0, 1.5) and the
    fallback is reported. Always returns 0 < D_c < c, so every seen n-gram keeps some mass.
    """
    pos = counts[counts > 0]
    n = np.bincount(np.minimum(pos, 5), minlength=6).astype(np.float64)
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    out = list(FALLBACK_DISCOUNTS)
    fallback = False
    if n1 > 0 and n2 > 0:
        y = n1 / (n1 + 2 * n2)
        for c, (nc, nc1) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
            d = c - (c + 1) * y * nc1 / nc if nc > 0 else float("nan")
            if np.isfinite(d) and 0.0 < d < c:
                out[c - 1] = float(d)
            else:
                fallback = True
    else:
        fallback = True
    return (out[0], out[1], out[2]), fallback


#: keys a level is built from at once (slices end where a context's children end)
LEVEL_SLICE = 1 << 22


def _runs(keys: np.ndarray, base: int) -> Iterator[tuple[int, int]]:
    """Slices of about LEVEL_SLICE sorted keys that never cut a context's run of children."""
    n, a = len(keys), 0
    while a < n:
        b = min(n, a + LEVEL_SLICE)
        if b < n:  # up to the first key of the next context
            b = int(np.searchsorted(keys, (int(keys[b - 1]) // base + 1) * base))
        yield a, b
        a = b


def _context_sums(
    keys: np.ndarray, base: int, n_ctx: int, weights: Callable[[int, int], np.ndarray]
) -> np.ndarray:
    """Per context, the sum of `weights(a, b)` over its children, slice by slice. A context's
    children lie in one slice and are added in key order, as one bincount over the level
    would add them, so the sums are the same to the last bit."""
    out = np.zeros(n_ctx)
    for a, b in _runs(keys, base):
        parent = keys[a:b] // base
        lo = int(parent[0])
        out[lo : int(parent[-1]) + 1] = np.bincount(parent - lo, weights=weights(a, b))
    return out


def kn_level(keys: np.ndarray, counts: np.ndarray, base: int, n_ctx: int) -> Level:
    """Interpolated modified Kneser-Ney for one level from its (raw or continuation) counts,
    built a slice of contexts at a time (bounded temporaries)."""
    (d1, d2, d3), fallback = estimate_discounts(counts)
    table = np.array([0.0, d1, d2, d3])  # the discount of a count of 0, 1, 2, 3+

    def c(a: int, b: int) -> np.ndarray:
        return counts[a:b].astype(np.float64)

    def disc(a: int, b: int) -> np.ndarray:
        return table[np.minimum(counts[a:b], 3)]

    total = _context_sums(keys, base, n_ctx, c)
    mass = _context_sums(keys, base, n_ctx, disc)
    seen = total > 0
    safe = np.where(seen, total, 1.0)
    alpha = np.empty(len(keys))
    for a, b in _runs(keys, base):
        alpha[a:b] = (c(a, b) - disc(a, b)) / safe[keys[a:b] // base]
    gamma = np.where(seen, mass / safe, 1.0)
    return Level(alpha, gamma, seen, (d1, d2, d3), fallback)


def wb_level(keys: np.ndarray, counts: np.ndarray, base: int, n_ctx: int) -> Level:
    """Interpolated Witten-Bell for one level from raw counts (a slice at a time)."""

    def c(a: int, b: int) -> np.ndarray:
        return counts[a:b].astype(np.float64)

    def typ(a: int, b: int) -> np.ndarray:
        return (counts[a:b] > 0).astype(np.float64)

    total = _context_sums(keys, base, n_ctx, c)
    types = _context_sums(keys, base, n_ctx, typ)
    seen = total > 0
    denom = np.where(seen, total + types, 1.0)
    alpha = np.empty(len(keys))
    for a, b in _runs(keys, base):
        alpha[a:b] = c(a, b) / denom[keys[a:b] // base]
    gamma = np.where(seen, types / denom, 1.0)
    return Level(alpha, gamma, seen)


def make_level(smoother: str, keys: np.ndarray, counts: np.ndarray, base: int, n_ctx: int) -> Level:
    """One level of smoother `smoother` ('kn' or 'wb')."""
    build = _LEVELS.get(smoother)
    if build is None:
        raise ValueError(f"unknown smoother {smoother!r}")
    return build(keys, counts, base, n_ctx)


_LEVELS = {"kn": kn_level, "wb": wb_level}


#: positions a level is applied to at once (it is elementwise: slices give the same values)
APPLY_SLICE = 1 << 20


def apply_level(
    level: Level, p_lower: np.ndarray, ngram_ids: np.ndarray, ctx_ids: np.ndarray | None
) -> np.ndarray:
    """p_k at scored positions from p_{k-1}, the n-gram ids (-1 unseen) and context ids.

    A level with nothing to add (no n-grams, no contexts, or no context seen: e.g. an order
    longer than any training block) is a pass-through: p_k = p_{k-1}. Long inputs are done
    APPLY_SLICE positions at a time (bounded temporaries, the same values).
    """
    n = len(p_lower)
    if n <= APPLY_SLICE:
        return _apply_level(level, p_lower, ngram_ids, ctx_ids)
    out = np.empty(n)
    for a in range(0, n, APPLY_SLICE):
        b = a + APPLY_SLICE
        ctx = None if ctx_ids is None else ctx_ids[a:b]
        out[a:b] = _apply_level(level, p_lower[a:b], ngram_ids[a:b], ctx)
    return out


def apply_level_at(
    level: Level,
    p_lower: np.ndarray,
    ids: np.ndarray,
    prev_ids: np.ndarray | None,
    where: np.ndarray,
) -> np.ndarray:
    """`apply_level` at the positions `where` of a layout, from the ids of every position at
    this level and the one below (n-gram ids ``ids[where]``, context ids
    ``prev_ids[where - 1]``), gathered a slice at a time: the same values, no whole copies."""
    out = np.empty(len(where))
    for a in range(0, len(where), APPLY_SLICE):
        w = where[a : a + APPLY_SLICE]
        ctx = None if prev_ids is None else prev_ids[w - 1]
        out[a : a + APPLY_SLICE] = _apply_level(level, p_lower[a : a + APPLY_SLICE], ids[w], ctx)
    return out


def _apply_level(
    level: Level, p_lower: np.ndarray, ngram_ids: np.ndarray, ctx_ids: np.ndarray | None
) -> np.ndarray:
    if len(level.alpha):
        a = np.where(ngram_ids >= 0, level.alpha[np.maximum(ngram_ids, 0)], 0.0)
    else:  # no n-gram at this level: every id is -1 and alpha is 0
        a = np.zeros(len(ngram_ids))
    if ctx_ids is None:  # level 0: a single (empty) context
        return a + level.gamma[0] * p_lower
    if not level.seen.any():  # no context (or none with a counted child): pass-through
        return p_lower.copy()
    ok = ctx_ids >= 0
    cidx = np.maximum(ctx_ids, 0)
    ok &= level.seen[cidx]
    return np.where(ok, a + level.gamma[cidx] * p_lower, p_lower)
