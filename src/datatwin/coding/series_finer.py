"""Series: the digits of values finer than their column's grid, coded as the twin scores them.

After the cells (series_steps.py), per column in the twin's column order: one flag per
observed value, finer or not (`P(finer) = φ`, one coder call for the whole column); then for
each finer value its extra decimals d (a continue flag of ½ per decimal, none after the last
possible one) and its rank among the cell's 9·10^(d-1) points (uniform). That is
-log2 of `series/finer.py`'s terms exactly, so the payload still matches the twin's bits.
"""

from __future__ import annotations

import numpy as np

from ..series.finer import MAX_EXTRA, Finer, text_of
from .cells import IntArray, row_bits
from .coder import Decoder, Encoder
from .series_steps import _FAMILY, MISSING, Scalar
from .wire import CompressedFileError


def _flag_rows(phi: float, n: int) -> np.ndarray:
    return np.broadcast_to(np.array([1.0 - phi, phi]), (n, 2))


def encode_finer(enc: Encoder, phis: list[float], K: IntArray, found: list[Finer]) -> float:
    """Code each column's finer flags and digits; returns their bits."""
    bits, scalar = 0.0, Scalar(enc, None)
    for j, (phi, fin) in enumerate(zip(phis, found, strict=True)):
        observed = np.flatnonzero(K[:, j] != MISSING)
        flags = np.isin(observed, fin.where).astype(np.int64)
        rows = np.ascontiguousarray(_flag_rows(phi, len(observed)))
        if len(observed):
            enc._coder.encode(flags.astype(np.int32), _FAMILY, rows)
            bits += float(np.sum(row_bits(rows, flags)))
        for d, i in zip(fin.extra.tolist(), fin.index.tolist(), strict=True):
            for step in range(1, min(d, MAX_EXTRA - 1) + 1):
                scalar.flag(0.5, step < d)
            scalar.uniform(9 * 10 ** (d - 1), i)
    return bits + scalar.bits


def decode_finer(dec: Decoder, phis: list[float], K: IntArray) -> list[Finer]:
    """The finer values coded by `encode_finer`, per column (their rows of the file)."""
    scalar, out = Scalar(None, dec), []
    for j, phi in enumerate(phis):
        observed = np.flatnonzero(K[:, j] != MISSING)
        flags = np.zeros(0, dtype=np.int64)
        if len(observed):
            rows = np.ascontiguousarray(_flag_rows(phi, len(observed)))
            flags = np.asarray(dec._coder.decode(_FAMILY, rows), dtype=np.int64)
        rows_f = observed[flags == 1]
        extra, index = [], []
        for _ in rows_f:
            d = 1
            while d < MAX_EXTRA and scalar.flag(0.5, False):
                d += 1
            extra.append(d)
            index.append(scalar.uniform(9 * 10 ** (d - 1), 0))
        cells = K[rows_f, j]
        out.append(Finer(rows_f, np.array(extra, np.int64), cells, np.array(index, np.int64)))
    return out


def render_finer(texts: list[str], fin: Finer, decimals: int) -> None:
    """Write a column's finer values into its rendered texts."""
    columns = (fin.where, fin.extra, fin.cell, fin.index)
    for r, d, k, i in zip(*(c.tolist() for c in columns), strict=True):
        if not 0 <= i < 9 * 10 ** (d - 1):
            raise CompressedFileError("compressed file damaged: a finer value out of range")
        texts[r] = text_of(k, d, i, decimals)
