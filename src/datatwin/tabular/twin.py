"""Tabular twins: schema + column codecs + one state model over the column states (a discrete
Bayesian network of conditional tables or decision trees, or a linear-Gaussian network).

`TableTwin.fit_select` (what `datatwin.fit` calls) fits every candidate structure on a
training split, scores each on the holdout in bits per record, keeps the best and refits it
on all the data (`select.TableSearch`). Each structure also stands alone:
`TableTwin.fit(df, structure="dag", edges=[("a", "b")])`; the structures are registered in
`structures.TABLE_STRUCTURES`. A twin's `structure` label and `params` fit it again:
`TableTwin.fit_select(df, structures=[twin.structure])` reproduces the twin (same seed and
holdout).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import progress
from ..base import Twin
from ..core.candidates import select
from ..core.seeding import SeedLike, seed_sequence, stream
from ..errors import InputError
from ..modelfile import require
from ..reader import RawTable, read_table
from .codec import ColumnCodec, Decoded, grid_to_values, to_grid
from .dagfile import read_dag_file
from .frames import token_frame, tokens_from_frame, typed_frame
from .ids import IdGenerator
from .protocols import STATE_MODELS, StateModel
from .schema import ColumnSpec, infer_schema, load_schema_overrides, schema_json
from .select import TableSearch, check_rows, split_rows, structure_plan
from .structures import (
    STRUCTURES,
    TABLE_STRUCTURES,
    FitCache,
    FitContext,
    check_params,
    parse_label,
    split_labels,
)

__all__ = ["STRUCTURES", "TableTwin", "read_dag_file"]


class TableTwin(Twin):
    """A twin of a table: P(row) = Π_columns P(state | parent states) · P(value | state)
    (or the linear-Gaussian cell masses); `net` is the one `StateModel`."""

    kind = "table"
    unit = "record"
    archive_keys = frozenset({"schema", "codecs", "ids", "options", "state_model"})
    structure_registry = TABLE_STRUCTURES
    #: a node's smoothing strength `alpha_prior[0]` is +inf when its parents are ignored
    archive_nonfinite = {
        r"n\d+_alpha_prior": lambda a: (
            a.ndim == 1 and len(a) > 0 and a[0] == np.inf and bool(np.isfinite(a[1:]).all())
        )
    }

    def __init__(
        self,
        schema: list[ColumnSpec],
        codecs: list[ColumnCodec],
        net: StateModel,
        ids: dict[str, IdGenerator],
        structure: str,
        params: dict[str, Any],
    ):
        self.schema = schema
        self.codecs = codecs
        self.net = net
        self.ids = ids
        self.structure = structure
        #: bins, score, max_parents, max_categories (and order for trees): fit with these
        self.params = params
        self.leaderboard: list[dict[str, Any]] = []
        self.modelled = [c.spec.name for c in codecs]

    # ---- construction ------------------------------------------------------------------
    @staticmethod
    def _schema_for(raw: RawTable, schema: Any) -> list[ColumnSpec]:
        if isinstance(schema, (str, Path)):
            schema = load_schema_overrides(schema)
        if isinstance(schema, list) and schema and isinstance(schema[0], ColumnSpec):
            return schema
        return infer_schema(raw, schema or None)

    @classmethod
    def fit(
        cls,
        data: Any,
        *,
        structure: str = "bayesnet",
        edges: Any = None,
        schema: Any = None,
        bins: int = 10,
        score: str = "bde",
        max_parents: int = 4,
        max_categories: int = 2000,
        specs: list[ColumnSpec] | None = None,
        warm_start: list[tuple[str, str]] | None = None,
        order: list[str] | None = None,
        epochs: int | None = None,
        time_budget: float | None = None,
        device: str = "auto",
        _cache: FitCache | None = None,
    ) -> TableTwin:
        """Fit one structure on `data`: independent, chow-liu, bayesnet (hill climbing),
        trees (each column a decision tree over the columns before it, in the order of the
        bayesnet), dag (the `edges` you give) or gaussian (linear-Gaussian network over
        numeric columns). `structure` may be a label with parameters, `trees[bins=20]`.

        warm_start: edges to start the bayesnet search from (default: the Chow-Liu tree).
        order: the column order of a trees fit (default: the learned bayesnet's).
        """
        name, label_params = parse_label(structure)
        builder = TABLE_STRUCTURES.get(name).builder
        params: dict[str, Any] = {
            "bins": bins,
            "score": score,
            "max_parents": max_parents,
            "max_categories": max_categories,
            **label_params,
        }
        if epochs is not None:
            params["epochs"] = epochs
        check_params(params)
        raw = read_table(data)
        check_rows(raw, 1)
        specs = specs or cls._schema_for(raw, schema)
        model_specs = [s for s in specs if s.type != "id"]
        if not model_specs:
            raise InputError("every column is an identifier; nothing to model")
        # fits of several structures on the same rows share codecs, counts and searches
        enc = (_cache or FitCache()).encoding(
            raw, model_specs, params["bins"], params["max_categories"]
        )
        ids = {
            s.name: IdGenerator.fit(raw.tokens[s.name], _int_like(raw.tokens[s.name]))
            for s in specs
            if s.type == "id"
        }
        options = {"time_budget": time_budget, "device": device}
        ctx = FitContext(raw, specs, enc, params, edges, warm_start, order, options)
        net = builder(ctx)
        return cls(specs, enc.codecs, net, ids, str(structure).strip(), ctx.params)

    @classmethod
    def fit_select(
        cls,
        data: Any,
        *,
        structures: Any = None,
        holdout: float | Any = 0.2,
        seed: SeedLike = 0,
        schema: Any = None,
        edges: Any = None,
        refit: bool = True,
        bins: int | None = None,
        score: str = "bde",
        max_parents: int = 4,
        max_categories: int = 2000,
        time_budget: float | None = None,
        device: str = "auto",
    ) -> TableTwin:
        """Fit each candidate on a training split, keep the best by holdout bits, refit it.

        structures: names or labels (`trees[bins=20]`, a twin's `structure`), a list or a
        comma-separated string; default: independent, chow-liu, bayesnet, trees (+ dag with
        `edges`, + gaussian when every column is numeric).
        holdout: a fraction of rows (random, from `seed`: an int, None or a numpy Generator)
        or data (path/DataFrame) to hold out.
        bins: coarse bins of numeric columns; None tries 10, then 5 and 20 for the best
        structure, and keeps doubling (40, 80, 160) while that helps.
        """
        check_params({"bins": bins, "max_parents": max_parents})
        raw = read_table(data)
        plan = structure_plan(structures, edges)
        split = split_rows(raw, holdout, seed)
        specs = cls._schema_for(raw, schema)
        for s in specs:
            if s.note:
                progress.note(f"column {s.name!r}: {s.note}")
        search = TableSearch(
            cls,
            split,
            plan,
            auto=structures is None,
            bins=bins,
            params={"score": score, "max_parents": max_parents, "max_categories": max_categories},
            specs=specs,
            edges=edges,
            refit=refit,
            neural={"time_budget": time_budget, "device": device},
        )
        chosen = select(search)
        twin = chosen.model
        twin.leaderboard = chosen.leaderboard
        return twin

    # ---- likelihood --------------------------------------------------------------------
    def log_prob(self, data: Any) -> np.ndarray:
        """log P(row) in nats for each row (identifier columns are not part of it)."""
        raw = read_table(data)
        missing = [c for c in self.modelled if c not in raw.tokens]
        if missing:
            raise InputError(f"the data lacks columns the twin models: {missing}")
        out = self.net.log_prob(self.codecs, raw)
        if not np.all(np.isfinite(out)):
            raise AssertionError("internal error: a non-finite log-probability")
        return out

    # ---- sampling ----------------------------------------------------------------------
    def sample(
        self,
        n: int,
        seed: SeedLike = None,
        *,
        given: dict[str, Any] | None = None,
        novel: bool = False,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """`n` new records with the training columns and dtypes.

        seed: an int, None (fresh) or a numpy Generator; one SeedSequence gives the values'
        stream and the identifiers' stream.
        given: {column: value} to sample exactly from P(other columns | given values).
        novel: also draw the escape states (values never seen in training), as the
        likelihood does; by default samples keep to what training showed.
        """
        if kwargs:
            raise InputError(
                f"unknown option(s) {', '.join(map(repr, kwargs))} for sample; "
                "valid: n, seed, given, novel"
            )
        root = seed_sequence(seed)
        decoded = self._sample_decoded(n, root, given, novel)
        return typed_frame(self.schema, self.codecs, self.ids, decoded, n, stream(root, "ids"))

    def sample_tokens(
        self,
        n: int,
        seed: SeedLike = None,
        *,
        given: dict[str, Any] | None = None,
        novel: bool = False,
    ) -> pd.DataFrame:
        """Samples as the exact text tokens a CSV of the data would hold."""
        root = seed_sequence(seed)
        decoded = self._sample_decoded(n, root, given, novel)
        return token_frame(self.schema, self.codecs, self.ids, decoded, n, stream(root, "ids"))

    def _sample_decoded(
        self,
        n: int,
        root: np.random.SeedSequence,
        given: dict[str, Any] | None,
        novel: bool,
    ) -> list[Decoded]:
        if n < 0:
            raise InputError("the number of samples must be non-negative")
        rng = np.random.default_rng(root)  # the values' stream: default_rng(seed) for an int
        allowed = [(c.state_kind != 4) | novel for c in self.codecs]
        evidence = self._evidence(given or {})
        decoded = self.net.sample(
            self.codecs, n, rng, allowed, {i: s for i, (s, _) in evidence.items()}
        )
        for i, (_, tok) in evidence.items():  # given values are reproduced exactly
            d = decoded[i]
            if self.codecs[i].numeric:
                g = to_grid(self.codecs[i].spec, np.array([tok], dtype=object))[0]
                if not np.isnan(g):
                    d.values[:] = grid_to_values(self.codecs[i].spec, np.array([g]))[0]
            else:
                d.values[:] = tok
        return decoded

    def _evidence(self, given: dict[str, Any]) -> dict[int, tuple[int, str]]:
        """{column index: (state, token)} of the given values."""
        evidence: dict[int, tuple[int, str]] = {}
        for col, value in given.items():
            if col not in self.modelled:
                raise InputError(f"given names {col!r}, which is not a modelled column")
            i = self.modelled.index(col)
            token = np.array(["" if value is None else str(value)], dtype=object)
            st = int(self.codecs[i].encode(token)[0][0])
            if st == self.codecs[i].escape_state and not self.codecs[i].has_rare:
                raise InputError(
                    f"given {col}={value}: value never seen in training, "
                    "so the twin has no data to condition on; pick a seen value"
                )
            evidence[i] = (st, str(token[0]))
        return evidence

    # ---- persistence -------------------------------------------------------------------
    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        model_meta, arrays = self.net.to_archive()
        arrays = dict(arrays)
        codec_meta = []
        for i, c in enumerate(self.codecs):
            m, a = c.to_archive(f"c{i}_")
            codec_meta.append(m)
            arrays.update(a)
        meta = {
            "schema": [s.to_dict() for s in self.schema],
            "codecs": codec_meta,
            "ids": {k: v.to_dict() for k, v in self.ids.items()},
            "options": self.params,
            "state_model": {"kind": STATE_MODELS.tag_of(self.net), **model_meta},
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
        modelled = [s.name for s in schema if s.type != "id"]
        require(modelled == [c.spec.name for c in codecs], source, "schema and codecs disagree")
        model_meta = meta.get("state_model")
        if model_meta is None:  # written before the kind was stored: gaussian arrays tell
            model_meta = {"kind": "gaussian" if "g_parents" in arrays else "discrete"}
        require(isinstance(model_meta, dict), source, "the state model entry is not an object")
        model_cls = STATE_MODELS.cls(model_meta.get("kind"), source)
        net = model_cls.from_archive(model_meta, arrays, codecs, source)
        ids = {
            k: IdGenerator(str(v["kind"]), int(v["start"]), str(v["template"]))
            for k, v in meta["ids"].items()
        }
        require(
            set(ids) == {s.name for s in schema if s.type == "id"},
            source,
            "identifier generators do not match the schema",
        )
        return cls(schema, codecs, net, ids, str(meta["structure"]), dict(meta["options"]))

    # ---- description -------------------------------------------------------------------
    @property
    def edges(self) -> list[tuple[str, str]]:
        """Learned dependencies as (parent column, child column) pairs."""
        return [(self.modelled[p], self.modelled[v]) for p, v in self.net.edges]

    def edge_weights(self) -> list[float] | None:
        """For a `trees` twin, each edge's number of splits (in the order of `edges`): how
        much of the child's tree that parent shapes. None for other structures."""
        return self.net.edge_weights()

    def n_params(self) -> int:
        """Free parameters of the fitted structure (a complexity figure)."""
        return self.net.n_params()

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
        structures = split_labels(args.structures) if args.structures else None
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
            time_budget=getattr(args, "time_budget", None),
            device=getattr(args, "device", "auto"),
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
        return tokens_from_frame(self.schema, df)


def _int_like(tokens: np.ndarray) -> bool:
    """Plain integers (zero-padded ones like 000123 keep their width as string identifiers)."""
    return bool(pd.Series(tokens, dtype=object).str.strip().str.match(r"^[+-]?(0|[1-9]\d*)$").all())
