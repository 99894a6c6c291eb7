"""N-gram ids in one vectorised pass per order, and lookups of new data into the tables
(counting runs on pieces of the data, merged exactly by key: `merge.py`).

Symbols are small integers: 0 = BOS (begin of a block, context only), 1 = EOS (end of a block,
predicted), 2 = UNK (a symbol never seen in training), 3.. = the vocabulary. A *segment* is one
block laid out as ``[BOS] tokens [EOS]``; a holdout tail is laid out as its last ``M`` tokens of
history (context only, never counted) followed by the scored tail.

The n-gram strings of length k+1 ending at each position get dense ids, level by level:
``id_k[i] = rank(id_{k-1}[i-1] * B + t[i])``. The sorted unique keys of level k (``keys[k]``)
are the table: ``key // B`` is the context (an index into level k-1) and ``key % B`` the symbol,
so every context's children are one contiguous run. Strings that would cross the beginning of
a block are not n-grams (id -1), exactly as KenLM/SRILM treat ``<s>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

BOS, EOS, UNK = 0, 1, 2
N_SPECIAL = 3


@dataclass
class Segment:
    """One block of symbols to count or score.

    `begin`: the block starts at the beginning of a document (a BOS precedes it);
    `end`: the block ends at the end of a document (an EOS is predicted after it);
    `n_context`: how many leading tokens are history only (conditioned on, not predicted).
    """

    tokens: np.ndarray
    begin: bool = True
    end: bool = True
    n_context: int = 0


@dataclass
class Layout:
    """Segments laid out in one array: symbols, scored positions and offset inside the block."""

    t: np.ndarray  # int64 symbols
    pred: np.ndarray  # bool: this position is predicted (scored / counted)
    offset: np.ndarray  # int64: position inside its block (0 = BOS or first history token)


def layout(segments: list[Segment]) -> Layout:
    """Concatenate segments as ``[BOS] history tokens [EOS]`` with a mask of predicted positions."""
    if not segments:
        empty = np.zeros(0, np.int64)
        return Layout(empty, np.zeros(0, bool), empty)
    lens = np.array([len(s.tokens) for s in segments], np.int64)
    begin = np.array([s.begin for s in segments], np.int64)
    end = np.array([s.end for s in segments], np.int64)
    nctx = np.array([s.n_context for s in segments], np.int64)
    total = begin + lens + end
    starts = np.zeros(len(segments), np.int64)
    np.cumsum(total[:-1], out=starts[1:])
    n = int(total.sum())
    t = np.full(n, BOS, np.int64)
    seg = np.repeat(np.arange(len(segments)), total)
    offset = np.arange(n, dtype=np.int64) - starts[seg]
    tok_flat = (
        np.concatenate([np.asarray(s.tokens, np.int64) for s in segments])
        if lens.sum()
        else np.zeros(0, np.int64)
    )
    tok_seg = np.repeat(np.arange(len(segments)), lens)
    tok_starts = np.zeros(len(segments), np.int64)
    np.cumsum(lens[:-1], out=tok_starts[1:])
    tok_idx = np.arange(len(tok_flat), dtype=np.int64) - tok_starts[tok_seg]
    tok_pos = starts[tok_seg] + begin[tok_seg] + tok_idx
    t[tok_pos] = tok_flat
    pred = np.zeros(n, bool)
    pred[tok_pos] = tok_idx >= nctx[tok_seg]
    eos_pos = (starts + begin + lens)[end.astype(bool)]
    t[eos_pos] = EOS
    pred[eos_pos] = True
    return Layout(t, pred, offset)


def predicted(segments: list[Segment]) -> int:
    """Predicted positions of the segments laid out: tokens past the history, and each EOS."""
    return sum(max(len(s.tokens) - s.n_context, 0) + int(s.end) for s in segments)


def train_prefix(segments: list[Segment], n: int) -> list[Segment]:
    """The leading segments whose layout is the prefix of `layout(segments)` that ends at its
    n-th predicted position (the last one cut short, without its EOS, where needed)."""
    out: list[Segment] = []
    left = n
    for s in segments:
        if left <= 0:
            break
        p = predicted([s])
        if p <= left:
            out.append(s)
        else:  # keep the history and the first `left` predicted tokens (an EOS is the last)
            m = min(len(s.tokens), max(s.n_context, 0) + left)
            out.append(Segment(s.tokens[:m], s.begin, False, min(s.n_context, m)))
        left -= p
    return out


@dataclass
class Tables:
    """Training n-gram tables for levels 0..M (context length k at level k), as counted by
    `merge.count` (in pieces, merged exactly by key)."""

    base: int  # B: number of symbol ids (3 specials + vocabulary)
    keys: list[np.ndarray] = field(default_factory=list)  # sorted int64, parent * B + symbol
    raw: list[np.ndarray] = field(default_factory=list)  # int32 counts at predicted positions
    cont: list[np.ndarray] = field(default_factory=list)  # distinct left extensions (k < M)
    bos_first: list[np.ndarray] = field(default_factory=list)  # string starts with BOS
    seconds: list[float] = field(default_factory=list)  # cumulative counting time per level

    @property
    def max_order(self) -> int:
        return len(self.keys) - 1

    def kn_counts(self, k: int, top: int) -> np.ndarray:
        """Counts used by Kneser-Ney at level k of a model of order `top`.

        Raw counts at the top level and for strings starting with BOS (they cannot be extended
        to the left); continuation counts (number of distinct left extensions) elsewhere.
        """
        if k == top:
            return self.raw[k]
        return np.where(self.bos_first[k], self.raw[k], self.cont[k])

    def model_counts(self, order: int, smoother: str) -> list[np.ndarray]:
        """The counts of levels 0..order a model of `order` with `smoother` is built from."""
        if smoother == "kn":
            return [self.kn_counts(k, order) for k in range(order + 1)]
        return [self.raw[k] for k in range(order + 1)]


def bool_cumsum(mask: np.ndarray) -> np.ndarray:
    """np.cumsum of a bool array as int64 (the same integers; summing its bytes as uint8 runs
    several times faster than numpy's bool-to-int64 cast)."""
    return np.cumsum(mask.view(np.uint8), dtype=np.int64)


def _dense_rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values and the rank of each input (like np.unique with return_inverse).

    Fast path: pack (value, position) into one int64 and sort values only (numpy's value sort is
    several times faster than argsort); falls back to np.unique when they do not fit in 63 bits.
    """
    n = len(values)
    if n == 0:
        return values.astype(np.int64), np.zeros(0, np.int64)
    vmax = int(values.max())
    bits = max(n - 1, 1).bit_length()
    if int(values.min()) < 0 or vmax.bit_length() + bits > 62:
        uniq, inv = np.unique(values, return_inverse=True)
        return uniq, inv.reshape(-1).astype(np.int64)
    packed = np.sort((values.astype(np.int64) << bits) | np.arange(n, dtype=np.int64))
    skeys = packed >> bits
    new = np.empty(n, bool)
    new[0] = True
    np.not_equal(skeys[1:], skeys[:-1], out=new[1:])
    rank = bool_cumsum(new)
    rank -= 1
    inv = np.empty(n, np.int64)
    inv[packed & ((1 << bits) - 1)] = rank
    return skeys[new], inv


def ngram_ids(
    t: np.ndarray, offset: np.ndarray, base: int, max_order: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The one n-gram id function: per level k = 0..max_order, the dense id of the string of
    length k+1 ending at every position,

        h_k[i] = rank(h_{k-1}[i-1] * B + t[i]),   -1 where the string would cross a block start,

    yielded as (valid positions, sorted unique keys, rank of each valid key, h_k)."""
    n = len(t)
    h_prev = np.zeros(0, np.int64)
    for k in range(max_order + 1):
        valid = offset >= k
        if k == 0:
            keys = t[valid]
        else:
            prev = np.empty(n, np.int64)
            prev[:1] = -1
            prev[1:] = h_prev[:-1]
            keys = prev[valid] * base + t[valid]
        uniq, inv = _dense_rank(keys)
        h = np.full(n, -1, np.int64)
        h[valid] = inv
        yield valid, uniq, inv, h
        h_prev = h


def find(table: np.ndarray, q: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Index of every key `q` in the sorted `table`, -1 where it is absent or not `ok`."""
    if not len(table):
        return np.full(len(q), -1, np.int64)
    idx = np.minimum(np.searchsorted(table, q), len(table) - 1)
    return np.where(ok & (table[idx] == q), idx, -1)


def lookup(keys: list[np.ndarray], base: int, lay: Layout) -> list[np.ndarray]:
    """Ids of the n-grams ending at every position of `lay`, per level (-1 = unseen)."""
    t, offset = lay.t, lay.offset
    n = len(t)
    out: list[np.ndarray] = []
    h_prev = np.zeros(0, np.int64)
    for k, table in enumerate(keys):
        if k == 0:
            q = t
            ok = np.ones(n, bool)
        else:
            prev = np.empty(n, np.int64)
            prev[:1] = -1
            prev[1:] = h_prev[:-1]
            ok = (prev >= 0) & (offset >= k)
            q = np.where(ok, prev * base + t, 0)
        h = find(table, q, ok)
        out.append(h)
        h_prev = h
    return out


def count(
    segments: list[Segment], base: int, max_order: int, chunk_symbols: int | None = None
) -> Tables:
    """Count every n-gram of length 1..max_order+1 (in pieces, merged exactly: `merge.count`)."""
    from .merge import count as count_in_pieces

    return count_in_pieces(segments, base, max_order, chunk_symbols)
