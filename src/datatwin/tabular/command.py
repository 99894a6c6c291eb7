"""The table kind on the command line: its options, and `datatwin fit` / `sample` arguments
turned into the keyword arguments of `TableTwin.fit_select` and `TableTwin.sample_tokens`."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from ..errors import InputError
from ..reader import read_table
from .codec import MIN_COUNT
from .dagfile import read_dag_file
from .dask import DaskRows, read_frame
from .frames import formula_header, neutralise_formulas
from .rows import Rows
from .schema import infer_schema, load_schema_overrides, schema_json


def add_options(fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
    """The table options of `fit` and `sample` (the CLI marks them as the table kind's)."""
    g = fit.add_argument_group("tables")
    g.add_argument(
        "--dag",
        metavar="FILE",
        help="edges of a DAG you write down "
        "(lines `parent -> child` or JSON pairs); adds structure 'dag'",
    )
    g.add_argument("--schema", metavar="FILE", help="schema JSON overriding inferred column types")
    g.add_argument(
        "--write-schema", metavar="FILE", help="write the inferred schema JSON for editing"
    )
    g.add_argument(
        "--bins",
        type=int,
        default=None,
        help="coarse bins of every numeric column (default: chosen on holdout; trees get "
        "each numeric column's own count, 5 to 640)",
    )
    g.add_argument(
        "--score",
        choices=["bde", "bdeu", "bic"],
        default="bde",
        help="structure score for bayesnet (default bde)",
    )
    g.add_argument("--max-parents", type=int, default=4, help="in-degree bound for bayesnet")
    g.add_argument(
        "--min-count",
        type=int,
        default=MIN_COUNT,
        metavar="K",
        help="privacy: categories of a high-cardinality column (over max(50, sqrt(rows)) "
        f"values) seen in fewer than K rows are never stored (default {MIN_COUNT}; "
        "1 stores every category)",
    )
    g.add_argument(
        "--engine",
        choices=["memory", "dask"],
        default="memory",
        help="memory (default): read DATA here; dask: DATA is Parquet or CSV files (a file, "
        "folder or glob) read by Dask, statistics per partition (the dask extra)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: a running Dask scheduler (default: a local cluster, one "
        "worker process per core)",
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
        "--neutralise-formulas",
        action="store_true",
        help="prefix cells (and header names) a spreadsheet would run as formulas "
        "(=..., @..., +/- not a number) with ' so that they open as text",
    )
    sg.add_argument(
        "--novel",
        action="store_true",
        help="also sample values never seen in training (the escape mass)",
    )


def fit_options(path: Path, args: argparse.Namespace) -> tuple[Rows, dict[str, Any]]:
    """The rows of DATA and `fit_select`'s keyword arguments from the command line."""
    raw: Rows
    if getattr(args, "engine", "memory") == "dask":
        raw = DaskRows(read_frame(str(path), getattr(args, "sep", None)), source=str(path))
    else:
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
            overrides.setdefault(s.name, {})["missing"] = [m for m in s.missing if m not in keep]
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
    return raw, dict(
        structures=args.structures,  # labels may hold commas: trees[bins=20,score=bic]
        holdout=holdout,
        seed=args.seed,
        schema=specs,
        edges=edges,
        refit=not args.no_refit,
        bins=getattr(args, "bins", None),
        score=getattr(args, "score", "bde"),
        max_parents=getattr(args, "max_parents", 4),
        min_count=getattr(args, "min_count", MIN_COUNT),
        time_budget=getattr(args, "time_budget", None),
        device=getattr(args, "device", "auto"),
    )


def sample_options(args: argparse.Namespace) -> dict[str, Any]:
    """`sample_tokens`' keyword arguments from the command line (`--given` once per column)."""
    given: dict[str, str] = {}
    for item in getattr(args, "given", []) or []:
        if "=" not in item:
            raise InputError(f"--given {item!r}: write it as COLUMN=VALUE")
        k, v = item.split("=", 1)
        if k.strip() in given:
            raise InputError(
                f"--given {k.strip()}= appears twice ({given[k.strip()]!r} and {v!r}); "
                "give each column once"
            )
        given[k.strip()] = v
    n = 1000 if args.n is None else args.n
    return {
        "n": n,
        "seed": args.seed,
        "given": given or None,
        "novel": getattr(args, "novel", False),
    }


def parquet_writer(chunks: Iterator[pd.DataFrame], args: Any) -> Callable[[BinaryIO], None]:
    """Sampled tokens as Parquet, one row group per block of records (bounded memory): every
    column the records' text, the same cells a CSV sample holds (formulas neutralised when
    asked; empty cells are empty strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(fh: BinaryIO) -> None:
        writer = None
        try:
            for chunk in chunks:
                if getattr(args, "neutralise_formulas", False):
                    chunk = neutralise_formulas(chunk)
                table = pa.Table.from_pydict(
                    {str(c): pa.array(chunk[c].to_numpy(object), pa.string()) for c in chunk}
                )
                if writer is None:
                    writer = pq.ParquetWriter(fh, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    return write


def csv_bytes(samples: pd.DataFrame, args: Any, header: bool = True) -> bytes:
    """Sampled tokens as UTF-8 CSV (formulas neutralised when asked)."""
    text = io.StringIO()
    names: Any = header
    if getattr(args, "neutralise_formulas", False):
        samples = neutralise_formulas(samples)
        names = formula_header([str(c) for c in samples.columns]) if header else False
    samples.to_csv(text, index=False, header=names, lineterminator="\n")
    return text.getvalue().encode("utf-8")
