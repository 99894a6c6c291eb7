"""The table structures: one builder per structure in `TABLE_STRUCTURES`, the shared fit
cache, and structure labels (`name[k=v,...]`) as data.

A builder gets a `FitContext` (the rows, their encoding under the codecs, the parameters)
and returns the twin's `StateModel`. Fits of several structures on the same training rows
share one `FitCache`: the codecs, state columns and family counts per (bins,
max_categories), and per encoding the local scorers, the Chow-Liu tree and the hill-climbed
network, so that `bayesnet` starts from the `chow-liu` fit and `trees` takes the `bayesnet`
order without searching again. The scores of families whose columns have no numeric
intervals are the same under every bins and are computed once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.candidates import Param
from ..core.registry import StructureRegistry
from ..errors import InputError
from ..reader import RawTable
from .bayesnet import DiscreteBayesNet, topological_order
from .codec import MIN_COUNT, ColumnCodec, to_grid
from .counting import FamilyCounter
from .dagfile import parse_edges
from .gaussian import GaussianScorer, LinearGaussianNet
from .growth import grow_trees
from .neural import train_tables  # also registers the neural tables' tags for loading
from .protocols import Parents, StateModel
from .rows import EncodedRows, Rows, encode_rows
from .schema import ColumnSpec
from .screen import chow_liu_screened, is_wide
from .search import LocalScorer, chow_liu, hill_climb
from .summary import ColumnBins, fit_codecs

#: the parameters a structure label may set, with their defaults in `TableTwin.fit`
PARAM_DEFAULTS: dict[str, Param] = {
    "bins": 10,
    "score": "bde",
    "max_parents": 4,
    "max_categories": 2000,
    "min_count": MIN_COUNT,
    "epochs": None,  # neural: training epochs (None: as many as the time budget buys)
}
_INT_PARAMS = ("bins", "max_parents", "max_categories", "min_count", "epochs")
#: the bins of a trees label whose numeric columns each have their own number of bins,
#: chosen on held-out rows (`colbins.py`; `TableTwin.fit` takes them as `column_bins`)
PER_COLUMN = "per-column"
#: tables of at least this many rows are counted over their distinct rows (with their
#: multiplicities) when those are at most this share of the rows
_DEDUP_ROWS = 20_000
_DEDUP_SHARE = 0.7


# ---- the fit cache ------------------------------------------------------------------------
@dataclass
class Encoding:
    """The training rows under one (bins, max_categories): codecs, state columns (the
    distinct rows, counted by `counter.weights`, when rows repeat a lot), counts, and the
    searches run on them (per score; the hill climb per (score, max_parents))."""

    codecs: list[ColumnCodec]
    columns: list[np.ndarray]
    counter: FamilyCounter
    scorers: dict[str, LocalScorer] = field(default_factory=dict)
    chow_liu: dict[str, list[Parents]] = field(default_factory=dict)
    bayesnet: dict[tuple[str, int], list[Parents]] = field(default_factory=dict)
    #: family scores of bins-invariant columns, shared by the encodings of one FitCache
    shared: dict[tuple[str, int, tuple[int, ...]], float] | None = None
    #: rows encoded under these codecs, by id(raw)
    encoded_rows: dict[int, tuple[Rows, EncodedRows]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        raw: Rows,
        specs: list[ColumnSpec],
        bins: int,
        max_categories: int,
        min_count: int = MIN_COUNT,
        column_bins: ColumnBins = (),
    ) -> Encoding:
        codecs = fit_codecs(raw, specs, bins, max_categories, min_count, column_bins)
        rows = encode_rows(raw, codecs, distinct=False)
        distinct = None
        if rows.counts is None and len(codecs) > 1 and raw.n_rows >= _DEDUP_ROWS:
            distinct = rows.distinct()  # counts over the distinct rows when rows repeat a lot
            if distinct.counts is not None and len(distinct.counts) <= _DEDUP_SHARE * raw.n_rows:
                rows = distinct
        cards = np.array([c.n_states for c in codecs], dtype=np.int64)
        enc = cls(codecs, rows.columns, FamilyCounter(rows.columns, cards, rows.counts))
        if distinct is not None:  # what `encoded(raw)` makes: scoring the rows reuses it
            enc.encoded_rows[id(raw)] = (raw, distinct)
        return enc

    @property
    def cards(self) -> np.ndarray:
        return self.counter.cards

    def pseudo(self) -> list[np.ndarray]:
        return [c.prior_counts() for c in self.codecs]

    def invariant(self) -> np.ndarray:
        """Columns whose states do not depend on bins (no numeric intervals)."""
        return np.array([len(c.coarse_edges) < 2 for c in self.codecs], dtype=bool)

    def scorer(self, score: str) -> LocalScorer:
        if score not in self.scorers:
            self.scorers[score] = LocalScorer(
                self.counter, self.pseudo(), score, self.shared, self.invariant()
            )
        return self.scorers[score]

    def encoded(self, raw: Rows) -> EncodedRows:
        """`raw` under the codecs, as `DiscreteBayesNet.log_prob` sees it, as distinct rows
        with counts (the same floats however the rows were chunked); kept per table for
        every candidate."""
        hit = self.encoded_rows.get(id(raw))
        if hit is None or hit[0] is not raw:
            hit = self.encoded_rows[id(raw)] = (raw, encode_rows(raw, self.codecs, True))
        return hit[1]

    def chow_liu_parents(self, score: str) -> list[Parents]:
        if score not in self.chow_liu:
            if is_wide(len(self.codecs)):  # wide tables: only screened pairs are scored
                self.chow_liu[score] = chow_liu_screened(self.counter, self.scorer(score))
            else:
                self.chow_liu[score] = chow_liu(self.counter, self.scorer(score))
        return self.chow_liu[score]

    def bayesnet_parents(self, score: str, max_parents: int) -> list[Parents]:
        key = (score, max_parents)
        if key not in self.bayesnet:
            start = self.chow_liu_parents(score)
            self.bayesnet[key] = hill_climb(
                self.scorer(score), max_parents=max_parents, start=start
            )
        return self.bayesnet[key]


@dataclass
class FitCache:
    """What fits of several structures on the same rows share: the `Encoding` of the last
    (bins, max_categories, min_count, column_bins) asked for (a search tries each bins once, in turn),
    and the family scores that do not depend on bins."""

    encodings: dict[tuple[int, int, int, ColumnBins], Encoding] = field(default_factory=dict)
    shared: dict[tuple[int, int], dict[tuple[str, int, tuple[int, ...]], float]] = field(
        default_factory=dict
    )

    def encoding(
        self,
        raw: Rows,
        specs: list[ColumnSpec],
        bins: int,
        max_categories: int,
        min_count: int = MIN_COUNT,
        column_bins: ColumnBins = (),
    ) -> Encoding:
        key = (bins, max_categories, min_count, column_bins)
        if key not in self.encodings:
            self.encodings.clear()  # one encoding held at a time: bounded memory
            enc = Encoding.of(raw, specs, bins, max_categories, min_count, column_bins)
            enc.shared = self.shared.setdefault((max_categories, min_count), {})
            self.encodings[key] = enc
        return self.encodings[key]


# ---- what a builder sees ------------------------------------------------------------------
@dataclass
class FitContext:
    """One structure's fit: the rows, their encoding, the parameters (`params` is what the
    twin keeps; a builder may add to it, e.g. the `order` of a trees fit)."""

    raw: Rows
    specs: list[ColumnSpec]
    enc: Encoding
    params: dict[str, Any]
    edges: Any = None
    warm_start: list[tuple[str, str]] | None = None
    order: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # time_budget, device (neural)

    @property
    def names(self) -> list[str]:
        return [c.spec.name for c in self.enc.codecs]

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def discrete(self, parents: list[Parents]) -> DiscreteBayesNet:
        """The conditional-table network with these parent lists, fit on the counts."""
        try:
            net = DiscreteBayesNet(self.enc.cards, parents)
        except ValueError as exc:
            raise InputError(f"{exc}: the edges given form a cycle") from None
        return net.fit(self.enc.counter, self.enc.pseudo())


TableBuilder = Callable[[FitContext], StateModel]

#: the table structures, in the order the leaderboard tries the defaults
TABLE_STRUCTURES: StructureRegistry[TableBuilder] = StructureRegistry("table")


@TABLE_STRUCTURES.register("independent", "every column on its own (no edges)")
def build_independent(ctx: FitContext) -> StateModel:
    return ctx.discrete([() for _ in ctx.names])


@TABLE_STRUCTURES.register("chow-liu", "maximum-likelihood tree over the columns")
def build_chow_liu(ctx: FitContext) -> StateModel:
    return ctx.discrete(ctx.enc.chow_liu_parents(ctx.params["score"]))


@TABLE_STRUCTURES.register(
    "bayesnet", "DAG by hill climbing on the score (from the Chow-Liu tree), max_parents bound"
)
def build_bayesnet(ctx: FitContext) -> StateModel:
    score, max_parents = ctx.params["score"], ctx.params["max_parents"]
    if ctx.warm_start is None:
        return ctx.discrete(ctx.enc.bayesnet_parents(score, max_parents))
    idx = ctx.index()  # a refit starts from the edges found on the training split
    start: list[set[int]] = [set() for _ in ctx.names]
    for a, b in ctx.warm_start:
        start[idx[b]].add(idx[a])
    scorer = ctx.enc.scorer(score)
    parents = [tuple(sorted(p)) for p in start]
    return ctx.discrete(hill_climb(scorer, max_parents=max_parents, start=parents))


@TABLE_STRUCTURES.register(
    "trees", "each column a decision tree over the columns before it (the bayesnet's order)"
)
def build_trees(ctx: FitContext) -> StateModel:
    names = ctx.names
    if ctx.order is None:
        seq = topological_order(
            ctx.enc.bayesnet_parents(ctx.params["score"], ctx.params["max_parents"])
        )
    else:
        if sorted(ctx.order) != sorted(names):
            raise InputError("a trees order must name every modelled column once")
        idx = ctx.index()
        seq = [idx[n] for n in ctx.order]
    enc = ctx.enc
    net = grow_trees(enc.counter, enc.pseudo(), seq, [c.threshold_ranks() for c in enc.codecs])
    ctx.params["order"] = [names[v] for v in seq]
    return net


def _order(ctx: FitContext) -> list[int]:
    """The column order of a sequential structure: given, or the learned bayesnet's."""
    if ctx.order is None:
        return topological_order(
            ctx.enc.bayesnet_parents(ctx.params["score"], ctx.params["max_parents"])
        )
    if sorted(ctx.order) != sorted(ctx.names):
        raise InputError("a column order must name every modelled column once")
    idx = ctx.index()
    return [idx[n] for n in ctx.order]


@TABLE_STRUCTURES.register(
    "neural",
    "each column a small network over the columns before it (the bayesnet's order; "
    "needs the torch extra)",
    default=False,
)
def build_neural(ctx: FitContext) -> StateModel:
    if not isinstance(ctx.raw, RawTable):
        raise InputError("structure 'neural' needs the rows in memory (not a distributed table)")
    seq = _order(ctx)
    enc = ctx.enc
    columns = enc.columns  # every row once: distinct rows are written out by their counts
    if enc.counter.weights is not None:
        columns = [np.repeat(c, enc.counter.weights) for c in columns]
    net, rep = train_tables(
        columns,
        enc.cards,
        enc.pseudo(),
        seq,
        epochs=ctx.params.get("epochs"),
        time_budget=float(ctx.options.get("time_budget") or DEFAULT_TABLE_BUDGET),
        device=str(ctx.options.get("device") or "auto"),
        ranks=[c.threshold_ranks() for c in enc.codecs],
    )
    ctx.params["order"] = [ctx.names[v] for v in seq]
    ctx.params["epochs"] = rep.epochs
    ctx.params["stopped"] = rep.stopped
    return net


DEFAULT_TABLE_BUDGET = 90.0


@TABLE_STRUCTURES.register("dag", "the edges you give: edges=[(parent, child), ...]", default=False)
def build_dag(ctx: FitContext) -> StateModel:
    if ctx.edges is None:
        raise InputError("structure 'dag' needs edges: a list of (parent, child) pairs")
    idx = ctx.index()
    plist: list[set[int]] = [set() for _ in ctx.names]
    for a, b in parse_edges(ctx.edges, [s.name for s in ctx.specs]):
        if a not in idx or b not in idx:
            raise InputError(f"edge {a} -> {b} uses an identifier column, which is not modelled")
        plist[idx[b]].add(idx[a])
    return ctx.discrete([tuple(sorted(p)) for p in plist])


@TABLE_STRUCTURES.register(
    "gaussian",
    "linear-Gaussian network at recorded precision (tried when every column is numeric)",
    default=False,
)
def build_gaussian(ctx: FitContext) -> StateModel:
    if not isinstance(ctx.raw, RawTable):
        raise InputError("structure 'gaussian' needs the rows in memory (not a distributed table)")
    X = numeric_matrix(ctx.enc.codecs, ctx.raw)
    if X is None:
        raise InputError(
            "structure 'gaussian' needs every modelled column numeric with no missing "
            "or non-numeric values"
        )
    parents = hill_climb(GaussianScorer(X), max_parents=ctx.params["max_parents"])
    return LinearGaussianNet.fit(X, parents, np.ones(X.shape[1]))


def all_numeric(codecs: list[ColumnCodec]) -> bool:
    """Every column numeric with no token values (the gaussian structure may apply)."""
    return all(c.numeric and not c.tokens for c in codecs)


def numeric_matrix(codecs: list[ColumnCodec], raw: RawTable) -> np.ndarray | None:
    """Grid values of every column (rows × columns), or None if any column is not purely
    numeric in this data (then the linear-Gaussian structure does not apply)."""
    if not all_numeric(codecs):
        return None
    X = np.column_stack([to_grid(c.spec, raw.cells[c.spec.name]) for c in codecs])
    return None if np.isnan(X).any() else X


STRUCTURES = tuple(TABLE_STRUCTURES.names())
DEFAULT_STRUCTURES = tuple(TABLE_STRUCTURES.defaults())


# ---- labels -------------------------------------------------------------------------------
_LABEL = re.compile(r"^([A-Za-z][\w-]*)(?:\[(.*)\])?$")


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse out-of-range parameter values, naming the parameter."""
    bins = params.get("bins")
    whole = isinstance(bins, int) and not isinstance(bins, bool) and bins >= 1
    if bins is not None and bins != PER_COLUMN and not whole:
        raise InputError(f"bins must be a positive number of bins or {PER_COLUMN}, got {bins}")
    mp = params.get("max_parents")
    if mp is not None and (isinstance(mp, bool) or not isinstance(mp, int) or mp < 0):
        raise InputError(f"max_parents must be 0 or more, got {mp}")
    mc = params.get("min_count")
    if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc < 1):
        raise InputError(f"min_count must be 1 or more (1 stores every category), got {mc}")


def checked_column_bins(column_bins: Mapping[str, int] | None) -> ColumnBins:
    """`column_bins` as sorted (name, bins) pairs, each bins a positive whole number."""
    pairs = sorted((column_bins or {}).items())
    for name, b in pairs:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise InputError(f"column_bins[{name!r}] must be a positive number of bins, got {b}")
    return tuple((str(name), int(b)) for name, b in pairs)


def parse_label(label: str) -> tuple[str, dict[str, Param]]:
    """`name[k=v,...]` (as a leaderboard spells a structure) as its registered name and the
    parameters it sets; unknown names or parameters are InputErrors naming the valid ones."""
    m = _LABEL.match(str(label).strip())
    if m is None:
        raise InputError(f"cannot read the structure {label!r}; write name or name[key=value,...]")
    name, inner = m.group(1), m.group(2)
    TABLE_STRUCTURES.get(name)  # an InputError listing the structures
    params: dict[str, Param] = {}
    for item in inner.split(",") if inner and inner.strip() else []:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in PARAM_DEFAULTS:
            raise InputError(
                f"structure {label!r}: cannot read {item.strip()!r}; parameters are "
                f"{', '.join(PARAM_DEFAULTS)} as key=value"
            )
        if key == "bins" and value == PER_COLUMN:
            params[key] = value
        elif key in _INT_PARAMS:
            try:
                params[key] = int(value)
            except ValueError:
                raise InputError(f"structure {label!r}: {key} must be a whole number") from None
        else:
            params[key] = value
    check_params(params)
    return name, params


def format_label(name: str, params: Mapping[str, Param]) -> str:
    """The label of `name` with these parameters (just the name when there are none)."""
    if not params:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in params.items())}]"


def split_labels(structures: str) -> list[str]:
    """`"a,b[bins=5,score=bic]"` as labels: commas inside brackets do not separate."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in structures:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s.strip() for s in out]
