"""Reading tables into raw text tokens, with one-line errors for every kind of bad file.

Every cell is kept as the exact text recorded (no type guessing here), so schema inference
sees the recorded precision, the missing-value markers and any junk tokens. DataFrames and
Parquet files are turned into the same token form, remembering each column's pandas dtype.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from . import progress
from .errors import InputError

#: Cells that mean "missing" in every kind (tables keep them as values of their own; series
#: and events read them as gaps). A schema can narrow the list per column (`--not-missing`).
#: bytes of CSV text parsed at a time: the reader's memory beyond the codes it keeps
BLOCK_BYTES = 1 << 23

MISSING_MARKERS = ("", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A")


@dataclass(frozen=True)
class ValueCounts:
    """A column's distinct texts (in order of first appearance) and how many cells hold each:
    the sufficient statistic of every per-column fit (schema, codec). Counts of chunks merge
    exactly (`merge`), in chunk order, so a table read in pieces gives the same statistic."""

    values: np.ndarray  # object array of str, each distinct
    counts: np.ndarray  # int64, one per value

    @property
    def n_rows(self) -> int:
        return int(self.counts.sum())

    @staticmethod
    def merge(parts: list[ValueCounts]) -> ValueCounts:
        values = np.concatenate([p.values for p in parts]) if parts else np.empty(0, object)
        counts = np.concatenate([p.counts for p in parts]) if parts else np.empty(0, np.int64)
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        return ValueCounts(
            np.asarray(uniques, dtype=object),
            np.bincount(codes, weights=counts, minlength=len(uniques)).astype(np.int64),
        )


def small_codes(codes: np.ndarray, n_values: int) -> np.ndarray:
    """`codes` in the smallest signed integer type that holds 0..n_values-1."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_values <= np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    return codes.astype(np.int64, copy=False)


@dataclass(frozen=True)
class TokenColumn:
    """One column's cells as codes into its distinct texts: cell i is `uniques[codes[i]]`.

    A cell costs the size of its code (1 byte for up to 127 distinct texts), never a Python
    string; anything that is a function of a cell's text is computed once per distinct text
    and spread with `per_cell`."""

    codes: np.ndarray  # the smallest signed integer type (`small_codes`)
    uniques: np.ndarray  # object array of str, each distinct, in order of first appearance
    _value_counts: ValueCounts | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, cells: np.ndarray | TokenColumn) -> TokenColumn:
        """The column of an array of texts (or the column itself)."""
        if isinstance(cells, TokenColumn):
            return cells
        codes, uniques = pd.factorize(np.asarray(cells, dtype=object), use_na_sentinel=False)
        return cls(small_codes(codes, len(uniques)), np.asarray(uniques, dtype=object))

    def __len__(self) -> int:
        return len(self.codes)

    def per_cell(self, per_unique: np.ndarray) -> np.ndarray:
        """Spread a value computed for each distinct text to every cell."""
        return np.asarray(per_unique)[self.codes]

    def text(self) -> np.ndarray:
        """The cells as an object array of str (8 bytes a cell; for small or final uses)."""
        return self.per_cell(self.uniques)

    def counts(self) -> np.ndarray:
        return self.value_counts().counts

    def value_counts(self) -> ValueCounts:
        """The column's distinct texts and how many cells hold each (counted once)."""
        if self._value_counts is None:
            counts = np.bincount(self.codes, minlength=len(self.uniques)).astype(np.int64)
            object.__setattr__(self, "_value_counts", ValueCounts(self.uniques, counts))
        assert self._value_counts is not None
        return self._value_counts

    def take(self, idx: np.ndarray) -> TokenColumn:
        """The cells at positions `idx` (a mask or indices): a column of their own, holding
        only the texts they hold, in their order of first appearance."""
        codes, first = pd.factorize(self.codes[idx], use_na_sentinel=False)
        return TokenColumn(small_codes(codes, len(first)), self.uniques[first])


@dataclass
class RawTable:
    """Columns of text cells (`TokenColumn`: "" for an empty cell) plus pandas dtypes."""

    columns: list[str]
    cells: dict[str, TokenColumn]
    dtypes: dict[str, str] = field(default_factory=dict)
    source: str = "data"

    @property
    def n_rows(self) -> int:
        return len(self.cells[self.columns[0]]) if self.columns else 0

    def text(self, name: str) -> np.ndarray:
        """Column `name`'s cells as an object array of str."""
        return self.cells[name].text()

    def value_counts(self, name: str) -> ValueCounts:
        """Column `name`'s distinct texts (in order of first appearance) and counts."""
        return self.cells[name].value_counts()

    def take(self, idx: np.ndarray) -> RawTable:
        """The rows at positions `idx`."""
        cells = {c: v.take(idx) for c, v in self.cells.items()}
        return RawTable(self.columns, cells, self.dtypes, self.source)


def _open_text_head(path: Path, nbytes: int = 1 << 16) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(nbytes)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _check_header(path: Path, head: bytes, encoding: str, delimiter: str) -> list[str]:
    if not head.strip():
        raise InputError(f"{path} is empty; give a CSV file with a header line and data rows")
    try:
        text = head.decode(encoding)
    except UnicodeError as exc:
        start = getattr(exc, "start", 0)
        if start < len(head) - 4:  # not just a character cut at the end of the head
            raise InputError(
                f"{path} is not valid {encoding} (byte {start}); re-encode it as UTF-8 or pass "
                "the file's encoding (encoding=, --encoding), e.g. latin-1"
            ) from None
        text = head[:start].decode(encoding)
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the first name
    try:  # universal newlines: CR-only and CRLF files have the same first line
        return next(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter), [])
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the header line as CSV ({exc})") from None


_DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(text: str) -> str:
    """The field separator of a CSV head: of `, ; tab |`, the one that splits the first rows
    into the same number (> 1) of fields, the most fields winning; a comma otherwise."""
    best, best_fields = ",", 1
    for d in _DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(text, newline=None), delimiter=d)
            rows = list(itertools.islice(reader, 50))  # only the rows looked at are parsed
        except csv.Error:
            continue
        rows = [r for r in rows[:-1] if r] or [r for r in rows if r]  # the last may be cut
        widths = {len(r) for r in rows}
        if len(widths) == 1 and (w := widths.pop()) > best_fields:
            best, best_fields = d, w
    return best


def read_csv(
    path: str | Path,
    *,
    encoding: str = "utf-8",
    delimiter: str | None = ",",
    header: bool = True,
) -> RawTable:
    """Read a CSV (or .csv.gz) into text tokens; raise InputError on anything malformed.

    delimiter: None sniffs it from the first rows (comma, semicolon, tab or pipe)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"data file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a CSV or Parquet file")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r}; try utf-8 or latin-1") from None
    head = _open_text_head(path)
    if delimiter is None:
        text = head.decode(encoding, errors="ignore").removeprefix("\ufeff")
        delimiter = sniff_delimiter(text)
    names = _check_header(path, head, encoding, delimiter)
    if header:
        names = [n.strip() for n in names]
        if any(n == "" for n in names):
            raise InputError(
                f"{path}: the header has an empty column name; name every column "
                "(or pass --no-header if the file has no header line)"
            )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(
                f"{path}: duplicate column names {dupes}; rename them "
                "(or pass --no-header if the first line is data)"
            )
    else:
        names = [f"col{i + 1}" for i in range(len(names))]
    read_opts = pacsv.ReadOptions(
        encoding=encoding, column_names=names, skip_rows=1 if header else 0, block_size=BLOCK_BYTES
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=_may_quote_line_breaks(path, encoding)
    )
    conv_opts = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        cells = _read_cells(path, names, read_opts, parse_opts, conv_opts)
    except pa.ArrowInvalid as exc:
        msg = str(exc).splitlines()[0]
        if "UTF8" in msg or "utf8" in msg.lower():
            raise InputError(
                f"{path} is not valid {encoding}; pass the file's encoding "
                "(encoding=, --encoding), e.g. latin-1"
            ) from None
        if "Expected" in msg and "columns" in msg:
            line = _ragged_line(path, encoding, delimiter, len(names))
            where = f"line {line}: " if line else ""
            raise InputError(
                f"{path}: {where}ragged row ({msg}); every row needs {len(names)} fields"
            ) from None
        if encoding.replace("-", "").lower() not in ("utf8", "utf8sig"):
            msg += f"; is the file really {encoding}?"
        raise InputError(f"{path}: cannot parse as CSV ({msg})") from None
    except UnicodeError as exc:
        raise InputError(
            f"{path} is not valid {encoding} ({exc}); pass the file's encoding "
            "(encoding=, --encoding), e.g. utf-8 or latin-1"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    raw = RawTable(names, cells, {n: "csv" for n in names}, source=str(path))
    if raw.n_rows == 0:
        raise InputError(f"{path} has a header but no data rows; give at least a few rows")
    return raw


def _may_quote_line_breaks(path: Path, encoding: str) -> bool:
    """Whether a quoted field of the CSV may hold a line break: whether some line break
    (LF or CR) follows an odd number of quote characters. Files without one are parsed
    without looking for them (about twice as fast). One pass over the bytes in blocks;
    True whenever the bytes cannot tell (an encoding that is not ASCII-compatible)."""
    try:
        if '"\n\r'.encode(encoding) != b'"\n\r' or "a".encode(encoding) != b"a":
            return True
    except (LookupError, UnicodeError):
        return True
    opener = gzip.open if path.name.endswith(".gz") else open
    parity = 0
    try:
        with opener(path, "rb") as fh:
            while block := fh.read(BLOCK_BYTES):
                b = np.frombuffer(block, np.uint8)
                quotes = np.flatnonzero(b == 34)
                if len(quotes) == 0 and parity == 0:
                    continue
                breaks = np.flatnonzero((b == 10) | (b == 13))
                if np.any((parity + np.searchsorted(quotes, breaks)) & 1):
                    return True
                parity = (parity + len(quotes)) & 1
    except (OSError, EOFError, zlib.error):
        return True  # the reader itself reports the damage
    return False


class _ColumnCodes:
    """One column read batch by batch: each batch dictionary-encoded by pyarrow and its
    dictionary merged into the column's (in order of first appearance), so only a code per
    cell is kept, never a Python string per cell."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.parts: list[np.ndarray] = []

    def add(self, cells: pa.Array) -> None:
        enc = pc.dictionary_encode(cells)
        index = self.index
        local = enc.dictionary.to_pylist()
        remap = np.fromiter((index.setdefault(v, len(index)) for v in local), np.int32, len(local))
        codes = remap[enc.indices.to_numpy(zero_copy_only=False)]
        self.parts.append(small_codes(codes, len(index)))  # widened in `finish` if need be

    def finish(self) -> TokenColumn:
        n = len(self.index)
        parts = [small_codes(p, n) for p in self.parts]
        self.parts.clear()
        codes = np.concatenate(parts) if parts else np.zeros(0, np.int8)
        return TokenColumn(small_codes(codes, n), np.array(list(self.index), dtype=object))


def _read_cells(path: Path, names: list[str], read_opts, parse_opts, conv_opts):
    """Every column of a CSV as a `TokenColumn`, streamed in blocks: memory is the codes
    plus one block of text, whatever the file's size."""
    columns = [_ColumnCodes() for _ in names]
    size = path.stat().st_size if not path.name.endswith(".gz") else None
    left = float(size or 0)
    with (
        progress.meter(f"reading {path.name}", size) as advance,
        pacsv.open_csv(
            path, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts
        ) as reader,
    ):
        for batch in reader:
            for j, col in enumerate(columns):
                col.add(batch.column(j))
            step = min(BLOCK_BYTES, left) if size else BLOCK_BYTES  # a block of text a batch
            left -= step
            advance(step)
    return {n: c.finish() for n, c in zip(names, columns, strict=True)}


def _ragged_line(path: Path, encoding: str, delimiter: str, width: int) -> int | None:
    """The line number of the first record without `width` fields (a Python scan of the
    file, run only to name the line in an error), or None when it cannot be told."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding=encoding, newline="") as fh:
            records = csv.reader(fh, delimiter=delimiter)
            for rec in records:
                if rec and len(rec) != width:
                    return records.line_num
    except (OSError, EOFError, zlib.error, UnicodeError, csv.Error):
        return None
    return None


def _series_tokens(s: pd.Series) -> np.ndarray:
    """Text tokens of a typed pandas column; missing values become ""."""
    mask = s.isna().to_numpy()
    if pd.api.types.is_bool_dtype(s) and not mask.any():
        out = np.where(s.to_numpy(bool), "True", "False").astype(object)
    elif pd.api.types.is_float_dtype(s):
        vals = s.to_numpy(float, na_value=np.nan)
        np_dtype = getattr(s.dtype, "numpy_dtype", s.dtype)
        short = isinstance(np_dtype, np.dtype) and np_dtype.itemsize < 8  # float32's own digits

        def text(v: float) -> str:
            t = str(np_dtype.type(v)) if short else repr(float(v))
            return t[:-2] if t.endswith(".0") else t

        if np.any((vals == 0) & np.signbit(vals)):  # -0.0 keeps its sign: one cell at a time
            out = np.array([text(v) for v in vals], dtype=object)
        else:
            out = _per_distinct(vals, text)
    elif pd.api.types.is_datetime64_any_dtype(s):
        whole_days = bool((s.dropna() == s.dropna().dt.normalize()).all())
        fmt = "%Y-%m-%d" if whole_days else "%Y-%m-%d %H:%M:%S"  # keep the recorded precision
        out = s.dt.strftime(fmt).to_numpy(object)
    elif pd.api.types.infer_dtype(s, skipna=True) in ("string", "integer"):
        out = _per_distinct(s, str)  # one type: equal values, equal text
    else:
        out = s.astype(object).to_numpy(object)
        out = np.array([x if isinstance(x, str) else str(x) for x in out], dtype=object)
    out[mask] = ""
    return out


def _per_distinct(values, text) -> np.ndarray:
    """`text(v)` of every cell, computed once per distinct value and shared; "" where the
    value is missing."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.array([text(u) for u in uniques] + [""], dtype=object)
    return table[codes]


def from_frame(df: pd.DataFrame, source: str = "DataFrame") -> RawTable:
    """Tokens of a pandas DataFrame (or anything with `to_pandas()`, e.g. polars, pyarrow)."""
    if not isinstance(df, pd.DataFrame):
        if hasattr(df, "to_pandas"):
            df = df.to_pandas()
        else:
            raise InputError(f"expected a pandas DataFrame or a file path, got {type(df).__name__}")
    names = [str(c) for c in df.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"duplicate column names {dupes}; rename them")
    if len(df) == 0 or not names:
        raise InputError(f"{source} has no rows or no columns")
    cells = {n: TokenColumn.of(_series_tokens(df.iloc[:, i])) for i, n in enumerate(names)}
    dtypes = {n: str(df.iloc[:, i].dtype) for i, n in enumerate(names)}
    return RawTable(names, cells, dtypes, source)


@dataclass(frozen=True)
class ReadOptions:
    """How a CSV is read, for every kind: its text encoding, its separator (None: sniffed
    from the first rows, or tab for .tsv), and whether the first line is a header."""

    encoding: str = "utf-8"
    sep: str | None = None
    header: bool = True


#: frozen, so one shared default is safe
_READ_OPTIONS: ContextVar[ReadOptions] = ContextVar("read_options", default=ReadOptions())  # noqa: B039


@contextmanager
def reading(options: ReadOptions) -> Iterator[None]:
    """Within the block, files are read with `options` wherever a caller gives none (the
    CLI's --encoding / --sep / --no-header reach tables, series and events alike)."""
    token = _READ_OPTIONS.set(options)
    try:
        yield
    finally:
        _READ_OPTIONS.reset(token)


def read_table(
    data, *, encoding: str | None = None, header: bool | None = None, sep: str | None = None
) -> RawTable:
    """A path (CSV, .csv.gz, .tsv, Parquet) or a DataFrame, as a RawTable; a CSV's separator
    (comma, semicolon, tab or pipe) is sniffed from its first rows unless `sep` is given.
    Options not given come from the enclosing `reading(...)` block (default: UTF-8, sniffed
    separator, a header line)."""
    if isinstance(data, RawTable):
        return data
    ctx = _READ_OPTIONS.get()
    encoding = ctx.encoding if encoding is None else encoding
    header = ctx.header if header is None else header
    sep = ctx.sep if sep is None else sep
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.suffix.lower() in {".parquet", ".pq"}:
            if not path.exists():
                raise InputError(f"data file not found: {path}")
            try:
                df = pd.read_parquet(path)
            except Exception as exc:  # pyarrow raises many types for bad files
                raise InputError(
                    f"{path}: cannot read as Parquet ({str(exc).splitlines()[0]})"
                ) from None
            return from_frame(df, source=str(path))
        if sep is None and path.name.endswith((".tsv", ".tsv.gz", ".tab")):
            sep = "\t"
        if sep is not None and len(sep) != 1:
            raise InputError(f"a separator is one character (sep=, --sep), got {sep!r}")
        return read_csv(path, encoding=encoding, delimiter=sep, header=header)
    return from_frame(data)
