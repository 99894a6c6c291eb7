"""Decision-tree conditional tables: P(child | earlier columns) as a tree of binary splits.

A Bayesian network's table P(x | parents) needs a distribution per parent configuration, so
a many-state parent (an age in 80 bins) or a fifth parent costs too much to add. A tree
partitions the rows by binary splits on any earlier column instead -- a threshold on an
ordered numeric column, a subset of the categories otherwise -- and keeps one distribution
per leaf, so it uses many parents with few parameters ("local structure" in a network).

Every node's distribution is its counts shrunk towards the node above it,
p_node(x) = (n_node,x + α·p_up(x)) / (n_node + α), the root being the column's smoothed
marginal, so every leaf is a normalised distribution with full support and the likelihood
is exact. A split is kept when its Dirichlet marginal likelihood (α integrated over the grid
of the `bde` score; α = ∞ means "do not split") beats not splitting by more than the log of
the number of candidate splits (a uniform prior over which split). Growth is greedy and
depth-first; each node's candidates are scored at once with cumulative counts.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from ..errors import InputError
from .bayesnet import DiscreteBayesNet, marginal_prior
from .counting import FamilyCounter, FamilyCounts
from .protocols import CONDITIONALS, ConditionalTable
from .scores import bde_alpha, marginal_loglik

_DENSE_CELLS = 20_000_000
MIN_LEAF = 5
_SCAN_CELLS = 1 << 21  # threshold cells scored at once
MAX_DEPTH = 40


def _category_order(block: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Order of a categorical predictor's states along the main axis of their child
    distributions (the optimal order for a two-state child; a good one otherwise)."""
    n = block.sum(axis=1)
    p = (block + q[None, :]) / (n + 1.0)[:, None]
    if len(block) == 2 or block.shape[1] == 2:  # one threshold only, or a two-state child
        return np.argsort(p[:, -1], kind="stable")
    mean = (n[:, None] * p).sum(axis=0) / n.sum()
    d = np.sqrt(n)[:, None] * (p - mean[None, :])
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    v = vt[0]
    v = v if v[np.argmax(np.abs(v))] > 0 else -v  # a fixed sign: reproducible orders
    return np.argsort((p - mean[None, :]) @ v, kind="stable")


@CONDITIONALS.register("tree")
class TreeCPT:
    """One node's table as a tree: internal nodes split on a column, leaves hold P(x)."""

    def __init__(
        self,
        k: int,
        feature: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        mask_off: np.ndarray,
        mask: np.ndarray,
        leaf: np.ndarray,
        probs: np.ndarray,
    ):
        self.k = int(k)
        self.feature = np.asarray(feature, dtype=np.int64)  # column index, -1 at a leaf
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.mask_off = np.asarray(mask_off, dtype=np.int64)  # where a node's mask starts
        self.mask = np.asarray(mask, dtype=bool)  # goes-left flag per state of the feature
        self.leaf = np.asarray(leaf, dtype=np.int64)  # row of `probs`, -1 at a split
        self.probs = np.asarray(probs, dtype=float)  # leaves × k
        self.parents = tuple(sorted({int(f) for f in self.feature if f >= 0}))
        self._logp = np.log(self.probs)
        self._cdf_tag: bytes | None = None

    @property
    def n_leaves(self) -> int:
        return len(self.probs)

    def n_params(self) -> int:
        return self.n_leaves * (self.k - 1)

    # ---- lookups -----------------------------------------------------------------------
    def leaves(self, columns: list[np.ndarray], n: int | None = None) -> np.ndarray:
        """The leaf (row of `probs`) that each row of the parent columns falls in."""
        n = len(columns[self.parents[0]]) if self.parents else (n or 0)
        node = np.zeros(n, dtype=np.int64)
        active = np.arange(n) if self.feature[0] >= 0 else np.zeros(0, dtype=np.int64)
        while len(active):
            nd = node[active]
            f = self.feature[nd]
            state = np.empty(len(active), dtype=np.int64)
            for p in np.unique(f):
                m = f == p
                state[m] = columns[p][active[m]]
            go_left = self.mask[self.mask_off[nd] + state]
            nd = np.where(go_left, self.left[nd], self.right[nd])
            node[active] = nd
            active = active[self.feature[nd] >= 0]
        return self.leaf[node]

    def log_prob(self, columns: list[np.ndarray], cards: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log P(x | parents) for each row (nats)."""
        return self._logp[self.leaves(columns, len(x)), x]

    def state_probs(self, columns: list[np.ndarray], cards: np.ndarray, n: int) -> np.ndarray:
        """P(x | parents) for every state x: each row's leaf distribution, (n, k)."""
        return self.probs[self.leaves(columns, n)]

    @property
    def space(self) -> int:
        """Number of parent configurations."""
        return self.dense_cells() // self.k

    def dense_cells(self) -> int:
        """Cells of the dense table (parent configurations × k)."""
        space = 1
        for c in self._cards:
            space *= int(c)
        return space * self.k

    def dense(self) -> np.ndarray:
        """Full table (parent configurations × k), configurations in mixed radix with the
        first parent most significant; only for small configuration spaces."""
        cards = self._cards
        space = self.space
        if space * self.k > _DENSE_CELLS:
            raise InputError(
                f"conditioning on this tree twin needs a {space:,}-row table for one column; "
                "condition on fewer columns or fit with --structures bayesnet"
            )
        if not self.parents:
            return self.probs[self.leaf[:1]]
        grid = np.unravel_index(np.arange(space), tuple(int(c) for c in cards))
        cols: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * (max(self.parents, default=0) + 1)
        for p, g in zip(self.parents, grid, strict=True):
            cols[p] = np.asarray(g, dtype=np.int64)
        return self.probs[self.leaves(cols, space)]

    def parent_weights(self) -> dict[int, float]:
        """Each parent's number of splits: how much of the tree it shapes."""
        return {p: float(np.sum(self.feature == p)) for p in self.parents}

    def bind(self, cards: np.ndarray) -> TreeCPT:
        """Remember the parents' numbers of states (needed by `dense`)."""
        self._cards = np.array([int(cards[p]) for p in self.parents], dtype=np.int64)
        return self

    # ---- sampling ----------------------------------------------------------------------
    def sample(
        self,
        columns: list[np.ndarray],
        cards: np.ndarray,
        rng: np.random.Generator,
        n: int,
        allowed: np.ndarray,
    ) -> np.ndarray:
        """Draw the child for each row given its sampled parents; only `allowed` states."""
        tag = allowed.tobytes()
        if self._cdf_tag != tag:
            p = self.probs * allowed[None, :]
            cdf = np.cumsum(p, axis=1) / p.sum(axis=1, keepdims=True)
            cdf[:, int(np.flatnonzero(allowed)[-1]) :] = 1.0
            # leaf j's cumulative probabilities shifted to (j, j + 1]: one sorted array
            self._flat_cdf = (np.arange(len(p))[:, None] + cdf).ravel()
            self._cdf_tag = tag
        leaf = self.leaves(columns, n)
        u = rng.random(n)
        idx = np.searchsorted(self._flat_cdf, leaf + u, side="right")
        return np.minimum(idx - leaf * self.k, self.k - 1)

    # ---- persistence -------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}tree_feature": self.feature,
            f"{prefix}tree_left": self.left,
            f"{prefix}tree_right": self.right,
            f"{prefix}tree_mask_off": self.mask_off,
            f"{prefix}tree_mask": self.mask,
            f"{prefix}tree_leaf": self.leaf,
            f"{prefix}tree_probs": self.probs,
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, k: int, cards: np.ndarray
    ) -> TreeCPT:
        """Load and validate: a proper binary tree, masks sized to the features' states,
        leaves that are distributions over the child's k states."""
        a = {n: arrays[f"{prefix}tree_{n}"] for n in ("feature", "left", "right", "mask_off")}
        a = {n: v.astype(np.int64) for n, v in a.items()}
        leaf = arrays[f"{prefix}tree_leaf"].astype(np.int64)
        mask = arrays[f"{prefix}tree_mask"].astype(bool)
        probs = arrays[f"{prefix}tree_probs"].astype(float)
        feat, left, right, off = a["feature"], a["left"], a["right"], a["mask_off"]
        m = len(feat)
        ok = m >= 1 and all(len(v) == m for v in (left, right, off, leaf))
        if ok:
            split = feat >= 0
            ids = np.arange(m)
            ok = bool(
                np.all(feat < len(cards))
                and np.all(left[split] > ids[split])
                and np.all(right[split] > ids[split])
                and np.all(left[split] < m)
                and np.all(right[split] < m)
                and np.array_equal(
                    np.sort(np.r_[left[split], right[split]]), np.arange(1, m)
                )  # every node but the root has exactly one parent
                and np.array_equal(np.sort(leaf[~split]), np.arange(int((~split).sum())))
                and np.all(leaf[split] == -1)
                and np.all(off[split] >= 0)
                and np.all(off[split] + cards[np.maximum(feat[split], 0)] <= len(mask))
            )
        if not ok:
            raise ValueError("a tree table's nodes are inconsistent")
        if (
            probs.ndim != 2
            or probs.shape != (int((feat < 0).sum()), k)
            or not np.all(probs > 0)
            or np.any(np.abs(probs.sum(axis=1) - 1.0) > 1e-9)
        ):
            raise ValueError("a tree leaf does not sum to one over the column's states")
        return cls(k, feat, left, right, off, mask, leaf, probs).bind(cards)


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
) -> TreeCPT:
    """Grow the tree of P(columns[child] | columns[predictors]).

    prior: the child's smoothed marginal (the root's distribution);
    ranks[j]: the order of column j's states for threshold splits, or None for a
    categorical column (its states are ordered afresh at every node).
    """
    k = int(cards[child])
    x = columns[child]
    preds = [int(p) for p in predictors]
    g = _Growth()
    root = g.node()
    if not preds or len(x) < 2 * min_leaf:
        g.make_leaf(root, prior)
        return g.finish(k).bind(cards)
    off = np.r_[0, np.cumsum([int(cards[p]) for p in preds])]
    keys = np.column_stack([(off[j] + columns[p]) * k for j, p in enumerate(preds)])
    keys += x[:, None]
    stack = [(root, np.arange(len(x)), prior, 0)]
    while stack:
        node, rows, q, depth = stack.pop()
        best = None
        if len(rows) >= 2 * min_leaf and depth < max_depth:
            best = _best_split(keys[rows], k, preds, off, ranks, q, min_leaf)
        if best is None:
            g.make_leaf(node, q)
            continue
        j, mask, lq, rq = best
        go_left = mask[columns[preds[j]][rows]]
        lo, hi = g.make_split(node, preds[j], mask)
        stack.append((hi, rows[~go_left], rq, depth + 1))
        stack.append((lo, rows[go_left], lq, depth + 1))
    return g.finish(k).bind(cards)


def _node_counts(keys: np.ndarray, k: int, total_states: int):
    """Counts of (predictor state, child state) among one node's rows: the predictor states
    present (global ids, sorted), the child states present, and the counts between them."""
    flat = keys.ravel()
    if total_states * k <= max(1 << 16, 4 * flat.size):
        c = np.bincount(flat, minlength=total_states * k).reshape(total_states, k)
        rows = np.flatnonzero(c.any(axis=1))
        c = c[rows]
        xs = np.flatnonzero(c.any(axis=0))
        return rows, xs, c[:, xs]
    u, cnt = np.unique(flat, return_counts=True)  # many states: count what is there
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


def _best_split(keys, k, preds, off, ranks, q, min_leaf):
    """The best binary split of one node's rows, or None when no split pays for itself.

    Returns (predictor position, goes-left mask over its states, left and right
    distributions)."""
    rows_g, xs, m = _node_counts(keys, k, int(off[-1]))
    if len(xs) < 2:
        return None
    bounds = np.searchsorted(rows_g, off)
    totals = m[bounds[0] : bounds[1]].sum(axis=0)  # the child's counts at this node
    cands = []  # (predictor position, its present states in threshold order, their counts)
    for j in range(len(preds)):
        a, b = int(bounds[j]), int(bounds[j + 1])
        if b - a < 2:
            continue
        present, block = rows_g[a:b] - off[j], m[a:b]
        if ranks[j] is not None:
            order = np.argsort(ranks[j][present], kind="stable")
        else:
            order = _category_order(block, q[xs])
        cands.append((j, present[order], block[order]))
    best, n_cand, group, cells = None, 0, [], 0
    for pos, cand in enumerate(cands):  # in groups of bounded size: bounded memory
        group.append(cand)
        cells += len(cand[1]) * len(xs)
        if cells < _SCAN_CELLS and pos < len(cands) - 1:
            continue
        found = _scan([c[2] for c in group], totals, min_leaf)
        if found is not None:
            i, gain, n_valid, lc, rc = found
            n_cand += n_valid
            if best is None or gain > best[0]:
                sizes = np.cumsum([len(c[1]) for c in group])
                g_i = int(np.searchsorted(sizes, i, side="right"))
                at = i - (int(sizes[g_i - 1]) if g_i else 0)
                best = (gain, group[g_i], at, lc, rc)
        group, cells = [], 0
    if best is None:
        return None
    _, (j, order, _), at, lc, rc = best
    lc, rc = lc.astype(np.int64), rc.astype(np.int64)
    fc = FamilyCounts(
        np.array([0, 1]),
        np.array([lc.sum(), rc.sum()]),
        np.r_[np.zeros(np.count_nonzero(lc), np.int64), np.ones(np.count_nonzero(rc), np.int64)],
        np.r_[xs[lc > 0], xs[rc > 0]],
        np.r_[lc[lc > 0], rc[rc > 0]],
    )
    score, alpha = bde_alpha(fc, q)
    if not np.isfinite(alpha) or score - marginal_loglik(fc, q) <= np.log(n_cand):
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


def grow_trees(
    counter: FamilyCounter,
    pseudo: list[np.ndarray],
    order: list[int],
    ranks: list[np.ndarray | None],
) -> DiscreteBayesNet:
    """A network whose every column is a tree over the columns before it in `order`;
    its parents are the columns the tree splits on."""
    cards = counter.cards
    cols = counter.columns
    grown: dict[int, TreeCPT] = {}
    for pos, v in enumerate(order):
        preds = list(order[:pos])
        prior = marginal_prior(cols[v], int(cards[v]), pseudo[v])
        grown[v] = grow(cols, cards, v, preds, prior, [ranks[p] for p in preds])
    tables: list[ConditionalTable] = [grown[v] for v in range(len(cards))]
    net = DiscreteBayesNet(cards, [t.parents for t in tables])
    net.cpts = tables
    return net
