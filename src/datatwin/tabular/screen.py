"""Wide tables: screen candidate parents by pairwise mutual information before any search.

A structure search scores every (parent, child) pair, so its cost grows with the square of
the columns (and the hill climb's cycle checks with the cube): 2,000 columns of 60 rows took
8 minutes and 5.7 GB. Above `WIDE_COLUMNS` columns the default candidates are `independent`
and a Chow-Liu tree over screened pairs: the empirical mutual information of every pair,

    I(u; v) = Σ_{a,b} p(a, b) log p(a, b) / (p(a) p(b)),

is computed at once from one-hot state matrices (a matrix product per block of columns), each
column keeps its `TOP_PARENTS` best partners, and only those pairs are scored. The tree is the
maximum spanning tree of the score gains over the screened pairs (`chow_liu_screened`).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from .counting import FamilyCounter
from .search import LocalScorer, orient_forest

#: tables with more modelled columns than this get screened candidates (see the module doc)
WIDE_COLUMNS = 200
#: candidate partners kept per column
TOP_PARENTS = 8
_TOL = 1e-6


def is_wide(n_columns: int) -> bool:
    return n_columns > WIDE_COLUMNS


def pairwise_mi(counter: FamilyCounter, block: int = 32) -> np.ndarray:
    """Empirical mutual information (nats) of every pair of columns, d × d (diagonal 0),
    from sparse one-hot state matrices: only the (state, state) pairs seen together cost."""
    n, d = counter.n, len(counter.cards)
    m = len(counter.columns[0]) if d else 0  # rows stored (distinct rows when weighted)
    offs = np.concatenate([[0], np.cumsum(counter.cards)]).astype(np.int64)
    cols = np.concatenate([offs[v] + c for v, c in enumerate(counter.columns)])
    rows = np.tile(np.arange(m), d)
    shape = (m, int(offs[-1]))
    onehot = csr_matrix((np.ones(len(cols)), (rows, cols)), shape=shape)
    w = counter.weights  # a row counted w times: the weights on one side of the product
    weighted = onehot if w is None else csr_matrix((np.tile(w, d), (rows, cols)), shape=shape)
    marg = np.asarray(weighted.sum(axis=0)).ravel() / max(n, 1)
    owner = np.repeat(np.arange(d), counter.cards)
    mi = np.zeros(d * d)
    onehot_t = weighted.T.tocsr()
    for a in range(0, d, block):
        lo, hi = int(offs[a]), int(offs[min(d, a + block)])
        joint = (onehot_t[lo:hi] @ onehot).tocoo()
        s, t = joint.row + lo, joint.col
        p = joint.data / max(n, 1)
        terms = p * np.log(p / (marg[s] * marg[t]))
        mi += np.bincount(owner[s] * d + owner[t], weights=terms, minlength=d * d)
    out = mi.reshape(d, d)
    np.fill_diagonal(out, 0.0)
    return np.maximum(out, 0.0)


def screened_pairs(counter: FamilyCounter, top: int = TOP_PARENTS) -> list[tuple[int, int]]:
    """The (u, v) pairs, u < v, where u is among v's `top` partners by mutual information
    or v among u's."""
    mi = pairwise_mi(counter)
    d = len(mi)
    k = min(top, d - 1)
    if k <= 0:
        return []
    best = np.argpartition(-mi, k - 1, axis=1)[:, :k]
    pairs = {(min(u, int(w)), max(u, int(w))) for u in range(d) for w in best[u] if mi[u, w] > 0}
    return sorted(pairs)


def chow_liu_screened(
    counter: FamilyCounter, scorer: LocalScorer, root: int = 0
) -> list[tuple[int, ...]]:
    """A Chow-Liu tree over the screened pairs only (edges the score accepts), oriented away
    from `root`; parent lists as `search.chow_liu` returns them."""
    d = len(counter.cards)
    pairs = screened_pairs(counter)
    base = [scorer(v, ()) for v in range(d)]
    us, vs, ws = [], [], []
    for u, v in pairs:
        w = max(scorer(v, (u,)) - base[v], scorer(u, (v,)) - base[u])
        if w > _TOL:
            us.append(u)
            vs.append(v)
            ws.append(-(w + 1.0))
    graph = coo_matrix((ws, (us, vs)), shape=(d, d)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    adj: list[list[int]] = [[] for _ in range(d)]
    for a, b in zip(tree.row.tolist(), tree.col.tolist(), strict=True):
        adj[a].append(b)
        adj[b].append(a)
    return orient_forest([sorted(n) for n in adj], root)
