"""Exact conditional sampling in the Bayesian network by bucket elimination.

To draw from P(X | evidence): only the evidence nodes' ancestors matter for the posterior
(everything else is sampled forward afterwards, exactly). Over those ancestors, variables are
eliminated one at a time (smallest resulting table first), each bucket's factor is kept, and
samples are drawn in reverse elimination order from the buckets given the values drawn so far.
No rejection: the cost does not depend on how unlikely the evidence is.

Decision-tree tables (the `trees` structure) can have so many parents that their dense
tables do not fit; there the draw is by rejection instead (forward samples kept when they
match the evidence: exact too, its cost growing as the evidence gets rarer).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .bayesnet import DiscreteBayesNet, reachable
from .trees import TreeCPT

_MAX_CELLS = 20_000_000
_MAX_REJECTION_DRAWS = 4_000_000


class _Factor:
    def __init__(self, vars_: tuple[int, ...], table: np.ndarray):
        self.vars = vars_
        self.table = table


def _multiply(factors: list[_Factor], cards: np.ndarray) -> _Factor:
    vars_ = tuple(sorted({v for f in factors for v in f.vars}))
    size = int(np.prod([cards[v] for v in vars_])) if vars_ else 1
    if size > _MAX_CELLS:
        raise InputError(
            f"conditioning on these columns needs a table of {size:,} cells; "
            "condition on fewer columns or fit with fewer --bins / --max-parents"
        )
    out = np.ones([int(cards[v]) for v in vars_])
    for f in factors:
        shape = [int(cards[v]) if v in f.vars else 1 for v in vars_]
        order = sorted(range(len(f.vars)), key=lambda i: vars_.index(f.vars[i]))
        out = out * np.transpose(f.table, order).reshape(shape)
    return _Factor(vars_, out)


def _cost(v: int, pool: list[_Factor], cards: np.ndarray) -> int:
    """Cells of the table that eliminating `v` would create."""
    vs = {u for f in pool if v in f.vars for u in f.vars}
    return int(np.prod([cards[u] for u in vs]))


def conditional_sample(
    net: DiscreteBayesNet,
    n: int,
    rng: np.random.Generator,
    allowed: list[np.ndarray],
    evidence: dict[int, int],
) -> list[np.ndarray]:
    """`n` draws of every node's state from P(states | evidence), exactly."""
    cards = net.cards
    relevant = reachable(evidence, lambda v: net.parents[v])
    if any(
        isinstance(net.cpts[v], TreeCPT) and net.cpts[v].dense_cells() > _MAX_CELLS
        for v in relevant
    ):
        return rejection_sample(net, n, rng, allowed, evidence, relevant)
    factors = []
    for v in relevant:
        cpt = net.cpts[v]
        table = cpt.dense().reshape([int(cards[p]) for p in cpt.parents] + [cpt.k])
        table = table * allowed[v].reshape([1] * len(cpt.parents) + [cpt.k])
        vars_ = tuple(cpt.parents) + (v,)
        # fix evidence variables by slicing them out
        index = tuple(evidence[u] if u in evidence else slice(None) for u in vars_)
        table = table[index]
        vars_ = tuple(u for u in vars_ if u not in evidence)
        factors.append(_Factor(vars_, np.asarray(table, dtype=float)))
    hidden = [v for v in relevant if v not in evidence]
    buckets: list[_Factor] = []
    order: list[int] = []
    pool = factors
    remaining = set(hidden)
    while remaining:

        def cost(u: int, pool: list[_Factor] = pool) -> int:
            return _cost(u, pool, cards)

        v = min(sorted(remaining), key=cost)
        inside = [f for f in pool if v in f.vars]
        pool = [f for f in pool if v not in f.vars]
        psi = _multiply(inside, cards)
        axis = psi.vars.index(v)
        tau = psi.table.sum(axis=axis)
        scale = tau.max() if tau.size else 1.0
        if not scale > 0:
            raise InputError("the given values have probability zero under the twin")
        pool.append(_Factor(tuple(u for u in psi.vars if u != v), tau / scale))
        buckets.append(psi)
        order.append(v)
        remaining.discard(v)
    total = float(np.prod([f.table for f in pool])) if pool else 1.0
    if not total > 0:
        raise InputError("the given values have probability zero under the twin")
    cols: list[np.ndarray | None] = [None] * len(cards)
    for u, s in evidence.items():
        cols[u] = np.full(n, s, dtype=np.int64)
    for v, psi in zip(reversed(order), reversed(buckets), strict=True):
        axis = psi.vars.index(v)
        k = int(psi.table.shape[axis])
        table = np.moveaxis(psi.table, axis, -1)
        others = [u for u in psi.vars if u != v]
        rows = table[tuple(cols[u] for u in others)] if others else np.broadcast_to(table, (n, k))
        cdf = np.cumsum(rows, axis=1)
        u_ = rng.random(n) * cdf[:, -1]
        cols[v] = np.minimum((cdf <= u_[:, None]).sum(axis=1), k - 1).astype(np.int64)
    fixed = {v: c for v, c in enumerate(cols) if c is not None}
    return net.sample_states(n, rng, allowed, fixed=fixed)


def rejection_sample(
    net: DiscreteBayesNet,
    n: int,
    rng: np.random.Generator,
    allowed: list[np.ndarray],
    evidence: dict[int, int],
    relevant: set[int] | None = None,
    max_draws: int | None = None,
) -> list[np.ndarray]:
    """`n` exact draws from P(states | evidence): forward samples of the evidence's ancestors
    kept when they match it, then every other column sampled forward given them."""
    max_draws = _MAX_REJECTION_DRAWS if max_draws is None else max_draws
    if relevant is None:  # the evidence's ancestors (the evidence included)
        relevant = reachable(evidence, lambda v: net.parents[v])
    kept: list[dict[int, np.ndarray]] = [{v: np.zeros(0, dtype=np.int64) for v in relevant}]
    have = drawn = accepted = 0
    while have < n:
        rate = (accepted + 1) / (drawn + 2)  # a guess at the acceptance rate, never zero
        batch = int(min(max(2 * (n - have) / rate, 1024), max_draws - drawn, 1 << 20))
        if batch <= 0:
            raise InputError(
                f"the given values are too rare to sample from this trees twin exactly "
                f"({accepted} matches in {drawn:,} draws); condition on fewer columns or "
                "fit with --structures bayesnet"
            )
        cols = net.sample_states(batch, rng, allowed, only=relevant)
        drawn += batch
        ok = np.ones(batch, dtype=bool)
        for v, s in evidence.items():
            ok &= cols[v] == s
        accepted += int(ok.sum())
        if ok.any():
            kept.append({v: cols[v][ok] for v in relevant})
            have += int(ok.sum())
    fixed = {v: np.concatenate([k[v] for k in kept])[:n] for v in relevant}
    return net.sample_states(n, rng, allowed, fixed=fixed)
