"""Structure learning: the Chow-Liu tree and score-based hill climbing over DAGs.

Hill climbing applies the best of all single-edge additions, deletions and reversals until
none improves the total score; local scores are cached per family and the gain tables are
updated only for the nodes whose parents changed; in-degree is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree

from ..core.parallel import WorkerPool
from .bayesnet import marginal_prior, reachable
from .counting import FamilyCounter, config_space
from .scores import GammaTables, family_score, marginal_loglik

_TOL = 1e-6
#: rows (distinct rows when counted so) from which families are scored on several cores
_PARALLEL_ROWS = 20_000
Family = tuple[int, tuple[int, ...]]


class FamilyScorer(Protocol):
    """A decomposable structure score: `scorer(child, parents)` over `d` nodes."""

    d: int

    def __call__(self, child: int, parents: tuple[int, ...]) -> float: ...


class LocalScorer:
    """Cached local scores of families under one scoring method."""

    def __init__(
        self,
        counter: FamilyCounter,
        pseudo: list[np.ndarray],
        method: str = "bde",
        shared: dict[tuple[str, int, tuple[int, ...]], float] | None = None,
        invariant: np.ndarray | None = None,
    ):
        """shared: scores of families of `invariant` columns only, kept across scorers
        whose invariant columns have the same states (e.g. the encodings of one table under
        several bins: categorical columns do not change)."""
        self.counter = counter
        self.shared = shared
        self.invariant = (
            np.zeros(len(counter.cards), bool) if invariant is None else np.asarray(invariant)
        )
        self.d = len(counter.cards)
        self.method = method
        cards = counter.cards
        self.priors = [
            marginal_prior(counter.columns[v], int(cards[v]), pseudo[v], counter.weights)
            for v in range(len(cards))
        ]
        self.k_eff = [int(np.count_nonzero(counter.marginal(v))) for v in range(len(cards))]
        self._cache: dict[tuple[int, tuple[int, ...]], float] = {}
        self._gamma: dict[int, GammaTables] = {}
        self._workers: WorkerPool | None = None  # open inside `on_workers`
        # structure prior for "bde": each possible edge is present with probability ~1/d
        self.edge_penalty = float(np.log(max(len(cards), 2))) if method == "bde" else 0.0

    def __call__(self, child: int, parents: tuple[int, ...]) -> float:
        key = (child, tuple(sorted(parents)))
        s = self._cache.get(key)
        if s is None:
            s = self._shared(key)
            if s is None:
                s = self._score(*key)
                self._keep(key, s)
            else:
                self._cache[key] = s
        return s

    def _is_invariant(self, key: Family) -> bool:
        return self.shared is not None and bool(self.invariant[[key[0], *key[1]]].all())

    def _shared(self, key: Family) -> float | None:
        """The score kept across scorers (invariant columns only), if there is one."""
        if self.shared is None or not self._is_invariant(key):
            return None
        return self.shared.get((self.method, key[0], key[1]))

    def _keep(self, key: Family, s: float) -> None:
        self._cache[key] = s
        if self.shared is not None and self._is_invariant(key):
            self.shared[(self.method, key[0], key[1])] = s

    @contextmanager
    def on_workers(self) -> Iterator[None]:
        """Inside the block `prefetch` scores families on forked workers (`core.parallel`)
        when the table is large enough to pay for them."""
        rows = len(self.counter.columns[0]) if self.counter.columns else 0
        with WorkerPool(_score_family, self, worth_it=rows >= _PARALLEL_ROWS) as pool:
            self._workers = pool
            try:
                yield
            finally:
                self._workers = None

    def prefetch(self, families: list[Family]) -> None:
        """Score the families not scored yet at once, on the workers when they run (the
        same floats as one by one)."""
        workers = self._workers
        if workers is None or workers.pool is None:
            return
        todo: dict[Family, None] = {}  # in order, once each
        for child, parents in families:
            key = (child, tuple(sorted(parents)))
            if key not in self._cache and self._shared(key) is None:
                todo[key] = None
        keys = list(todo)
        for key, s in zip(keys, workers.map(keys), strict=True):
            self._keep(key, s)

    def _tables(self, child: int) -> GammaTables | None:
        """The child's `GammaTables` (bde only), made on first use."""
        if self.method != "bde":
            return None
        if child not in self._gamma:
            self._gamma[child] = GammaTables(self.priors[child])
        return self._gamma[child]

    def _score(self, child: int, parents: tuple[int, ...]) -> float:
        """The local score of one family (sorted parents), its edges' prior included."""
        if parents and self.counter.too_big(child, parents):
            s = -np.inf
        else:
            fc = self.counter.counts(child, parents)
            if not parents and self.method == "bde":  # α is irrelevant without parents
                s = marginal_loglik(fc, self.priors[child])
            else:
                s = family_score(
                    self.method,
                    fc,
                    self.priors[child],
                    int(self.counter.cards[child]),
                    self.k_eff[child],
                    config_space(self.counter.cards, parents),
                    self.counter.n,
                    self._tables(child),
                )
            s -= self.edge_penalty * len(parents)
        return s


def _score_family(key: Family, scorer: LocalScorer) -> float:
    return scorer._score(*key)


def _batched(scorer: object) -> AbstractContextManager[object]:
    """The scorer's `on_workers()` block, when it has one."""
    on_workers = getattr(scorer, "on_workers", None)
    return on_workers() if on_workers is not None else nullcontext()


def _prefetch(scorer: object, families: list[Family]) -> None:
    prefetch = getattr(scorer, "prefetch", None)
    if prefetch is not None:
        prefetch(families)


def mutual_information(counter: FamilyCounter) -> np.ndarray:
    """Empirical mutual information (nats) of every pair of columns."""
    d = len(counter.cards)
    mi = np.zeros((d, d))
    n = counter.n
    for v in range(d):
        for u in range(v):
            fc = counter.counts(v, (u,))
            pv = counter.marginal(v) / n
            pu = fc.cfg_n / n
            pj = fc.fam_n / n
            mi[u, v] = mi[v, u] = float(np.sum(pj * np.log(pj / (pu[fc.fam_cfg] * pv[fc.fam_x]))))
    return mi


def chow_liu(counter: FamilyCounter, scorer: LocalScorer, root: int = 0) -> list[tuple[int, ...]]:
    """Maximum-likelihood tree (by mutual information, keeping only edges the score accepts),
    oriented away from `root`; returns parent lists."""
    d = len(counter.cards)
    gain = np.zeros((d, d))
    with _batched(scorer):
        _prefetch(scorer, [(v, (u,)) for v in range(d) for u in range(d) if u != v])
        for v in range(d):
            base = scorer(v, ())
            for u in range(d):
                if u != v:
                    gain[u, v] = scorer(v, (u,)) - base
    w = np.maximum(gain, gain.T)
    weights = np.where(w > _TOL, -(w + 1.0), 0.0)  # strictly negative = an edge to keep
    tree = minimum_spanning_tree(weights).toarray()
    adj = (tree != 0) | (tree.T != 0)
    return orient_forest([np.flatnonzero(adj[a]).tolist() for a in range(d)], root)


def orient_forest(neighbours: list[list[int]], root: int = 0) -> list[tuple[int, ...]]:
    """Parent lists of an undirected forest (each node's neighbours in ascending order),
    every tree oriented away from its first node met, `root` first."""
    d = len(neighbours)
    parents: list[tuple[int, ...]] = [() for _ in range(d)]
    seen = np.zeros(d, bool)
    for start in [root, *range(d)]:
        if seen[start]:
            continue
        seen[start] = True
        stack = [start]
        while stack:
            a = stack.pop()
            for b in neighbours[a]:
                if not seen[b]:
                    seen[b] = True
                    parents[b] = (a,)
                    stack.append(b)
    return parents


def _ancestors(parents: list[set[int]]) -> np.ndarray:
    """anc[a, b] is True when there is a directed path a -> ... -> b."""
    d = len(parents)
    adj = np.zeros((d, d), dtype=bool)
    for v, ps in enumerate(parents):
        adj[list(ps), v] = True
    reach = adj.copy()
    while True:
        new = reach | ((reach.astype(np.uint8) @ adj.astype(np.uint8)) > 0)
        if np.array_equal(new, reach):
            return reach
        reach = new


def _path_without_edge(parents: list[set[int]], u: int, v: int) -> bool:
    """Is there a path u -> ... -> v other than the edge u -> v itself?"""
    d = len(parents)
    children = [[c for c in range(d) if a in parents[c]] for a in range(d)]
    return v in reachable([c for c in children[u] if c != v], children.__getitem__)


def hill_climb(
    scorer: FamilyScorer,
    max_parents: int = 4,
    start: list[tuple[int, ...]] | None = None,
    max_iter: int = 10_000,
) -> list[tuple[int, ...]]:
    """Greedy search over DAGs with add / delete / reverse moves; returns parent lists.
    The families each round needs are scored at once (on several cores for a large table)."""
    with _batched(scorer):
        return _climb(scorer, max_parents, start, max_iter)


def _moves(v: int, ps: set[int], d: int, max_parents: int) -> list[Family]:
    """The families `refresh(v)` scores: v with one parent removed or one added."""
    return [
        (v, tuple(ps - {u}) if u in ps else tuple(ps | {u}))
        for u in range(d)
        if u != v and (u in ps or len(ps) < max_parents)
    ]


def _climb(
    scorer: FamilyScorer, max_parents: int, start: list[tuple[int, ...]] | None, max_iter: int
) -> list[tuple[int, ...]]:
    d = scorer.d
    parents: list[set[int]] = [set(p) for p in start] if start else [set() for _ in range(d)]
    _prefetch(scorer, [(v, tuple(parents[v])) for v in range(d)])
    local = np.array([scorer(v, tuple(parents[v])) for v in range(d)])
    add = np.full((d, d), -np.inf)  # add[u, v]: gain of adding u -> v
    rem = np.full((d, d), -np.inf)  # rem[u, v]: gain of deleting u -> v

    def refresh(v: int) -> None:
        ps = parents[v]
        for u in range(d):
            if u == v:
                continue
            if u in ps:
                rem[u, v] = scorer(v, tuple(ps - {u})) - local[v]
                add[u, v] = -np.inf
            else:
                rem[u, v] = -np.inf
                add[u, v] = (
                    scorer(v, tuple(ps | {u})) - local[v] if len(ps) < max_parents else -np.inf
                )

    _prefetch(scorer, [f for v in range(d) for f in _moves(v, parents[v], d, max_parents)])
    for v in range(d):
        refresh(v)
    for _ in range(max_iter):
        anc = _ancestors(parents)
        add_ok = np.where(anc.T | np.eye(d, dtype=bool), -np.inf, add)  # u->v bad if v ~> u
        full = np.array([len(p) >= max_parents for p in parents])
        rev = rem + np.where(full[None, :].T, -np.inf, add.T)  # rev[u,v]: u->v becomes v->u
        best = None
        for kind, table in (("add", add_ok), ("del", rem), ("rev", rev)):
            flat = np.argsort(table, axis=None)[::-1]
            for idx in flat[:64]:
                g = table.flat[idx]
                if not (g > _TOL) or (best is not None and g <= best[0]):
                    break
                u, v = divmod(int(idx), d)
                if kind == "rev" and _path_without_edge(parents, u, v):
                    continue
                best = (g, kind, u, v)
                break
        if best is None:
            break
        _, kind, u, v = best
        if kind == "add":
            parents[v].add(u)
        elif kind == "del":
            parents[v].discard(u)
        else:
            parents[v].discard(u)
            parents[u].add(v)
        changed = sorted({u, v})
        _prefetch(
            scorer,
            [(w, tuple(parents[w])) for w in changed]
            + [f for w in changed for f in _moves(w, parents[w], d, max_parents)],
        )
        for w in changed:
            local[w] = scorer(w, tuple(parents[w]))
        for w in changed:
            refresh(w)
    return [tuple(sorted(p)) for p in parents]
