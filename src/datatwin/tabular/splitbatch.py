"""The best splits of many tree nodes at once: `splits.best_split` for a whole level.

A tree grows a level at a time (`growth.py`), and every open node of a level is searched in
one pass: the nodes' count matrices are stacked (row = (node, present predictor state), its
child counts over the node's present child states, zero-padded to the widest node), and a
*segment* is a (node, predictor) pair instead of a predictor of one node. Candidates, their
threshold orders, cumulative counts, multiway bounds and valid-threshold ranges are then a
few array operations per level instead of per node.

Every decision is `best_split`'s, on the same floats: integer sums are exact however they
are grouped, and a float row sum is taken over exactly the node's child states (rows are
grouped by their node's width: a sum's rounding depends on its length, not on how many rows
are summed at once). The categorical orders, the pruning of categorical predictors by their
bounds (in rounds of `splits._BATCH` per node, every node of the level in the same round)
and each split's Dirichlet score stay per node and per segment, with `splits`' own code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, xlogy

from .scores import ALPHAS
from .splits import (
    _BATCH,
    NodeCounts,
    Predictors,
    Segments,
    Threshold,
    _main_axis,
    _nlogn,
    _valid_counts,
    _valid_ranges,
    make_split,
)

Split = tuple[int, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Level:
    """The searched nodes' counts stacked. Row r is node nd[r]'s global predictor state
    st[r] (of predictor seg[r]) with child counts m[r, :kx[nd[r]]] (zeros beyond); rows are
    sorted by node, then state."""

    nd: np.ndarray  # (R,) node of each row
    st: np.ndarray  # (R,) global predictor state
    seg: np.ndarray  # (R,) predictor position
    m: np.ndarray  # (R, W) int64 child counts, zero-padded
    kx: np.ndarray  # (B,) present child states per node
    qx: np.ndarray  # (B, W) each node's prior over its present child states
    totals: np.ndarray  # (B, W) each node's child counts
    n: np.ndarray  # (B,) rows per node
    local: np.ndarray  # (R,) each row's state within its predictor

    @classmethod
    def of(cls, ncs: list[NodeCounts], qs: list[np.ndarray], pr: Predictors) -> _Level:
        kx = np.array([len(nc.xs) for nc in ncs], dtype=np.int64)
        sizes = np.array([len(nc.states) for nc in ncs], dtype=np.int64)
        width = int(kx.max())
        nd = np.repeat(np.arange(len(ncs)), sizes)
        st = np.concatenate([nc.states for nc in ncs])
        m = np.zeros((len(st), width), dtype=np.int64)
        qx = np.zeros((len(ncs), width))
        a = 0
        for i, (nc, q) in enumerate(zip(ncs, qs, strict=True)):
            m[a : a + len(nc.states), : kx[i]] = nc.m
            qx[i, : kx[i]] = q[nc.xs]
            a += len(nc.states)
        seg = pr.position[st]
        first = np.flatnonzero(seg == 0)  # every node's rows of predictor 0: its totals
        starts = np.searchsorted(nd[first], np.arange(len(ncs)))
        totals = np.add.reduceat(m[first], starts, axis=0)
        local = st - pr.off[seg]
        return cls(nd, st, seg, m, kx, qx, totals, totals.sum(axis=1), local)


def _by_width(rows: np.ndarray, widths: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """`rows` grouped by their width, as (width, rows)."""
    return [(int(w), rows[widths == w]) for w in np.unique(widths)]


@dataclass(frozen=True)
class _Found:
    """A scan's best threshold per node that has one (`nodes`, increasing), each node's
    valid thresholds (all nodes), and what `threshold` needs to describe a best one."""

    nodes: np.ndarray
    gain: np.ndarray
    pos: np.ndarray
    at_row: np.ndarray  # index into `rows` of each best threshold
    n_valid: np.ndarray
    rows: np.ndarray
    seg_start: np.ndarray  # (R',) first index into `rows` of each row's segment
    left: np.ndarray
    right: np.ndarray

    def threshold(self, lv: _Level, j: int) -> Threshold:
        """Node nodes[j]'s best as `splits._scan` describes it."""
        i, node = int(self.at_row[j]), int(self.nodes[j])
        a = int(self.seg_start[i])
        end = int(np.searchsorted(self.seg_start, a, side="right"))
        w = int(lv.kx[node])
        order = lv.local[self.rows[a:end]]
        return Threshold(
            float(self.gain[j]), int(self.pos[j]), order, i - a, self.left[i, :w], self.right[i, :w]
        )


def _scan(lv: _Level, rows: np.ndarray, sizes: np.ndarray, min_leaf: int) -> _Found:
    """`splits._scan` of every node at once: `rows` are segments laid end to end (sizes
    `sizes`), by node, then predictor position, each in threshold order."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    cum = np.cumsum(lv.m[rows], axis=0)
    before = np.zeros((len(sizes), cum.shape[1]), dtype=cum.dtype)
    before[1:] = cum[starts[1:] - 1]
    left = cum - np.repeat(before, sizes, axis=0)
    node = lv.nd[rows]
    right = lv.totals[node] - left
    n_left = left.sum(axis=1)
    n_right = lv.n[node] - n_left
    last = np.zeros(len(rows), dtype=bool)
    last[starts + sizes - 1] = True
    valid = np.flatnonzero(~last & (n_left >= min_leaf) & (n_right >= min_leaf))
    top = int(lv.n.max())
    gain = np.full(len(rows), -np.inf)
    for w, r in _by_width(valid, lv.kx[node[valid]]):
        gain[r] = (
            _nlogn(left[r, :w], top).sum(axis=1)
            - _nlogn(n_left[r], top)
            + _nlogn(right[r, :w], top).sum(axis=1)
            - _nlogn(n_right[r], top)
        )
    n_valid = np.bincount(node[valid], minlength=len(lv.kx))
    at = _first_max(gain[valid], node[valid])
    best = valid[at]
    seg_start = np.repeat(starts, sizes)
    return _Found(
        node[best], gain[best], lv.seg[rows[best]], best, n_valid, rows, seg_start, left, right
    )


def _first_max(gain: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Index of the first maximum of each run of equal `group` values (sorted groups)."""
    if not len(gain):
        return np.zeros(0, dtype=np.int64)
    run = _run_starts(group)
    run_id = np.repeat(np.arange(len(run)), np.diff(np.append(run, len(group))))
    hits = np.flatnonzero(gain == np.maximum.reduceat(gain, run)[run_id])
    return hits[_run_starts(run_id[hits])]


def _run_starts(a: np.ndarray) -> np.ndarray:
    """Where each run of equal values of `a` starts."""
    return np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1]))) if len(a) else a[:0]


class _Best:
    """Each node's best threshold so far and its valid thresholds counted."""

    def __init__(self, lv: _Level) -> None:
        b = len(lv.kx)
        self.gain = np.full(b, -np.inf)
        self.pos = np.zeros(b, dtype=np.int64)
        self.has = np.zeros(b, dtype=bool)
        self.thr: list[Threshold | None] = [None] * b
        self.n_valid = np.zeros(b, dtype=np.int64)

    def merge(self, lv: _Level, found: _Found) -> None:
        """`splits._better` per node: the higher gain, a tie to the lower position."""
        self.n_valid += found.n_valid
        f, g, p = found.nodes, found.gain, found.pos
        win = ~self.has[f] | (g > self.gain[f]) | ((g == self.gain[f]) & (p < self.pos[f]))
        for j in np.flatnonzero(win):
            i = int(f[j])
            self.thr[i] = found.threshold(lv, int(j))
            self.gain[i], self.pos[i], self.has[i] = g[j], p[j], True


@dataclass(frozen=True)
class _Segs:
    """Segments of (node, predictor) over rows of a `_Level` (in state order)."""

    rows: np.ndarray
    start: np.ndarray
    size: np.ndarray
    node: np.ndarray

    @classmethod
    def of(cls, lv: _Level, rows: np.ndarray) -> _Segs:
        key = lv.nd[rows] * (int(lv.seg.max()) + 1) + lv.seg[rows]
        start = _run_starts(key)
        size = np.diff(np.append(start, len(rows)))
        return cls(rows, start, size, lv.nd[rows[start]])

    def rows_of(self, s: int) -> np.ndarray:
        return self.rows[self.start[s] : self.start[s] + self.size[s]]

    def laid(self, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The chosen segments' rows end to end, and their sizes."""
        if not chosen:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([self.rows_of(s) for s in chosen]), self.size[chosen]


def _candidates(lv: _Level, pr: Predictors) -> tuple[np.ndarray, np.ndarray, _Segs]:
    """`splits._candidates` per node: the cheap rows in threshold order with their segment
    sizes, and the costly (categorical) segments in state order."""
    n_pred = int(lv.seg.max()) + 1
    key = lv.nd * n_pred + lv.seg
    present = np.bincount(key, minlength=len(lv.kx) * n_pred)[key]
    ordered = pr.ordered[lv.seg]
    several = present >= 2
    cheap = several & (ordered | (present == 2) | (lv.kx[lv.nd] == 2))
    width = lv.kx[lv.nd] - 1
    rows = np.arange(len(lv.nd))
    n = lv.m.sum(axis=1)
    last = (lv.m[rows, width] + lv.qx[lv.nd, width]) / (n + 1.0)  # as `category_order`
    order_key = np.where(ordered, pr.rank[lv.st], last)
    ch = np.flatnonzero(cheap)
    ch = ch[np.lexsort((order_key[ch], key[ch]))]
    _, sizes = np.unique(key[ch], return_counts=True)
    return ch, sizes, _Segs.of(lv, np.flatnonzero(several & ~cheap))


def _bounds(lv: _Level, costly: _Segs) -> np.ndarray:
    """`splits._multiway_gains` of every costly segment."""
    if not len(costly.start):
        return np.zeros(0)
    per_row = np.zeros(len(costly.rows))
    idx = np.arange(len(costly.rows))
    for w, r in _by_width(idx, lv.kx[lv.nd[costly.rows]]):
        block = lv.m[costly.rows[r], :w]
        n = block.sum(axis=1)
        per_row[r] = xlogy(block, block).sum(axis=1) - xlogy(n, n)
    return np.add.reduceat(per_row, costly.start)


def _ordered_rows(lv: _Level, costly: _Segs, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The chosen costly segments each in `category_order`, laid end to end.

    `category_order` of a segment with three or more states and child states, its
    elementwise steps (counts, smoothed distributions, their weights) done for every
    chosen segment at once; its sums, Gram matrix, eigenvector and projection per segment
    on arrays of the segment's own shape, so the same floats."""
    rows, sizes = costly.laid(chosen)
    if not len(rows):
        return rows, sizes
    node = costly.node[chosen]
    starts = np.concatenate(([0], np.cumsum(sizes[:-1])))
    block = lv.m[rows]
    n = block.sum(axis=1)
    p = (block + lv.qx[np.repeat(node, sizes)]) / (n + 1.0)[:, None]
    weighted = n[:, None] * p
    root_n = np.sqrt(n)
    n_sum = np.add.reduceat(n, starts)
    parts = []
    for s, (a, size) in enumerate(zip(starts.tolist(), sizes.tolist(), strict=True)):
        w, b = int(lv.kx[node[s]]), a + size
        centred = p[a:b, :w] - (weighted[a:b, :w].sum(axis=0) / n_sum[s])[None, :]
        v = _main_axis(root_n[a:b, None] * centred)
        v = v if v[np.argmax(np.abs(v))] > 0 else -v  # a fixed sign: reproducible orders
        parts.append(rows[a:b][np.argsort(centred @ v, kind="stable")])
    return np.concatenate(parts), sizes


class _Rounds:
    """The pruned search over categorical segments (`splits._search`), every node at once:
    per node, its segments in decreasing order of bound, `_BATCH` per round, those whose
    bound falls below the node's best (less a float margin) skipped for good."""

    def __init__(self, costly: _Segs, bound: np.ndarray, n_nodes: int) -> None:
        self.bound = bound
        self.todo: list[list[int]] = [[] for _ in range(n_nodes)]
        self.skipped: list[list[int]] = [[] for _ in range(n_nodes)]
        if len(costly.start):
            first = _run_starts(costly.node)
            for a, b in zip(first, np.append(first[1:], len(costly.start)), strict=True):
                by_bound = a + np.argsort(-bound[a:b], kind="stable")
                self.todo[int(costly.node[a])] = [int(s) for s in by_bound]

    def next(self, best: _Best) -> list[int]:
        """This round's segments, by node, each node's in increasing position."""
        chosen: list[int] = []
        for i, todo in enumerate(self.todo):
            if not todo:
                continue
            if best.has[i]:
                g = best.gain[i]
                floor = g - 1e-9 * (1.0 + abs(g))  # float safety: keep ties
                self.skipped[i] += [s for s in todo if self.bound[s] < floor]
                todo = [s for s in todo if self.bound[s] >= floor]
            chosen += sorted(todo[:_BATCH])
            self.todo[i] = todo[_BATCH:]
        return chosen


def best_splits(
    ncs: list[NodeCounts], qs: list[np.ndarray], pr: Predictors, k: int, min_leaf: int
) -> list[Split | None]:
    """`splits.best_split(ncs[i], pr, k, qs[i], min_leaf)` of every node i of a level."""
    out: list[Split | None] = [None] * len(ncs)
    live = [i for i, nc in enumerate(ncs) if len(nc.xs) >= 2]
    if not live:
        return out
    lv = _Level.of([ncs[i] for i in live], [qs[i] for i in live], pr)
    cheap, sizes, costly = _candidates(lv, pr)
    best = _Best(lv)
    best.merge(lv, _scan(lv, cheap, sizes, min_leaf))
    rounds = _Rounds(costly, _bounds(lv, costly), len(live))
    while chosen := rounds.next(best):
        best.merge(lv, _scan(lv, *_ordered_rows(lv, costly, chosen), min_leaf))
    lo, hi, lo_r, hi_r = _skipped_ranges(lv, costly, rounds, best.n_valid, min_leaf)
    found = [b for b, thr in enumerate(best.thr) if thr is not None]
    alphas, gains = _split_scores(lv, best, found)
    for b, alpha, gain in zip(found, alphas, gains, strict=True):
        i = live[b]
        thr = best.thr[b]
        assert thr is not None

        def pays(gain: float, b: int = b) -> bool:  # `splits._pays`, from the ranges
            if gain > np.log(int(hi[b])):
                return True
            if gain <= np.log(int(lo[b])):
                return False
            open_ = [s for s in rounds.skipped[b] if lo_r[s] != hi_r[s]]
            exact = int(lo[b]) - int(sum(int(lo_r[s]) for s in open_))
            return gain > np.log(exact + _exact_count(lv, costly, open_, b, min_leaf))

        out[i] = make_split(thr, ncs[i].xs, pr, k, qs[i], float(alpha), float(gain), pays)
    return out


def _split_scores(lv: _Level, best: _Best, nodes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """`scores.bde_alpha` (α and score) and the score's gain over `marginal_loglik` of each
    node's best split (`splits.split_family`), nodes with as many seen cells scored
    together: every float is elementwise or a sum over one node's cells, as per node."""
    alphas, gains = np.zeros(len(nodes)), np.zeros(len(nodes))
    if not nodes:
        return alphas, gains
    width = lv.m.shape[1]
    sides = np.zeros((len(nodes), 2 * width), dtype=np.int64)  # left counts, right counts
    for r, b in enumerate(nodes):
        thr = best.thr[b]
        assert thr is not None
        w = len(thr.left)
        sides[r, :w], sides[r, width : width + w] = thr.left, thr.right
    xs = np.tile(np.arange(width), 2)[None, :]  # a cell's child state (index into q[xs])
    seen = sides > 0
    cells = seen.sum(axis=1)
    cfg_n = np.stack([sides[:, :width].sum(axis=1), sides[:, width:].sum(axis=1)], axis=1)
    q = np.stack([lv.qx[b] for b in nodes])  # each node's prior over its present states
    a = ALPHAS[:, None, None]
    for c, rows in _by_width(np.arange(len(nodes)), cells):
        pick = seen[rows]
        fam_n = sides[rows][pick].reshape(len(rows), c)
        px = np.take_along_axis(
            q[rows], np.broadcast_to(xs, pick.shape)[pick].reshape(len(rows), c), axis=1
        )
        ap = a * px[None]
        s = np.sum(gammaln(fam_n[None] + ap) - gammaln(ap), axis=2) + np.sum(
            gammaln(a) - gammaln(cfg_n[rows][None] + a), axis=2
        )
        marginal = np.sum(xlogy(fam_n, px), axis=1)
        s = np.concatenate((s.T, marginal[:, None]), axis=1)
        i = np.argmax(s, axis=1)
        top = s[np.arange(len(rows)), i]
        score = top + np.log(np.mean(np.exp(s - top[:, None]), axis=1))
        alphas[rows] = np.where(i < len(ALPHAS), ALPHAS[np.minimum(i, len(ALPHAS) - 1)], np.inf)
        gains[rows] = score - marginal
    return alphas, gains


def _skipped_ranges(
    lv: _Level, costly: _Segs, rounds: _Rounds, n_valid: np.ndarray, min_leaf: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fewest and most valid thresholds of each node (its counted ones plus its skipped
    segments' `_valid_ranges`), and those ranges per costly segment."""
    n_seg = len(costly.start)
    skipped = sorted(s for sk in rounds.skipped for s in sk)
    lo_r, hi_r = np.zeros(n_seg, dtype=np.int64), np.zeros(n_seg, dtype=np.int64)
    if skipped:
        rows, sizes = costly.laid(skipped)
        segs = Segments(costly.node[skipped], sizes, lv.local[rows], lv.m[rows])
        lo_r[skipped], hi_r[skipped] = _valid_ranges(segs, min_leaf)
    b = len(lv.kx)
    lo = n_valid + np.bincount(costly.node, weights=lo_r, minlength=b).astype(np.int64)
    hi = n_valid + np.bincount(costly.node, weights=hi_r, minlength=b).astype(np.int64)
    return lo, hi, lo_r, hi_r


def _exact_count(lv: _Level, costly: _Segs, open_: list[int], b: int, min_leaf: int) -> int:
    """Valid thresholds of node b's segments `open_`, each in its category order."""
    if not open_:
        return 0
    rows, sizes = _ordered_rows(lv, costly, open_)
    segs = Segments(np.arange(len(open_)), sizes, lv.local[rows], lv.m[rows])
    return _valid_counts(segs, lv.totals[b], min_leaf)
