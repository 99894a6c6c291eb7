"""A discrete Bayesian network over column states: fit by (smoothed) maximum likelihood,
exact log-probability, vectorised ancestral sampling.

The structure is a DAG given as parent lists; `fit` accumulates family counts and finalises
smoothed conditional tables (the strength of each table's smoothing chosen per node by
empirical Bayes, see `scores.bde_alpha`).
"""

from __future__ import annotations

import numpy as np

from .counting import FamilyCounter
from .cpt import CPT
from .scores import bde_alpha

_CHUNK = 1 << 16


def reachable(starts, neighbours) -> set[int]:
    """Nodes reachable from `starts` (included) following `neighbours(node)`."""
    seen, stack = set(starts), list(starts)
    while stack:
        for w in neighbours(stack.pop()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def topological_order(parents: list[tuple[int, ...]]) -> list[int]:
    """Kahn's order of a DAG given as parent lists; ValueError on a cycle."""
    d = len(parents)
    indeg = np.array([len(p) for p in parents])
    children: list[list[int]] = [[] for _ in range(d)]
    for v, ps in enumerate(parents):
        for p in ps:
            children[p].append(v)
    ready = [v for v in range(d) if indeg[v] == 0]
    order = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for c in children[v]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) != d:
        raise ValueError("the structure has a cycle; a Bayesian network needs a DAG")
    return order


def marginal_prior(column: np.ndarray, k: int, pseudo: np.ndarray) -> np.ndarray:
    """Smoothed marginal of a column's states: counts plus the codec's pseudo-counts."""
    c = np.bincount(column, minlength=k).astype(float) + pseudo
    if c.sum() == 0:
        c[:] = 1.0
    c[c == 0] = 1e-3 * max(c.sum(), 1.0) / k  # never a zero probability
    return c / c.sum()


class DiscreteBayesNet:
    """P(states) = Π_v P(state_v | parent states); parents[v] is a tuple of node indices."""

    def __init__(self, cards: np.ndarray, parents: list[tuple[int, ...]]):
        self.cards = np.asarray(cards, dtype=np.int64)
        self.parents = [tuple(int(p) for p in ps) for ps in parents]
        self.order = topological_order(self.parents)
        self.cpts: list[CPT] = []

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [(p, v) for v, ps in enumerate(self.parents) for p in ps]

    def n_params(self) -> int:
        """Free parameters of the seen configurations (a complexity figure for reports)."""
        return int(sum(c.n_params() for c in self.cpts))

    def fit(self, counter: FamilyCounter, pseudo: list[np.ndarray]) -> DiscreteBayesNet:
        """Finalise the tables from the counter's family counts."""
        self.cpts = []
        for v, ps in enumerate(self.parents):
            k = int(self.cards[v])
            prior = marginal_prior(counter.columns[v], k, pseudo[v])
            fc = counter.counts(v, ps)
            alpha = bde_alpha(fc, prior)[1] if ps else float("inf")
            self.cpts.append(CPT(k, ps, self.cards[list(ps)], alpha, prior, fc))
        return self

    def log_prob(self, columns: list[np.ndarray]) -> np.ndarray:
        """log P(states of each row), nats."""
        n = len(columns[0]) if columns else 0
        out = np.zeros(n)
        for v, cpt in enumerate(self.cpts):
            out += cpt.log_prob(columns, self.cards, columns[v])
        return out

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        allowed: list[np.ndarray],
        fixed: dict[int, np.ndarray] | None = None,
        only: set[int] | None = None,
    ) -> list[np.ndarray]:
        """Ancestral sampling; `fixed` columns are taken as given (they must have no
        non-fixed ancestors for this to be exact — see `inference.conditional_sample`);
        `only`: sample just these nodes (a set closed under parents), the rest left empty."""
        fixed = fixed or {}
        order = self.order if only is None else [v for v in self.order if v in only]
        out = [np.empty(n if v in order else 0, dtype=np.int64) for v in range(len(self.cpts))]
        for a in range(0, n, _CHUNK):  # chunks keep the working set in cache
            b = min(n, a + _CHUNK)
            cols: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(self.cpts)
            for v in order:
                if v in fixed:
                    cols[v] = fixed[v][a:b]
                else:
                    cols[v] = self.cpts[v].sample(cols, self.cards, rng, b - a, allowed[v])
                out[v][a:b] = cols[v]
        return out
