"""Series: code a CSV of a regular series with the twin's one-step predictive, step by step.

The cells (value = k · 10^-dec per column) are coded by `series_steps` (missing and escape
flags, then the cell by bisection under the predictive, cells.py), vectorised when encoding
and sequential when decoding, with bit-identical float64 rows on both sides; then the digits
of values finer than their grid (`series_finer`). This module
handles the file around them: the time column is predicted from the twin's time axis
(exceptions listed apart); how numbers are written is per column (trailing zeros, blanks, the
missing marker), with the cells written otherwise listed verbatim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..series.finer import find_finer, snap
from ..text.steps import paused_gc
from .coder import Decoder, Encoder
from .layout import Layout, rebuild, split
from .sections import frame, pack_bytes, read_texts, texts_bytes, unframe, unpack_bytes
from .series_finer import decode_finer, encode_finer, render_finer
from .series_steps import MISSING as _MISSING
from .series_steps import decode_cells, encode_cells
from .table import _exceptions_bytes, _read_exceptions, apply_exceptions
from .values import FIXED, TRIM_ALL, TRIM_ONE
from .wire import ByteReader, CompressedFileError, text, varint

if TYPE_CHECKING:
    from ..series.twin import SeriesTwin

#: cells per column looked at to choose how its numbers are written
_STYLE_SAMPLE = 500


@dataclass
class SeriesCoded:
    side: bytes
    payload: bytes
    counts: tuple[int, ...]
    stats: dict[str, Any]


# ---------------------------------------------------------------------------------- numbers


def _parse(cells: list[str]) -> np.ndarray:
    out = np.full(len(cells), np.nan)
    for i, c in enumerate(cells):
        try:
            v = float(c)
        except ValueError:
            continue
        if math.isfinite(v):
            out[i] = v
    return out


def _render(k: int, dec: int, style: int) -> str:
    if dec <= 0:
        return str(k * 10 ** (-dec)) if dec < 0 else str(k)
    q, r = divmod(abs(k), 10**dec)
    frac = f"{r:0{dec}d}"
    if style == TRIM_ONE:
        frac = frac.rstrip("0") or "0"
    elif style == TRIM_ALL:
        frac = frac.rstrip("0")
    return ("-" if k < 0 else "") + str(q) + ("." + frac if frac else "")


# ---------------------------------------------------------------------------------- file


def _base_step(twin: SeriesTwin, first: str | None) -> int:
    """The data's first step on the twin's grid, as `twin.log_prob` places it: the step
    after training when the data continues the training series, else its time's index."""
    if first is None or twin.continues_from(first):
        return twin.next_step
    idx = twin.time.index_of(first)
    return twin.next_step if idx is None else idx


@paused_gc()  # many short-lived lists and strings, no cycles: the collector only rescans
def encode_series(twin: SeriesTwin, raw: bytes) -> SeriesCoded:
    names = list(twin.column_order) or ([twin.time.column] if twin.time.column else []) + list(
        twin.cols.names
    )
    s = split(raw, names=names)
    where = {nm: i for i, nm in enumerate(s.names)}
    missing_cols = [c for c in twin.cols.names if c not in where]
    if missing_cols:
        raise InputError(f"the data lacks columns the twin models: {missing_cols}")
    n = s.layout.n_rows
    tcol = twin.time.column if twin.time.column in where else None
    first = s.columns[where[tcol]][0] if tcol and n else ""
    base = _base_step(twin, first.strip() if tcol and n else None)
    d = len(twin.cols.names)
    K = np.zeros((n, d), dtype=np.int64)
    styles, marks, found = [], [], []
    rendered: dict[str, list[str]] = {}
    for j, name in enumerate(twin.cols.names):
        cells = s.columns[where[name]]
        dec = twin.cols.decimals[j]
        parsed = _parse(cells)
        fin = find_finer(parsed, dec)
        x = snap(parsed, fin, dec)
        miss = np.isnan(x)
        with np.errstate(over="ignore", invalid="ignore"):
            k = np.round(x / (10.0 ** (-dec)))
        big = ~miss & ~(np.abs(k) < 2.0**62)
        miss |= big  # not representable on the grid: written as an exception
        K[:, j] = np.where(miss, _MISSING, np.where(miss, 0, k)).astype(np.int64)
        found.append(fin.only(~miss[fin.where]))
        style = _best_style(
            [int(v) for v in K[~miss, j][:_STYLE_SAMPLE]],
            dec,
            [cells[i] for i in np.flatnonzero(~miss)[:_STYLE_SAMPLE]],
        )
        mk = _mark([cells[i] for i in np.flatnonzero(miss)])
        styles.append(style)
        marks.append(mk)
    enc = Encoder()
    bits = encode_cells(twin, enc, K, base)
    bits += encode_finer(enc, twin.cols.finer, K, found)
    for j, name in enumerate(twin.cols.names):
        rendered[name] = _render_column(K[:, j], twin.cols.decimals[j], styles[j], marks[j])
        render_finer(rendered[name], found[j], twin.cols.decimals[j])
    if tcol:
        rendered[tcol] = _times(twin, first, n)
    exceptions = []
    for c, nm in enumerate(s.names):
        col = np.asarray(s.columns[c], dtype=object)
        exp = np.asarray(rendered.get(nm, [""] * n), dtype=object)
        bad = np.flatnonzero(col != exp) if n else np.zeros(0, dtype=np.int64)
        exceptions.append((bad, [str(v) for v in col[bad]], [str(v) for v in exp[bad]]))
    meta = varint(base + (1 << 62)) + text(first) + text(tcol or "")
    meta += b"".join(bytes([st]) + text(mk) for st, mk in zip(styles, marks, strict=True))
    meta += texts_bytes(s.names)
    parts = {
        "layout": s.layout.to_bytes(),
        "meta": pack_bytes(meta),
        "exceptions": pack_bytes(_exceptions_bytes(exceptions)),
    }
    payload = enc.to_bytes()
    stats = {
        "model_bits": bits,
        "coded_bits": bits,
        "payload": len(payload),
        "exceptions": sum(len(e[0]) for e in exceptions),
        "finer_values": sum(len(f.where) for f in found),
        **{f"side_{k}": len(v) for k, v in parts.items()},
    }
    return SeriesCoded(frame(list(parts.values())), payload, (n, len(s.names)), stats)


def _render_column(k: np.ndarray, dec: int, style: int, mark: str) -> list[str]:
    """Each cell's text (`mark` where missing), rendering every distinct cell once."""
    uniq, inv = np.unique(k, return_inverse=True)
    cells = uniq[uniq != _MISSING]
    texts = _render_many(cells, dec, style) + [mark] * (len(uniq) - len(cells))
    out = np.asarray(texts + [""], dtype=object)[:-1][inv.reshape(-1)]
    return list(out)


def _render_many(k: np.ndarray, dec: int, style: int) -> list[str]:
    """`_render` of each cell (|k| < 2**62), with numpy's string functions when it has
    decimals."""
    if dec <= 0 or dec > 18 or not len(k):
        return [_render(v, dec, style) for v in k.tolist()]
    q, r = np.divmod(np.abs(k), 10**dec)
    frac = np.char.zfill(r.astype(str), dec)
    if style in (TRIM_ONE, TRIM_ALL):
        frac = np.char.rstrip(frac, "0")
    if style == TRIM_ONE:
        frac = np.where(frac == "", "0", frac)
    whole = np.char.add(np.where(k < 0, "-", ""), q.astype(str))
    return np.where(frac != "", np.char.add(np.char.add(whole, "."), frac), whole).tolist()


def _best_style(ks: list[int], dec: int, cells: list[str]) -> int:
    """The style that writes most of the sampled cells as they are (the first that writes
    all of them)."""
    best, best_hits = FIXED, -1
    for style in (FIXED, TRIM_ONE, TRIM_ALL):
        hits = sum(_render(k, dec, style) == c for k, c in zip(ks, cells, strict=True))
        if hits > best_hits:
            best, best_hits = style, hits
        if hits == len(cells):
            break
    return best


def _mark(cells: list[str]) -> str:
    if not cells:
        return ""
    vals, counts = np.unique(np.asarray(cells, dtype=str), return_counts=True)
    return str(vals[int(np.argmax(counts))])


def _times(twin: SeriesTwin, first: str, n: int) -> list[str]:
    if n == 0:
        return []
    try:
        return [first] + twin.time.following(first, n - 1)
    except (ValueError, TypeError, OverflowError):
        return [first] * n


@paused_gc()
def decode_series(twin: SeriesTwin, side: bytes, payload: bytes, counts: tuple[int, ...]) -> bytes:
    if len(counts) != 2:
        raise CompressedFileError("compressed file damaged: wrong counts for a series")
    n, n_cols = counts
    layout_b, meta_b, exc_b = unframe(side, 3, "series sections")
    layout = Layout.from_bytes(layout_b)
    if layout.n_rows != n or layout.n_cols != n_cols:
        raise CompressedFileError("compressed file damaged: its layout does not match")
    r = ByteReader(unpack_bytes(meta_b, "series formats"), "series formats")
    base = r.varint() - (1 << 62)
    first, tcol = r.text(), r.text()
    d = len(twin.cols.names)
    styles, marks = [], []
    for _ in range(d):
        styles.append(r.byte())
        marks.append(r.text())
    names = read_texts(r, n_cols)
    r.end()
    if len(names) != n_cols or any(c not in names for c in twin.cols.names):
        raise CompressedFileError("compressed file damaged or for another model: its columns")
    decoder = Decoder(payload)
    K = decode_cells(twin, decoder, n, base)
    fine = decode_finer(decoder, twin.cols.finer, K)
    rendered: dict[str, list[str]] = {}
    for j, name in enumerate(twin.cols.names):
        rendered[name] = _render_column(K[:, j], twin.cols.decimals[j], styles[j], marks[j])
        render_finer(rendered[name], fine[j], twin.cols.decimals[j])
    if tcol:
        rendered[tcol] = _times(twin, first, n)
    exceptions = _read_exceptions(unpack_bytes(exc_b, "exceptions"), n_cols, n)
    columns = []
    for c, nm in enumerate(names):
        col = list(rendered.get(nm, [""] * n))
        rows, raws = exceptions[c]
        for row, rawtext in zip(rows, apply_exceptions([col[r] for r in rows], raws), strict=True):
            col[row] = rawtext
        columns.append(col)
    return rebuild(columns, layout, names=names)
