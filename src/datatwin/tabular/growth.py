"""Growing decision-tree tables (`trees.TreeCPT`) greedily from counts.

A tree grows a level at a time: every open node of a level is searched in one pass
(`splitbatch.best_splits`: per node, the split with the highest log-likelihood gain, kept
when its Dirichlet marginal likelihood beats not splitting by more than log(number of valid
thresholds), exactly `splits.best_split`). A node's counts of (predictor state, child state)
come from its parent's: the smaller side of a split is counted from its rows on the parent's
present states only, the larger side is the parent's counts minus the smaller's; only the
root is counted from all rows. The nodes are numbered as a depth-first growth numbers them
(left before right), so the tree is the same whichever order grew it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import progress
from ..core.parallel import parallel_map
from .bayesnet import DiscreteBayesNet, marginal_prior
from .counting import FamilyCounter
from .protocols import ConditionalTable
from .splitbatch import best_splits
from .splits import NodeCounts, Predictors
from .trees import TreeCPT

MIN_LEAF = 5
MAX_DEPTH = 40
_COUNT_BLOCK = 1 << 17  # keys counted at once (`_blocks`)
#: state cells (rows × predictors) up to which a tree's keys are made once (int64, per
#: worker: 128 MB at most)
_KEY_CELLS = 1 << 24
#: a node's keys (rows × predictors), as a share of all cells, from which it is counted
#: over all cells (`_Counter._counted`)
_DENSE_SHARE = 1.0


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


@dataclass
class _Plan:
    """The tree's nodes in the order a level-wise growth decides them: a leaf's
    distribution, or a split's column, goes-left mask and children."""

    probs: list[np.ndarray | None]
    splits: list[tuple[int, np.ndarray, int, int] | None]

    def add(self) -> int:
        self.probs.append(None)
        self.splits.append(None)
        return len(self.probs) - 1

    def finish(self, k: int) -> TreeCPT:
        """The tree numbered depth first, left before right (as `_Growth` grows it)."""
        g = _Growth()
        stack = [(0, g.node())]
        while stack:
            at, node = stack.pop()
            split = self.splits[at]
            if split is None:
                p = self.probs[at]
                assert p is not None
                g.make_leaf(node, p)
                continue
            feature, mask, lo, hi = split
            left, right = g.make_split(node, feature, mask)
            stack.append((hi, right))
            stack.append((lo, left))
        return g.finish(k)


@dataclass(frozen=True)
class _Open:
    """A node of the level being grown: its plan index, rows, distribution and counts (None
    when it is not searched: too few rows, or too deep)."""

    at: int
    rows: np.ndarray
    q: np.ndarray
    counts: NodeCounts | None


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
    plan = _Plan([], [])
    plan.add()

    def searched(r: np.ndarray, depth: int) -> bool:  # enough rows (with their weights)
        n = len(r) if weights is None else int(weights[r].sum())
        return n >= 2 * min_leaf and depth < max_depth

    rows0 = np.arange(len(x))
    if not preds or not searched(rows0, 0):
        plan.probs[0] = prior
        return plan.finish(k).bind(cards)
    pr = Predictors.of([int(cards[p]) for p in preds], ranks)
    if states is None:
        states = global_states(columns, cards, preds)
    counter = _Counter(states, x, k, int(pr.off[-1]), weights)
    level = [_Open(0, rows0, prior, counter.root())]
    depth = 0
    while level:
        search = [o for o in level if o.counts is not None]
        counts = [o.counts for o in search if o.counts is not None]
        found = iter(best_splits(counts, [o.q for o in search], pr, k, min_leaf))
        nxt = []
        for o in level:
            split = next(found) if o.counts is not None else None
            if split is None:
                plan.probs[o.at] = o.q
                continue
            j, mask, lq, rq = split
            go_left = mask[columns[preds[j]][o.rows]]
            left, right = o.rows[go_left], o.rows[~go_left]
            lo, hi = plan.add(), plan.add()
            plan.splits[o.at] = (preds[j], mask, lo, hi)
            assert o.counts is not None
            cl, cr = counter.children(
                o.counts, left, right, searched(left, depth + 1), searched(right, depth + 1)
            )
            nxt += [_Open(lo, left, lq, cl), _Open(hi, right, rq, cr)]
        level = nxt
        depth += 1
    return plan.finish(k).bind(cards)


def global_states(columns: list[np.ndarray], cards: np.ndarray, preds: list[int]) -> np.ndarray:
    """Rows × predictors: predictor j's state offset by the states of the predictors before
    it (a number per (predictor, state) over all of them), in the smallest of int16, int32
    and int64 that holds them (the trees read it row by row: less memory to go through)."""
    off = np.r_[0, np.cumsum([int(cards[p]) for p in preds])]
    n = len(columns[preds[0]]) if preds else 0
    dtype = np.int16 if off[-1] <= 1 << 15 else np.int32 if off[-1] <= 1 << 31 else np.int64
    out = np.empty((n, len(preds)), dtype=dtype)
    for j, p in enumerate(preds):
        out[:, j] = columns[p]
        out[:, j] += off[j]
    return out


class _Counter:
    """Counts of (predictor state, child state) of a tree's nodes (`NodeCounts`).

    states: rows × predictors, global predictor states (`global_states`); x: the child's
    states; weights: how many times each row occurs, None for once. Up to `_KEY_CELLS`
    cells, every row's keys state·k + x are made once per tree (`keys`): a node with many
    rows for the cells is then counted over all cells from its rows' keys as they are."""

    def __init__(
        self, states: np.ndarray, x: np.ndarray, k: int, total: int, weights: np.ndarray | None
    ) -> None:
        self.states, self.x, self.k, self.total, self.weights = states, x, k, total, weights
        # filled block by block as the root is counted
        self.keys = np.empty(states.shape, dtype=np.int64) if states.size <= _KEY_CELLS else None
        self.row_of = np.zeros(total, dtype=np.int64)  # a parent's present state -> its cell row
        self.col_of = np.zeros(k, dtype=np.int64)  # a parent's present child state -> its column

    def _keys(self, rows: np.ndarray | slice) -> np.ndarray:
        """The keys state·k + x of `rows` (rows × predictors, int64)."""
        if self.keys is not None:
            return self.keys[rows] if isinstance(rows, slice) else np.take(self.keys, rows, axis=0)
        keys = np.multiply(self.states[rows], self.k, dtype=np.int64)  # (a view: no np.take)
        keys += self.x[rows][:, None]
        return keys

    def _weights(self, rows: np.ndarray | slice) -> np.ndarray | None:
        """Each key's weight (its row's), None when rows count once."""
        w = self.weights
        return None if w is None else np.repeat(w[rows].astype(float), self.states.shape[1])

    def root(self) -> NodeCounts:
        """Every row's counts: dense (in blocks of rows) unless the cells far outnumber the
        keys (then the keys present are counted)."""
        states, k, total, w = self.states, self.k, self.total, self.weights
        cells = total * k
        if cells > max(1 << 16, 4 * states.size):
            self._fill(slice(None))
            return _sparse_counts(self._keys(slice(None)), k, w)
        return _present(self._dense(slice(None), len(states), fill=True).reshape(total, k))

    def _fill(self, rows: slice) -> None:
        """Make the keys of `rows` (at the root, which counts every row)."""
        if self.keys is not None:
            np.multiply(self.states[rows], self.k, out=self.keys[rows], dtype=np.int64)
            self.keys[rows] += self.x[rows][:, None]

    def _dense(self, rows: np.ndarray | slice, n: int, fill: bool = False) -> np.ndarray:
        """Counts of every (state, child state) cell among `rows` (n of them), in blocks
        (`fill`: the keys made block by block, rows being all rows)."""
        cells = self.total * self.k
        c = np.zeros(cells, dtype=np.int64 if self.weights is None else float)
        for a, b in _blocks(n, self.states.shape[1], cells):
            part = slice(a, b) if isinstance(rows, slice) else rows[a:b]
            if fill:
                self._fill(slice(a, b))
            c += np.bincount(self._keys(part).ravel(), self._weights(part), minlength=cells)
        return c.astype(np.int64, copy=False)

    def _counted(self, parent: NodeCounts, rows: np.ndarray) -> np.ndarray:
        """Counts of `rows` (some of the parent's) over the parent's present states ×
        child states: over all cells from the rows' keys when the rows are many for the
        cells, else each row's states mapped to the parent's cells first."""
        s, kx = len(parent.states), len(parent.xs)
        if self.keys is not None and len(rows) * self.states.shape[1] >= _DENSE_SHARE * (
            self.total * self.k
        ):
            c = self._dense(rows, len(rows)).reshape(self.total, self.k)
            return c[parent.states][:, parent.xs]
        self.row_of[parent.states] = np.arange(s) * kx
        self.col_of[parent.xs] = np.arange(kx)
        counted = np.zeros(s * kx, dtype=np.int64 if self.weights is None else float)
        for a, b in _blocks(len(rows), self.states.shape[1], s * kx):
            part = rows[a:b]
            cell = self.row_of[self.states[part]]
            cell += self.col_of[self.x[part]][:, None]
            counted += np.bincount(cell.ravel(), self._weights(part), minlength=s * kx)
        return counted.astype(np.int64, copy=False).reshape(s, kx)

    def children(
        self, parent: NodeCounts, left: np.ndarray, right: np.ndarray, want_l: bool, want_r: bool
    ) -> tuple[NodeCounts | None, NodeCounts | None]:
        """Both sides' counts of a split (None where not wanted): the side with fewer rows
        counted on the parent's cells, the other the parent's counts minus it."""
        if not (want_l or want_r):
            return None, None
        swap = len(left) > len(right)
        small, want_s, want_b = (right, want_r, want_l) if swap else (left, want_l, want_r)
        m = self._counted(parent, small)
        cs = _compact(parent.states, parent.xs, m) if want_s else None
        cb = _compact(parent.states, parent.xs, parent.m - m) if want_b else None
        return (cb, cs) if swap else (cs, cb)


def _blocks(n: int, width: int, cells: int) -> list[tuple[int, int]]:
    """Row ranges counted at once: about `_COUNT_BLOCK` keys, so a block's temporaries stay
    in cache, but no fewer keys than the cells each block's count adds up."""
    step = max(1, max(_COUNT_BLOCK, cells) // max(width, 1))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def _compact(states: np.ndarray, xs: np.ndarray, m: np.ndarray) -> NodeCounts:
    """Counts over `states` × `xs` with the states and child states not seen dropped."""
    rows = np.flatnonzero(m.any(axis=1))
    m = m[rows]
    cols = np.flatnonzero(m.any(axis=0))
    return NodeCounts(states[rows], xs[cols], m[:, cols] if len(cols) < len(xs) else m)


def _present(c: np.ndarray) -> NodeCounts:
    """A dense count matrix as `_node_counts` gives it: present predictor states (global
    ids), present child states, and the counts between them."""
    rows = np.flatnonzero(c.any(axis=1))
    c = c[rows]
    xs = np.flatnonzero(c.any(axis=0))
    return NodeCounts(rows, xs, c[:, xs])


def _sparse_counts(keys: np.ndarray, k: int, weights=None) -> NodeCounts:
    """Counts of the (predictor state, child state) keys present among rows × predictors
    `keys` (each row `weights` times): when the dense cells far outnumber the keys."""
    flat = keys.ravel()
    if weights is None:
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
    its parents are the columns the tree splits on."""
    grown = grow_some(counter, pseudo, order, ranks, order)
    tables: list[ConditionalTable] = [grown[v] for v in range(len(counter.cards))]
    net = DiscreteBayesNet(counter.cards, [t.parents for t in tables])
    net.cpts = tables
    return net


def grow_some(
    counter: FamilyCounter,
    pseudo: list[np.ndarray],
    order: list[int],
    ranks: list[np.ndarray | None],
    children: list[int],
) -> dict[int, TreeCPT]:
    """The trees of the columns `children`, each over the columns before it in `order`.
    The trees are independent, so they grow on several cores when there is enough work
    (`core.parallel`), with the same result."""
    cards = counter.cards
    cols = counter.columns
    w = counter.weights
    wanted = set(children)
    big = len(cols[0]) * len(order) >= _PARALLEL_CELLS if cols else False
    # the last columns have the most predictors: handed out first, the workers end together
    items = [(pos, v) for pos, v in enumerate(order) if v in wanted][::-1]
    with progress.meter(f"growing {len(items)} trees", len(items), " trees", summary=False) as tick:
        trees = parallel_map(
            _grow_at,
            items,
            *(
                cols,
                cards,
                pseudo,
                order,
                ranks,
                w,
                global_states(cols, cards, order[:-1]),
            ),
            worth_it=big,
            on_result=tick,
        )
    return {v: t for (_, v), t in zip(items, trees, strict=True)}
