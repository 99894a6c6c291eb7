"""Tables: code a CSV with a table twin's exact probabilities, column by column.

For each modelled column v in the state model's order (parents before children), a whole
column of rows at once:

1. the states, `s_v ~ P(s_v | s_pa(v))` (`ConditionalTable.state_probs`, rows in chunks);
2. the values inside their states, exactly as `ColumnCodec.encode` scores them: a token or a
   value atom costs nothing more; an interval state codes its fine bin (`P(fine | coarse)`)
   then the grid point uniformly among the fine bin's non-atom points; the rare/escape state
   of a categorical column spells the value (`SpellingModel`); a numeric escape codes
   "number or token" (½ each), then for a number "inside the seen range" (½, uniform) or
   a tail (¼ each, geometric), for a token its spelling.

So the payload is the twin's bits of the data (`twin.log_prob`) plus the coder's overhead.
What the twin does not model is coded apart and reported apart: the CSV layout (`layout`),
how numbers are written (per column: leading/trailing blanks, trailing zeros), the cells that
differ from that rendering of their decoded value (formatting exceptions, verbatim), and the
identifier columns (deltas of integer ids, or their text; LZMA).

A linear-Gaussian twin (no states) is coded by `gaussian.py`: each value's grid cell under
`N(mu, sigma)` given the parents' decoded values, non-numbers by the twin's escape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..tabular.codec import ESCAPE, INTERVAL, RARE, TOKEN, VALUE, ColumnCodec, to_grid
from .coder import Decoder, Encoder
from .fixedmath import exp
from .layout import Layout, rebuild, split
from .sections import frame, pack_bytes, read_texts, texts_bytes, unframe, unpack_bytes
from .values import (
    MAX_QUOTIENT,
    choose_format,
    decode_flags,
    decode_geometric,
    decode_strings,
    encode_flags,
    encode_geometric,
    encode_strings,
    format_grid,
    geometric_split,
)
from .wire import ByteReader, CompressedFileError, text, varint

if TYPE_CHECKING:
    from ..tabular.twin import TableTwin

#: cells per chunk of an (rows x states) probability matrix
_CHUNK_CELLS = 1 << 21
_REGION = np.array([0.5, 0.25, 0.25])
_BIG = float(1 << 53)
_INT_RE = re.compile(r"^-?(0|[1-9]\d*)$")


@dataclass
class TableCoded:
    side: bytes
    payload: bytes
    counts: tuple[int, ...]
    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- states


def _chunks(n: int, k: int) -> list[tuple[int, int]]:
    step = max(1, _CHUNK_CELLS // max(k, 1))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def _state_probs(net: Any, v: int, cols: list[np.ndarray], a: int, b: int) -> np.ndarray:
    cpt = net.cpts[v]
    sub = [c[a:b] if len(c) else c for c in cols]
    return cpt.state_probs(sub, net.cards, b - a)


def _encode_states(enc: Encoder, net: Any, v: int, cols: list[np.ndarray], x: np.ndarray) -> float:
    k = int(net.cards[v])
    bits = 0.0
    for a, b in _chunks(len(x), k):
        bits += enc.encode_categorical(x[a:b], _state_probs(net, v, cols, a, b))
    return bits


def _decode_states(dec: Decoder, net: Any, v: int, cols: list[np.ndarray], n: int) -> np.ndarray:
    k = int(net.cards[v])
    out = np.zeros(n, dtype=np.int64)
    for a, b in _chunks(n, k):
        out[a:b] = dec.decode_categorical(_state_probs(net, v, cols, a, b))
    if len(out) and out.max() >= k:
        raise CompressedFileError("compressed file damaged: a state is out of range")
    return out


# ---------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class NumberFormat:
    prefix: str = ""
    style: int = 0
    suffix: str = ""


def _fine_table(codec: ColumnCodec) -> tuple[np.ndarray, np.ndarray]:
    """First fine bin of each coarse bin, and P(fine | coarse) padded into a matrix."""
    n_coarse = max(len(codec.coarse_edges) - 1, 0)
    start = np.searchsorted(codec.fine_coarse, np.arange(n_coarse + 1))
    width = int(np.diff(start).max()) if n_coarse else 1
    mat = np.zeros((max(n_coarse, 1), width))
    p = exp(np.asarray(codec.fine_logp, dtype=np.float64))
    for c in range(n_coarse):
        mat[c, : start[c + 1] - start[c]] = p[start[c] : start[c + 1]]
    return start, mat


def _atoms_below(codec: ColumnCodec, lo: np.ndarray, g: np.ndarray) -> np.ndarray:
    atoms = codec.value_atoms
    if not len(atoms):
        return np.zeros(len(g), dtype=np.int64)
    return np.searchsorted(atoms, g, "left") - np.searchsorted(atoms, lo, "left")


def _kth_point(codec: ColumnCodec, lo: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The k-th grid point >= lo that is not a value atom."""
    g = lo + k
    atoms = codec.value_atoms
    if len(atoms):
        before = np.searchsorted(atoms, lo, "left")
        for _ in range(len(atoms) + 1):
            g_new = lo + k + (np.searchsorted(atoms, g, "right") - before)
            if np.array_equal(g_new, g):
                break
            g = g_new
    return g


def _escape_shape(codec: ColumnCodec) -> tuple[float, float, float]:
    lo, hi = codec.grid_lo, codec.grid_hi
    width = hi - lo + 1.0
    m = max(width / 4.0, 2.0)
    return lo, width, 1.0 - 1.0 / m


def _numeric_codable(codec: ColumnCodec, g: np.ndarray) -> np.ndarray:
    """Escaped numbers the numeric half can code (the others are spelled)."""
    lo, width, rho = _escape_shape(codec)
    hi = codec.grid_hi
    ok = np.isfinite(g) & (np.abs(g) < _BIG) & (width < _BIG)
    d = np.where(g < lo, lo - g, g - hi)
    k = geometric_split(rho)
    return ok & ((d <= 0) | (d - 1 < float(MAX_QUOTIENT) * float(1 << k)))


def encode_column(
    enc: Encoder, codec: ColumnCodec, tokens: np.ndarray, states: np.ndarray, fmt: NumberFormat
) -> tuple[float, np.ndarray]:
    """Code each value within its state; return the ideal bits and each cell's rendering
    (what the decoder will write before exceptions)."""
    n = len(tokens)
    kind = codec.state_kind[states]
    out = np.empty(n, dtype=object)
    tok = kind == TOKEN
    out[tok] = np.asarray(codec.tokens, dtype=object)[states[tok]] if tok.any() else None
    bits = 0.0
    spelled = (kind == RARE) | (kind == ESCAPE)
    if codec.numeric:
        g = np.full(n, np.nan)
        num_rows = ~tok
        if num_rows.any():
            g[num_rows] = to_grid(codec.spec, tokens[num_rows])
        vr = kind == VALUE
        g[vr] = codec.value_atoms[states[vr] - codec.off_value]
        bits += _encode_intervals(enc, codec, g, states, kind == INTERVAL)
        esc = kind == ESCAPE
        as_number = esc & _numeric_codable(codec, g)
        bits += encode_flags(enc, as_number[esc], 0.5)
        bits += _encode_escaped_numbers(enc, codec, g[as_number])
        spelled = esc & ~as_number
        numeric = vr | (kind == INTERVAL) | as_number
        if numeric.any():
            out[numeric] = fmt.prefix + format_grid(codec.spec, g[numeric], fmt.style) + fmt.suffix
    strings = [str(t) for t in tokens[spelled]]
    bits += encode_strings(enc, codec.spelling, strings)
    out[spelled] = np.asarray(strings + [""], dtype=object)[:-1]
    return bits, out


def decode_column(
    dec: Decoder, codec: ColumnCodec, states: np.ndarray, fmt: NumberFormat
) -> np.ndarray:
    n = len(states)
    kind = codec.state_kind[states]
    out = np.empty(n, dtype=object)
    tok = kind == TOKEN
    if tok.any():
        out[tok] = np.asarray(codec.tokens, dtype=object)[states[tok]]
    spelled = (kind == RARE) | (kind == ESCAPE)
    if codec.numeric:
        g = np.full(n, np.nan)
        vr = kind == VALUE
        g[vr] = codec.value_atoms[states[vr] - codec.off_value]
        ir = kind == INTERVAL
        g[ir] = _decode_intervals(dec, codec, states[ir])
        esc = kind == ESCAPE
        as_number = np.zeros(n, dtype=bool)
        as_number[esc] = decode_flags(dec, int(esc.sum()), 0.5).astype(bool)
        g[as_number] = _decode_escaped_numbers(dec, codec, int(as_number.sum()))
        spelled = esc & ~as_number
        numeric = vr | ir | as_number
        if numeric.any():
            out[numeric] = fmt.prefix + format_grid(codec.spec, g[numeric], fmt.style) + fmt.suffix
    strings = decode_strings(dec, codec.spelling, int(spelled.sum()))
    out[spelled] = np.asarray(strings + [""], dtype=object)[:-1]
    return out


def _encode_intervals(
    enc: Encoder, codec: ColumnCodec, g: np.ndarray, states: np.ndarray, rows: np.ndarray
) -> float:
    if not rows.any():
        return 0.0
    start, mat = _fine_table(codec)
    c = states[rows] - codec.off_interval
    gi = g[rows]
    j = np.searchsorted(codec.fine_edges, gi, "right") - 1
    bits = enc.encode_categorical(j - start[c], mat[c])
    lo = codec.fine_edges[j]
    k = (gi - lo).astype(np.int64) - _atoms_below(codec, lo, gi)
    return bits + enc.encode_uniform(k, codec._fine_width[j].astype(np.int64))


def _decode_intervals(dec: Decoder, codec: ColumnCodec, states: np.ndarray) -> np.ndarray:
    if not len(states):
        return np.zeros(0)
    start, mat = _fine_table(codec)
    c = states - codec.off_interval
    j = start[c] + dec.decode_categorical(mat[c])
    j = np.minimum(j, len(codec.fine_edges) - 2)
    k = dec.decode_uniform(codec._fine_width[j].astype(np.int64))
    return _kth_point(codec, codec.fine_edges[j], k.astype(np.float64))


def _encode_escaped_numbers(enc: Encoder, codec: ColumnCodec, g: np.ndarray) -> float:
    lo, width, rho = _escape_shape(codec)
    hi = codec.grid_hi
    region = np.where(g < lo, 1, np.where(g > hi, 2, 0))
    bits = enc.encode_categorical(region, np.repeat(_REGION[None, :], len(g), axis=0))
    inside = region == 0
    bits += enc.encode_uniform(
        (g[inside] - lo).astype(np.int64), np.full(int(inside.sum()), int(width))
    )
    d = np.where(region == 1, lo - g, g - hi)[~inside]
    return bits + encode_geometric(enc, (d - 1).astype(np.int64), rho)


def _decode_escaped_numbers(dec: Decoder, codec: ColumnCodec, n: int) -> np.ndarray:
    lo, width, rho = _escape_shape(codec)
    hi = codec.grid_hi
    region = dec.decode_categorical(np.repeat(_REGION[None, :], n, axis=0))
    g = np.zeros(n)
    inside = region == 0
    g[inside] = lo + dec.decode_uniform(np.full(int(inside.sum()), int(width))).astype(np.float64)
    d = decode_geometric(dec, int((~inside).sum()), rho).astype(np.float64) + 1.0
    g[~inside] = np.where(region[~inside] == 1, lo - d, hi + d)
    return g


# ---------------------------------------------------------------------------------- side info


def _formats_bytes(formats: list[NumberFormat]) -> bytes:
    return b"".join(text(f.prefix) + bytes([f.style]) + text(f.suffix) for f in formats)


def _read_formats(data: bytes, n: int) -> list[NumberFormat]:
    r = ByteReader(data, "number formats")
    out = [NumberFormat(r.text(), r.byte(), r.text()) for _ in range(n)]
    r.end()
    return out


def _exceptions_bytes(exceptions: list[tuple[np.ndarray, list[str], list[str]]]) -> bytes:
    """Per column: the rows written otherwise than rendered, each as (row delta, length of
    the prefix it shares with the rendering, the rest of its text)."""
    out = bytearray()
    for rows, raws, rendered in exceptions:
        out += varint(len(rows))
        prev = 0
        for r, s, e in zip(rows.tolist(), raws, rendered, strict=True):
            common = 0
            for a, b in zip(s, e, strict=False):
                if a != b:
                    break
                common += 1
            out += varint(r - prev) + varint(common) + text(s[common:])
            prev = r
    return bytes(out)


def apply_exceptions(rendered: list[str], raws: list[str]) -> list[str]:
    """The exceptions' texts: `raws` holds (prefix length, rest) pairs encoded as 'n\x00rest'."""
    out = []
    for e, packed in zip(rendered, raws, strict=True):
        n, rest = packed.split("\x00", 1)
        if int(n) > len(e):
            raise CompressedFileError("compressed file damaged: an exception is out of range")
        out.append(e[: int(n)] + rest)
    return out


def _read_exceptions(data: bytes, n_cols: int, n_rows: int) -> list[tuple[list[int], list[str]]]:
    r = ByteReader(data, "formatting exceptions")
    out = []
    for _ in range(n_cols):
        rows, raws, row = [], [], 0
        for _ in range(r.varint(n_rows)):
            row += r.varint(n_rows)
            if row >= n_rows:
                raise r.fail("has a row out of range")
            rows.append(row)
            common = r.varint(1 << 32)
            raws.append(f"{common}\x00{r.text()}")
        out.append((rows, raws))
    r.end()
    return out


def _ids_bytes(tokens: list[str]) -> bytes:
    """Integer ids as zig-zag deltas (mode 1), anything else as its text (mode 0)."""
    if tokens and all(_INT_RE.match(t) for t in tokens):
        vals = [int(t) for t in tokens]
        out, prev = bytearray(b"\x01" + varint(len(vals))), 0
        for v in vals:
            dlt = v - prev - 1
            out += varint(2 * dlt if dlt >= 0 else -2 * dlt - 1)
            prev = v
        return bytes(out)
    return b"\x00" + texts_bytes(tokens)


def _read_ids(data: bytes, n_rows: int) -> list[str]:
    r = ByteReader(data, "identifier column")
    mode = r.byte()
    if mode == 0:
        out = read_texts(r, n_rows)
    elif mode == 1:
        out, prev = [], 0
        for _ in range(r.varint(n_rows)):
            z = r.varint()
            prev = prev + 1 + (z // 2 if z % 2 == 0 else -(z + 1) // 2)
            out.append(str(prev))
    else:
        raise r.fail(f"has an unknown mode {mode}")
    r.end()
    if len(out) != n_rows:
        raise r.fail("has the wrong number of rows")
    return out


# ---------------------------------------------------------------------------------- file


def _split(twin: TableTwin, raw: bytes) -> Any:
    names = [s.name for s in twin.schema]
    default = names == [f"col{i + 1}" for i in range(len(names))]
    last: InputError | None = None
    for encoding in ("utf-8", "latin-1"):
        try:
            s = split(raw, encoding=encoding, header=True, names=names)
            if default and s.names != names:
                s = split(raw, encoding=encoding, header=False, names=names)
            break
        except InputError as exc:
            last = exc
    else:
        assert last is not None
        raise last
    if sorted(s.names) != sorted(names):
        raise InputError(
            f"the data's columns {s.names[:8]} are not the model's {names[:8]}; "
            "compress data with the columns the twin was fit on"
        )
    return s


def encode_table(twin: TableTwin, raw: bytes) -> TableCoded:
    """Code the CSV bytes `raw` (see the module docstring)."""
    s = _split(twin, raw)
    where = {name: i for i, name in enumerate(s.names)}
    n = s.layout.n_rows
    enc = Encoder()
    texts: dict[str, np.ndarray] = {}
    formats: list[NumberFormat] = []
    net = twin.net
    codecs = twin.codecs
    tokens = [np.asarray(s.columns[where[c.spec.name]], dtype=object) for c in codecs]
    model_bits = _encode_network(enc, twin, tokens, texts, formats)
    exceptions = []
    for c_file, name in enumerate(s.names):
        col = np.asarray(s.columns[c_file], dtype=object)
        bad = np.flatnonzero(texts[name] != col) if name in texts else np.zeros(0, np.int64)
        rend = texts[name][bad] if name in texts else np.empty(0, dtype=object)
        exceptions.append((bad, [str(v) for v in col[bad]], [str(v) for v in rend]))
    ids = [
        _ids_bytes([str(v) for v in s.columns[where[spec.name]]])
        for spec in twin.schema
        if spec.type == "id"
    ]
    perm = b"".join(varint(names_index) for names_index in _schema_order(twin, s.names))
    parts = {
        "layout": s.layout.to_bytes(),
        "columns": perm,
        "formats": pack_bytes(_formats_bytes(formats)),
        "exceptions": pack_bytes(_exceptions_bytes(exceptions)),
        "ids": pack_bytes(frame(ids)),
    }
    payload = enc.to_bytes()
    del net
    stats = {
        "model_bits": model_bits,
        "coded_bits": enc.bits,
        "payload": len(payload),
        "exceptions": sum(len(e[0]) for e in exceptions),
        **{f"side_{k}": len(v) for k, v in parts.items()},
    }
    return TableCoded(frame(list(parts.values())), payload, (n, len(s.names)), stats)


def _schema_order(twin: TableTwin, file_names: list[str]) -> list[int]:
    names = [s.name for s in twin.schema]
    return [names.index(f) for f in file_names]


def _encode_network(
    enc: Encoder,
    twin: TableTwin,
    tokens: list[np.ndarray],
    texts: dict[str, np.ndarray],
    formats: list[NumberFormat],
) -> float:
    net: Any = twin.net
    codecs = twin.codecs
    if not hasattr(net, "cpts"):  # a linear-Gaussian network
        from .gaussian import encode_gaussian

        return encode_gaussian(enc, twin, tokens, texts, formats)
    states = [codec.encode(tok)[0] for codec, tok in zip(codecs, tokens, strict=True)]
    fmts: list[NumberFormat] = []
    for codec, tok, st in zip(codecs, tokens, states, strict=True):
        fmt = NumberFormat()
        if codec.numeric:
            kind = codec.state_kind[st]
            rows = (kind == VALUE) | (kind == INTERVAL) | (kind == ESCAPE)
            g = to_grid(codec.spec, tok[rows])
            ok = np.isfinite(g)
            if ok.any():
                pre, style, suf, _ = choose_format(codec.spec, g[ok], tok[rows][ok])
                fmt = NumberFormat(pre, style, suf)
        fmts.append(fmt)
    formats.extend(fmts)
    cols: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(codecs)
    bits = 0.0
    for v in net.order:
        bits += _encode_states(enc, net, v, cols, states[v])
        cols[v] = states[v]
        b, rendered = encode_column(enc, codecs[v], tokens[v], states[v], fmts[v])
        bits += b
        texts[codecs[v].spec.name] = rendered
    return bits


def decode_table(twin: TableTwin, side: bytes, payload: bytes, counts: tuple[int, ...]) -> bytes:
    if len(counts) != 2:
        raise CompressedFileError("compressed file damaged: wrong counts for a table")
    n, n_cols = counts
    layout_b, perm_b, formats_b, exc_b, ids_b = unframe(side, 5, "table sections")
    layout = Layout.from_bytes(layout_b)
    if layout.n_rows != n or layout.n_cols != n_cols or n_cols != len(twin.schema):
        raise CompressedFileError("compressed file damaged: its layout does not match the model")
    r = ByteReader(perm_b, "column order")
    order = [r.varint(len(twin.schema) - 1) for _ in range(n_cols)]
    r.end()
    if sorted(order) != list(range(n_cols)):
        raise CompressedFileError("compressed file damaged: its column order is invalid")
    codecs = twin.codecs
    formats = _read_formats(unpack_bytes(formats_b, "number formats"), len(codecs))
    dec = Decoder(payload)
    texts: dict[str, np.ndarray] = {}
    net: Any = twin.net
    if not hasattr(net, "cpts"):  # a linear-Gaussian network
        from .gaussian import decode_gaussian

        texts.update(decode_gaussian(dec, twin, n, formats))
    else:
        cols: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(codecs)
        for v in net.order:
            cols[v] = _decode_states(dec, net, v, cols, n)
            texts[codecs[v].spec.name] = decode_column(dec, codecs[v], cols[v], formats[v])
    id_specs = [s for s in twin.schema if s.type == "id"]
    id_parts = unframe(unpack_bytes(ids_b, "identifier columns"), len(id_specs), "identifiers")
    for spec, part in zip(id_specs, id_parts, strict=True):
        texts[spec.name] = np.asarray(_read_ids(part, n) + [""], dtype=object)[:-1]
    exceptions = _read_exceptions(unpack_bytes(exc_b, "exceptions"), n_cols, n)
    names = [twin.schema[i].name for i in order]
    columns = []
    for c, name in enumerate(names):
        col = texts[name].copy()
        rows, raws = exceptions[c]
        if rows:
            fixed = apply_exceptions(
                [str(col[i]) if col[i] is not None else "" for i in rows], raws
            )
            col[np.asarray(rows)] = np.asarray(fixed + [""], dtype=object)[:-1]
        columns.append(col.tolist())
    return rebuild(columns, layout, names=names)
