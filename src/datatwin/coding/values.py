"""Coding values inside a state, with exactly the probabilities a table codec scores them by.

Everything here is vectorised over a batch of cells and used identically by the encoder and
the decoder (the decoder calls the `decode_*` twin of each `encode_*` in the same order):

* `encode_flags`: independent binary symbols, `P(1) = p` per cell.
* `encode_strings`: strings under a `SpellingModel`, `P(s) = stop (1-stop)^len(s) Π P(char)`
  with unseen characters uniform over the 0x110000 code points (round by round: one
  continue/stop flag per live string, then its next character).
* `encode_geometric`: `P(j) = (1-ρ) ρ^j`, j >= 0, exactly: `j = q 2^K + r`, q geometric with
  ratio ρ^(2^K) (one flag a step), r's K bits independent with `P(bit i) = ρ^(2^i) /
  (1 + ρ^(2^i))` (the product telescopes to `(1-ρ) ρ^j`).
* `format_grid`: the text of a numeric grid value in one of a few styles (exact integer
  arithmetic), so a decoded number is written back as it was recorded.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import InputError
from ..tabular.codec import datetime_step
from ..tabular.schema import ColumnSpec
from ..tabular.spelling import SpellingModel
from .coder import Decoder, Encoder
from .fixedmath import exp, log

UNICODE = 0x110000
#: more steps than this in a geometric's quotient: the value is spelled instead
MAX_QUOTIENT = 256
Coder = Encoder | Decoder


# ---------------------------------------------------------------------------------- flags


def _flag_probs(p1: np.ndarray) -> np.ndarray:
    p1 = np.asarray(p1, dtype=np.float64)
    return np.ascontiguousarray(np.stack([1.0 - p1, p1], axis=1))


def encode_flags(enc: Encoder, flags: np.ndarray, p1: np.ndarray | float) -> float:
    """Binary symbols (1 with probability p1, per cell or shared)."""
    f = np.asarray(flags, dtype=np.int64)
    if not len(f):
        return 0.0
    p = np.broadcast_to(np.asarray(p1, dtype=np.float64), f.shape)
    return enc.encode_categorical(f, _flag_probs(p))


def decode_flags(dec: Decoder, n: int, p1: np.ndarray | float) -> np.ndarray:
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    p = np.broadcast_to(np.asarray(p1, dtype=np.float64), (n,))
    return dec.decode_categorical(_flag_probs(p))


# ---------------------------------------------------------------------------------- strings


def _char_table(sp: SpellingModel) -> np.ndarray:
    """P(char) over the seen characters, then the escape (unseen: uniform code point)."""
    return exp(np.append(np.asarray(sp.logp, dtype=np.float64), sp.log_escape))


def _codes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)


def encode_strings(enc: Encoder, sp: SpellingModel, strings: list[str]) -> float:
    """Strings under the spelling model (see the module docstring), round by round."""
    if not strings:
        return 0.0
    codes = [_codes(s) for s in strings]
    lens = np.array([len(c) for c in codes], dtype=np.int64)
    width = int(lens.max()) + 1
    mat = np.zeros((len(codes), width), dtype=np.int64)
    for i, c in enumerate(codes):
        mat[i, : len(c)] = c
    table = _char_table(sp)
    stop = sp._stop()
    bits = 0.0
    for t in range(width):
        live = np.flatnonzero(lens >= t)
        if not len(live):
            break
        more = lens[live] > t
        bits += encode_flags(enc, more, 1.0 - stop)
        rows = live[more]
        if not len(rows):
            continue
        ch = mat[rows, t]
        i = np.minimum(np.searchsorted(sp.chars, ch), max(len(sp.chars) - 1, 0))
        seen = (sp.chars[i] == ch) if len(sp.chars) else np.zeros(len(ch), bool)
        sym = np.where(seen, i, len(sp.chars))
        bits += enc.encode_categorical(sym, np.repeat(table[None, :], len(sym), axis=0))
        unseen = ch[~seen]
        bits += enc.encode_uniform(unseen, np.full(len(unseen), UNICODE))
    return bits


def decode_strings(dec: Decoder, sp: SpellingModel, n: int, max_len: int = 1 << 20) -> list[str]:
    """`n` strings coded by `encode_strings` with the same model."""
    if n == 0:
        return []
    table = _char_table(sp)
    stop = sp._stop()
    out: list[list[int]] = [[] for _ in range(n)]
    live = np.arange(n)
    t = 0
    while len(live):
        if t > max_len:
            raise InputError("the coded stream is damaged (a string runs past its length limit)")
        more = decode_flags(dec, len(live), 1.0 - stop).astype(bool)
        live = live[more]
        if not len(live):
            break
        sym = dec.decode_categorical(np.repeat(table[None, :], len(live), axis=0))
        unseen = sym == len(sp.chars)
        ch = np.empty(len(live), dtype=np.int64)
        ch[~unseen] = sp.chars[sym[~unseen]]
        ch[unseen] = dec.decode_uniform(np.full(int(unseen.sum()), UNICODE))
        for r, c in zip(live.tolist(), ch.tolist(), strict=True):
            out[r].append(c)
        t += 1
    return [
        np.array(c, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass") for c in out
    ]


def strings_log_prob(sp: SpellingModel, strings: list[str]) -> float:
    """The bits `encode_strings` is ideally charged (nats), for checks."""
    return float(sp.log_prob_many(strings).sum()) if strings else 0.0


# ---------------------------------------------------------------------------------- geometric


def geometric_split(rho: float) -> int:
    """K with ρ^(2^K) <= e^-1 (so the quotient is short): ceil(log2(1 / (1 - ρ))), computed
    exactly from the float's exponent (libm's log2 could round across an integer)."""
    frac, e = math.frexp(1.0 / max(1.0 - rho, 1e-300))  # m = frac 2^e, frac in [0.5, 1)
    return max(0, e - 1 if frac == 0.5 else e)


def geometric_powers(rho: float, k: int) -> np.ndarray:
    """ρ^(2^i) for i = 0..k, as fixedmath's exp(2^i log ρ) (libm's pow differs between
    platforms, and repeated squaring loses the digits of a ρ near 1)."""
    scaled = np.ldexp(log(np.array([rho], dtype=np.float64)), np.arange(k + 1))
    return exp(scaled)


def geometric_code(rho: float) -> tuple[int, float, list[float]]:
    """(K, the quotient's continue probability ρ^(2^K), P(bit i) = ρ^(2^i) / (1 + ρ^(2^i))
    for the remainder's K bits): what both coders of `P(j) = (1-ρ) ρ^j` use."""
    k = geometric_split(rho)
    a = geometric_powers(rho, k)
    return k, float(a[k]), [float(x / (1.0 + x)) for x in a[:k]]


def encode_geometric(enc: Encoder, j: np.ndarray, rho: float) -> float:
    """`P(j) = (1-ρ) ρ^j` exactly (j int64 >= 0, quotients < MAX_QUOTIENT)."""
    j = np.asarray(j, dtype=np.int64)
    if not len(j):
        return 0.0
    k, ratio, bit_p = geometric_code(rho)
    q, r = j >> k, j & ((1 << k) - 1)
    bits = 0.0
    live = np.arange(len(j))
    step = 0
    while len(live):
        go = q[live] > step
        bits += encode_flags(enc, go, ratio)
        live = live[go]
        step += 1
    for i, p in enumerate(bit_p):
        bits += encode_flags(enc, (r >> i) & 1, p)
    return bits


def decode_geometric(dec: Decoder, n: int, rho: float) -> np.ndarray:
    k, ratio, bit_p = geometric_code(rho)
    q = np.zeros(n, dtype=np.int64)
    live = np.arange(n)
    while len(live):
        go = decode_flags(dec, len(live), ratio).astype(bool)
        live = live[go]
        q[live] += 1
        if len(live) and q[live].max() > MAX_QUOTIENT:
            raise InputError("the coded stream is damaged (a number runs past its limit)")
    r = np.zeros(n, dtype=np.int64)
    for i, p in enumerate(bit_p):
        r |= decode_flags(dec, n, p) << i
    return (q << k) | r


# ---------------------------------------------------------------------------------- numbers

#: styles of writing a float column's numbers
FIXED, TRIM_ONE, TRIM_ALL = 0, 1, 2


def format_grid(spec: ColumnSpec, g: np.ndarray, style: int) -> np.ndarray:
    """Text of each grid value (object array), computed on the distinct values."""
    g = np.asarray(g, dtype=np.float64)
    if not len(g):
        return np.empty(0, dtype=object)
    uniq, inv = np.unique(g, return_inverse=True)
    return _format_unique(spec, uniq, style)[inv.reshape(-1)]


def _format_unique(spec: ColumnSpec, uniq: np.ndarray, style: int) -> np.ndarray:
    if spec.type == "datetime":
        secs = uniq * datetime_step(spec)
        t = pd.to_datetime(secs, unit="s")
        fmt = spec.datetime_format or "%Y-%m-%d %H:%M:%S"
        return np.asarray(t.strftime(fmt), dtype=object)
    ints = [int(v) for v in uniq]
    d = spec.decimals if spec.type == "float" else 0
    if d == 0:
        return np.array([str(v) for v in ints], dtype=object)
    scale = 10**d
    out = []
    for v in ints:
        q, r = divmod(abs(v), scale)
        frac = f"{r:0{d}d}"
        if style == TRIM_ONE:
            frac = frac.rstrip("0") or "0"
        elif style == TRIM_ALL:
            frac = frac.rstrip("0")
        out.append(("-" if v < 0 else "") + str(q) + ("." + frac if frac else ""))
    return np.array(out, dtype=object)


def choose_format(
    spec: ColumnSpec, g: np.ndarray, raw: np.ndarray
) -> tuple[str, int, str, np.ndarray]:
    """(prefix, style, suffix) that reproduce most of `raw` from `g`, and the text it gives."""
    raw_s = pd.Series(raw, dtype=object).astype(str)
    stripped = raw_s.str.strip()
    prefix = suffix = ""
    if len(raw_s):
        lead = raw_s.str.slice(0, 0) + raw_s.str.extract(r"^(\s*)", expand=False).fillna("")
        trail = raw_s.str.extract(r"(\s*)$", expand=False).fillna("")
        prefix = str(lead.mode().iloc[0]) if len(lead) else ""
        suffix = str(trail.mode().iloc[0]) if len(trail) else ""
    styles = (FIXED, TRIM_ONE, TRIM_ALL) if spec.type == "float" and spec.decimals else (FIXED,)
    best: tuple[int, int, np.ndarray] | None = None
    for style in styles:
        text = format_grid(spec, g, style)
        hits = int(np.sum(text == stripped.to_numpy(object)))
        if best is None or hits > best[0]:
            best = (hits, style, text)
    assert best is not None
    return prefix, best[1], suffix, best[2]
