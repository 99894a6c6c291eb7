"""Tabular twins: schema + column codecs + a discrete Bayesian network over column states
(conditional tables, or decision trees for the `trees` structure).

`TableTwin.fit_select` (what `datatwin.fit` calls) fits every candidate structure on a
training split, scores each on the holdout in bits per record, keeps the best and refits it
on all the data. Each structure also stands alone: `TableTwin.fit(df, structure="dag",
edges=[("a", "b")])`.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import leaderboard as lb
from .. import progress
from ..base import Twin
from ..errors import InputError
from ..modelfile import require
from ..reader import RawTable, read_table
from .bayesnet import DiscreteBayesNet, topological_order
from .codec import ColumnCodec, Decoded, datetime_step, grid_to_values, to_grid
from .counting import FamilyCounter
from .cpt import CPT
from .gaussian import GaussianScorer, LinearGaussianNet
from .ids import IdGenerator
from .schema import ColumnSpec, infer_schema, load_schema_overrides, schema_json
from .search import LocalScorer, chow_liu, hill_climb
from .trees import TreeCPT, grow_trees

STRUCTURES = ("independent", "chow-liu", "bayesnet", "trees", "dag", "gaussian")
DEFAULT_STRUCTURES = ("independent", "chow-liu", "bayesnet", "trees")
MIN_ROWS = 10


def _parse_edges(edges, columns: list[str]) -> list[tuple[str, str]]:
    out = []
    for e in edges:
        if len(e) != 2:
            raise InputError(f"an edge must be a pair (parent, child), got {e!r}")
        a, b = str(e[0]), str(e[1])
        for c in (a, b):
            if c not in columns:
                raise InputError(f"edge {a} -> {b}: no column named {c!r} in the data")
        out.append((a, b))
    return out


def read_dag_file(path: str | Path) -> list[tuple[str, str]]:
    """Edges from a file: JSON [[parent, child], ...] or lines `parent -> child` / `parent,child`."""
    import json

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"DAG file not found: {path}") from None
    text_s = text.strip()
    if text_s.startswith("[") or text_s.startswith("{"):
        try:
            doc = json.loads(text_s)
        except json.JSONDecodeError as exc:
            raise InputError(f"DAG file {path} is not valid JSON ({exc})") from None
        if isinstance(doc, dict):
            doc = doc.get("edges", [])
        if not isinstance(doc, list) or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 for e in doc
        ):
            raise InputError(f"DAG file {path}: expected a JSON list of [parent, child] pairs")
        return [(str(a), str(b)) for a, b in doc]
    edges = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        sep = "->" if "->" in line else ","
        parts = [p.strip() for p in line.split(sep)]
        if len(parts) != 2 or not all(parts):
            raise InputError(
                f"DAG file {path}: cannot read the line {line!r}; write `parent -> child`"
            )
        edges.append((parts[0], parts[1]))
    return edges


class TableTwin(Twin):
    """A twin of a table: P(row) = Π_columns P(state | parent states) · P(value | state)."""

    kind = "table"
    unit = "record"

    def __init__(
        self,
        schema: list[ColumnSpec],
        codecs: list[ColumnCodec],
        net: DiscreteBayesNet,
        ids: dict[str, IdGenerator],
        structure: str,
        options: dict[str, Any],
        gnet: LinearGaussianNet | None = None,
    ):
        self.schema = schema
        self.gnet = gnet
        self.codecs = codecs
        self.net = net
        self.ids = ids
        self.structure = structure
        self.options = options
        self.leaderboard: list[dict[str, Any]] = []
        self.modelled = [c.spec.name for c in codecs]

    # ---- construction ------------------------------------------------------------------
    @staticmethod
    def _schema_for(raw: RawTable, schema) -> list[ColumnSpec]:
        if isinstance(schema, (str, Path)):
            schema = load_schema_overrides(schema)
        if isinstance(schema, list) and schema and isinstance(schema[0], ColumnSpec):
            return schema
        return infer_schema(raw, schema or None)

    @classmethod
    def fit(
        cls,
        data,
        structure: str = "bayesnet",
        *,
        edges=None,
        schema=None,
        bins: int = 10,
        score: str = "bde",
        max_parents: int = 4,
        max_categories: int = 2000,
        specs: list[ColumnSpec] | None = None,
        warm_start: list[tuple[str, str]] | None = None,
        order: list[str] | None = None,
        _shared: dict | None = None,
    ) -> TableTwin:
        """Fit one structure on `data`: independent, chow-liu, bayesnet (hill climbing),
        trees (each column a decision tree over the columns before it, in the order of the
        bayesnet), dag (the `edges` you give) or gaussian (linear-Gaussian network over
        numeric columns).

        warm_start: edges to start the bayesnet search from (default: the Chow-Liu tree).
        order: the column order of a trees fit (default: the learned bayesnet's).
        """
        if structure not in STRUCTURES:
            raise InputError(
                f"unknown structure {structure!r}; choose from {', '.join(STRUCTURES)}"
            )
        raw = read_table(data)
        _check_rows(raw, 1)
        specs = specs or cls._schema_for(raw, schema)
        model_specs = [s for s in specs if s.type != "id"]
        if not model_specs:
            raise InputError("every column is an identifier; nothing to model")
        # fits of several structures on the same rows share codecs, counts and scores
        shared = None if _shared is None else _shared.setdefault((bins, max_categories), {})
        if shared and "codecs" in shared:
            codecs, columns = shared["codecs"], shared["columns"]
        else:
            codecs = [
                ColumnCodec.fit(s, raw.tokens[s.name], bins=bins, max_categories=max_categories)
                for s in model_specs
            ]
            columns = [c.encode(raw.tokens[c.spec.name])[0] for c in codecs]
        ids = {
            s.name: IdGenerator.fit(raw.tokens[s.name], _int_like(raw.tokens[s.name]))
            for s in specs
            if s.type == "id"
        }
        cards = np.array([c.n_states for c in codecs], dtype=np.int64)
        pseudo = [c.prior_counts() for c in codecs]
        if shared is not None and "counter" in shared:
            counter = shared["counter"]
        else:
            counter = FamilyCounter(columns, cards)
            if shared is not None:
                shared.update(codecs=codecs, columns=columns, counter=counter)
        names = [c.spec.name for c in codecs]
        gnet = None
        if structure == "gaussian":
            X = _numeric_matrix(codecs, raw)
            if X is None:
                raise InputError(
                    "structure 'gaussian' needs every modelled column numeric with no missing "
                    "or non-numeric values"
                )
            gparents = hill_climb(GaussianScorer(X), max_parents=max_parents)
            gnet = LinearGaussianNet.fit(X, gparents, np.ones(X.shape[1]))
        if structure in ("independent", "gaussian"):
            parents: list[tuple[int, ...]] = [() for _ in codecs]
        elif structure == "dag":
            if edges is None:
                raise InputError("structure 'dag' needs edges: a list of (parent, child) pairs")
            idx = {n: i for i, n in enumerate(names)}
            plist: list[set[int]] = [set() for _ in codecs]
            for a, b in _parse_edges(edges, [s.name for s in specs]):
                if a not in idx or b not in idx:
                    raise InputError(
                        f"edge {a} -> {b} uses an identifier column, which is not modelled"
                    )
                plist[idx[b]].add(idx[a])
            parents = [tuple(sorted(p)) for p in plist]
        elif structure == "trees" and order is not None:
            parents = []  # the order is given: no network search
        else:
            scorer = (shared or {}).get(("scorer", score)) or LocalScorer(counter, pseudo, score)
            if shared is not None:
                shared[("scorer", score)] = scorer
            if structure == "bayesnet" and warm_start is not None:
                idx = {n: i for i, n in enumerate(names)}
                start: list[set[int]] = [set() for _ in codecs]
                for a, b in warm_start:
                    start[idx[b]].add(idx[a])
                parents = [tuple(sorted(p)) for p in start]
            elif shared is not None and ("chow-liu", score) in shared:
                parents = shared[("chow-liu", score)]
            else:
                parents = chow_liu(counter, scorer)
                if shared is not None:
                    shared[("chow-liu", score)] = parents
            if structure in ("bayesnet", "trees"):
                key = ("bayesnet", score, max_parents)
                if shared is not None and warm_start is None and key in shared:
                    parents = shared[key]  # trees take their order from the same search
                else:
                    parents = hill_climb(scorer, max_parents=max_parents, start=parents)
                    if shared is not None and warm_start is None:
                        shared[key] = parents
        options: dict[str, Any] = {
            "bins": bins,
            "score": score,
            "max_parents": max_parents,
            "max_categories": max_categories,
        }
        if structure == "trees":
            if order is None:
                seq = topological_order(parents)
            else:
                idx = {n: i for i, n in enumerate(names)}
                if sorted(order) != sorted(names):
                    raise InputError("a trees order must name every modelled column once")
                seq = [idx[n] for n in order]
            net = grow_trees(counter, pseudo, seq, [c.threshold_ranks() for c in codecs])
            options["order"] = [names[v] for v in seq]
            return cls(specs, codecs, net, ids, structure, options, gnet)
        try:
            net = DiscreteBayesNet(cards, parents)
        except ValueError as exc:
            raise InputError(f"{exc}: the edges given form a cycle") from None
        net.fit(counter, pseudo)
        return cls(specs, codecs, net, ids, structure, options, gnet)

    @classmethod
    def fit_select(
        cls,
        data,
        *,
        structures=None,
        holdout: float | Any = 0.2,
        seed: int = 0,
        schema=None,
        edges=None,
        refit: bool = True,
        bins: int | None = None,
        score: str = "bde",
        max_parents: int = 4,
        max_categories: int = 2000,
    ) -> TableTwin:
        """Fit each candidate on a training split, keep the best by holdout bits, refit it.

        holdout: a fraction of rows (random, seeded) or data (path/DataFrame) to hold out.
        bins: coarse bins of numeric columns; None tries 10, then 5 and 20 for the best
        structure, and keeps doubling (40, 80, 160) while that helps.
        """
        if bins is not None and bins < 1:
            raise InputError(f"--bins must be a positive number of bins, got {bins}")
        if max_parents < 0:
            raise InputError(f"--max-parents must be 0 or more, got {max_parents}")
        raw = read_table(data)
        auto = structures is None
        structures = _structure_list(structures, edges)
        if isinstance(holdout, (int, float)) and not isinstance(holdout, bool):
            if not 0.0 < float(holdout) < 1.0:
                raise InputError(f"--holdout must be a fraction between 0 and 1, got {holdout}")
            _check_rows(raw, MIN_ROWS)
            rng = np.random.default_rng(seed)
            perm = rng.permutation(raw.n_rows)
            n_hold = max(1, int(round(float(holdout) * raw.n_rows)))
            train, hold = raw.take(np.sort(perm[n_hold:])), raw.take(np.sort(perm[:n_hold]))
            full = raw
        else:
            hold = read_table(holdout)
            missing = [c for c in raw.columns if c not in hold.columns]
            if missing:
                raise InputError(f"the holdout data lacks columns {missing}")
            hold = RawTable(
                raw.columns, {c: hold.tokens[c] for c in raw.columns}, raw.dtypes, hold.source
            )
            train = full = raw
            _check_rows(raw, 2)
        specs = cls._schema_for(raw, schema)
        for s in specs:
            if s.note:
                progress.note(f"column {s.name!r}: {s.note}")
        kw = {
            "schema": None,
            "score": score,
            "max_parents": max_parents,
            "max_categories": max_categories,
            "specs": specs,
            "edges": edges,
        }
        board: list[dict[str, Any]] = []
        fitted: dict[str, tuple[TableTwin, dict]] = {}

        shared: dict = {}  # codecs, counts and scores of the training split, reused

        def run(name: str, structure: str, b: int) -> None:
            with progress.step(f"fitting {name}"):
                t0 = time.perf_counter()
                twin = cls.fit(train, structure, bins=b, _shared=shared, **kw)
                secs = time.perf_counter() - t0
                e = lb.entry(
                    name,
                    twin.bits(train),
                    twin.bits(hold),
                    secs,
                    bins=b,
                    edges=len(twin.edges),
                    params=twin.n_params(),
                )
            board.append(e)
            fitted[name] = (twin, {"structure": structure, "bins": b})

        base_bins = bins or 10
        for s in structures:
            run(s, s, base_bins)
        first = fitted[structures[0]][0]
        if auto and all(c.numeric and not c.tokens for c in first.codecs):
            run("gaussian", "gaussian", base_bins)  # every column numeric: a candidate too
        top = lb.best(board)["structure"]
        has_intervals = top != "gaussian" and any(
            len(c.coarse_edges) > 2 for c in fitted[top][0].codecs
        )
        if bins is None and has_intervals:
            # coarser and finer bins for the best structure; keep doubling while it helps
            for b in (5, 20, 40, 80, 160):
                if b > 20 and lb.best(board)["bins"] != b // 2:
                    break
                run(f"{top}[bins={b}]", fitted[top][1]["structure"], b)
        winner = lb.best(board)["structure"]
        lb.mark_selected(board, winner)
        twin, how = fitted[winner]
        if refit and full is not train:
            with progress.step(f"refitting {winner} on all {full.n_rows} rows"):
                twin = cls.fit(
                    full,
                    how["structure"],
                    bins=how["bins"],
                    warm_start=twin.edges,
                    order=twin.options.get("order"),
                    **kw,
                )
        twin.structure = winner
        twin.leaderboard = board
        return twin

    # ---- likelihood --------------------------------------------------------------------
    def _encode(self, raw: RawTable) -> tuple[list[np.ndarray], np.ndarray]:
        missing = [c for c in self.modelled if c not in raw.tokens]
        if missing:
            raise InputError(f"the data lacks columns the twin models: {missing}")
        cols, within = [], np.zeros(raw.n_rows)
        for codec in self.codecs:
            s, w = codec.encode(raw.tokens[codec.spec.name])
            cols.append(s)
            within += w
        return cols, within

    def log_prob(self, data) -> np.ndarray:
        """log P(row) in nats for each row (identifier columns are not part of it)."""
        raw = read_table(data)
        cols, within = self._encode(raw)
        if self.gnet is not None:
            X = np.column_stack([to_grid(c.spec, raw.tokens[c.spec.name]) for c in self.codecs])
            nbytes = (
                np.column_stack(
                    [[len(str(t).encode()) for t in raw.tokens[c.spec.name]] for c in self.codecs]
                )
                if np.isnan(X).any()
                else np.zeros(X.shape, dtype=np.int64)
            )
            out = self.gnet.log_prob(X, nbytes)
        else:
            out = self.net.log_prob(cols) + within
        if not np.all(np.isfinite(out)):
            raise AssertionError("internal error: a non-finite log-probability")
        return out

    # ---- sampling ----------------------------------------------------------------------
    def sample(
        self,
        n: int,
        seed: int | None = None,
        given: dict[str, Any] | None = None,
        novel: bool = False,
    ) -> pd.DataFrame:
        """`n` new records with the training columns and dtypes.

        given: {column: value} to sample exactly from P(other columns | given values).
        novel: also draw the escape states (values never seen in training), as the
        likelihood does; by default samples keep to what training showed.
        """
        states, decoded = self._sample_decoded(n, seed, given, novel)
        return self._frame(decoded, n, np.random.default_rng([seed or 0, 7]))

    def _sample_decoded(self, n: int, seed, given, novel):
        if n < 0:
            raise InputError("the number of samples must be non-negative")
        rng = np.random.default_rng(seed)
        allowed = [(c.state_kind != 4) | novel for c in self.codecs]
        evidence: dict[int, tuple[int, str]] = {}
        for col, value in (given or {}).items():
            if col not in self.modelled:
                raise InputError(f"--given names {col!r}, which is not a modelled column")
            i = self.modelled.index(col)
            token = np.array(["" if value is None else str(value)], dtype=object)
            st = int(self.codecs[i].encode(token)[0][0])
            if st == self.codecs[i].escape_state and not self.codecs[i].has_rare:
                raise InputError(
                    f"--given {col}={value}: value never seen in training, "
                    "so the twin has no data to condition on; pick a seen value"
                )
            evidence[i] = (st, str(token[0]))
        if self.gnet is not None:
            if evidence:
                raise InputError(
                    "--given is supported for discrete structures; this twin is linear-Gaussian "
                    "(fit with --structures bayesnet to condition)"
                )
            X = self.gnet.sample(n, rng)
            decoded = [
                Decoded(grid_to_values(c.spec, X[:, i]), np.zeros(n, bool), None)
                for i, c in enumerate(self.codecs)
            ]
            return None, decoded
        if evidence:
            from .inference import conditional_sample

            states = conditional_sample(
                self.net, n, rng, allowed, {i: s for i, (s, _) in evidence.items()}
            )
        else:
            states = self.net.sample(n, rng, allowed)
        decoded = [c.decode(s, rng) for c, s in zip(self.codecs, states, strict=True)]
        for i, (_, tok) in evidence.items():  # given values are reproduced exactly
            d = decoded[i]
            if self.codecs[i].numeric:
                g = to_grid(self.codecs[i].spec, np.array([tok], dtype=object))[0]
                if not np.isnan(g):
                    d.values[:] = grid_to_values(self.codecs[i].spec, np.array([g]))[0]
            else:
                d.values[:] = tok
        return states, decoded

    def _frame(self, decoded: list[Decoded], n: int, rng) -> pd.DataFrame:
        by_name = dict(zip(self.modelled, decoded, strict=True))
        out = {}
        for spec in self.schema:
            if spec.type == "id":
                toks = self.ids[spec.name].sample(n, rng)
                if self.ids[spec.name].kind == "integer" and (
                    spec.dtype == "csv" or spec.dtype.startswith(("int", "uint"))
                ):  # integer identifiers keep an integer dtype
                    dtype = np.int64 if spec.dtype == "csv" else spec.dtype
                    out[spec.name] = pd.Series(toks.astype(np.int64).astype(dtype))
                    continue
                out[spec.name] = _typed(spec, Decoded(toks, np.zeros(n, bool), None))
            else:
                d = by_name[spec.name]
                out[spec.name] = _typed(spec, d, self.codecs[self.modelled.index(spec.name)].tokens)
        return pd.DataFrame(out)

    def sample_tokens(
        self, n: int, seed: int | None = None, given=None, novel: bool = False
    ) -> pd.DataFrame:
        """Samples as the exact text tokens a CSV of the data would hold."""
        _, decoded = self._sample_decoded(n, seed, given, novel)
        rng = np.random.default_rng([seed or 0, 7])
        by_name = dict(zip(self.modelled, decoded, strict=True))
        out = {}
        for spec in self.schema:
            if spec.type == "id":
                out[spec.name] = self.ids[spec.name].sample(n, rng)
            else:
                out[spec.name] = _format_tokens(
                    spec, by_name[spec.name], self.codecs[self.modelled.index(spec.name)]
                )
        return pd.DataFrame(out, dtype=object)

    # ---- persistence -------------------------------------------------------------------
    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {"cards": self.net.cards}
        codec_meta = []
        for i, c in enumerate(self.codecs):
            m, a = c.to_archive(f"c{i}_")
            codec_meta.append(m)
            arrays.update(a)
        for i, cpt in enumerate(self.net.cpts):
            arrays.update(cpt.to_arrays(f"n{i}_"))
        if self.gnet is not None:
            arrays.update(self.gnet.to_arrays())
        meta = {
            "schema": [s.to_dict() for s in self.schema],
            "codecs": codec_meta,
            "ids": {k: v.to_dict() for k, v in self.ids.items()},
            "options": self.options,
        }
        return meta, arrays

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> TableTwin:
        schema = [ColumnSpec.from_dict(d) for d in meta["schema"]]
        codecs = [
            ColumnCodec.from_archive(m, arrays, f"c{i}_") for i, m in enumerate(meta["codecs"])
        ]
        cards = arrays["cards"].astype(np.int64)
        require(cards.shape == (len(codecs),), source, "column count mismatch")
        require(
            all(int(k) == c.n_states for k, c in zip(cards, codecs, strict=True)),
            source,
            "state counts do not match the column codecs",
        )
        modelled = [s.name for s in schema if s.type != "id"]
        require(modelled == [c.spec.name for c in codecs], source, "schema and codecs disagree")
        cpts = [
            (TreeCPT if TreeCPT.stored(arrays, f"n{i}_") else CPT).from_arrays(
                arrays, f"n{i}_", int(cards[i]), cards
            )
            for i in range(len(codecs))
        ]
        require(
            all(
                all(0 <= p < len(codecs) and p != i for p in c.parents) for i, c in enumerate(cpts)
            ),
            source,
            "a parent index is out of range",
        )
        net = DiscreteBayesNet(cards, [c.parents for c in cpts])  # raises on a cycle
        net.cpts = cpts
        ids = {
            k: IdGenerator(str(v["kind"]), int(v["start"]), str(v["template"]))
            for k, v in meta["ids"].items()
        }
        require(
            set(ids) == {s.name for s in schema if s.type == "id"},
            source,
            "identifier generators do not match the schema",
        )
        gnet = None
        if "g_parents" in arrays:
            gnet = LinearGaussianNet.from_arrays(arrays)  # raises on a cycle or bad values
            require(len(gnet.parents) == len(codecs), source, "Gaussian network size mismatch")
        return cls(schema, codecs, net, ids, str(meta["structure"]), dict(meta["options"]), gnet)

    # ---- description -------------------------------------------------------------------
    @property
    def edges(self) -> list[tuple[str, str]]:
        """Learned dependencies as (parent column, child column) pairs."""
        net = self.gnet if self.gnet is not None else self.net
        return [(self.modelled[p], self.modelled[v]) for p, v in net.edges]

    def edge_weights(self) -> list[float] | None:
        """For a `trees` twin, each edge's number of splits (in the order of `edges`): how
        much of the child's tree that parent shapes. None for other structures."""
        if self.gnet is not None or not any(isinstance(c, TreeCPT) for c in self.net.cpts):
            return None
        out = []
        for p, v in self.net.edges:
            t = self.net.cpts[v]
            out.append(float(np.sum(t.feature == p)) if isinstance(t, TreeCPT) else 1.0)
        return out

    def n_params(self) -> int:
        """Free parameters of the fitted structure (a complexity figure)."""
        return (self.gnet if self.gnet is not None else self.net).n_params()

    def schema_json(self) -> str:
        return schema_json(self.schema)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "edges": [list(e) for e in self.edges]}

    # ---- command line ------------------------------------------------------------------
    @classmethod
    def cli_add_options(cls, fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
        g = fit.add_argument_group("tables")
        g.add_argument(
            "--dag",
            metavar="FILE",
            help="edges of a DAG you write down "
            "(lines `parent -> child` or JSON pairs); adds structure 'dag'",
        )
        g.add_argument(
            "--schema", metavar="FILE", help="schema JSON overriding inferred column types"
        )
        g.add_argument(
            "--write-schema", metavar="FILE", help="write the inferred schema JSON for editing"
        )
        g.add_argument(
            "--bins",
            type=int,
            default=None,
            help="coarse bins per numeric column "
            "(default: 10, then 5, 20, 40, 80, 160 tried on holdout)",
        )
        g.add_argument(
            "--score",
            choices=["bde", "bdeu", "bic"],
            default="bde",
            help="structure score for bayesnet (default bde)",
        )
        g.add_argument("--max-parents", type=int, default=4, help="in-degree bound for bayesnet")
        g.add_argument("--no-header", action="store_true", help="the CSV has no header line")
        g.add_argument(
            "--encoding", default="utf-8", help="text encoding of the CSV (default utf-8)"
        )
        g.add_argument(
            "--not-missing",
            metavar="TOKENS",
            default=None,
            help="comma-separated tokens that are real values, not missing (e.g. NA)",
        )
        sg = sample.add_argument_group("tables")
        sg.add_argument(
            "--given",
            action="append",
            metavar="COL=VALUE",
            default=[],
            help="sample conditionally on a column's value (repeatable)",
        )
        sg.add_argument(
            "--novel",
            action="store_true",
            help="also sample values never seen in training (the escape mass)",
        )

    @classmethod
    def cli_fit(cls, path: Path, args: argparse.Namespace) -> TableTwin:
        raw = read_table(
            path,
            encoding=getattr(args, "encoding", "utf-8"),
            header=not getattr(args, "no_header", False),
        )
        overrides: dict[str, dict[str, Any]] = {}
        if getattr(args, "schema", None):
            overrides = load_schema_overrides(args.schema)
        if getattr(args, "not_missing", None):
            keep = set(args.not_missing.split(","))
            base = infer_schema(raw, overrides)
            for s in base:
                overrides.setdefault(s.name, {})["missing"] = [
                    m for m in s.missing if m not in keep
                ]
        specs = infer_schema(raw, overrides)
        if getattr(args, "write_schema", None):
            from ..modelfile import atomic_write_bytes

            text = schema_json(specs).encode("utf-8")
            atomic_write_bytes(args.write_schema, lambda fh: fh.write(text))
        edges = read_dag_file(args.dag) if getattr(args, "dag", None) else None
        holdout: Any = 0.2
        if args.holdout is not None:
            try:
                holdout = float(args.holdout)
            except ValueError:
                holdout = read_table(
                    args.holdout,
                    encoding=getattr(args, "encoding", "utf-8"),
                    header=not getattr(args, "no_header", False),
                )
        structures = args.structures.split(",") if args.structures else None
        return cls.fit_select(
            raw,
            structures=structures,
            holdout=holdout,
            seed=args.seed,
            schema=specs,
            edges=edges,
            refit=not args.no_refit,
            bins=getattr(args, "bins", None),
            score=getattr(args, "score", "bde"),
            max_parents=getattr(args, "max_parents", 4),
        )

    def cli_read(self, path: Path, args: argparse.Namespace) -> RawTable:
        return read_table(path, encoding=getattr(args, "encoding", "utf-8"))

    def cli_sample(self, args: argparse.Namespace) -> pd.DataFrame:
        given = {}
        for item in getattr(args, "given", []) or []:
            if "=" not in item:
                raise InputError(f"--given {item!r}: write it as COLUMN=VALUE")
            k, v = item.split("=", 1)
            given[k.strip()] = v
        n = 1000 if args.n is None else args.n
        return self.sample_tokens(
            n, seed=args.seed, given=given or None, novel=getattr(args, "novel", False)
        )

    def cli_write(self, samples: pd.DataFrame, fh, args: argparse.Namespace) -> None:
        if not isinstance(samples, pd.DataFrame) or samples.dtypes.ne(object).any():
            samples = self._tokens_from_frame(samples)
        text = io.StringIO()
        samples.to_csv(text, index=False, lineterminator="\n")
        fh.write(text.getvalue().encode("utf-8"))

    def _tokens_from_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for spec in self.schema:
            col = df[spec.name]
            if spec.type == "float":
                fmt = f"{{:.{spec.decimals}f}}"
                toks = col.map(lambda v, fmt=fmt: "" if pd.isna(v) else fmt.format(v))
            elif spec.type == "integer":
                toks = col.map(lambda v: "" if pd.isna(v) else str(int(v)))
            elif spec.type == "datetime":
                toks = col.dt.strftime(spec.datetime_format or "%Y-%m-%d").fillna("")
            else:
                toks = col.map(
                    lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                )
            out[spec.name] = toks.astype(object)
        return pd.DataFrame(out, dtype=object)


# ---- helpers ---------------------------------------------------------------------------
def _numeric_matrix(codecs: list[ColumnCodec], raw: RawTable) -> np.ndarray | None:
    """Grid values of every column (rows × columns), or None if any column is not purely
    numeric in this data (then the linear-Gaussian structure does not apply)."""
    if not all(c.numeric and not c.tokens for c in codecs):
        return None
    X = np.column_stack([to_grid(c.spec, raw.tokens[c.spec.name]) for c in codecs])
    return None if np.isnan(X).any() else X


def _check_rows(raw: RawTable, minimum: int) -> None:
    if raw.n_rows < minimum:
        raise InputError(
            f"{raw.source} has {raw.n_rows} data rows; fitting with a holdout split "
            f"needs at least {minimum} (or pass --holdout FILE)"
        )


def _structure_list(structures, edges) -> list[str]:
    if structures is None:
        out = list(DEFAULT_STRUCTURES) + (["dag"] if edges is not None else [])
    else:
        out = [
            s.strip()
            for s in (structures.split(",") if isinstance(structures, str) else structures)
        ]
    bad = [s for s in out if s not in STRUCTURES]
    if bad or not out:
        raise InputError(f"unknown structure(s) {bad}; choose from {', '.join(STRUCTURES)}")
    if "dag" in out and edges is None:
        raise InputError("structure 'dag' needs edges (Python: edges=[...]; CLI: --dag FILE)")
    return out


def _int_like(tokens: np.ndarray) -> bool:
    """Plain integers (zero-padded ones like 000123 keep their width as string identifiers)."""
    return bool(pd.Series(tokens, dtype=object).str.strip().str.match(r"^[+-]?(0|[1-9]\d*)$").all())


def _format_tokens(spec: ColumnSpec, d: Decoded, codec: ColumnCodec) -> np.ndarray:
    if not codec.numeric:
        return d.values
    vals = d.values
    ok = ~np.isnan(vals)
    out = np.empty(len(vals), dtype=object)
    if spec.type == "float":
        out[ok] = np.char.mod(f"%.{spec.decimals}f", vals[ok]).astype(object)
    elif spec.type == "integer":
        out[ok] = vals[ok].astype(np.int64).astype(str).astype(object)
    else:
        secs = vals[ok].astype(np.int64) * datetime_step(spec)
        ts = pd.to_datetime(secs, unit="s")
        out[ok] = ts.strftime(spec.datetime_format or "%Y-%m-%d").to_numpy(object)
    if d.tokens is not None:
        has = np.array([t is not None for t in d.tokens])
        out[has] = d.tokens[has]
    return out


def _typed(spec: ColumnSpec, d: Decoded, token_list: list[str] | None = None) -> pd.Series:
    """A sampled column with the dtype the training data had."""
    values, missing = d.values, d.missing
    if spec.type in ("integer", "float"):
        vals = values.astype(float)
        if (
            spec.type == "integer"
            and not np.isnan(vals).any()
            and (spec.dtype == "csv" or spec.dtype.startswith(("int", "uint")))
        ):
            return pd.Series(vals.astype(np.int64 if spec.dtype == "csv" else spec.dtype))
        if spec.dtype.startswith("Int"):
            return pd.Series(vals).astype(spec.dtype)
        if spec.dtype.startswith("float"):
            return pd.Series(vals.astype(spec.dtype))
        return pd.Series(vals)
    if spec.type == "datetime":
        secs = values.astype(float) * datetime_step(spec)
        out = pd.Series(pd.to_datetime(secs, unit="s", errors="coerce"))
        if not spec.dtype.startswith("datetime64"):
            return out
        dtype = pd.api.types.pandas_dtype(spec.dtype)
        tz = getattr(dtype, "tz", None)
        if tz is not None:  # values are the recorded wall-clock times of that zone
            out = out.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        return out.astype(dtype)
    any_missing = bool(missing.any())
    if spec.type == "boolean" and not any_missing and d.states is not None and token_list:
        lookup = np.array([t.strip().lower() == "true" for t in token_list] + [False])
        return pd.Series(lookup[np.minimum(d.states, len(token_list))])
    vals = values
    if spec.type == "boolean":  # True/False objects, None where missing
        vals = np.array([str(v).strip().lower() == "true" for v in values], dtype=object)
    if any_missing:
        vals = vals.copy()
        vals[missing] = None
    s = pd.Series(vals, dtype=object, copy=False)
    if spec.dtype in ("category", "str", "string"):  # the frame's own string dtypes
        return s.astype(spec.dtype)
    return s
