"""Growing decision-tree tables (`trees.TreeCPT`) greedily from counts.

A tree grows depth first. At each node the counts of (predictor state, child state) of its
rows give every candidate split at once (`splits.best_split`: the split with the highest
log-likelihood gain, kept when its Dirichlet marginal likelihood beats not splitting by more
than log(number of valid thresholds)). Counts are kept per node while dense (a child's are
its parent's minus its smaller sibling's); otherwise a node's rows are counted sparsely.
Keys are (global predictor state, child state) per row and predictor, one matrix per tree.
"""

from __future__ import annotations

import numpy as np

from .. import progress
from ..core.parallel import parallel_map
from .bayesnet import DiscreteBayesNet, marginal_prior
from .counting import FamilyCounter
from .protocols import ConditionalTable
from .splits import NodeCounts, Predictors, best_split
from .trees import TreeCPT

MIN_LEAF = 5
MAX_DEPTH = 40
_DENSE_NODE_CELLS = 1 << 19  # a node's (predictor state, child state) counts kept densely
_WIDE_KEYS = 1 << 25  # keys (rows × predictors) held as int64 up to this many
_COUNT_BLOCK = 1 << 23  # keys counted at once (`_dense_counts`)


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
    pr = Predictors.of([int(cards[p]) for p in preds], ranks)
    total = int(pr.off[-1])
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
            best = best_split(counts, pr, k, q, min_leaf)
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


def _present(c: np.ndarray) -> NodeCounts:
    """A dense count matrix as `_node_counts` gives it: present predictor states (global
    ids), present child states, and the counts between them."""
    rows = np.flatnonzero(c.any(axis=1))
    c = c[rows]
    xs = np.flatnonzero(c.any(axis=0))
    return NodeCounts(rows, xs, c[:, xs])


def _node_counts(keys: np.ndarray, k: int, total_states: int, weights=None) -> NodeCounts:
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
    return NodeCounts(rows, xs, m)


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
