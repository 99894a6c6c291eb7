"""A smoothed Markov model of order m over integer symbols: scoring, selection, persistence.

`fit_family` counts the training segments once at the highest order, then scores every
order 0..M and every smoother on the holdout, order by order, reusing the lower levels: the
Kneser-Ney chain below the top level uses continuation counts, which do not depend on the top
order, so each candidate costs one extra level on top of a shared chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..modelfile import require
from .cache import CacheSpec, apply_cache, cache_stats
from .counts import BOS, N_SPECIAL, Layout, Segment, Tables, count, layout, lookup
from .smoothing import SMOOTHERS, Level, apply_level, make_level

#: training bits are measured on at most this many evenly spaced positions
TRAIN_BITS_POSITIONS = 1_000_000


def structure_name(order: int, smoother: str) -> str:
    """Leaderboard name of a candidate, e.g. 'unigram+kn', 'markov5+wb'."""
    return f"{'unigram' if order == 0 else f'markov{order}'}+{smoother}"


def parse_structure(name: str) -> tuple[int, str, bool]:
    """Inverse of `structure_name` (+ whether the name ends in '+cache')."""
    cached = name.endswith("+cache")
    if cached:
        name = name[: -len("+cache")]
    left, _, smoother = name.partition("+")
    if smoother not in SMOOTHERS:
        raise ValueError(name)
    if left == "unigram" and not cached:
        return 0, smoother, cached
    if left.startswith("markov") and left[6:].isdigit() and int(left[6:]) >= 1:
        return int(left[6:]), smoother, cached
    raise ValueError(name)


@dataclass
class NgramModel:
    """Interpolated smoothed n-gram model of order `order` over symbol ids 0..base-1."""

    base: int
    order: int
    smoother: str
    keys: list[np.ndarray]
    counts: list[np.ndarray]
    levels: list[Level] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.levels:
            self.levels = [
                make_level(
                    self.smoother,
                    self.keys[k],
                    self.counts[k],
                    self.base,
                    1 if k == 0 else len(self.keys[k - 1]),
                )
                for k in range(self.order + 1)
            ]

    @property
    def n_outcomes(self) -> int:
        """Symbols a model predicts: everything but BOS."""
        return self.base - 1

    @classmethod
    def from_tables(cls, tables: Tables, order: int, smoother: str) -> NgramModel:
        """The model of `order` with `smoother` from training tables."""
        if smoother == "kn":
            counts = [tables.kn_counts(k, order) for k in range(order + 1)]
        else:
            counts = [tables.raw[k] for k in range(order + 1)]
        return cls(tables.base, order, smoother, list(tables.keys[: order + 1]), counts)

    # ---- likelihood ----------------------------------------------------------------------
    def prob_layout(self, lay: Layout) -> np.ndarray:
        """Probability of every predicted position of a layout (float64, all > 0)."""
        ids = lookup(self.keys, self.base, lay)
        return chain_probs(self.levels, ids, lay.pred, self.n_outcomes)

    def prob_of_symbol(self, lay: Layout, symbol: int) -> np.ndarray:
        """Probability of `symbol` (instead of what is there) at every predicted position."""
        ids = lookup(self.keys, self.base, lay)
        where = np.flatnonzero(lay.pred)
        p = np.full(len(where), 1.0 / self.n_outcomes)
        for k, lev in enumerate(self.levels):
            ctx = None if k == 0 else ids[k - 1][where - 1]
            ok = np.ones(len(where), bool) if ctx is None else ctx >= 0
            q = np.full(len(where), symbol, np.int64) if ctx is None else ctx * self.base + symbol
            table = self.keys[k]
            idx = np.minimum(np.searchsorted(table, q), max(len(table) - 1, 0))
            found = ok & (table[idx] == q) if len(table) else np.zeros(len(where), bool)
            p = apply_level(lev, p, np.where(found, idx, -1), ctx)
        return p

    def log_prob_segments(self, segments: list[Segment]) -> np.ndarray:
        """Natural-log probability of each predicted symbol (tokens and EOS) of the segments."""
        return np.log(self.prob_layout(layout(segments)))

    # ---- exact distributions (tests, temperature sampling, ARPA) ----------------------------
    def context_chain(self, history: np.ndarray) -> list[int]:
        """Context ids per level 0..order for a history of symbols (ids, -1 = unseen)."""
        hist = [int(x) for x in history]
        chain = [0]
        for k in range(1, self.order + 1):
            if len(hist) < k:
                chain.append(-1)
                continue
            ctx = hist[len(hist) - k :]
            idx = 0
            ok = True
            for j, sym in enumerate(ctx):
                key = (idx * self.base + sym) if j > 0 else sym
                table = self.keys[j]
                pos = int(np.searchsorted(table, key))
                if pos >= len(table) or table[pos] != key:
                    ok = False
                    break
                idx = pos
            chain.append(idx if ok else -1)
        return chain

    def distribution(self, history: np.ndarray) -> np.ndarray:
        """The full next-symbol distribution (length `base`, BOS entry 0) after `history`.

        `history` holds symbol ids of the current block, starting with BOS if the block
        starts at a document beginning.
        """
        chain = self.context_chain(np.asarray(history, np.int64))
        p = np.full(self.base, 1.0 / self.n_outcomes)
        p[BOS] = 0.0
        for k, lev in enumerate(self.levels):
            c = chain[k]
            if c < 0 or not lev.seen[c]:
                continue
            keys = self.keys[k]
            lo = int(np.searchsorted(keys, c * self.base))
            hi = int(np.searchsorted(keys, (c + 1) * self.base))
            p = p * lev.gamma[c]
            p[keys[lo:hi] % self.base] += lev.alpha[lo:hi]
        return p

    def entry_probs(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per level: the full interpolated probability of each n-gram (its symbol after its
        context) and the index of its suffix n-gram one level down (level 0: zeros)."""
        pfs: list[np.ndarray] = []
        sufs: list[np.ndarray] = []
        uniform = 1.0 / self.n_outcomes
        for k, lev in enumerate(self.levels):
            kk = self.keys[k]
            parent, sym = kk // self.base, kk % self.base
            if k == 0:
                suf = np.zeros(len(kk), np.int64)
                pf = lev.alpha + lev.gamma[0] * uniform
            else:
                prev = sym if k == 1 else sufs[-1][parent] * self.base + sym
                suf = np.searchsorted(self.keys[k - 1], prev)
                pf = np.where(
                    lev.seen[parent], lev.alpha + lev.gamma[parent] * pfs[-1][suf], pfs[-1][suf]
                )
            pfs.append(pf)
            sufs.append(suf)
        return pfs, sufs

    # ---- persistence -------------------------------------------------------------------------
    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Keys and counts per level (everything else is derived)."""
        out: dict[str, np.ndarray] = {}
        for k in range(self.order + 1):
            out[f"{prefix}keys{k}"] = self.keys[k]
            c = self.counts[k]
            out[f"{prefix}counts{k}"] = c.astype(np.int32 if c.max(initial=0) < 2**31 else np.int64)
        return out

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        base: int,
        order: int,
        smoother: str,
        source: str,
        prefix: str = "",
    ) -> NgramModel:
        """Rebuild and validate (ModelFileError) a model written by `to_arrays`."""
        require(isinstance(base, int) and base >= N_SPECIAL, source, "bad alphabet size")
        require(isinstance(order, int) and 0 <= order <= 64, source, "bad order")
        require(smoother in SMOOTHERS, source, f"unknown smoother {smoother!r}")
        keys, counts = [], []
        for k in range(order + 1):
            kk, cc = f"{prefix}keys{k}", f"{prefix}counts{k}"
            require(kk in arrays and cc in arrays, source, f"missing arrays for level {k}")
            key = arrays[kk]
            cnt = arrays[cc]
            require(key.ndim == 1 and key.dtype.kind == "i", source, f"{kk} must be 1-d integers")
            require(cnt.shape == key.shape and cnt.dtype.kind == "i", source, f"{cc} shape/type")
            key = key.astype(np.int64)
            cnt = cnt.astype(np.int64)
            require(bool(np.all(cnt >= 0)), source, f"{cc} has negative counts")
            require(bool(np.all(np.diff(key) > 0)), source, f"{kk} is not strictly increasing")
            n_parent = 1 if k == 0 else len(keys[-1])
            if len(key):
                require(
                    int(key[0]) >= 0 and int(key[-1]) < n_parent * base,
                    source,
                    f"{kk} out of range",
                )
            keys.append(key)
            counts.append(cnt)
        require(int(counts[0].sum()) > 0, source, "the model has no counts")
        model = cls(base, order, smoother, keys, counts)
        model.check_normalised(source)
        return model

    def check_normalised(self, source: str) -> None:
        """Every context's alpha + gamma sums to one; no negative or non-finite value."""
        for k, lev in enumerate(self.levels):
            parent = self.keys[k] // self.base
            n_ctx = len(lev.gamma)
            total = np.bincount(parent, weights=lev.alpha, minlength=n_ctx) + lev.gamma
            ok = np.all(np.isfinite(lev.alpha)) and np.all(lev.alpha >= 0)
            ok = ok and np.all(lev.gamma[lev.seen] > 0)
            ok = ok and np.allclose(total[lev.seen], 1.0, rtol=0, atol=1e-9)
            require(bool(ok), source, f"level {k} probabilities do not sum to one")


def chain_probs(
    levels: list[Level], ids: list[np.ndarray], pred: np.ndarray, n_outcomes: int
) -> np.ndarray:
    """Interpolate levels 0..len(levels)-1 at predicted positions."""
    where = np.flatnonzero(pred)
    p = np.full(len(where), 1.0 / n_outcomes)
    for k, lev in enumerate(levels):
        ctx = None if k == 0 else ids[k - 1][where - 1]
        p = apply_level(lev, p, ids[k][where], ctx)
    return p


def _bits(p: np.ndarray, extra_bits: float) -> float:
    return float(-np.sum(np.log2(p)) + extra_bits)


def fit_family(
    train: list[Segment],
    holdout: list[Segment],
    base: int,
    max_order: int,
    smoothers: tuple[str, ...] = SMOOTHERS,
    orders: list[int] | None = None,
    holdout_extra_bits: float = 0.0,
    train_bits: bool = True,
    cache: CacheSpec | None = None,
    cache_holdout: Layout | None = None,
) -> tuple[Tables, list[dict[str, Any]]]:
    """Count once, score every (order, smoother) on train and holdout.

    Returns the tables and one dict per candidate: order, smoother, train_total_bits,
    holdout_total_bits, fit_seconds, discount fallback flags. `holdout_extra_bits` is added to
    every holdout total (e.g. the cost of spelling out unseen symbols). With `cache`, every
    candidate of order >= 1 also gets a '+cache' variant (see `cache.py`); `cache_holdout` is
    the holdout laid out with each block's whole history (default: the holdout layout).
    """
    t0 = time.perf_counter()
    tables = count(train, base, max_order, keep_ids=train_bits)
    t_count = time.perf_counter() - t0
    orders = list(range(max_order + 1)) if orders is None else orders
    hold_lay = layout(holdout)
    hold_ids = lookup(tables.keys, base, hold_lay)
    hold_where = np.flatnonzero(hold_lay.pred)
    cache_hold = cache_holdout if cache_holdout is not None else hold_lay
    hold_stats = cache_stats(cache_hold, base, cache) if cache is not None else None
    train_ids = tables.ids
    train_where = None
    train_stats = None
    if train_bits:
        # train bits on the first TRAIN_BITS_POSITIONS predicted positions (a prefix keeps the
        # whole history of each scored position, which the document cache needs)
        train_where = np.flatnonzero(tables.layout.pred)
        n_all = len(train_where)
        train_where = train_where[:TRAIN_BITS_POSITIONS]
        train_scale = n_all / max(len(train_where), 1)
        if cache is not None and len(train_where):
            end = int(train_where[-1]) + 1
            tl = tables.layout
            train_cache_lay = Layout(tl.t[:end], tl.pred[:end], tl.offset[:end])
            train_stats = cache_stats(train_cache_lay, base, cache)
    n_out = base - 1
    results: list[dict[str, Any]] = []

    def ctx_of(ids, where, k):
        return None if k == 0 else ids[k - 1][where - 1]

    for smoother in smoothers:
        ts = time.perf_counter()
        p_h = np.full(len(hold_where), 1.0 / n_out)
        p_t = np.full(len(train_where), 1.0 / n_out) if train_bits else None
        fallbacks: list[bool] = []
        for k in range(max_order + 1):
            n_ctx = 1 if k == 0 else len(tables.keys[k - 1])
            if k in orders:
                top_counts = tables.raw[k]
                lev = make_level(smoother, tables.keys[k], top_counts, base, n_ctx)
                ph = apply_level(lev, p_h, hold_ids[k][hold_where], ctx_of(hold_ids, hold_where, k))
                tr = (
                    train_scale
                    * _bits(
                        apply_level(
                            lev, p_t, train_ids[k][train_where], ctx_of(train_ids, train_where, k)
                        ),
                        0.0,
                    )
                    if train_bits
                    else float("nan")
                )
                row = {
                    "order": k,
                    "smoother": smoother,
                    "cache": False,
                    "structure": structure_name(k, smoother),
                    "holdout_total_bits": _bits(ph, holdout_extra_bits),
                    "train_total_bits": tr,
                    "fit_seconds": tables.seconds[k] + (time.perf_counter() - ts),
                    "discount_fallback": bool(lev.fallback or any(fallbacks)),
                    "discounts": list(lev.discounts) if lev.discounts else None,
                }
                results.append(row)
                if cache is not None and k >= 1:
                    tc = time.perf_counter()
                    qh = apply_cache(hold_stats, ph, cache)
                    trc = float("nan")
                    if train_bits:
                        pt_k = apply_level(
                            lev, p_t, train_ids[k][train_where], ctx_of(train_ids, train_where, k)
                        )
                        trc = train_scale * _bits(apply_cache(train_stats, pt_k, cache), 0.0)
                    results.append(
                        {
                            **row,
                            "cache": True,
                            "structure": row["structure"] + "+cache",
                            "holdout_total_bits": _bits(qh, holdout_extra_bits),
                            "train_total_bits": trc,
                            "fit_seconds": row["fit_seconds"] + time.perf_counter() - tc,
                        }
                    )
            if k < max_order and k < max(orders):
                low_counts = tables.kn_counts(k, max_order) if smoother == "kn" else tables.raw[k]
                lev = make_level(smoother, tables.keys[k], low_counts, base, n_ctx)
                fallbacks.append(lev.fallback)
                p_h = apply_level(
                    lev, p_h, hold_ids[k][hold_where], ctx_of(hold_ids, hold_where, k)
                )
                if train_bits:
                    p_t = apply_level(
                        lev, p_t, train_ids[k][train_where], ctx_of(train_ids, train_where, k)
                    )
    for r in results:
        r["count_seconds"] = t_count
    tables.ids = tables.layout = None
    return tables, results
