"""Series: code a CSV of a regular series step by step with the twin's one-step predictive.

For step t and column j (in column order, so the contemporaneous terms are known):

* missing or not (`P(missing) = r_j`, the column's missing rate; nothing when r_j = 0);
* for a bounded column, outside its support or not (`P = ε`); outside: which side (½ each
  when both are bounded), then the cells beyond, geometric as `precision.escape_log_prob`;
* inside: the value's recorded cell k (value = k · 10^-dec) under the LinearModel's
  predictive, `mean_j(t) + s_j(t) e` with Gaussian-mixture residuals, mapped through the
  column's transform; cells at a bound carry the folded tail. The cell is found by
  bisection over a window of cells around the mean (±12 residual sds): at each level a
  categorical over up to 256 sub-ranges whose masses are differences of the mixture CDF at
  the cells' edges (the product telescopes to the cell's mass), plus "below"/"above" the
  window at the first level (a value there is coded by its distance, Elias-gamma style).

The encoder and the decoder run the same step loop (`_StepCoder`), so every float64 they use
(the means, summed term by term in a fixed order, and the CDF differences) is computed by the
same operations from the same decoded values. The time column is predicted from the twin's
time axis (exceptions listed apart); how numbers are written is per column (trailing zeros,
blanks, the missing marker), with the cells written otherwise listed verbatim.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

from ..errors import InputError
from ..series.precision import effective_lower, forward
from .coder import Decoder, Encoder
from .layout import Layout, rebuild, split
from .sections import frame, pack_bytes, read_texts, texts_bytes, unframe, unpack_bytes
from .table import _exceptions_bytes, _read_exceptions, apply_exceptions
from .values import FIXED, TRIM_ALL, TRIM_ONE
from .wire import ByteReader, CompressedFileError, text, varint

if TYPE_CHECKING:
    from ..series.twin import SeriesTwin

_B = 256
_WINDOW_SD = 12.0


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


# ---------------------------------------------------------------------------------- the loop


class _StepCoder:
    """One step loop for both directions: `enc` set = encode the given cells, else decode."""

    def __init__(self, twin: SeriesTwin, enc: Encoder | None, dec: Decoder | None):
        self.twin, self.enc, self.dec = twin, enc, dec
        m = twin.model
        self.d = len(twin.cols.names)
        self.C = m.intercepts()
        self.lags = [int(x) for x in m.lags]
        # the mean's terms in a fixed order: (row offset back, column, coefficient)
        self.terms: list[list[tuple[int, int, float]]] = []
        for j in range(self.d):
            t = [(0, i, float(m.A[j, i])) for i in range(j) if m.A[j, i] != 0.0]
            for li, lag in enumerate(self.lags):
                t += [(lag, i, float(m.B[j, li, i])) for i in range(self.d) if m.B[j, li, i] != 0.0]
            self.terms.append(t)
        self.delta = [10.0 ** (-dec) for dec in twin.cols.decimals]
        self.bits = 0.0

    # ---- primitive symbols (same call order in both directions) ------------------------
    def cat(self, probs: np.ndarray, symbol: int) -> int:
        """One categorical symbol (rows are finite, >= 0, with a positive sum here)."""
        row = np.ascontiguousarray(probs, dtype=np.float64)[None, :]
        if len(probs) == 1:
            return 0
        if self.enc is not None:
            self.enc._coder.encode(np.array([symbol], dtype=np.int32), _family(), row)
            total = float(row.sum())
            # a symbol the model gives (numerically) no mass still gets the coder's floor
            self.bits += math.log2(total) - math.log2(max(float(row[0, symbol]), total * 2.0**-24))
            self.enc.bits += 0.0
            return symbol
        assert self.dec is not None
        return int(self.dec._coder.decode(_family(), row)[0])

    def flag(self, p1: float, value: bool) -> bool:
        return bool(self.cat(np.array([1.0 - p1, p1]), int(value)))

    def uniform(self, size: int, value: int) -> int:
        if self.enc is not None:
            self.bits += self.enc.encode_uniform(np.array([value]), np.array([size]))
            self.enc.bits = 0.0
            return value
        assert self.dec is not None
        return int(self.dec.decode_uniform(np.array([size]))[0])

    def gamma(self, value: int) -> int:
        """value >= 1: its bit length (uniform over 1..64) then the bits below the top one."""
        nb = self.uniform(64, value.bit_length() - 1 if value >= 1 else 0) + 1
        low = self.uniform(1 << (nb - 1), value - (1 << (nb - 1)) if value >= 1 else 0)
        return (1 << (nb - 1)) + low

    def geometric(self, rho: float, value: int) -> int:
        """P(j) = (1-ρ) ρ^j, j >= 0 (continue flags, then a gamma code past 64 of them)."""
        k = max(0, math.ceil(math.log2(1.0 / max(1.0 - rho, 1e-300))))
        ratio = rho ** float(1 << k)
        q, r = value >> k, value & ((1 << k) - 1)
        out_q = 0
        while out_q < 64 and self.flag(ratio, q > out_q):
            out_q += 1
        if out_q == 64:
            out_q += self.gamma(q - 63 if self.enc is not None else 1) - 1
        out_r = 0
        for i in range(k):
            a = rho ** float(1 << i)
            out_r |= int(self.flag(a / (1.0 + a), bool((r >> i) & 1))) << i
        return (out_q << k) | out_r

    # ---- the model ------------------------------------------------------------------------
    def mean(self, Z: np.ndarray, t: int, j: int, step: int) -> float:
        C = self.C
        m = float(C[j, step % C.shape[1]])
        for back, i, c in self.terms[j]:
            m = m + c * float(Z[t - back, i])
        return m

    def z_of(self, j: int, k: int) -> float:
        """The history value of cell k (as `series.ar.prepare`: clipped into the support)."""
        tw = self.twin
        lo_k, hi_k = self.bounds(j)
        if lo_k is not None:
            k = max(k, lo_k)
        if hi_k is not None:
            k = min(k, hi_k)
        x = np.array([k * self.delta[j]])
        z = (forward(x, tw.transforms[j]) - tw.center[j]) / tw.scale[j]
        if tw.transforms[j] == "log" and not np.isfinite(z[0]):
            z = (np.log(np.array([0.5 * self.delta[j]])) - tw.center[j]) / tw.scale[j]
        return float(z[0])

    def bounds(self, j: int) -> tuple[int | None, int | None]:
        cols = self.twin.cols
        lo = effective_lower(cols.lower[j], self.twin.transforms[j])
        hi = cols.upper[j]
        dl = self.delta[j]
        return (
            None if lo is None else round(lo / dl),
            None if hi is None else round(hi / dl),
        )

    def edges_z(self, j: int, e: np.ndarray) -> np.ndarray:
        """z of the lower edge of cells `e` (−inf at/below the lower bound cell, +inf above
        the upper one)."""
        tw = self.twin
        x = (e.astype(np.float64) - 0.5) * self.delta[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (forward(x, tw.transforms[j]) - tw.center[j]) / tw.scale[j]
        lo_k, hi_k = self.bounds(j)
        if lo_k is not None:
            z = np.where(e <= lo_k, -np.inf, z)
        if hi_k is not None:
            z = np.where(e > hi_k, np.inf, z)
        return np.where(np.isnan(z), -np.inf, z)

    def masses(self, j: int, zlo: np.ndarray, zhi: np.ndarray, mean: float, s: float) -> np.ndarray:
        m = self.twin.model
        keep = m.mix_w[j] > 0
        out = np.zeros(len(zlo))
        for w, mu, sd in zip(m.mix_w[j][keep], m.mix_mu[j][keep], m.mix_sd[j][keep], strict=True):
            a = ((zlo - mean) / s - mu) / sd
            b = ((zhi - mean) / s - mu) / sd
            flip = a > 0
            hi_p = np.where(flip, ndtr(-a), ndtr(b))
            lo_p = np.where(flip, ndtr(-b), ndtr(a))
            out += w * np.maximum(hi_p - lo_p, 0.0)
        return out

    def window(self, j: int, mean: float, s: float) -> tuple[int, int]:
        tw, m = self.twin, self.twin.model
        keep = m.mix_w[j] > 0
        half = s * float(np.max(np.abs(m.mix_mu[j][keep]) + _WINDOW_SD * m.mix_sd[j][keep]))
        z = np.array([mean - half, mean + half]) * tw.scale[j] + tw.center[j]
        tr = tw.transforms[j]
        x = (
            np.where(z > 0, z * z, 0.0)
            if tr == "sqrt"
            else (np.exp(np.minimum(z, 700.0)) if tr == "log" else z)
        )
        with np.errstate(over="ignore", invalid="ignore"):
            klo = np.floor(x[0] / self.delta[j])
            khi = np.ceil(x[1] / self.delta[j])
        lim = float(1 << 60)
        klo_i = int(np.clip(klo if np.isfinite(klo) else -lim, -lim, lim))
        khi_i = int(np.clip(khi if np.isfinite(khi) else lim, -lim, lim))
        lo_k, hi_k = self.bounds(j)
        if lo_k is not None:
            klo_i = max(klo_i, lo_k)
            khi_i = max(khi_i, lo_k)
        if hi_k is not None:
            khi_i = min(khi_i, hi_k)
            klo_i = min(klo_i, hi_k)
        return klo_i, max(khi_i, klo_i)

    def cell(self, j: int, mean: float, s: float, k: int) -> int:
        klo, khi = self.window(j, mean, s)
        lo_k, hi_k = self.bounds(j)
        # level 0: below | sub-ranges of the window | above
        edges = self._edges(klo, khi)
        ez = self.edges_z(j, edges)
        inner = self.masses(j, ez[:-1], ez[1:], mean, s)
        below = self.masses(j, np.array([-np.inf]), ez[:1], mean, s)
        above = self.masses(j, ez[-1:], np.array([np.inf]), mean, s)
        probs = np.concatenate([below, inner, above])
        if not probs.sum() > 0:
            probs = np.ones(len(probs))
        if self.enc is not None:
            sym = 0 if k < klo else (len(probs) - 1 if k > khi else 1 + self._which(edges, k))
        else:
            sym = 0
        sym = self.cat(probs, sym)
        if sym == 0:
            if lo_k is not None and klo <= lo_k:
                raise CompressedFileError("compressed file damaged: a value below its bound")
            return klo - self.gamma(klo - k if self.enc is not None else 1)
        if sym == len(probs) - 1:
            return khi + self.gamma(k - khi if self.enc is not None else 1)
        lo, hi = int(edges[sym - 1]), int(edges[sym]) - 1
        while hi > lo:
            edges = self._edges(lo, hi)
            ez = self.edges_z(j, edges)
            p = self.masses(j, ez[:-1], ez[1:], mean, s)
            if not p.sum() > 0:
                p = np.ones(len(p))
            i = self.cat(p, self._which(edges, k) if self.enc is not None else 0)
            lo, hi = int(edges[i]), int(edges[i + 1]) - 1
        return lo

    @staticmethod
    def _edges(lo: int, hi: int) -> np.ndarray:
        n = hi - lo + 1
        b = min(_B, n)
        return np.array([lo + (i * n) // b for i in range(b + 1)], dtype=np.int64)

    @staticmethod
    def _which(edges: np.ndarray, k: int) -> int:
        return int(np.searchsorted(edges, k, "right")) - 1

    def escape(self, j: int, k: int, inside: bool) -> tuple[bool, int]:
        """The out-of-support part: (inside?, k for an outside value)."""
        tw = self.twin
        lo_k, hi_k = self.bounds(j)
        sides = (lo_k is not None) + (hi_k is not None)
        eps = float(tw.cols.escape[j])
        if sides == 0 or eps <= 0.0:
            return True, k
        if not self.flag(eps, not inside):
            return True, k
        low_side = k < lo_k if (self.enc is not None and lo_k is not None) else False
        low_side = self.flag(0.5, low_side) if sides == 2 else lo_k is not None
        delta = self.delta[j]
        mean_cells = 1.0 + max(float(tw.cols.spread[j]), delta) / delta
        rho = 1.0 - 1.0 / mean_cells
        if low_side:
            assert lo_k is not None
            m = self.geometric(rho, (lo_k - k - 1) if self.enc is not None else 0) + 1
            return False, lo_k - m
        assert hi_k is not None
        m = self.geometric(rho, (k - hi_k - 1) if self.enc is not None else 0) + 1
        return False, hi_k + m

    def run(self, K: np.ndarray | None, n: int, base: int) -> np.ndarray:
        """Code (or decode) the cells K (n, d) (int64; missing marked by `miss`)."""
        tw = self.twin
        d = self.d
        hist = tw.tail
        m = len(hist)
        Z = np.zeros((m + n, d))
        last = [0.0] * d
        for r in range(m):
            for j in range(d):
                v = hist[r, j]
                if not np.isnan(v):
                    last[j] = self.z_of(j, int(np.round(v / self.delta[j])))
                Z[r, j] = last[j]
        out = np.zeros((n, d), dtype=np.int64)
        missing = np.zeros((n, d), dtype=bool)
        phase = tw.model.phase_scale
        for t in range(n):
            row = m + t
            step = base + t
            for j in range(d):
                given = self.enc is not None and K is not None
                k = int(K[t, j]) if (given and K is not None) else 0
                miss = given and k == _MISSING
                rate = float(tw.missing_rate[j])
                if rate > 0:
                    miss = self.flag(rate, miss)
                elif miss:
                    raise InputError(
                        f"column {tw.cols.names[j]!r} has missing values but the training data "
                        "had none, so this model gives them no probability"
                    )
                if miss:
                    missing[t, j] = True
                    Z[row, j] = last[j]
                    continue
                lo_k, hi_k = self.bounds(j)
                inside = not given or ((lo_k is None or k >= lo_k) and (hi_k is None or k <= hi_k))
                inside, k_out = self.escape(j, k, inside)
                if inside:
                    mu = self.mean(Z, row, j, step)
                    s = 1.0 if phase is None else float(phase[j, step % phase.shape[1]])
                    k_out = self.cell(j, mu, s, k)
                out[t, j] = k_out
                last[j] = self.z_of(j, k_out)
                Z[row, j] = last[j]
        out[missing] = _MISSING
        return out


_MISSING = np.iinfo(np.int64).min


def _family() -> Any:
    from .coder import _categorical_family

    return _categorical_family()


# ---------------------------------------------------------------------------------- file


def _read_data(twin: SeriesTwin, raw: bytes) -> Any:
    from ..series.io import read_series

    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "data.csv"
        path.write_bytes(raw)
        return read_series(path, time=twin.time.column, values=twin.cols.names, min_steps=1)


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
    base = twin.next_step
    try:
        sd = _read_data(twin, raw)
        if not twin._continues(sd) and sd.times:
            idx = twin.time.index_of(sd.times[0])
            base = twin.next_step if idx is None else idx
    except InputError:
        pass
    d = len(twin.cols.names)
    K = np.zeros((n, d), dtype=np.int64)
    styles, marks = [], []
    rendered: dict[str, list[str]] = {}
    for j, name in enumerate(twin.cols.names):
        cells = s.columns[where[name]]
        x = _parse(cells)
        miss = np.isnan(x)
        dec = twin.cols.decimals[j]
        with np.errstate(over="ignore", invalid="ignore"):
            k = np.round(x / (10.0 ** (-dec)))
        big = ~miss & ~(np.abs(k) < 2.0**62)
        miss |= big  # not representable on the grid: written as an exception
        K[:, j] = np.where(miss, _MISSING, np.where(miss, 0, k)).astype(np.int64)
        style = _best_style(
            [int(v) for v in K[~miss, j][:2000]],
            dec,
            [cells[i] for i in np.flatnonzero(~miss)[:2000]],
        )
        mk = _mark([cells[i] for i in np.flatnonzero(miss)])
        styles.append(style)
        marks.append(mk)
    enc = Encoder()
    coder = _StepCoder(twin, enc, None)
    coder.run(K, n, base)
    for j, name in enumerate(twin.cols.names):
        rendered[name] = [
            marks[j] if v == _MISSING else _render(int(v), twin.cols.decimals[j], styles[j])
            for v in K[:, j]
        ]
    tcol = twin.time.column if twin.time.column in where else None
    first = s.columns[where[tcol]][0] if tcol and n else ""
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
        "model_bits": coder.bits,
        "coded_bits": coder.bits,
        "payload": len(payload),
        "exceptions": sum(len(e[0]) for e in exceptions),
        **{f"side_{k}": len(v) for k, v in parts.items()},
    }
    return SeriesCoded(frame(list(parts.values())), payload, (n, len(s.names)), stats)


def _best_style(ks: list[int], dec: int, cells: list[str]) -> int:
    best, best_hits = FIXED, -1
    for style in (FIXED, TRIM_ONE, TRIM_ALL):
        hits = sum(_render(k, dec, style) == c for k, c in zip(ks, cells, strict=True))
        if hits > best_hits:
            best, best_hits = style, hits
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
    coder = _StepCoder(twin, None, Decoder(payload))
    K = coder.run(None, n, base)
    rendered: dict[str, list[str]] = {}
    for j, name in enumerate(twin.cols.names):
        rendered[name] = [
            marks[j] if v == _MISSING else _render(int(v), twin.cols.decimals[j], styles[j])
            for v in K[:, j]
        ]
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
