"""The best binary split of one tree node, all predictors scored at once: the definition
`splitbatch.py` computes for every node of a level (`growth.py`).

A node's counts n_ix (predictor state i, child state x) arrive as one matrix over the
present states of every predictor, in global state numbering (predictor j's states offset
by the states of the predictors before it). Each predictor is a contiguous *segment* of its
rows. A binary split sends a prefix of a segment's states, in threshold order, to the left;
its gain is the log-likelihood ratio
G = Σ_sides (Σ_x n_sx log n_sx − n_s log n_s)   (the parent's term left out),
computed for every threshold of every segment from cumulative counts. The threshold order
of an ordered column is its rank order; a categorical column's is the order of its states
along the main axis of their child distributions (the optimal order for a two-state child,
a good one otherwise), found by an eigenvector per predictor -- the only per-predictor work,
done only while the predictor's multiway gain Σ_i (Σ_x n_ix log n_ix − n_i log n_i), an
upper bound of any of its binary splits, could beat the best split found.

The best split is kept when its Dirichlet marginal likelihood beats not splitting by more
than log(number of valid thresholds over all predictors): a uniform prior over the splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import lapack
from scipy.special import xlogy

from .counting import FamilyCounts
from .scores import bde_alpha, marginal_loglik

_SCAN_CELLS = 1 << 21  # threshold cells scored at once
_BATCH = 4  # categorical predictors ordered at once, in decreasing order of their bound


@dataclass(frozen=True)
class Predictors:
    """A tree's predictors in global state numbering: predictor j's states are
    off[j] .. off[j + 1] − 1."""

    off: np.ndarray  # (P + 1,) first global state of each predictor, then the total
    position: np.ndarray  # (total,) the predictor of each global state
    rank: np.ndarray  # (total,) threshold rank of each state of an ordered predictor, else 0
    ordered: np.ndarray  # (P,) whether the predictor splits by its ranks
    ranks: list[np.ndarray | None]  # per predictor: its states' ranks, None if categorical

    @classmethod
    def of(cls, cards: list[int], ranks: list[np.ndarray | None]) -> Predictors:
        off = np.r_[0, np.cumsum(cards)].astype(np.int64)
        position = np.repeat(np.arange(len(cards)), cards)
        rank = np.zeros(int(off[-1]))
        for j, r in enumerate(ranks):
            if r is not None:
                rank[off[j] : off[j + 1]] = r
        ordered = np.array([r is not None for r in ranks], dtype=bool)
        return cls(off, position, rank, ordered, list(ranks))


@dataclass(frozen=True)
class NodeCounts:
    """Counts of (predictor state, child state) among one node's rows."""

    states: np.ndarray  # (s,) the global predictor states present, sorted
    xs: np.ndarray  # (kx,) the child states present, sorted
    m: np.ndarray  # (s, kx) int64 counts


@dataclass(frozen=True)
class Segments:
    """Predictors' present states in threshold order, concatenated: segment g is rows
    starts[g] .. starts[g] + sizes[g] − 1, of predictor pos[g]."""

    pos: np.ndarray  # (g,) predictor position of each segment, increasing
    sizes: np.ndarray  # (g,) states per segment
    states: np.ndarray  # (r,) each row's local state of its predictor
    block: np.ndarray  # (r, kx) each row's child counts

    starts: np.ndarray = field(init=False)  # (g,) first row of each segment

    def __post_init__(self) -> None:
        starts = np.zeros(len(self.sizes), dtype=np.int64)
        np.cumsum(self.sizes[:-1], out=starts[1:])
        object.__setattr__(self, "starts", starts)

    def take(self, chosen: np.ndarray) -> Segments:
        """The segments at indices `chosen` (increasing)."""
        picked = np.zeros(len(self.pos), dtype=bool)
        picked[chosen] = True
        keep = np.repeat(picked, self.sizes)
        return Segments(self.pos[chosen], self.sizes[chosen], self.states[keep], self.block[keep])


@dataclass(frozen=True)
class Threshold:
    """A scanned split: its gain, predictor position, the segment's states in threshold
    order, the last state that goes left (index into `order`), and both sides' counts."""

    gain: float
    pos: int
    order: np.ndarray
    at: int
    left: np.ndarray
    right: np.ndarray


def _better(a: Threshold | None, b: Threshold | None) -> Threshold | None:
    """The higher gain; a tie to the lower predictor position."""
    if a is None or (b is not None and (b.gain > a.gain or (b.gain == a.gain and b.pos < a.pos))):
        return b
    return a


def _segments(
    rows: np.ndarray, seg: np.ndarray, key: np.ndarray, nc: NodeCounts, pr: Predictors
) -> Segments:
    """The present-state rows `rows` as segments, each sorted by `key` (stable)."""
    perm = rows[np.lexsort((key[rows], seg[rows]))]
    pos, sizes = np.unique(seg[perm], return_counts=True)
    return Segments(pos, sizes, nc.states[perm] - pr.off[seg[perm]], nc.m[perm])


_TABLE_MAX = 1 << 22  # n log n tabulated for counts up to this
_NLOGN = np.zeros(1)


def _nlogn(counts: np.ndarray, top: int) -> np.ndarray:
    """n log n of integer counts (at most `top`): looked up in a table of `xlogy` values
    when `top` is small enough (the same floats, without a logarithm per cell)."""
    global _NLOGN
    if top > _TABLE_MAX:
        return xlogy(counts, counts)
    if len(_NLOGN) <= top:
        n = np.arange(max(top + 1, 2 * len(_NLOGN)), dtype=float)
        _NLOGN = xlogy(n, n)
    return _NLOGN[counts]


def _scan(cands: Segments, totals: np.ndarray, min_leaf: int) -> tuple[Threshold | None, int]:
    """The best threshold of every segment (row i: "states up to i go left"), ties to the
    earlier row, and the number of valid thresholds (both sides ≥ min_leaf rows)."""
    if not len(cands.pos):
        return None, 0
    sizes, starts = cands.sizes, cands.starts
    cum = np.cumsum(cands.block, axis=0)
    before = np.zeros((len(sizes), cum.shape[1]), dtype=cum.dtype)
    before[1:] = cum[starts[1:] - 1]
    left = cum - np.repeat(before, sizes, axis=0)  # cumulative counts within each segment
    right = totals[None, :] - left
    n_left = left.sum(axis=1)
    n = int(totals.sum())
    n_right = n - n_left
    last = np.zeros(len(left), dtype=bool)
    last[starts + sizes - 1] = True  # "everything goes left" is no split
    valid = ~last & (n_left >= min_leaf) & (n_right >= min_leaf)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None, 0
    gain = (
        _nlogn(left, n).sum(axis=1)
        - _nlogn(n_left, n)
        + _nlogn(right, n).sum(axis=1)
        - _nlogn(n_right, n)
    )
    gain[~valid] = -np.inf
    i = int(np.argmax(gain))
    g = int(np.searchsorted(starts, i, side="right")) - 1
    at = i - int(starts[g])
    order = cands.states[starts[g] : starts[g] + sizes[g]]
    return Threshold(float(gain[i]), int(cands.pos[g]), order, at, left[i], right[i]), n_valid


def _scan_all(cands: Segments, totals: np.ndarray, min_leaf: int) -> tuple[Threshold | None, int]:
    """`_scan` in groups of whole segments of about `_SCAN_CELLS` cells: bounded memory,
    the same result (cumulative counts are exact integers)."""
    cells = np.cumsum(cands.sizes) * cands.block.shape[1]
    group = np.minimum(cells // _SCAN_CELLS, len(cells))
    if not len(cells) or group[-1] == 0:
        return _scan(cands, totals, min_leaf)
    best, n_valid = None, 0
    for g in np.unique(group):
        found, n = _scan(cands.take(np.flatnonzero(group == g)), totals, min_leaf)
        best, n_valid = _better(best, found), n_valid + n
    return best, n_valid


def _valid_counts(cands: Segments, totals: np.ndarray, min_leaf: int) -> int:
    """Valid thresholds of the segments in their order (`_scan`'s count, without gains)."""
    if not len(cands.pos):
        return 0
    n = cands.block.sum(axis=1)
    starts, sizes = cands.starts, cands.sizes
    cum = np.cumsum(n)
    n_left = cum - np.repeat(np.concatenate(([0], cum[starts[1:] - 1])), sizes)
    last = np.zeros(len(n), dtype=bool)
    last[starts + sizes - 1] = True
    total = int(totals.sum())
    return int(np.sum(~last & (n_left >= min_leaf) & (total - n_left >= min_leaf)))


def _valid_ranges(cands: Segments, min_leaf: int) -> tuple[np.ndarray, np.ndarray]:
    """Fewest and most valid thresholds of each segment over all orders of its states: a
    prefix of t + 1 states holds between the t + 1 smallest and the t + 1 largest counts."""
    n = cands.block.sum(axis=1)
    seg = np.repeat(np.arange(len(cands.sizes)), cands.sizes)
    n = n[np.lexsort((n, seg))]  # ascending within each segment
    starts, sizes = cands.starts, cands.sizes
    cum = np.cumsum(n)
    base = np.repeat(np.concatenate(([0], cum[starts[1:] - 1])), sizes)
    small = cum - base  # sum of the t + 1 smallest, t = row within segment
    total = np.repeat(small[starts + sizes - 1], sizes)
    t = np.arange(len(n)) - np.repeat(starts, sizes)
    # the t + 1 largest: the total minus the (size − t − 1) smallest
    rest = np.repeat(sizes, sizes) - t - 1
    idx = np.repeat(starts, sizes) + rest - 1
    large = total - np.where(rest > 0, small[np.maximum(idx, 0)], 0)
    inner = t < np.repeat(sizes, sizes) - 1
    lo_ok = inner & (small >= min_leaf) & (total - large >= min_leaf)
    hi_ok = inner & (large >= min_leaf) & (total - small >= min_leaf)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    return (
        np.add.reduceat(lo_ok.astype(np.int64), bounds[:-1]),
        np.add.reduceat(hi_ok.astype(np.int64), bounds[:-1]),
    )


_LWORK: dict[int, tuple[int, int]] = {}


def _top_eigenvector(a: np.ndarray) -> np.ndarray:
    """The eigenvector of the largest eigenvalue of the symmetric `a`: LAPACK's dsyevr for
    that one eigenvector with its queried workspace (what `scipy.linalg.eigh` with
    `subset_by_index` calls, without its checks; the same floats)."""
    n = a.shape[0]
    if n not in _LWORK:
        query = lapack.dsyevr_lwork(n=n, lower=1)
        _LWORK[n] = (int(query[0]), int(query[1]))
    lwork, liwork = _LWORK[n]
    _, v, _, _, info = lapack.dsyevr(
        a, compute_v=1, range="I", il=n, iu=n, lower=1, lwork=lwork, liwork=liwork
    )
    if info != 0:
        raise np.linalg.LinAlgError(f"dsyevr failed (info={info})")
    return v[:, 0]


def _main_axis(d: np.ndarray) -> np.ndarray:
    """The top right singular vector of D (s × k): the top eigenvector of the smaller Gram
    matrix, DᵀD, or DDᵀ (then v ∝ Dᵀu)."""
    s, k = d.shape
    if k <= s:
        return _top_eigenvector(d.T @ d)
    v = d.T @ _top_eigenvector(d @ d.T)
    return v / max(float(np.linalg.norm(v)), 1e-300)


def category_order(block: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Order of a categorical predictor's states (rows of `block`, child counts) along
    the main axis of their smoothed child distributions.

    With p_i = (n_i· + q)/(n_i + 1) and p̄ the n-weighted mean, the main axis v is the top
    right singular vector of D = diag(√n)(P − p̄); states are sorted by (p_i − p̄)·v. Two
    states, or a two-state child: sorted by p_i of the last child state."""
    n = block.sum(axis=1)
    p = (block + q[None, :]) / (n + 1.0)[:, None]
    if len(block) == 2 or block.shape[1] == 2:  # one threshold only, or a two-state child
        return np.argsort(p[:, -1], kind="stable")
    centred = p - ((n[:, None] * p).sum(axis=0) / n.sum())[None, :]
    v = _main_axis(np.sqrt(n)[:, None] * centred)
    v = v if v[np.argmax(np.abs(v))] > 0 else -v  # a fixed sign: reproducible orders
    return np.argsort(centred @ v, kind="stable")


def _ordered(costly: Segments, chosen: np.ndarray, qx: np.ndarray) -> Segments:
    """The categorical segments at `chosen`, each in `category_order`."""
    part = costly.take(chosen)
    if not len(part.pos):
        return part
    states, blocks = [], []
    for start, size in zip(part.starts, part.sizes, strict=True):
        block = part.block[start : start + size]
        o = category_order(block, qx)
        states.append(part.states[start : start + size][o])
        blocks.append(block[o])
    return Segments(part.pos, part.sizes, np.concatenate(states), np.concatenate(blocks))


def _multiway_gains(cands: Segments) -> np.ndarray:
    """Σ_i (Σ_x n_ix log n_ix − n_i log n_i) per segment: the gain of splitting into every
    state, at least that of any binary split (merging states never raises a likelihood)."""
    n = cands.block.sum(axis=1)
    per_row = xlogy(cands.block, cands.block).sum(axis=1) - xlogy(n, n)
    return np.add.reduceat(per_row, np.r_[0, np.cumsum(cands.sizes)[:-1]])


def _candidates(nc: NodeCounts, pr: Predictors, qx: np.ndarray) -> tuple[Segments, Segments]:
    """The predictors with two or more states present, as (cheap, costly) segments: cheap
    ones already in threshold order (ordered columns by rank; two states, or a two-state
    child, by the smoothed probability of the last child state), costly ones (categorical)
    still to order, in state order."""
    seg = pr.position[nc.states]
    present = np.bincount(seg, minlength=len(pr.ordered))
    several = present[seg] >= 2
    cheap = several & (pr.ordered[seg] | (present[seg] == 2) | (len(nc.xs) == 2))
    n = nc.m.sum(axis=1)
    last = (nc.m[:, -1] + qx[-1]) / (n + 1.0)  # as `category_order` computes it
    key = np.where(pr.ordered[seg], pr.rank[nc.states], last)
    costly = np.flatnonzero(several & ~cheap)
    return _segments(np.flatnonzero(cheap), seg, key, nc, pr), _segments(
        costly, seg, np.zeros(len(seg)), nc, pr
    )


@dataclass(frozen=True)
class _Search:
    """The best threshold found, the valid thresholds counted on the way, and the
    categorical segments never ordered (their bounds could not beat the best)."""

    best: Threshold | None
    n_valid: int
    skipped: Segments


def _search(cheap: Segments, costly: Segments, totals, qx, min_leaf: int) -> _Search:
    """The best split over all candidates, ordering a categorical predictor only while its
    multiway gain could beat the best found (in batches, in decreasing order of bound)."""
    best, n_valid = _scan_all(cheap, totals, min_leaf)
    bound = _multiway_gains(costly) if len(costly.pos) else np.zeros(0)
    todo = list(np.argsort(-bound, kind="stable"))
    skipped: list[int] = []
    while todo:
        if best is not None:
            floor = best.gain - 1e-9 * (1.0 + abs(best.gain))  # float safety: keep ties
            skipped += [i for i in todo if bound[i] < floor]
            todo = [i for i in todo if bound[i] >= floor]
        batch, todo = np.array(sorted(todo[:_BATCH]), dtype=np.int64), todo[_BATCH:]
        if not len(batch):
            break
        found, n = _scan_all(_ordered(costly, batch, qx), totals, min_leaf)
        best, n_valid = _better(best, found), n_valid + n
    return _Search(best, n_valid, costly.take(np.array(sorted(skipped), dtype=np.int64)))


def _pays(gain: float, found: _Search, totals, qx, min_leaf: int) -> bool:
    """gain > log(number of valid thresholds of every predictor), the skipped predictors'
    counted exactly only when their bounds leave the answer open."""
    skipped = found.skipped
    lo_r, hi_r = _valid_ranges(skipped, min_leaf) if len(skipped.pos) else (np.zeros(0),) * 2
    lo, hi = found.n_valid + int(lo_r.sum()), found.n_valid + int(hi_r.sum())
    if gain > np.log(hi):
        return True
    if gain <= np.log(lo):
        return False
    open_ = np.flatnonzero(lo_r != hi_r)
    exact = lo - int(lo_r[open_].sum())
    return gain > np.log(exact + _valid_counts(_ordered(skipped, open_, qx), totals, min_leaf))


def best_split(nc: NodeCounts, pr: Predictors, k: int, q: np.ndarray, min_leaf: int):
    """The best binary split of a node, or None when no split pays for itself.

    Returns (predictor position, goes-left mask over its states, left and right child
    distributions, each the side's counts shrunk towards q with the Dirichlet α)."""
    if len(nc.xs) < 2:
        return None
    qx = q[nc.xs]
    cheap, costly = _candidates(nc, pr, qx)
    totals = nc.m[: int(np.searchsorted(nc.states, pr.off[1]))].sum(axis=0)
    found = _search(cheap, costly, totals, qx, min_leaf)
    if found.best is None:
        return None
    return finish_split(
        found.best, nc.xs, pr, k, q, lambda gain: _pays(gain, found, totals, qx, min_leaf)
    )


def finish_split(
    best: Threshold,
    xs: np.ndarray,
    pr: Predictors,
    k: int,
    q: np.ndarray,
    pays: Callable[[float], bool],
):
    """The best threshold of a node made a split, or None: its Dirichlet marginal likelihood
    (α from the `bde` grid) must beat the marginal's by what `pays` asks (the log of the
    number of valid thresholds). xs: the node's present child states."""
    fc = split_family(best.left, best.right, xs)
    score, alpha = bde_alpha(fc, q)
    return make_split(best, xs, pr, k, q, alpha, score - marginal_loglik(fc, q), pays)


def split_family(left: np.ndarray, right: np.ndarray, xs: np.ndarray) -> FamilyCounts:
    """The counts of a split as a family: configurations left, right; their child states
    seen (left's, then right's, each in state order)."""
    lc, rc = left.astype(np.int64), right.astype(np.int64)
    return FamilyCounts(
        np.array([0, 1]),
        np.array([lc.sum(), rc.sum()]),
        np.repeat(np.array([0, 1]), [np.count_nonzero(lc), np.count_nonzero(rc)]),
        np.concatenate((xs[lc > 0], xs[rc > 0])),
        np.concatenate((lc[lc > 0], rc[rc > 0])),
    )


def make_split(
    best: Threshold,
    xs: np.ndarray,
    pr: Predictors,
    k: int,
    q: np.ndarray,
    alpha: float,
    gain: float,
    pays: Callable[[float], bool],
):
    """`finish_split` given the split's α and its score's gain over the marginal."""
    if not np.isfinite(alpha) or not pays(gain):
        return None
    lc, rc = best.left.astype(np.int64), best.right.astype(np.int64)
    mask = _goes_left(best, pr, lc.sum() >= rc.sum())
    full_l, full_r = np.zeros(k), np.zeros(k)
    full_l[xs], full_r[xs] = lc, rc
    lq = (full_l + alpha * q) / (lc.sum() + alpha)
    rq = (full_r + alpha * q) / (rc.sum() + alpha)
    return best.pos, mask, lq, rq


def _goes_left(best: Threshold, pr: Predictors, left_larger: bool) -> np.ndarray:
    """The goes-left flag of each state of the split's predictor: a threshold sends every
    state ranked at or below it left; a subset of categories sends the states not seen at
    this node the larger way."""
    j = best.pos
    ranks = pr.ranks[j]
    if ranks is not None:
        return ranks <= ranks[best.order[best.at]]
    mask = np.zeros(int(pr.off[j + 1] - pr.off[j]), dtype=bool)
    mask[best.order[: best.at + 1]] = True
    unseen = np.ones(len(mask), dtype=bool)
    unseen[best.order] = False
    mask[unseen] = left_larger
    return mask
