"""A discrete Bayesian network over column states: fit by (smoothed) maximum likelihood,
exact log-probability, vectorised ancestral sampling.

The structure is a DAG given as parent lists; `fit` accumulates family counts and finalises
smoothed conditional tables (the strength of each table's smoothing chosen per node by
empirical Bayes, see `scores.bde_alpha`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..modelfile import require, require_integer
from .codec import ColumnCodec, Decoded
from .counting import FamilyCounter
from .cpt import CPT
from .protocols import CONDITIONALS, STATE_MODELS, ConditionalTable
from .scores import bde_alpha

if TYPE_CHECKING:
    from ..reader import RawTable

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


def marginal_prior(
    column: np.ndarray, k: int, pseudo: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Smoothed marginal of a column's states: counts (each row `weights` times) plus the
    codec's pseudo-counts."""
    c = np.bincount(column, weights=weights, minlength=k).astype(float) + pseudo
    if c.sum() == 0:
        c[:] = 1.0
    c[c == 0] = 1e-3 * max(c.sum(), 1.0) / k  # never a zero probability
    return c / c.sum()


@STATE_MODELS.register("discrete")
class DiscreteBayesNet:
    """P(states) = Π_v P(state_v | parent states); parents[v] is a tuple of node indices.

    As a table twin's `StateModel`: P(row) = P(states) · Π_v P(value_v | state_v), the second
    factor being each column codec's within-state term.
    """

    def __init__(self, cards: np.ndarray, parents: list[tuple[int, ...]]):
        self.cards = np.asarray(cards, dtype=np.int64)
        self.parents = [tuple(int(p) for p in ps) for ps in parents]
        self.order = topological_order(self.parents)
        self.cpts: list[ConditionalTable] = []

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [(p, v) for v, ps in enumerate(self.parents) for p in ps]

    def n_params(self) -> int:
        """Free parameters of the seen configurations (a complexity figure for reports)."""
        return int(sum(c.n_params() for c in self.cpts))

    def edge_weights(self) -> list[float] | None:
        """Each edge's weight from its child's table (a tree's splits on the parent), or None
        when every table weighs its parents alike."""
        weights = [c.parent_weights() for c in self.cpts]
        if all(w is None for w in weights):
            return None
        out = []
        for p, v in self.edges:
            w = weights[v]
            out.append(1.0 if w is None else w[p])
        return out

    def fit(self, counter: FamilyCounter, pseudo: list[np.ndarray]) -> DiscreteBayesNet:
        """Finalise the tables from the counter's family counts."""
        self.cpts = []
        for v, ps in enumerate(self.parents):
            k = int(self.cards[v])
            prior = marginal_prior(counter.columns[v], k, pseudo[v], counter.weights)
            fc = counter.counts(v, ps)
            alpha = bde_alpha(fc, prior)[1] if ps else float("inf")
            self.cpts.append(CPT(k, ps, self.cards[list(ps)], alpha, prior, fc))
        return self

    def log_prob_states(self, columns: list[np.ndarray]) -> np.ndarray:
        """log P(states of each row), nats."""
        n = len(columns[0]) if columns else 0
        out = np.zeros(n)
        for v, cpt in enumerate(self.cpts):
            out += cpt.log_prob(columns, self.cards, columns[v])
        return out

    def sample_states(
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

    # ---- the StateModel of a table twin -----------------------------------------------
    def log_prob(self, codecs: list[ColumnCodec], raw: RawTable) -> np.ndarray:
        """log P(row) in nats: the states' probability plus each value's within-state term."""
        cols, within = [], np.zeros(raw.n_rows)
        for codec in codecs:
            s, w = codec.encode(raw.cells[codec.spec.name])
            cols.append(s)
            within += w
        return self.log_prob_states(cols) + within

    def sample(
        self,
        codecs: list[ColumnCodec],
        n: int,
        rng: np.random.Generator,
        allowed: list[np.ndarray],
        evidence: dict[int, int],
    ) -> list[Decoded]:
        """States drawn forward (or exactly given `evidence`), then values given the states."""
        if evidence:
            from .inference import conditional_sample

            states = conditional_sample(self, n, rng, allowed, evidence)
        else:
            states = self.sample_states(n, rng, allowed)
        return [c.decode(s, rng) for c, s in zip(codecs, states, strict=True)]

    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {"cards": self.cards}
        for i, cpt in enumerate(self.cpts):
            arrays.update(cpt.to_arrays(f"n{i}_"))
        return {"conditionals": [CONDITIONALS.tag_of(c) for c in self.cpts]}, arrays

    @classmethod
    def from_archive(
        cls,
        meta: dict[str, Any],
        arrays: dict[str, np.ndarray],
        codecs: list[ColumnCodec],
        source: str,
    ) -> DiscreteBayesNet:
        require_integer(arrays, ["cards"], source)
        cards = arrays["cards"].astype(np.int64)
        require(cards.shape == (len(codecs),), source, "column count mismatch")
        require(
            all(int(k) == c.n_states for k, c in zip(cards, codecs, strict=True)),
            source,
            "state counts do not match the column codecs",
        )
        tags = meta.get("conditionals")
        if tags is None:  # written before tables stored their kind: trees have tree arrays
            tags = [
                "tree" if f"n{i}_tree_feature" in arrays else "table" for i in range(len(codecs))
            ]
        require(
            isinstance(tags, list) and len(tags) == len(codecs),
            source,
            "the conditional tables do not match the columns",
        )
        cpts: list[ConditionalTable] = [
            CONDITIONALS.cls(tag, source).from_arrays(arrays, f"n{i}_", int(cards[i]), cards)
            for i, tag in enumerate(tags)
        ]
        require(
            all(
                all(0 <= p < len(codecs) and p != i for p in c.parents) for i, c in enumerate(cpts)
            ),
            source,
            "a parent index is out of range",
        )
        net = cls(cards, [c.parents for c in cpts])  # raises on a cycle
        net.cpts = cpts
        return net
