"""Counting in chunks: n-gram count tables of pieces of the data, merged exactly by key.

The sufficient statistic of a chain of order M is, per level k = 0..M, the sorted set of the
strings of length k+1 that occur (as keys ``parent * B + symbol``, `counts.py`), the number of
times each occurs at a predicted position (raw count) and, for Kneser-Ney, the number of
distinct counted left extensions of each string (continuation count). A `Part` holds these for
one piece, with the *suffix* of every string (its id one level down with the oldest symbol
dropped) instead of continuation counts, because distinct extensions do not add up over pieces
while the sets they are counted from do.

Why merging is exact. A level-k id is the lexicographic rank of its string among the strings
present (level 0 sorts symbols; ``parent * B + symbol`` sorts by parent rank, then symbol). So
when two pieces merge, each piece's level k-1 ranks map to merged ranks by a strictly increasing
map; re-keying level k with it keeps each piece's keys sorted and names the same string by the
same key in both pieces; the merged level is the sorted union of keys, raw counts add, suffixes
map through the level k-1 map. By induction the merge of the pieces' parts equals the part of
their concatenation: the same keys, raw counts and suffixes, hence the same continuation counts
(`finish`), whatever the chunking. The pieces themselves (`pieces`) cover every counted position
exactly once, each with the M symbols before it as context, so every string ending at a counted
position is seen whole, and a string ending at a context position is one that the data holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .counts import BOS, Segment, Tables, layout, ngram_ids

#: symbols (tokens plus BOS/EOS) counted in one piece; about 60 bytes each while it is counted
DEFAULT_CHUNK_SYMBOLS = 1 << 23

INT32_MAX = np.iinfo(np.int32).max
#: keys re-keyed at once in a merge
REKEY_SLICE = 1 << 22


def index_dtype(n: int) -> type[np.signedinteger]:
    """The narrowest signed type holding indices 0..n-1 and counts up to n (int32 or int64)."""
    return np.int32 if n <= INT32_MAX else np.int64


@dataclass
class Part:
    """Count tables of a piece (or of merged pieces): per level the sorted keys, raw counts and
    suffix ids (level k >= 1: the id at level k-1 of the string without its oldest symbol)."""

    base: int
    keys: list[np.ndarray] = field(default_factory=list)  # int64, sorted, unique
    raw: list[np.ndarray] = field(default_factory=list)  # int32 (int64 past 2**31 - 1)
    suffix: list[np.ndarray] = field(default_factory=list)  # level 0: empty
    seconds: list[float] = field(default_factory=list)  # time spent on each level so far

    @property
    def size(self) -> int:
        return sum(len(k) for k in self.keys)


def count_part(segments: list[Segment], base: int, max_order: int) -> Part:
    """The count tables of one piece in one vectorised pass per level (`counts.ngram_ids`)."""
    t0 = time.perf_counter()
    lay = layout(segments)
    part = Part(base)
    h_prev = np.zeros(0, np.int64)
    for k, (valid, uniq, inv, h) in enumerate(ngram_ids(lay.t, lay.offset, base, max_order)):
        raw = np.bincount(h[lay.pred & valid], minlength=len(uniq))
        suffix = np.zeros(0, np.int64)
        if k > 0:
            suffix = np.empty(len(uniq), np.int64)
            suffix[inv] = h_prev[valid]
            suffix = suffix.astype(index_dtype(len(part.keys[-1])))
        part.keys.append(uniq)
        part.raw.append(raw.astype(index_dtype(int(raw.max(initial=0)))))
        part.suffix.append(suffix)
        h_prev = h
        t1 = time.perf_counter()
        part.seconds.append(t1 - t0)
        t0 = t1
    return part


def _union(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted union of two sorted unique arrays and where each element of `a`, `b` lands in it
    (int32 positions while they fit).

    `b` is searched in `a` (sorted queries); the keys of `b` not in `a` are inserted, and every
    element of `a` moves right by the number of insertions at or before it."""
    na = len(a)
    idx = np.searchsorted(a, b)
    found = idx < na
    found[found] = a[idx[found]] == b[found]
    new = ~found
    ins = idx[new]
    n_new = len(ins)
    dt = index_dtype(na + n_new + 1)
    ia = np.arange(na, dtype=dt)
    if n_new:
        ia += np.repeat(np.arange(n_new + 1, dtype=dt), np.diff(np.r_[0, ins, na]))
    ib = np.empty(len(b), dt)
    ib[found] = ia[idx[found]]
    ib[new] = ins + np.arange(n_new, dtype=np.int64)
    merged = np.empty(na + n_new, np.int64)
    merged[ia] = a
    merged[ib[new]] = b[new]
    return merged, ia, ib


def _rekey(keys: np.ndarray, mapping: np.ndarray, base: int, in_place: bool) -> np.ndarray:
    """``mapping[parent] * B + symbol`` for every key, a slice at a time (bounded temporaries;
    `in_place`: overwriting `keys`, which the caller owns)."""
    out = keys if in_place else np.empty(len(keys), np.int64)
    for a in range(0, len(keys), REKEY_SLICE):
        parent, sym = np.divmod(keys[a : a + REKEY_SLICE], base)
        out[a : a + REKEY_SLICE] = mapping[parent].astype(np.int64) * base + sym
    return out


def _add_counts(n: int, ia: np.ndarray, ca: np.ndarray, ib: np.ndarray, cb: np.ndarray):
    """Counts of the union: ca placed at ia plus cb placed at ib (int32 unless they overflow)."""
    big = int(ca.max(initial=0)) + int(cb.max(initial=0)) > INT32_MAX
    out = np.zeros(n, np.int64 if big or ca.dtype == np.int64 else np.int32)
    out[ia] = ca
    out[ib] += cb.astype(out.dtype)
    return out


def merge(a: Part, b: Part) -> Part:
    """The exact merge of two parts (see the module docstring); `a` is consumed (its keys are
    re-keyed in place and its arrays released level by level, to bound memory), `b` is left
    as it was."""
    base = a.base
    out = Part(base)
    map_a = map_b = np.zeros(0, np.int64)
    same_a = True
    for k in range(len(b.keys)):
        t0 = time.perf_counter()
        ka, kb = a.keys[k], b.keys[k]
        if k > 0:  # re-key through the strictly increasing maps of level k-1
            ka = ka if same_a else _rekey(ka, map_a, base, in_place=True)
            kb = _rekey(kb, map_b, base, in_place=False)
        a.keys[k] = np.zeros(0, np.int64)
        keys, ia, ib = _union(ka, kb)
        del ka, kb
        out.raw.append(_add_counts(len(keys), ia, a.raw[k], ib, b.raw[k]))
        a.raw[k] = np.zeros(0, np.int32)
        suffix = np.zeros(0, np.int64)
        if k > 0:
            suffix = np.empty(len(keys), index_dtype(len(out.keys[-1])))
            suffix[ia] = map_a[a.suffix[k]]
            suffix[ib] = map_b[b.suffix[k]]
            a.suffix[k] = suffix[:0]
        out.keys.append(keys)
        out.suffix.append(suffix)
        out.seconds.append(a.seconds[k] + b.seconds[k] + time.perf_counter() - t0)
        same_a = len(keys) == len(ia)  # nothing inserted: `a`'s ids are unchanged
        map_a, map_b = ia, ib
    return out


def pieces(
    segments: list[Segment], max_order: int, chunk_symbols: int = DEFAULT_CHUNK_SYMBOLS
) -> Iterator[list[Segment]]:
    """The segments in pieces of about `chunk_symbols` laid-out symbols. A segment longer than
    that is cut; each later cut keeps the `max_order` tokens before it as context (counted as
    context only), so every counted position sees the same history as in the whole segment."""
    step = max(chunk_symbols, 4 * (max_order + 1))
    out: list[Segment] = []
    size = 0
    for s in segments:
        n = len(s.tokens)
        a = 0
        while True:
            b = n if n - a <= step else a + step
            ctx = 0 if a == 0 else min(max_order, a)
            seg = Segment(
                s.tokens[a - ctx : b],
                s.begin if a == 0 else a - ctx == 0 and s.begin,
                s.end and b == n,
                max(ctx, s.n_context - (a - ctx)) if a else min(s.n_context, b),
            )
            out.append(seg)
            size += b - a + 2
            if size >= step:
                yield out
                out, size = [], 0
            if b == n:
                break
            a = b
    if out:
        yield out


def count_parts(
    segments: list[Segment],
    base: int,
    max_order: int,
    chunk_symbols: int = DEFAULT_CHUNK_SYMBOLS,
) -> Part:
    """The merged part of all segments, counted piece by piece (`pieces`, `merge`)."""
    acc: Part | None = None
    for segs in pieces(segments, max_order, chunk_symbols):
        part = count_part(segs, base, max_order)
        acc = part if acc is None else merge(acc, part)
        del part
    return acc if acc is not None else count_part([], base, max_order)


def continuation(part: Part, k: int) -> np.ndarray:
    """Continuation counts of level k (< top): the distinct strings of level k+1 with a raw
    count whose suffix is each level-k string (exact on a merged part: it is a function of the
    merged sets)."""
    nxt = part.raw[k + 1]
    return np.bincount(part.suffix[k + 1][nxt > 0], minlength=len(part.keys[k])).astype(
        index_dtype(len(part.keys[k + 1]))
    )


def bos_first(part: Part) -> list[np.ndarray]:
    """Per level, whether each string starts with BOS (it cannot be extended to the left)."""
    out: list[np.ndarray] = []
    for k, keys in enumerate(part.keys):
        out.append(keys == BOS if k == 0 else out[-1][keys // part.base])
    return out


def count(
    segments: list[Segment], base: int, max_order: int, chunk_symbols: int | None = None
) -> Tables:
    """Count every n-gram of length 1..max_order+1: pieces of about `chunk_symbols` symbols
    counted in one vectorised pass per level and merged exactly (the tables do not depend on
    `chunk_symbols`), then continuation counts and BOS flags from the merged sets. Memory: the
    merged tables plus one piece, not the data times the orders."""
    chunk = DEFAULT_CHUNK_SYMBOLS if chunk_symbols is None else chunk_symbols
    part = count_parts(segments, base, max_order, chunk)
    t0 = time.perf_counter()
    tables = Tables(base=base, keys=part.keys, raw=part.raw, bos_first=bos_first(part))
    for k in range(max_order):
        tables.cont.append(continuation(part, k))
        part.suffix[k + 1] = part.suffix[k + 1][:0]  # release as soon as it is used
    # the top level has no continuation counts; keep the list aligned (never used at the top)
    tables.cont.append(tables.raw[-1])
    finish = (time.perf_counter() - t0) / max(max_order + 1, 1)
    tables.seconds = list(np.cumsum([s + finish for s in part.seconds]))
    return tables
