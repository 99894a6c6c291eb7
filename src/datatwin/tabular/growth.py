"""Growing decision-tree tables (`trees.TreeCPT`) greedily from counts.

Each node's candidate splits are scored at once with cumulative counts of
(predictor state, child state): every threshold of an ordered column, and for a categorical
column every threshold of its states ordered along the main axis of their child
distributions. A split's gain is its log-likelihood ratio
G = Σ_sides (Σ_x n_sx log n_sx − n_s log n_s) (the parent's term left out); the best one
is kept when its Dirichlet marginal likelihood beats not splitting by more than
log(number of valid thresholds). Counts are kept per node while dense (a child's are its
parent's minus its smaller sibling's), and a categorical column whose multiway gain
Σ_i (Σ_x n_ix log n_ix − n_i log n_i) -- an upper bound of any binary split of its states --
is below the best gain found is not ordered at all: the same splits, found faster.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh
from scipy.special import xlogy

from .. import progress
from ..core.parallel import parallel_map
from .bayesnet import DiscreteBayesNet, marginal_prior
from .counting import FamilyCounter, FamilyCounts
from .protocols import ConditionalTable
from .scores import bde_alpha, marginal_loglik
from .trees import TreeCPT

MIN_LEAF = 5
MAX_DEPTH = 40
_SCAN_CELLS = 1 << 21  # threshold cells scored at once
_DENSE_NODE_CELLS = 1 << 19  # a node's (predictor state, child state) counts kept densely
_WIDE_KEYS = 1 << 25  # keys (rows × predictors) held as int64 up to this many
_COUNT_BLOCK = 1 << 23  # keys counted at once (`_dense_counts`)
_BATCH = 4  # categorical columns ordered at once, in decreasing order of their bound


def _category_order(block: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Order of a categorical predictor's states along the main axis of their child
    distributions (the optimal order for a two-state child; a good one otherwise)."""
    return _category_orders([block], q)[0]


def _category_orders(blocks: list[np.ndarray], q: np.ndarray) -> list[np.ndarray]:
    """`_category_order` of several predictors at one node.

    With p_i = (n_i· + q)/(n_i + 1) a state's smoothed child distribution and p̄ the
    n-weighted mean, the main axis v is the top right singular vector of
    D = diag(√n)(P − p̄); states are sorted by (p_i − p̄)·v. Two states, or a two-state
    child: sorted by p_i of the last child state.
    """
    out = []
    for block in blocks:
        n = block.sum(axis=1)
        p = (block + q[None, :]) / (n + 1.0)[:, None]
        if len(block) == 2 or block.shape[1] == 2:  # one threshold only, or a two-state child
            out.append(np.argsort(p[:, -1], kind="stable"))
            continue
        centred = p - ((n[:, None] * p).sum(axis=0) / n.sum())[None, :]
        v = _main_axis(np.sqrt(n)[:, None] * centred)
        v = v if v[np.argmax(np.abs(v))] > 0 else -v  # a fixed sign: reproducible orders
        out.append(np.argsort(centred @ v, kind="stable"))
    return out


def _main_axis(d: np.ndarray) -> np.ndarray:
    """The top right singular vector of D (s × k): the top eigenvector of the smaller Gram
    matrix, DᵀD, or DDᵀ (then v ∝ Dᵀu); only that eigenvector is computed."""
    s, k = d.shape
    if k <= s:
        return eigh(d.T @ d, subset_by_index=[k - 1, k - 1])[1][:, 0]
    u = eigh(d @ d.T, subset_by_index=[s - 1, s - 1])[1][:, 0]
    v = d.T @ u
    return v / max(float(np.linalg.norm(v)), 1e-300)


class _Growth:
    """Accumulates a tree's nodes while it grows."""

    def __init__(self) -> None:
        self.feature: list[int] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.mask_off: list[int] = []
        self.masks: list[np.ndarray] = []
        self.n_mask = 0
        self.leaf: list[int] = []
        self.probs: list[np.ndarray] = []

    def node(self) -> int:
        self.feature.append(-1)
        self.left.append(-1)
        self.right.append(-1)
        self.mask_off.append(0)
        self.leaf.append(-1)
        return len(self.feature) - 1

    def make_leaf(self, i: int, p: np.ndarray) -> None:
        self.leaf[i] = len(self.probs)
        self.probs.append(p)

    def make_split(self, i: int, feature: int, mask: np.ndarray) -> tuple[int, int]:
        self.feature[i] = feature
        self.mask_off[i] = self.n_mask
        self.masks.append(mask)
        self.n_mask += len(mask)
        self.left[i], self.right[i] = self.node(), self.node()
        return self.left[i], self.right[i]

    def finish(self, k: int) -> TreeCPT:
        return TreeCPT(
            k,
            np.array(self.feature),
            np.array(self.left),
            np.array(self.right),
            np.array(self.mask_off),
            np.concatenate(self.masks) if self.masks else np.zeros(0, bool),
            np.array(self.leaf),
            np.array(self.probs).reshape(len(self.probs), k),
        )


def grow(
    columns: list[np.ndarray],
    cards: np.ndarray,
    child: int,
    predictors: list[int],
    prior: np.ndarray,
    ranks: list[np.ndarray | None],
    min_leaf: int = MIN_LEAF,
    max_depth: int = MAX_DEPTH,
    weights: np.ndarray | None = None,
    states: np.ndarray | None = None,
) -> TreeCPT:
    """Grow the tree of P(columns[child] | columns[predictors]).

    prior: the child's smoothed marginal (the root's distribution);
    ranks[j]: the order of column j's states for threshold splits, or None for a
    categorical column (its states are ordered afresh at every node);
    weights: how many times each row occurs (distinct rows), None for once;
    states: `global_states(columns, cards, predictors)`, when the caller has it.
    """
    k = int(cards[child])
    x = columns[child]
    preds = [int(p) for p in predictors]
    g = _Growth()
    root = g.node()

    def size(r: np.ndarray) -> int:  # rows at a node, counted with their weights
        return len(r) if weights is None else int(weights[r].sum())

    if not preds or size(np.arange(len(x))) < 2 * min_leaf:
        g.make_leaf(root, prior)
        return g.finish(k).bind(cards)
    off = np.r_[0, np.cumsum([int(cards[p]) for p in preds])]
    total = int(off[-1])
    if states is None:
        states = global_states(columns, cards, preds)
    # keys[r, j] = (global state of predictor j, child state) of row r: a node's rows are
    # whole rows of keys, and int64 keys are counted without a conversion (int32 when large)
    wide = total * k >= 1 << 31 or states.size <= _WIDE_KEYS
    keys = states.astype(np.int64 if wide else np.int32)  # a copy, then in place: one array
    keys *= k
    keys += x[:, None]
    # counts kept per node while dense pays: a child's counts are its parent's minus its sibling's
    dense = total * k <= min(_DENSE_NODE_CELLS, 4 * keys.size)
    rows0 = np.arange(len(x))
    root_counts = _dense_counts(keys, total, k, weights) if dense else None
    stack = [(root, rows0, prior, 0, root_counts)]
    while stack:
        node, rows, q, depth, c = stack.pop()
        best = None
        if size(rows) >= 2 * min_leaf and depth < max_depth:
            w = None if weights is None else weights[rows]
            counts = _present(c) if c is not None else _node_counts(keys[rows], k, total, w)
            best = _best_split(counts, k, preds, off, ranks, q, min_leaf)
        if best is None:
            g.make_leaf(node, q)
            continue
        j, mask, lq, rq = best
        go_left = mask[columns[preds[j]][rows]]
        lo, hi = g.make_split(node, preds[j], mask)
        left, right = rows[go_left], rows[~go_left]
        cl, cr = _split_counts(c, keys, left, right, total, k, weights)
        stack.append((hi, right, rq, depth + 1, cr))
        stack.append((lo, left, lq, depth + 1, cl))
    return g.finish(k).bind(cards)


def global_states(columns: list[np.ndarray], cards: np.ndarray, preds: list[int]) -> np.ndarray:
    """Rows × predictors: predictor j's state offset by the states of the predictors before
    it (a number per (predictor, state) over all of them), int32 unless that overflows."""
    off = np.r_[0, np.cumsum([int(cards[p]) for p in preds])]
    n = len(columns[preds[0]]) if preds else 0
    out = np.empty((n, len(preds)), dtype=np.int64 if off[-1] >= 1 << 31 else np.int32)
    for j, p in enumerate(preds):
        out[:, j] = columns[p]
        out[:, j] += off[j]
    return out


def _split_counts(c, keys, left, right, total: int, k: int, weights=None):
    """Dense counts of both sides of a split from the parent's `c`: the smaller side counted,
    the larger one the parent minus it. A side with few rows for its cells gets None (it is
    counted sparsely, as are the children of a node without dense counts)."""
    if c is None:
        return None, None
    cells = total * k
    if max(len(left), len(right)) * keys.shape[1] * 4 < cells:
        return None, None
    small, swap = (left, False) if len(left) <= len(right) else (right, True)
    counted = _dense_counts(keys[small], total, k, None if weights is None else weights[small])
    cb = c - counted
    cs = None if len(small) * keys.shape[1] * 4 < cells else counted
    return (cb, cs) if swap else (cs, cb)


def _dense_counts(
    keys: np.ndarray, total_states: int, k: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Counts of every (predictor state, child state) among the rows of `keys` (rows ×
    predictors; a dense total_states × k matrix), each row counted `weights` times. Keys
    are counted in blocks of rows: bincount copies int32 keys to int64 first."""
    step = max(1, _COUNT_BLOCK // max(keys.shape[1], 1))
    c = np.zeros(total_states * k, dtype=np.int64 if weights is None else float)
    for start in range(0, len(keys), step):
        block = keys[start : start + step]
        w = None if weights is None else weights[start : start + step].astype(float)
        w = None if w is None else np.repeat(w, keys.shape[1])
        c += np.bincount(block.ravel(), weights=w, minlength=total_states * k)
    return c.astype(np.int64, copy=False).reshape(total_states, k)


def _present(c: np.ndarray):
    """A dense count matrix as `_node_counts` gives it: present predictor states (global
    ids), present child states, and the counts between them."""
    rows = np.flatnonzero(c.any(axis=1))
    c = c[rows]
    xs = np.flatnonzero(c.any(axis=0))
    return rows, xs, c[:, xs]


def _node_counts(keys: np.ndarray, k: int, total_states: int, weights=None):
    """Counts of (predictor state, child state) among one node's rows (each `weights`
    times): the predictor states present (global ids, sorted), the child states present,
    and the counts between them."""
    flat = keys.ravel()
    if total_states * k <= max(1 << 16, 4 * flat.size):
        return _present(_dense_counts(keys, total_states, k, weights))
    if weights is None:  # many states: count what is there
        u, cnt = np.unique(flat, return_counts=True)
    else:
        u, inverse = np.unique(flat, return_inverse=True)
        w = np.repeat(weights.astype(float), keys.shape[1])
        cnt = np.bincount(inverse.ravel(), weights=w).astype(np.int64)
    pos, x = np.divmod(u, k)
    rows, ri = np.unique(pos, return_inverse=True)
    xs, xi = np.unique(x, return_inverse=True)
    m = np.zeros((len(rows), len(xs)), dtype=np.int64)
    m[ri, xi] = cnt
    return rows, xs, m


def _scan(blocks: list[np.ndarray], totals: np.ndarray, min_leaf: int):
    """Every threshold of every (ordered) block at once: (best row, its gain, number of
    valid thresholds, left counts, right counts); row i means "states up to i go left"."""
    n = totals.sum()
    b = np.concatenate(blocks).astype(float)
    sizes = np.array([len(x) for x in blocks])
    cum = np.cumsum(b, axis=0)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    before = np.zeros((len(blocks), b.shape[1]))
    before[1:] = cum[starts[1:] - 1]
    left = cum - np.repeat(before, sizes, axis=0)  # cumulative counts within each block
    right = totals[None, :] - left
    n_left = left.sum(axis=1)
    n_right = n - n_left
    last = np.zeros(len(b), dtype=bool)
    last[starts + sizes - 1] = True  # "everything goes left" is no split
    valid = ~last & (n_left >= min_leaf) & (n_right >= min_leaf)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return None
    gain = (
        xlogy(left, left).sum(axis=1)
        - xlogy(n_left, n_left)
        + xlogy(right, right).sum(axis=1)
        - xlogy(n_right, n_right)
    )
    gain[~valid] = -np.inf
    i = int(np.argmax(gain))
    return i, float(gain[i]), n_valid, left[i], right[i]


def _candidates(counts, preds, off, ranks, q):
    """One node's predictors as (position, present states, their counts), split into those
    whose threshold order is cheap (ordered columns, two states, a two-state child: already
    in threshold order) and categorical ones still to order (with the SVD of their block)."""
    rows_g, xs, m = counts
    bounds = np.searchsorted(rows_g, off)
    cheap, costly = [], []
    for j in range(len(preds)):
        a, b = int(bounds[j]), int(bounds[j + 1])
        if b - a < 2:
            continue
        present, block = rows_g[a:b] - off[j], m[a:b]
        if ranks[j] is not None:
            order = np.argsort(ranks[j][present], kind="stable")
        elif b - a == 2 or len(xs) == 2:
            order = _category_orders([block], q[xs])[0]
        else:
            costly.append((j, present, block))
            continue
        cheap.append((j, present[order], block[order]))
    return cheap, costly, m[bounds[0] : bounds[1]].sum(axis=0)


def _scan_all(cands, totals, min_leaf: int, nx: int):
    """The best threshold of the candidates (in groups of bounded size: bounded memory) as
    (gain, position, candidate, threshold, left counts, right counts), ties to the lower
    position; and the number of valid thresholds."""
    best, n_cand, group, cells = None, 0, [], 0
    for pos, cand in enumerate(cands):
        group.append(cand)
        cells += len(cand[1]) * nx
        if cells < _SCAN_CELLS and pos < len(cands) - 1:
            continue
        found = _scan([c[2] for c in group], totals, min_leaf)
        if found is not None:
            i, gain, n_valid, lc, rc = found
            n_cand += n_valid
            sizes = np.cumsum([len(c[1]) for c in group])
            g_i = int(np.searchsorted(sizes, i, side="right"))
            at = i - (int(sizes[g_i - 1]) if g_i else 0)
            best = _better(best, (gain, group[g_i][0], group[g_i], at, lc, rc))
        group, cells = [], 0
    return best, n_cand


def _better(a, b):
    """The better of two scanned splits: the higher gain, ties to the earlier predictor."""
    if a is None or (b is not None and (b[0] > a[0] or (b[0] == a[0] and b[1] < a[1]))):
        return b
    return a


def _multiway_gains(blocks: list[np.ndarray]) -> np.ndarray:
    """Σ_i (Σ_x n_ix log n_ix − n_i log n_i) per block: the gain of splitting a node into
    every state of the predictor, at least that of any binary split (merging states never
    raises a likelihood)."""
    return np.array(
        [float(xlogy(b, b).sum() - xlogy(n, n).sum()) for b in blocks for n in [b.sum(axis=1)]]
    )


def _valid_range(block: np.ndarray, min_leaf: int) -> tuple[int, int]:
    """Fewest and most valid thresholds (both sides ≥ min_leaf rows) over all orders of
    the states: a prefix of t + 1 states holds between the t + 1 smallest and the t + 1
    largest counts."""
    n = np.sort(block.sum(axis=1))
    total = int(n.sum())
    small, large = np.cumsum(n)[:-1], np.cumsum(n[::-1])[:-1]
    lo = int(np.sum((small >= min_leaf) & (total - large >= min_leaf)))
    hi = int(np.sum((large >= min_leaf) & (total - small >= min_leaf)))
    return lo, hi


def _search(cheap, costly, totals, q, xs, min_leaf: int):
    """The best split over all candidates, ordering a categorical predictor only while its
    multiway gain could beat the best found; returns (best, number of valid thresholds,
    the skipped predictors)."""
    best, n_cand = _scan_all(cheap, totals, min_leaf, len(xs))
    bound = _multiway_gains([c[2] for c in costly])
    todo = list(np.argsort(-bound, kind="stable"))
    skipped = []
    while todo:
        if best is not None:
            floor = best[0] - 1e-9 * (1.0 + abs(best[0]))  # float safety: never skip a tie
            skipped += [costly[i] for i in todo if bound[i] < floor]
            todo = [i for i in todo if bound[i] >= floor]
        batch, todo = sorted(todo[:_BATCH]), todo[_BATCH:]
        if not batch:
            break
        orders = _category_orders([costly[i][2] for i in batch], q[xs])
        ordered = [
            (costly[i][0], costly[i][1][o], costly[i][2][o])
            for i, o in zip(batch, orders, strict=True)
        ]
        found, n_valid = _scan_all(ordered, totals, min_leaf, len(xs))
        best, n_cand = _better(best, found), n_cand + n_valid
    return best, n_cand, skipped


def _best_split(counts, k, preds, off, ranks, q, min_leaf):
    """The best binary split of one node (its `_node_counts`), or None when no split pays
    for itself.

    Returns (predictor position, goes-left mask over its states, left and right
    distributions)."""
    rows_g, xs, m = counts
    if len(xs) < 2:
        return None
    cheap, costly, totals = _candidates(counts, preds, off, ranks, q)
    best, n_cand, skipped = _search(cheap, costly, totals, q, xs, min_leaf)
    if best is None:
        return None
    _, j, (_, order, _), at, lc, rc = best
    lc, rc = lc.astype(np.int64), rc.astype(np.int64)
    fc = FamilyCounts(
        np.array([0, 1]),
        np.array([lc.sum(), rc.sum()]),
        np.r_[np.zeros(np.count_nonzero(lc), np.int64), np.ones(np.count_nonzero(rc), np.int64)],
        np.r_[xs[lc > 0], xs[rc > 0]],
        np.r_[lc[lc > 0], rc[rc > 0]],
    )
    score, alpha = bde_alpha(fc, q)
    if not np.isfinite(alpha):
        return None
    gain = score - marginal_loglik(fc, q)
    if not _pays(gain, n_cand, skipped, totals, q, xs, min_leaf):
        return None
    c_j = int(off[j + 1] - off[j])
    if ranks[j] is not None:  # a threshold: every state ranked at or below it goes left
        mask = ranks[j] <= ranks[j][order[at]]
    else:
        mask = np.zeros(c_j, dtype=bool)
        mask[order[: at + 1]] = True
        unseen = np.ones(c_j, dtype=bool)
        unseen[order] = False
        mask[unseen] = lc.sum() >= rc.sum()  # categories not seen here go the larger way
    full_l = np.zeros(k)
    full_r = np.zeros(k)
    full_l[xs], full_r[xs] = lc, rc
    lq = (full_l + alpha * q) / (lc.sum() + alpha)
    rq = (full_r + alpha * q) / (rc.sum() + alpha)
    return j, mask, lq, rq


def _pays(gain: float, n_cand: int, skipped, totals, q, xs, min_leaf: int) -> bool:
    """gain > log(number of valid thresholds of every predictor), the skipped predictors'
    counted exactly only when their bounds leave the answer open."""
    ranges = [_valid_range(c[2], min_leaf) for c in skipped]
    lo = n_cand + sum(r[0] for r in ranges)
    hi = n_cand + sum(r[1] for r in ranges)
    if gain > np.log(hi):
        return True
    if gain <= np.log(lo):
        return False
    open_ = [c for c, r in zip(skipped, ranges, strict=True) if r[0] != r[1]]
    exact = lo + sum(-r[0] for r in ranges if r[0] != r[1])
    orders = _category_orders([c[2] for c in open_], q[xs])
    ordered = [(c[0], c[1][o], c[2][o]) for c, o in zip(open_, orders, strict=True)]
    return gain > np.log(exact + _scan_all(ordered, totals, min_leaf, len(xs))[1])


#: state cells (rows × columns) from which trees grow on several cores
_PARALLEL_CELLS = 1_000_000


def _grow_at(
    pos_v: tuple[int, int],
    cols: list[np.ndarray],
    cards: np.ndarray,
    pseudo: list[np.ndarray],
    order: list[int],
    ranks: list[np.ndarray | None],
    w: np.ndarray | None,
    states: np.ndarray,
) -> TreeCPT:
    """The tree of the column at position pos of `order` over the columns before it
    (`states`: `global_states` of the columns in `order`, a prefix of which is its own)."""
    pos, v = pos_v
    preds = list(order[:pos])
    prior = marginal_prior(cols[v], int(cards[v]), pseudo[v], w)
    ranked = [ranks[p] for p in preds]
    return grow(cols, cards, v, preds, prior, ranked, weights=w, states=states[:, :pos])


def grow_trees(
    counter: FamilyCounter,
    pseudo: list[np.ndarray],
    order: list[int],
    ranks: list[np.ndarray | None],
) -> DiscreteBayesNet:
    """A network whose every column is a tree over the columns before it in `order`;
    its parents are the columns the tree splits on. The trees are independent, so they grow
    on several cores when there is enough work (`core.parallel`), with the same result."""
    cards = counter.cards
    cols = counter.columns
    w = counter.weights
    big = len(cols[0]) * len(order) >= _PARALLEL_CELLS if cols else False
    with progress.meter(f"growing {len(order)} trees", len(order), " trees", summary=False) as tick:
        trees = parallel_map(
            _grow_at,
            list(enumerate(order)),
            *(cols, cards, pseudo, order, ranks, w, global_states(cols, cards, order[:-1])),
            worth_it=big,
            on_result=tick,
        )
    grown = {v: t for (_, v), t in zip(enumerate(order), trees, strict=True)}
    tables: list[ConditionalTable] = [grown[v] for v in range(len(cards))]
    net = DiscreteBayesNet(cards, [t.parents for t in tables])
    net.cpts = tables
    return net
