"""Every chain of one count pass: orders 0..M and each smoother scored on train and holdout.

The training segments are counted once at the highest order M; then, per smoother, the
interpolated probability at every scored position is built level by level,

    p_k(x_i) = alpha_k(h, x_i) + gamma_k(h) p_{k-1}(x_i),

and the candidate of order k is the chain whose top level k uses raw counts while the levels
below use the counts of a model of order M (Kneser-Ney: continuation counts, which do not
depend on the top order). So each candidate costs one extra level on top of a shared chain,
and the whole family about one model. With a document cache (`cache.py`) every candidate of
order >= 1 is also scored with the cache over it. Rows are yielded as they are scored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .cache import CacheSpec, apply_cache
from .counts import Segment, Tables, count, layout, predicted, train_prefix
from .positions import Positions, cache_stats_pieces
from .smoothing import SMOOTHERS, apply_level_at, make_level
from .structures import chain_label

#: training bits are measured on at most this many evenly spaced positions
TRAIN_BITS_POSITIONS = 1_000_000


def _bits(p: np.ndarray, extra_bits: float) -> float:
    return float(-np.sum(np.log2(p)) + extra_bits)


class NgramFamily:
    """The count tables of the training segments and the holdout looked up in them."""

    def __init__(
        self,
        train: list[Segment],
        holdout: list[Segment],
        base: int,
        max_order: int,
        *,
        train_bits: bool = True,
        cache: CacheSpec | None = None,
        cache_holdout: list[Segment] | None = None,
    ) -> None:
        """`cache_holdout`: the holdout laid out with each block's whole history, for the
        cache (default: the holdout). The holdout's positions and cache statistics are laid
        out before counting, so their temporaries never coincide with the tables."""
        self.base, self.max_order, self.cache = base, max_order, cache
        self.train_bits = train_bits
        self.hold = Positions.of(layout(holdout))
        self.hold_stats = None
        if cache is not None:
            segs = cache_holdout if cache_holdout is not None else holdout
            self.hold_stats = cache_stats_pieces(segs, base, cache)
        t0 = time.perf_counter()
        self.tables = count(train, base, max_order)
        self.count_seconds = time.perf_counter() - t0
        self.train = Positions.of(layout([]))
        self.train_scale = 1.0
        self.train_stats: list[tuple[np.ndarray, ...]] | None = None
        if train_bits:
            self._train_prefix(train)

    def _train_prefix(self, train: list[Segment]) -> None:
        """Train bits on the first TRAIN_BITS_POSITIONS predicted positions (scaled to all
        positions): a prefix keeps the whole history of each scored position, which the
        document cache needs, and its n-gram ids are looked up in the tables."""
        segs = train_prefix(train, TRAIN_BITS_POSITIONS)
        self.train = Positions.of(layout(segs))
        self.train_scale = predicted(train) / max(len(self.train), 1)
        if self.cache is not None and len(self.train):
            self.train_stats = cache_stats_pieces(segs, self.base, self.cache)

    def scores(
        self,
        smoothers: tuple[str, ...] = SMOOTHERS,
        orders: list[int] | None = None,
        holdout_extra_bits: float = 0.0,
    ) -> Iterator[dict[str, Any]]:
        """One dict per candidate, as scored: order, smoother, cache, structure,
        holdout_total_bits, train_total_bits, fit_seconds, discount fallback, discounts,
        count_seconds. `holdout_extra_bits` is added to every holdout total (e.g. the cost of
        spelling out unseen symbols)."""
        orders = list(range(self.max_order + 1)) if orders is None else orders
        for smoother in smoothers:
            yield from self._chain(smoother, orders, holdout_extra_bits)

    def _chain(
        self, smoother: str, orders: list[int], extra_bits: float
    ) -> Iterator[dict[str, Any]]:
        """The candidates of one smoother, order by order on one shared chain."""
        tables, base = self.tables, self.base
        ts = time.perf_counter()
        uniform = 1.0 / (base - 1)
        p_h = np.full(len(self.hold), uniform)
        p_t = np.full(len(self.train), uniform) if self.train_bits else None
        fallbacks: list[bool] = []
        top = max(orders, default=-1)
        hold_ids = self.hold.levels(tables.keys, base)
        train_ids = self.train.levels(tables.keys, base)
        hw, tw = self.hold.where, self.train.where
        for k in range(min(top, self.max_order) + 1):
            gh, ch = next(hold_ids)  # ids at every position of level k and k - 1
            gt, ct = next(train_ids) if p_t is not None else (gh[:0], None)
            n_ctx = 1 if k == 0 else len(tables.keys[k - 1])
            if k in orders:
                lev = make_level(smoother, tables.keys[k], tables.raw[k], base, n_ctx)
                ph = apply_level_at(lev, p_h, gh, ch, hw)
                pt = apply_level_at(lev, p_t, gt, ct, tw) if p_t is not None else None
                row = {
                    "order": k,
                    "smoother": smoother,
                    "cache": False,
                    "structure": chain_label(k, smoother),
                    "holdout_total_bits": _bits(ph, extra_bits),
                    "train_total_bits": float("nan")
                    if pt is None
                    else self.train_scale * _bits(pt, 0.0),
                    "fit_seconds": tables.seconds[k] + (time.perf_counter() - ts),
                    "discount_fallback": bool(lev.fallback or any(fallbacks)),
                    "discounts": list(lev.discounts) if lev.discounts else None,
                    "count_seconds": self.count_seconds,
                }
                yield row
                if self.cache is not None and k >= 1:
                    yield self._cached(row, ph, pt, extra_bits)
                del lev, ph, pt  # (before the next level is built: one level alive at a time)
            if k < self.max_order and k < top:
                low = tables.kn_counts(k, self.max_order) if smoother == "kn" else tables.raw[k]
                lev = make_level(smoother, tables.keys[k], low, base, n_ctx)
                del low
                fallbacks.append(lev.fallback)
                p_h = apply_level_at(lev, p_h, gh, ch, hw)
                if p_t is not None:
                    p_t = apply_level_at(lev, p_t, gt, ct, tw)
                del lev

    def _cached(
        self, row: dict[str, Any], ph: np.ndarray, pt: np.ndarray | None, extra_bits: float
    ) -> dict[str, Any]:
        """The row of the same chain with the document cache over it."""
        assert self.cache is not None and self.hold_stats is not None
        tc = time.perf_counter()
        qh = apply_cache(self.hold_stats, ph, self.cache)
        trc = float("nan")
        if pt is not None and self.train_stats is not None:
            trc = self.train_scale * _bits(apply_cache(self.train_stats, pt, self.cache), 0.0)
        return {
            **row,
            "cache": True,
            "structure": row["structure"] + "+cache",
            "holdout_total_bits": _bits(qh, extra_bits),
            "train_total_bits": trc,
            "fit_seconds": row["fit_seconds"] + time.perf_counter() - tc,
        }


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
    cache_holdout: list[Segment] | None = None,
) -> tuple[Tables, list[dict[str, Any]]]:
    """Count once, score every (order, smoother) on train and holdout: the tables and every
    row of `NgramFamily.scores`."""
    family = NgramFamily(
        train,
        holdout,
        base,
        max_order,
        train_bits=train_bits,
        cache=cache,
        cache_holdout=cache_holdout,
    )
    rows = list(family.scores(smoothers, orders, holdout_extra_bits))
    return family.tables, rows
