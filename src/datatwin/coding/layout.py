"""Byte-exact CSV formatting: `raw bytes = rebuild(cells, layout)`.

`split(raw)` parses a CSV the way the table reader does (`datatwin.reader.read_csv`: pyarrow,
double-quote quoting, a quote opens a quoted field only at the start of a field, blank lines
are not rows) into

* the cells, column by column: the exact text tokens a table twin models ("" when empty);
* a `Layout`: everything else, so that `rebuild(cells, layout) == raw` byte for byte.

A cell is written in its canonical form unless the layout says otherwise. Canonical = quote
only when needed (like `csv.QUOTE_MINIMAL`): when the value holds the separator, the quote
character, CR or LF, or is empty in a one-column table (an empty line is not a row); a quoted
value doubles its quote characters. A column whose cells are mostly quoted without need has
"quote" as its default instead. Everything that departs from the defaults is listed sparsely:
cells written otherwise (their raw text), records ending otherwise than the usual line ending,
blank lines. The header line is kept verbatim unless it is the canonical rendering of the
column names given to `split(names=...)` (the model's), in which case it costs one flag bit.

`Layout.to_bytes()` is compact (a clean CSV costs about ten bytes) and `split` verifies the
round trip before returning, so a file it accepts is always reproduced exactly.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from ..errors import InputError
from .wire import ByteReader, text, varint

#: Line endings by code (the order is part of the serialised format).
NEWLINES = ("\n", "\r\n", "\r")
_LINE_END = re.compile(r"\r\n|\r|\n")
_SEPARATORS = (",", ";", "\t", "|")
_FORMAT = 1

#: A cell exception: None = the other of quoted/unquoted; a string = the raw text written.
CellForm = str | None
T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """Everything in a CSV file besides its data cells (see the module docstring).

    Records are numbered from 0 in file order, the header (if any) being record 0; data row
    `r` is record `r + has_header`. Cell exceptions are keyed by `r * n_cols + c`."""

    sep: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    bom: bool = False
    has_header: bool = True
    header: str | None = None  # the header record's raw text; None = canonical from names
    n_cols: int = 0
    n_rows: int = 0
    newline: str = "\n"
    final_newline: bool = True
    quoted_columns: tuple[int, ...] = ()
    cell_exceptions: tuple[tuple[int, CellForm], ...] = ()
    newline_exceptions: tuple[tuple[int, str], ...] = ()
    blank_lines: tuple[tuple[int, str], ...] = ()  # (record it precedes, its line ending)

    @property
    def n_records(self) -> int:
        return self.n_rows + self.has_header

    def to_bytes(self) -> bytes:
        """Serialised: one byte (0 plain, 1 zlib) then the fields, zlib'd when that is shorter."""
        body = _serialise(self)
        packed = zlib.compress(body, 9)
        return b"\x01" + packed if len(packed) < len(body) else b"\x00" + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Layout:
        """The inverse of `to_bytes`; anything malformed raises CompressedFileError."""
        r = ByteReader(data, "layout section")
        mode = r.byte()
        body = r.take(len(data) - 1)
        if mode == 1:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                raise r.fail("does not decompress") from None
        elif mode != 0:
            raise r.fail(f"has an unknown mode {mode}")
        return _deserialise(ByteReader(body, "layout section"))


# ---------------------------------------------------------------------------------- cells


def needs_quotes(value: str, sep: str, quote: str, n_cols: int) -> bool:
    """Whether the canonical form of `value` is quoted (see the module docstring)."""
    return (
        sep in value
        or quote in value
        or "\n" in value
        or "\r" in value
        or (n_cols == 1 and value == "")
    )


def quoted(value: str, quote: str) -> str:
    """`value` in quotes, its quote characters doubled."""
    return quote + value.replace(quote, quote + quote) + quote


def _render(value: str, quote_default: bool, sep: str, quote: str, n_cols: int) -> str:
    if quote_default or needs_quotes(value, sep, quote, n_cols):
        return quoted(value, quote)
    return value


# ---------------------------------------------------------------------------------- parsing


@dataclass
class _Record:
    values: list[str]
    raws: list[str] | None  # None: no quote character, every raw text equals its value
    end: str


@dataclass
class _Parsed:
    records: list[_Record] = field(default_factory=list)
    blank_lines: list[tuple[int, str]] = field(default_factory=list)


def _parse(body: str, sep: str, quote: str) -> _Parsed:
    """Records and blank lines of `body`: lines without a quote character are split on the
    separator; the others go through the quote-aware scanner (and may span lines)."""
    out = _Parsed()
    pos, n = 0, len(body)
    tail = re.compile(f"[^{re.escape(sep)}\r\n]*")
    while pos < n:
        m = _LINE_END.search(body, pos)
        stop, end = (m.start(), m.group()) if m else (n, "")
        if stop == pos:
            out.blank_lines.append((len(out.records), end))
            pos = stop + len(end)
            continue
        line = body[pos:stop]
        if quote not in line:
            out.records.append(_Record(line.split(sep), None, end))
            pos = stop + len(end)
        else:
            record, pos = _scan_record(body, pos, sep, quote, tail)
            out.records.append(record)
    return out


def _scan_record(
    body: str, pos: int, sep: str, quote: str, tail: re.Pattern[str]
) -> tuple[_Record, int]:
    """One record from `pos`: a field opening with a quote runs to its closing quote (a
    doubled quote is one quote character) and continues as literal text up to the next
    separator or line end, as pyarrow reads it."""
    values: list[str] = []
    raws: list[str] = []
    n = len(body)
    while True:
        start = pos
        parts: list[str] = []
        if pos < n and body[pos] == quote:
            pos += 1
            while True:
                j = body.find(quote, pos)
                if j < 0:
                    raise InputError(f"unterminated quoted field at character {start}")
                parts.append(body[pos:j])
                if body.startswith(quote, j + 1):
                    parts.append(quote)
                    pos = j + 2
                else:
                    pos = j + 1
                    break
        m = tail.match(body, pos)
        assert m is not None  # `[^...]*` always matches
        parts.append(m.group())
        pos = m.end()
        values.append("".join(parts))
        raws.append(body[start:pos])
        if pos < n and body[pos] == sep:
            pos += 1
            continue
        m_end = _LINE_END.match(body, pos)
        end = m_end.group() if m_end else ""
        return _Record(values, raws, end), pos + len(end)


# ---------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class SplitCSV:
    """A CSV as its column names, data cells (one list of str per column) and layout."""

    names: list[str]
    columns: list[list[str]]
    layout: Layout


def decode(raw: bytes, encoding: str) -> tuple[str, bool, str]:
    """(text without BOM, whether it had one, the codec's canonical name)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r}; try utf-8 or latin-1") from None
    try:
        body = raw.decode(name)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the file is not valid {encoding} (byte {exc.start}); pass its encoding, e.g. latin-1"
        ) from None
    bom = body.startswith("\ufeff")
    return body[1:] if bom else body, bom, name


def split(
    raw: bytes,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    header: bool = True,
    names: Sequence[str] | None = None,
) -> SplitCSV:
    """Cells and layout of the CSV bytes `raw`, verified: `rebuild(...) == raw`.

    sep: None sniffs it like the reader (comma, semicolon, tab or pipe). names: the column
    names the model knows; if the header line is their canonical rendering it is not stored.
    """
    body, bom, enc = decode(raw, encoding)
    if not body.strip():
        raise InputError("the file is empty; give a CSV file with a header line and data rows")
    if sep is None:
        from ..reader import sniff_delimiter  # the reader's own rule, so cells agree with it

        sep = sniff_delimiter(body[: 1 << 16])
    quote = '"'
    parsed = _parse(body, sep, quote)
    if not parsed.records:
        raise InputError("the file has no records")
    n_cols = len(parsed.records[0].values)
    for i, rec in enumerate(parsed.records):
        if len(rec.values) != n_cols:
            raise InputError(
                f"ragged rows: record {i + 1} has {len(rec.values)} fields, not {n_cols}"
            )
    head = parsed.records[0] if header else None
    data = parsed.records[1:] if header else parsed.records
    col_names = [v.strip() for v in head.values] if head else [f"col{i + 1}" for i in range(n_cols)]
    header_text = _header_text(head, sep, quote, n_cols, names)
    quoted_cols, cell_exc = _cell_forms(data, sep, quote, n_cols)
    newline, final, newline_exc, blanks = _line_ends(parsed)
    layout = Layout(
        sep=sep,
        quote=quote,
        encoding=enc,
        bom=bom,
        has_header=header,
        header=header_text,
        n_cols=n_cols,
        n_rows=len(data),
        newline=newline,
        final_newline=final,
        newline_exceptions=newline_exc,
        blank_lines=blanks,
        quoted_columns=quoted_cols,
        cell_exceptions=cell_exc,
    )
    columns = [[rec.values[c] for rec in data] for c in range(n_cols)]
    if rebuild(columns, layout, names=names) != raw:
        raise InputError(f"cannot reproduce this file byte for byte in encoding {enc}")
    return SplitCSV(col_names, columns, layout)


def _header_text(
    head: _Record | None, sep: str, quote: str, n_cols: int, names: Sequence[str] | None
) -> str | None:
    if head is None:
        return None
    raw = sep.join(head.raws if head.raws is not None else head.values)
    if names is not None and raw == canonical_header(names, sep, quote):
        return None
    return raw


def canonical_header(names: Sequence[str], sep: str = ",", quote: str = '"') -> str:
    """The header line of `names` in canonical form (no line ending)."""
    return sep.join(_render(n, False, sep, quote, len(names)) for n in names)


def _cell_forms(
    data: list[_Record], sep: str, quote: str, n_cols: int
) -> tuple[tuple[int, ...], tuple[tuple[int, CellForm], ...]]:
    """Column defaults (quoted where most optional quotes are taken) and the exceptions."""
    extra = [0] * n_cols  # quoted without need
    plain = [0] * n_cols  # unquoted (and need none)
    forms: list[tuple[int, int, str]] = []  # (row, col, raw) for cells not in canonical form
    for r, rec in enumerate(data):
        if rec.raws is None:
            for c in range(n_cols):
                plain[c] += 1
            continue
        for c, (v, raw) in enumerate(zip(rec.values, rec.raws, strict=True)):
            if needs_quotes(v, sep, quote, n_cols):
                if raw != quoted(v, quote):
                    forms.append((r, c, raw))
            elif raw == v:
                plain[c] += 1
            else:
                extra[c] += 1
                forms.append((r, c, raw))
    quoted_cols = tuple(c for c in range(n_cols) if extra[c] > plain[c])
    qset = set(quoted_cols)
    exceptions: dict[int, CellForm] = {}
    for r, c, raw in forms:
        v = data[r].values[c]
        if raw == quoted(v, quote) and c in qset:
            continue  # the column default
        is_flip = raw == quoted(v, quote) and not needs_quotes(v, sep, quote, n_cols)
        exceptions[r * n_cols + c] = None if is_flip else raw
    for c in quoted_cols:  # unquoted cells in a quoted column
        for r, rec in enumerate(data):
            v = rec.values[c]
            raw = v if rec.raws is None else rec.raws[c]
            if raw == v and not needs_quotes(v, sep, quote, n_cols):
                exceptions[r * n_cols + c] = None
    return quoted_cols, tuple(sorted(exceptions.items()))


def _line_ends(
    parsed: _Parsed,
) -> tuple[str, bool, tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]]:
    """The usual line ending, the exceptions to it and whether the file ends with one."""
    ends = [rec.end for rec in parsed.records]
    final = ends[-1] != ""
    counted = Counter(e for e in ends if e)
    newline = counted.most_common(1)[0][0] if counted else "\n"
    exc = tuple((i, e) for i, e in enumerate(ends) if e and e != newline)
    return newline, final, exc, tuple(parsed.blank_lines)


# ---------------------------------------------------------------------------------- rebuild


def rebuild(
    columns: Sequence[Sequence[str]], layout: Layout, *, names: Sequence[str] | None = None
) -> bytes:
    """The CSV bytes of `columns` (data cells, one sequence per column) laid out by `layout`.

    names: needed when the layout's header is canonical (`layout.header is None`)."""
    lay = layout
    if len(columns) != lay.n_cols or any(len(col) != lay.n_rows for col in columns):
        raise InputError(f"the layout is for {lay.n_rows} rows x {lay.n_cols} columns")
    rows = _render_rows(columns, lay)
    if lay.has_header:
        if lay.header is None:
            if names is None or len(names) != lay.n_cols:
                raise InputError("this layout's header comes from the model's column names")
            rows.insert(0, canonical_header(names, lay.sep, lay.quote))
        else:
            rows.insert(0, lay.header)
    ends = [lay.newline] * len(rows)
    for i, e in lay.newline_exceptions:
        ends[i] = e
    if rows and not lay.final_newline:
        ends[-1] = ""
    pieces: list[str] = ["\ufeff"] if lay.bom else []
    blanks = iter(lay.blank_lines)
    nxt = next(blanks, None)
    for i, (row, end) in enumerate(zip(rows, ends, strict=True)):
        while nxt is not None and nxt[0] <= i:
            pieces.append(nxt[1])
            nxt = next(blanks, None)
        pieces.append(row)
        pieces.append(end)
    while nxt is not None:
        pieces.append(nxt[1])
        nxt = next(blanks, None)
    return "".join(pieces).encode(lay.encoding)


def _render_rows(columns: Sequence[Sequence[str]], lay: Layout) -> list[str]:
    """Each data row as text (separators included, line ending not)."""
    qset = set(lay.quoted_columns)
    rendered: list[list[str]] = []
    for c, col in enumerate(columns):
        cache: dict[str, str] = {}
        out = []
        for v in col:
            s = cache.get(v)
            if s is None:
                s = cache[v] = _render(v, c in qset, lay.sep, lay.quote, lay.n_cols)
            out.append(s)
        rendered.append(out)
    for key, form in lay.cell_exceptions:
        r, c = divmod(key, lay.n_cols)
        v = columns[c][r]
        if form is None:  # the other plain form
            form = v if c in qset else quoted(v, lay.quote)
        rendered[c][r] = form
    return [lay.sep.join(cells) for cells in zip(*rendered, strict=True)] if rendered else []


# ---------------------------------------------------------------------------------- format

_BOM, _HEADER, _VERBATIM, _FINAL, _ENCODING, _QUOTE, _SEP, _EXCEPTIONS = (1 << i for i in range(8))


def _serialise(lay: Layout) -> bytes:
    exceptional = bool(
        lay.quoted_columns or lay.cell_exceptions or lay.newline_exceptions or lay.blank_lines
    )
    flags = (
        _BOM * lay.bom
        | _HEADER * lay.has_header
        | _VERBATIM * (lay.header is not None)
        | _FINAL * lay.final_newline
        | _ENCODING * (lay.encoding != "utf-8")
        | _QUOTE * (lay.quote != '"')
        | _SEP * (lay.sep not in _SEPARATORS)
        | _EXCEPTIONS * exceptional
    )
    sep_code = _SEPARATORS.index(lay.sep) if lay.sep in _SEPARATORS else 0
    out = bytearray([_FORMAT, flags, sep_code * 4 + NEWLINES.index(lay.newline)])
    if lay.encoding != "utf-8":
        out += text(lay.encoding)
    if lay.quote != '"':
        out += text(lay.quote)
    if lay.sep not in _SEPARATORS:
        out += text(lay.sep)
    if lay.header is not None:
        out += text(lay.header)
    out += varint(lay.n_cols) + varint(lay.n_rows)
    if exceptional:
        out += _indexed([(c, b"") for c in lay.quoted_columns])
        out += _indexed(
            [(k, b"\x00" if f is None else b"\x01" + text(f)) for k, f in lay.cell_exceptions]
        )
        out += _indexed([(i, bytes([NEWLINES.index(e)])) for i, e in lay.newline_exceptions])
        out += _indexed([(i, bytes([NEWLINES.index(e)])) for i, e in lay.blank_lines])
    return bytes(out)


def _indexed(items: list[tuple[int, bytes]]) -> bytes:
    """count, then (index minus the previous index, payload) for ascending indices."""
    out, prev = bytearray(varint(len(items))), 0
    for i, payload in items:
        out += varint(i - prev) + payload
        prev = i
    return bytes(out)


def _deserialise(r: ByteReader) -> Layout:
    if r.byte() != _FORMAT:
        raise r.fail("is of an unknown format version")
    flags, packed = r.byte(), r.byte()
    if packed % 4 >= len(NEWLINES) or packed // 4 >= len(_SEPARATORS):
        raise r.fail("has an unknown separator or line ending")
    encoding = r.text() if flags & _ENCODING else "utf-8"
    quote = r.text() if flags & _QUOTE else '"'
    sep = r.text() if flags & _SEP else _SEPARATORS[packed // 4]
    header = r.text() if flags & _VERBATIM else None
    n_cols, n_rows = r.varint(1 << 32), r.varint(1 << 48)
    lay = Layout(
        sep=sep,
        quote=quote,
        encoding=encoding,
        bom=bool(flags & _BOM),
        has_header=bool(flags & _HEADER),
        header=header,
        n_cols=n_cols,
        n_rows=n_rows,
        newline=NEWLINES[packed % 4],
        final_newline=bool(flags & _FINAL),
    )
    if flags & _EXCEPTIONS:
        lay = _read_exceptions(r, lay)
    r.end()
    if len(sep) != 1 or len(quote) != 1 or (lay.header is not None) != bool(flags & _VERBATIM):
        raise r.fail("has an invalid separator or quote")
    return lay


def _read_exceptions(r: ByteReader, lay: Layout) -> Layout:
    n_records, n_cells = lay.n_records, lay.n_rows * lay.n_cols
    quoted_cols = _read_indexed(r, lay.n_cols - 1, lambda: None)
    cells = _read_indexed(r, n_cells - 1, lambda: None if r.byte() == 0 else r.text())
    ends = _read_indexed(r, n_records - 1, lambda: _newline(r))
    blanks = _read_indexed(r, n_records, lambda: _newline(r))
    return replace(
        lay,
        quoted_columns=tuple(c for c, _ in quoted_cols),
        cell_exceptions=tuple(cells),
        newline_exceptions=tuple(ends),
        blank_lines=tuple(blanks),
    )


def _newline(r: ByteReader) -> str:
    code = r.byte()
    if code >= len(NEWLINES):
        raise r.fail("has an unknown line ending")
    return NEWLINES[code]


def _read_indexed(r: ByteReader, max_index: int, payload: Callable[[], T]) -> list[tuple[int, T]]:
    count = r.varint(max(max_index + 1, 0))
    out: list[tuple[int, T]] = []
    index = 0
    for _ in range(count):
        index += r.varint(max_index)
        if index > max_index:
            raise r.fail("has an index out of range")
        out.append((index, payload()))
    return out
