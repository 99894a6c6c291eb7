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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from .. import progress
from ..base import Twin, check_count
from ..core.candidates import select
from ..core.seeding import SeedLike, block_rng, blocks, seed_sequence, stream
from ..errors import InputError
from ..modelfile import require
from ..reader import RawTable, read_table
from . import command
from .codec import MIN_COUNT, ColumnCodec, Decoded, grid_to_values, to_grid, withheld_summary
from .dagfile import read_dag_file
from .frames import (
    looks_like_formula,
    token_frame,
    tokens_from_frame,
    typed_frame,
)
from .frames import neutralise_formulas as _neutralise
from .ids import IdGenerator, int_like
from .protocols import STATE_MODELS, StateModel
from .rows import Rows, RowSource
from .schema import ColumnSpec, infer_schema, load_schema_overrides, parsed_once, schema_json
from .select import TableSearch, check_rows, split_rows, structure_plan
from .sketch import ColumnSketch, Summary
from .structures import (
    PER_COLUMN,
    STRUCTURES,
    TABLE_STRUCTURES,
    FitCache,
    FitContext,
    check_params,
    checked_column_bins,
    parse_label,
)
from .summary import bounded_columns, column_summary, exact_counts, is_sketched

__all__ = ["STRUCTURES", "TableTwin", "read_dag_file"]

#: records per sampling block: each block draws from its own seed stream, so a sample is the
#: same whatever the number of blocks drawn and written at a time (`CHUNK_ROWS`)
SAMPLE_BLOCK = 10_000
#: records the CLI draws and writes at a time (rounded up to whole blocks): bounded memory
CHUNK_ROWS = 100_000


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
    def _schema_for(raw: Rows, schema: Any) -> list[ColumnSpec]:
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
        min_count: int = MIN_COUNT,
        specs: list[ColumnSpec] | None = None,
        warm_start: list[tuple[str, str]] | None = None,
        order: list[str] | None = None,
        epochs: int | None = None,
        time_budget: float | None = None,
        device: str = "auto",
        column_bins: Mapping[str, int] | None = None,
        _cache: FitCache | None = None,
    ) -> TableTwin:
        """Fit one structure on `data`: independent, chow-liu, bayesnet (hill climbing),
        trees (each column a decision tree over the columns before it, in the order of the
        bayesnet), dag (the `edges` you give) or gaussian (linear-Gaussian network over
        numeric columns). `structure` may be a label with parameters, `trees[bins=20]`.

        warm_start: edges to start the bayesnet search from (default: the Chow-Liu tree).
        order: the column order of a trees fit (default: the learned bayesnet's).
        column_bins: numbers of bins for named numeric columns, overriding `bins` (what a
        `fit_select` search picks per column: `trees[bins=per-column]`).
        """
        name, label_params = parse_label(structure)
        builder = TABLE_STRUCTURES.get(name).builder
        params: dict[str, Any] = {
            "bins": bins,
            "score": score,
            "max_parents": max_parents,
            "max_categories": max_categories,
            "min_count": min_count,
            **label_params,
        }
        if epochs is not None:
            params["epochs"] = epochs
        check_params(params)
        own_bins = checked_column_bins(column_bins)
        if own_bins:
            params["column_bins"] = dict(own_bins)
        if params["bins"] == PER_COLUMN:
            if not own_bins:
                raise InputError(
                    f"{structure}: each column's bins are chosen on held-out rows; fit it with "
                    "datatwin.fit (or fit_select), or give column_bins={name: bins}"
                )
            params["bins"] = bins  # the columns column_bins does not name

        raw = _rows(data)
        check_rows(raw, 1)
        specs = specs or cls._schema_for(raw, schema)
        model_specs = [s for s in specs if s.type != "id"]
        if not model_specs:
            raise InputError("every column is an identifier; nothing to model")
        unknown = sorted(set(dict(own_bins)) - {s.name for s in model_specs})
        if unknown:
            raise InputError(f"column_bins names columns the twin does not model: {unknown}")
        # fits of several structures on the same rows share codecs, counts and searches
        enc = (_cache or FitCache()).encoding(
            raw,
            model_specs,
            params["bins"],
            params["max_categories"],
            params["min_count"],
            own_bins,
        )
        ids = {s.name: _id_generator(raw, s) for s in specs if s.type == "id"}
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
        min_count: int = MIN_COUNT,
        time_budget: float | None = None,
        device: str = "auto",
    ) -> TableTwin:
        """Fit each candidate on a training split, keep the best by holdout bits, refit it.

        structures: names or labels (`trees[bins=20]`, a twin's `structure`), a list or a
        comma-separated string; default: independent, chow-liu, bayesnet, trees (+ dag with
        `edges`, + gaussian when every column is numeric).
        holdout: a fraction of rows (random, from `seed`: an int, None or a numpy Generator)
        or data (path/DataFrame) to hold out.
        bins: coarse bins of numeric columns; None tries 10, then searches: when `trees`
        are best, each numeric column its own count (`trees[bins=per-column]`); otherwise
        doubling (20, 40, 80, 160) for the best structure until two doublings in a row do
        not help, and 5 when no finer count did.
        min_count: privacy rule: a category of a high-cardinality column (more than
        max(50, sqrt(rows)) distinct values) seen in fewer than `min_count` rows is never
        stored or sampled verbatim; it is spelled by a character model (1: store all).
        """
        check_params({"bins": bins, "max_parents": max_parents, "min_count": min_count})
        raw = _rows(data)
        plan = structure_plan(structures, edges)
        with progress.step(f"holding out rows of {raw.n_rows:,}"):
            split = split_rows(raw, holdout, seed)
        with progress.step(f"inferring the types of {len(raw.columns)} columns"):
            specs = cls._schema_for(raw, schema)
        for s in specs:
            if s.note:
                progress.note(f"column {s.name!r}: {s.note}")
        _note_withheld(raw, specs, min_count)
        _note_formulas(raw)
        search = TableSearch(
            cls,
            split,
            plan,
            auto=structures is None,
            bins=bins,
            params={
                "score": score,
                "max_parents": max_parents,
                "max_categories": max_categories,
                "min_count": min_count,
            },
            specs=specs,
            edges=edges,
            refit=refit,
            neural={"time_budget": time_budget, "device": device},
        )
        with parsed_once():  # the bins tried parse each column's numbers once
            chosen = select(search)
        twin = chosen.model
        twin.leaderboard = chosen.leaderboard
        return twin

    # ---- likelihood --------------------------------------------------------------------
    def log_prob(self, data: Any) -> np.ndarray:
        """log P(row) in nats for each row (identifier columns are not part of it)."""
        raw = read_table(data)
        missing = [c for c in self.modelled if c not in raw.cells]
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
        neutralise_formulas: bool = False,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """`n` new records with the training columns and dtypes.

        seed: an int, None (fresh) or a numpy Generator; one SeedSequence gives the values'
        stream and the identifiers' stream.
        given: {column: value} to sample exactly from P(other columns | given values).
        novel: also draw the escape states (values never seen in training), as the
        likelihood does; by default samples keep to what training showed.
        neutralise_formulas: prefix text cells a spreadsheet would run as a formula
        (`=HYPERLINK(...)`, `@SUM(...)`, a leading + or - that is not a number) with `'`.
        """
        if kwargs:
            raise InputError(
                f"unknown option(s) {', '.join(map(repr, kwargs))} for sample; "
                "valid: n, seed, given, novel, neutralise_formulas"
            )
        root = seed_sequence(seed)
        parts = list(self._sample_blocks(n, root, given, novel))
        decoded = parts[0][2] if len(parts) == 1 else _concat(parts)
        out = typed_frame(self.schema, self.codecs, self.ids, decoded, n, stream(root, "ids"))
        return _neutralise(out) if neutralise_formulas else out

    def sample_tokens(
        self,
        n: int,
        seed: SeedLike = None,
        *,
        given: dict[str, Any] | None = None,
        novel: bool = False,
        neutralise_formulas: bool = False,
    ) -> pd.DataFrame:
        """Samples as the exact text tokens a CSV of the data would hold."""
        chunks = list(self.sample_token_chunks(n, seed, given=given, novel=novel))
        out = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
        return _neutralise(out) if neutralise_formulas else out

    def sample_token_chunks(
        self,
        n: int,
        seed: SeedLike = None,
        *,
        given: dict[str, Any] | None = None,
        novel: bool = False,
        chunk_rows: int | None = None,
    ) -> Iterator[pd.DataFrame]:
        """`sample_tokens` in chunks of `chunk_rows` records (default `CHUNK_ROWS`, rounded
        up to whole `SAMPLE_BLOCK`s), so a sample of any size is written with bounded memory;
        the same seed gives the same rows whatever the chunk size. Options are checked
        before the first chunk is drawn."""
        root = seed_sequence(seed)
        ids_rng = stream(root, "ids")
        per_chunk = max(1, -(-(chunk_rows or CHUNK_ROWS) // SAMPLE_BLOCK))
        parts = self._sample_blocks(n, root, given, novel)

        def chunks() -> Iterator[pd.DataFrame]:
            group: list[tuple[int, int, list[Decoded]]] = []
            for part in parts:
                group.append(part)
                if len(group) == per_chunk:
                    yield self._token_chunk(group, ids_rng)
                    group = []
            if group:
                yield self._token_chunk(group, ids_rng)

        return chunks()

    def _token_chunk(
        self, group: list[tuple[int, int, list[Decoded]]], ids_rng: np.random.Generator
    ) -> pd.DataFrame:
        decoded = group[0][2] if len(group) == 1 else _concat(group)
        size = sum(count for _, count, _ in group)
        return token_frame(self.schema, self.codecs, self.ids, decoded, size, ids_rng, group[0][0])

    def _sample_blocks(
        self,
        n: int,
        root: np.random.SeedSequence,
        given: dict[str, Any] | None,
        novel: bool,
    ) -> Iterator[tuple[int, int, list[Decoded]]]:
        """(offset, count, decoded columns) of each block of the sample; block k draws from
        its own stream (`core.seeding.block_rng`). The evidence is checked here, eagerly."""
        check_count(n, "the number of samples")
        allowed = [(c.state_kind != 4) | novel for c in self.codecs]
        evidence = self._evidence(given or {})
        return (
            (offset, size, self._draw(size, block_rng(root, k), allowed, evidence))
            for k, (offset, size) in enumerate(blocks(n, SAMPLE_BLOCK))
        )

    def _draw(
        self,
        n: int,
        rng: np.random.Generator,
        allowed: list[np.ndarray],
        evidence: dict[int, tuple[int, str]],
    ) -> list[Decoded]:
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
        command.add_options(fit, sample)

    @classmethod
    def cli_fit(cls, path: Path, args: argparse.Namespace) -> TableTwin:
        if getattr(args, "engine", "memory") == "dask":
            from .dask import dask_client

            with dask_client(getattr(args, "scheduler", None)):
                raw, options = command.fit_options(path, args)
                return cls.fit_select(raw, **options)
        raw, options = command.fit_options(path, args)
        return cls.fit_select(raw, **options)

    def cli_read(self, path: Path, args: argparse.Namespace) -> RawTable:
        return read_table(path)  # --encoding, --sep, --no-header: the CLI's reading block

    def cli_sample(self, args: argparse.Namespace) -> pd.DataFrame:
        return self.sample_tokens(**command.sample_options(args))

    def cli_sample_writer(self, args: argparse.Namespace) -> Callable[[BinaryIO], None]:
        """CSV (or Parquet for -o *.parquet) written block by block (`SAMPLE_BLOCK` records):
        bounded memory for any -n."""
        chunks = self.sample_token_chunks(**command.sample_options(args))
        if str(getattr(args, "output", "") or "").lower().endswith((".parquet", ".pq")):
            return command.parquet_writer(chunks, args)

        def write(fh: BinaryIO) -> None:
            for i, chunk in enumerate(chunks):
                fh.write(command.csv_bytes(chunk, args, header=i == 0))

        return write

    def cli_write(self, samples: pd.DataFrame, fh, args: argparse.Namespace) -> None:
        if not isinstance(samples, pd.DataFrame) or samples.dtypes.ne(object).any():
            samples = self._tokens_from_frame(samples)
        fh.write(command.csv_bytes(samples, args))

    def _tokens_from_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        return tokens_from_frame(self.schema, df)


def _concat(parts: list[tuple[int, int, list[Decoded]]]) -> list[Decoded]:
    """The blocks' decoded columns joined into one decoded sample per column."""
    return [Decoded.join(list(cols)) for cols in zip(*(dec for _, _, dec in parts), strict=True)]


def _rows(data: Any) -> Rows:
    """The rows of `data`: a table read into memory, or a `RowSource` as it is."""
    return data if isinstance(data, RowSource) else read_table(data)


def _id_generator(raw: Rows, spec: ColumnSpec) -> IdGenerator:
    name = spec.name
    if is_sketched(raw, name):  # too many distinct values to hold: from its bounded summary
        return bounded_columns(raw, [spec])[name].id_generator()
    if isinstance(raw, RawTable):
        return IdGenerator.fit(raw.text(name), int_like(raw.cells[name].uniques))
    return raw.id_generator(name)


def _note_withheld(raw: Rows, specs: list[ColumnSpec], min_count: int) -> None:
    """A note per column whose rare values the privacy rule keeps out of the model."""
    for s in specs:
        if s.type == "id" or s.name not in raw.columns or is_sketched(raw, s.name):
            continue  # (a sketched column's note says what it spells)
        values, rows = withheld_summary(s, exact_counts(raw, s.name), min_count)
        if values:
            progress.note(
                f"column {s.name!r}: {values} values seen in fewer than {min_count} rows "
                f"({rows} of {raw.n_rows} rows) are not stored; the twin spells such values "
                "with a character model (privacy rule; min_count=1 / --min-count 1 stores them)"
            )


def _note_formulas(raw: Rows) -> None:
    """A note when cells or column names look like spreadsheet formulas (samples may
    reproduce them; `--neutralise-formulas` writes them as text)."""
    cols = [c for c in raw.columns if _has_formula(column_summary(raw, c))]
    names = [
        c
        for c, h in zip(
            raw.columns, looks_like_formula(np.array(raw.columns, dtype=object)), strict=True
        )
        if h
    ]
    if cols or names:
        where = ", ".join(repr(c) for c in (cols + [n for n in names if n not in cols])[:5])
        progress.note(
            f"cells or column names that a spreadsheet would run as formulas (=, +, -, @ "
            f"first) in {where}: sample with --neutralise-formulas "
            "(neutralise_formulas=True) to write them as text"
        )


def _has_formula(summary: Summary) -> bool:
    if isinstance(summary, ColumnSketch):
        return summary.facts.formula
    return bool(looks_like_formula(summary.values).any())
