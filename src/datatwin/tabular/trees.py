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
the number of candidate splits (a uniform prior over which split). Growing a tree is in
`growth.py`.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..modelfile import require_integer
from .protocols import CONDITIONALS

_DENSE_CELLS = 20_000_000


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
        """The leaf (row of `probs`) that each row of the parent columns falls in.

        The rows are partitioned down the tree, node by node: a node reads only its own
        rows' states of its column (cheaper than a level at a time over every row still
        at a split, which gathers from all the parents' columns at once)."""
        n = len(columns[self.parents[0]]) if self.parents else (n or 0)
        out = np.empty(n, dtype=np.int64)
        stack = [(0, np.arange(n))]
        while stack:
            node, rows = stack.pop()
            f = int(self.feature[node])
            if f < 0:
                out[rows] = self.leaf[node]
                continue
            go_left = self.mask[self.mask_off[node] :][columns[f][rows]]
            stack.append((int(self.left[node]), rows[go_left]))
            stack.append((int(self.right[node]), rows[~go_left]))
        return out

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
        ints = ("feature", "left", "right", "mask_off", "leaf", "mask")
        require_integer(arrays, [f"{prefix}tree_{n}" for n in ints], "decision tree")
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
