"""Tables with a linear-Gaussian twin: every column's grid cells under N(mu, sigma).

The twin scores a row column by column (`LinearGaussianNet.log_prob_grid`): a number with
probability `1 - e_v`, its grid cell k (the value's index on the column's recorded grid) with
the mass of `N(mu_v, sigma_v)` on [k - ½, k + ½), mu_v a linear function of the parents' grid
values (the column mean where a parent held a non-number); a non-number with probability
`e_v`, then its UTF-8 bytes, a stop/continue flag (0.2/0.8) before each and each byte uniform.

Coded in the network's order, a whole column of rows at a time (rows are independent given
their parents, which are decoded first): the number flags; then the cells by bisection over a
window of ±12 sigma around mu (cells.py: the same rows on both sides, each level one coder
call for all rows, a value beyond the window by its distance); then the spelled non-numbers.
The product of the levels' masses telescopes to the cell's mass, so the payload is the twin's
own bits plus the coder's overhead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..tabular.codec import to_grid
from .cells import ROW, ColumnCode, level, level0, row_bits, split_edges, which
from .coder import Decoder, Encoder, _categorical_family
from .fixedmath import exp
from .series_steps import Scalar
from .values import choose_format, format_grid
from .wire import CompressedFileError

if TYPE_CHECKING:
    from .table import NumberFormat

_FAMILY = _categorical_family()
_SPELL = np.array([[0.2, 0.8]])  # stop, continue
_LIMIT = float(1 << 60)


def _column(net: Any, v: int) -> ColumnCode:
    return ColumnCode.normal(v, float(net.step[v]))


def encode_gaussian(
    enc: Encoder, twin: Any, tokens: list[np.ndarray], texts: dict[str, np.ndarray],
    formats: list[NumberFormat],
) -> float:  # fmt: skip
    """Code every column of a linear-Gaussian twin; fill `texts` with each column's rendering
    (before exceptions) and `formats` with their number formats. Returns the ideal bits."""
    from .table import NumberFormat

    net, codecs = twin.net, twin.codecs
    n = len(tokens[0]) if tokens else 0
    X = np.zeros((n, len(codecs)))
    fmts = [NumberFormat() for _ in codecs]
    bits = 0.0
    with np.errstate(all="ignore"):
        for v in net.order:
            spec = codecs[v].spec
            g = to_grid(spec, tokens[v])
            num = np.isfinite(g) & (np.abs(g) < _LIMIT)
            bits += enc.encode_categorical(~num, _flag_rows(net, v, n))
            mu = net._mu(X, v)
            bits += _encode_cells(enc, _column(net, v), g[num].astype(np.int64), mu[num], net, v)
            strings = [str(t) for t in tokens[v][~num]]
            bits += _encode_spelled(enc, strings)
            X[:, v] = np.where(num, g, net.mean[v])
            out = np.empty(n, dtype=object)
            if num.any():
                pre, style, suf, _ = choose_format(spec, g[num], tokens[v][num])
                fmts[v] = NumberFormat(pre, style, suf)
                out[num] = pre + format_grid(spec, g[num], style) + suf
            out[~num] = np.asarray(strings + [""], dtype=object)[:-1]
            texts[spec.name] = out
    formats.extend(fmts)
    return bits


def decode_gaussian(
    dec: Decoder, twin: Any, n: int, formats: list[NumberFormat]
) -> dict[str, np.ndarray]:
    """The renderings of every column coded by `encode_gaussian`."""
    net, codecs = twin.net, twin.codecs
    X = np.zeros((n, len(codecs)))
    texts: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for v in net.order:
            spec, fmt = codecs[v].spec, formats[v]
            esc = np.asarray(dec.decode_categorical(_flag_rows(net, v, n)), bool)
            num = ~esc
            mu = net._mu(X, v)
            g = _decode_cells(dec, _column(net, v), mu[num], net, v).astype(np.float64)
            strings = _decode_spelled(dec, int(esc.sum()))
            X[:, v] = net.mean[v]
            X[num, v] = g
            out = np.empty(n, dtype=object)
            if num.any():
                out[num] = fmt.prefix + format_grid(spec, g, fmt.style) + fmt.suffix
            out[esc] = np.asarray(strings + [""], dtype=object)[:-1]
            texts[spec.name] = out
    return texts


def _flag_rows(net: Any, v: int, n: int) -> np.ndarray:
    pe = float(exp(np.array([net.escape[v]]))[0])
    return np.repeat(np.array([[1.0 - pe, pe]]), n, axis=0)


# ---------------------------------------------------------------------------------- cells


def _encode_cells(
    enc: Encoder, col: ColumnCode, k: np.ndarray, mu: np.ndarray, net: Any, v: int
) -> float:
    """Code cells k under N(mu, sigma_v), level by level for all rows at once."""
    if not len(k):
        return 0.0
    s = np.full(len(k), float(net.sigma[v]))
    klo, khi = col.window(mu, s)
    e = split_edges(klo, khi)
    rows = level0(col, e, mu, s)
    sym = np.where(k < klo, 0, np.where(k > khi, ROW - 1, 1 + which(e, k)))
    bits = _encode_rows(enc, sym, rows)
    scalar = Scalar(enc, None)
    for i in np.flatnonzero((sym == 0) | (sym == ROW - 1)):
        scalar.gamma(int(klo[i] - k[i]) if k[i] < klo[i] else int(k[i] - khi[i]))
    keep = (sym > 0) & (sym < ROW - 1)
    r = np.flatnonzero(keep)
    lo, hi = e[r, sym[keep] - 1], e[r, sym[keep]] - 1
    k, mu, s = k[keep], mu[keep], s[keep]
    while len(lo) and (live := hi > lo).any():
        lo, hi, k, mu, s = lo[live], hi[live], k[live], mu[live], s[live]
        e = split_edges(lo, hi)
        sym = which(e, k)
        bits += _encode_rows(enc, sym, level(col, e, mu, s))
        r = np.arange(len(sym))
        lo, hi = e[r, sym], e[r, sym + 1] - 1
    return bits + scalar.bits


def _encode_rows(enc: Encoder, sym: np.ndarray, rows: np.ndarray) -> float:
    enc._coder.encode(sym.astype(np.int32), _FAMILY, np.ascontiguousarray(rows))
    return float(np.sum(row_bits(rows, sym)))


def _decode_cells(dec: Decoder, col: ColumnCode, mu: np.ndarray, net: Any, v: int) -> np.ndarray:
    """The cells coded by `_encode_cells` (the same rows, decoded level by level)."""
    out = np.zeros(len(mu), np.int64)
    if not len(mu):
        return out
    s = np.full(len(mu), float(net.sigma[v]))
    klo, khi = col.window(mu, s)
    e = split_edges(klo, khi)
    sym = np.asarray(dec._coder.decode(_FAMILY, level0(col, e, mu, s)), np.int64)
    scalar = Scalar(None, dec)
    for i in np.flatnonzero((sym == 0) | (sym == ROW - 1)):  # in row order, as coded
        out[i] = klo[i] - scalar.gamma(1) if sym[i] == 0 else khi[i] + scalar.gamma(1)
    idx = np.flatnonzero((sym > 0) & (sym < ROW - 1))
    lo, hi = e[idx, sym[idx] - 1], e[idx, sym[idx]] - 1
    mu, s = mu[idx], s[idx]
    while len(lo) and (live := hi > lo).any():
        done = ~live
        out[idx[done]] = lo[done]
        idx, lo, hi, mu, s = idx[live], lo[live], hi[live], mu[live], s[live]
        e = split_edges(lo, hi)
        sym = np.asarray(dec._coder.decode(_FAMILY, level(col, e, mu, s)), np.int64)
        r = np.arange(len(sym))
        lo, hi = e[r, sym], e[r, sym + 1] - 1
    out[idx] = lo
    return out


# ---------------------------------------------------------------------------------- spelling


def _encode_spelled(enc: Encoder, strings: list[str]) -> float:
    """Each string's UTF-8 bytes: a continue flag before each, a stop flag, the bytes."""
    if not strings:
        return 0.0
    data = [t.encode("utf-8", "surrogatepass") for t in strings]
    flags = np.concatenate([np.append(np.ones(len(b), np.int64), 0) for b in data])
    bits = enc.encode_categorical(flags, np.repeat(_SPELL, len(flags), axis=0))
    allb = np.frombuffer(b"".join(data), np.uint8).astype(np.int64)
    return bits + enc.encode_uniform(allb, np.full(len(allb), 256))


def _decode_spelled(dec: Decoder, count: int, max_len: int = 1 << 20) -> list[str]:
    lengths = []
    for _ in range(count):
        k = 0
        while dec.decode_categorical(_SPELL)[0] == 1:
            k += 1
            if k > max_len:
                raise CompressedFileError("compressed file damaged: a spelled value runs on")
        lengths.append(k)
    allb = bytes(dec.decode_uniform(np.full(sum(lengths), 256)).astype(np.uint8).tolist())
    out, at = [], 0
    for k in lengths:
        out.append(allb[at : at + k].decode("utf-8", "surrogatepass"))
        at += k
    return out
