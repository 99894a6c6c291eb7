"""Entropy coding with a model's exact conditional probabilities (range coder, FIFO).

A symbol `x` coded with distribution `p` costs `-log2 p(x)` bits plus a small overhead
(quantisation of `p`, and the stream's last bytes: see `seal`), so a stream coded with a
twin's probabilities is as long as the twin's bits say, to within a fraction of a percent.

The coder is `constriction.stream.queue.RangeEncoder/RangeDecoder` (a queue: symbols come out
in the order they went in), so a kind encodes batches in model order and decodes them in the
same order, computing each batch's distributions from what it has decoded so far.

Quantisation (identical on both sides): every distribution is given as float64 and handed
to `constriction.stream.model.Categorical(perfect=False)`, which rescales it to integer
frequencies summing to `2**24` (the library's fixed-point precision) with at least one unit
per symbol. That computation is deterministic IEEE-754 arithmetic in Rust (no fast-math, no
threads), so equal float64 inputs give equal frequencies on every platform. `perfect=False` is
set explicitly because the library's default changes between versions. The model side must
give bit-identical float64 distributions to the encoder and the decoder (same code path, same
summation order); nothing else is required.

Consequences of the 24-bit precision: a symbol never costs more than about 24 bits however
small its probability (probabilities below `2**-24` are raised), an alphabet has fewer than
`2**24` symbols, and a near-certain symbol costs at least `-log2(1 - (n-1) 2**-24)` bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..errors import InputError

try:
    import constriction
except ImportError:  # an optional extra: one clear line instead of a traceback
    raise InputError(
        "compression needs the constriction package: pip install 'datatwin[compress]'"
    ) from None

PRECISION = 24
#: Largest alphabet one categorical or uniform step can code (the library needs `< 2**24`).
MAX_ALPHABET = (1 << PRECISION) - 1
#: Base of the digits a very wide uniform range is split into.
_DIGIT = 1 << 16

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _categorical_family() -> constriction.stream.model.Categorical:
    """The categorical family (stateless: parameters come with each call; one instance)."""
    return _CATEGORICAL


_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_Categorical = constriction.stream.model.Categorical


def _uniform_family() -> constriction.stream.model.Uniform:
    return constriction.stream.model.Uniform()


def check_distributions(probs: npt.ArrayLike) -> FloatArray:
    """`probs` as a C-contiguous float64 array of shape (m, n): finite, >= 0, each row with a
    positive sum, 1 <= n <= MAX_ALPHABET (rows need not sum to 1; they are normalised)."""
    p = np.ascontiguousarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1 or p.shape[1] > MAX_ALPHABET:
        raise InputError(f"distributions must be a 2-D array with 1..{MAX_ALPHABET} columns")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p.sum(axis=1) <= 0):
        raise InputError("distributions must be finite, non-negative, with a positive sum")
    return p


def ideal_bits(symbols: npt.ArrayLike, probs: npt.ArrayLike) -> float:
    """`sum_i -log2( p_i[x_i] / sum_k p_i[k] )`: the cost the model itself assigns."""
    p = check_distributions(probs)
    x = np.asarray(symbols, dtype=np.int64)
    rows = np.arange(len(x))
    with np.errstate(divide="ignore"):  # p = 0 gives inf bits, which the caller refuses
        return float(np.sum(np.log2(p.sum(axis=1)) - np.log2(p[rows, x])))


def _split_wide(values: IntArray, sizes: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """`v = q * B + r` with `B = 2**16`: the high digit `q` ranges over `ceil(N / B)`
    values, the low digit `r` over `min(B, N - q B)` (returned as (q, Q, r))."""
    q, r = np.divmod(values, _DIGIT)
    return q, (sizes + _DIGIT - 1) // _DIGIT, r


@dataclass
class Encoder:
    """Appends symbols to one range-coded stream; `bits` sums the model's ideal cost."""

    _coder: constriction.stream.queue.RangeEncoder = field(
        default_factory=constriction.stream.queue.RangeEncoder
    )
    bits: float = 0.0

    def encode_categorical(self, symbols: npt.ArrayLike, probs: npt.ArrayLike) -> float:
        """Code `x_i ~ p_i` for each row i (`probs[i]` is the distribution of `symbols[i]`);
        return `sum_i -log2 p_i(x_i)` (ideal bits). A one-symbol alphabet costs nothing."""
        p = check_distributions(probs)
        x = np.asarray(symbols, dtype=np.int64).reshape(-1)
        if len(x) != len(p):
            raise InputError(f"{len(x)} symbols but {len(p)} distributions")
        if len(x) and (x.min() < 0 or x.max() >= p.shape[1]):
            raise InputError("a symbol is outside its alphabet")
        bits = ideal_bits(x, p) if len(x) else 0.0
        if not np.isfinite(bits):
            raise InputError("a symbol to code has probability 0 under the model")
        if len(x) and p.shape[1] > 1:
            self._coder.encode(x.astype(np.int32), _categorical_family(), p)
        self.bits += bits
        return bits

    def encode_uniform(self, values: npt.ArrayLike, sizes: npt.ArrayLike) -> float:
        """Code each `v_i` uniformly in `[0, N_i)`: `sum_i log2 N_i` bits. `N_i = 1` costs
        nothing; `N_i > MAX_ALPHABET` is coded as base-2**16 digits, high digit first."""
        v = np.asarray(values, dtype=np.int64).reshape(-1)
        n = np.asarray(sizes, dtype=np.int64).reshape(-1)
        if len(v) != len(n) or np.any(n < 1) or np.any(v < 0) or np.any(v >= n):
            raise InputError("uniform values must lie in [0, size) with size >= 1")
        self._uniform(v, n)
        bits = float(np.sum(np.log2(n.astype(np.float64))))
        self.bits += bits
        return bits

    def _uniform(self, v: IntArray, n: IntArray) -> None:
        small = (n >= 2) & (n <= MAX_ALPHABET)
        if small.any():
            self._coder.encode(
                v[small].astype(np.int32), _uniform_family(), n[small].astype(np.int32)
            )
        wide = n > MAX_ALPHABET
        if wide.any():
            q, q_size, r = _split_wide(v[wide], n[wide])
            self._uniform(q, q_size)
            self._uniform(r, np.minimum(_DIGIT, n[wide] - q * _DIGIT))

    def encode_bytes(self, data: bytes, model: AdaptiveByteModel) -> float:
        """Code `data` then an end mark with `model` (updated afterwards); see the model."""
        symbols, probs = model.batch(data)
        bits = self.encode_categorical(symbols, probs)
        model.update(data)
        return bits

    def to_bytes(self) -> bytes:
        """The stream so far (the decoder's input): big-endian 32-bit words ending at the
        shortest final point, trailing zero bytes dropped (see `seal`)."""
        position, (lower, size) = self._coder.pos()
        return seal(self._coder.get_compressed(), position, lower, size)


def seal(words: npt.NDArray[np.uint32], position: int, lower: int, size: int) -> bytes:
    """The coded words with the fewest bytes that still decode to the same symbols.

    The range coder ends in the interval [lower, lower + size) of its 64-bit state (after
    `position` emitted words); any point in it, followed by zero bits, decodes the same
    symbols, and the decoder reads zero bits past the end of its input. The library seals
    with the point `ceil(lower / 2**32) * 2**32` (one word); we take the point with the most
    trailing zero bits instead and drop all trailing zero bytes. When the final state is not
    the one assumed (a carry still pending, or a word count that does not match), the
    library's own words are kept."""
    full = words.astype(">u4").tobytes()
    own = -(-lower // (1 << 32)) << 32
    if len(words) != position + 1 or lower + size > 1 << 64 or own >> 32 != int(words[-1]):
        return full.rstrip(b"\0")
    for n_bytes in range(4):
        step = 1 << (64 - 8 * n_bytes)
        point = -(-lower // step) * step
        if point < lower + size:
            tail = (point >> 32).to_bytes(4, "big")[:n_bytes]
            return (full[:-4] + tail).rstrip(b"\0")
    return full.rstrip(b"\0")


@dataclass
class Decoder:
    """Reads symbols back from a stream in the order the Encoder appended them."""

    data: bytes
    _coder: constriction.stream.queue.RangeDecoder = field(init=False)

    def __post_init__(self) -> None:
        data = self.data + bytes(-len(self.data) % 4)  # the dropped zero bytes (see `seal`)
        words = np.frombuffer(data, dtype=">u4").astype(np.uint32)
        self._coder = constriction.stream.queue.RangeDecoder(words)

    def decode_categorical(self, probs: npt.ArrayLike) -> IntArray:
        """The next `len(probs)` symbols, `x_i` drawn from `probs[i]`."""
        p = check_distributions(probs)
        if p.shape[1] == 1 or len(p) == 0:
            return np.zeros(len(p), dtype=np.int64)
        return np.asarray(self._coder.decode(_categorical_family(), p), dtype=np.int64)

    def decode_one(self, p: FloatArray) -> int:
        """One symbol drawn from the float64 vector `p` (a distribution this package's own
        code computed, so unchecked: the per-step path of sequence decoding). Equal to
        `decode_categorical(p[None, :])[0]`."""
        if len(p) == 1:
            return 0
        # the same quantisation as the family given rows (the library: `perfect=False`
        # models are constructed the same way, lazily or not), without the array round trip
        return int(self._coder.decode(_Categorical(p, None, False)))  # lazy=None, perfect=False

    def one_decoder(self, n: int) -> Callable[[FloatArray], int]:
        """`decode_one` for distributions over n >= 1 symbols as a plain function (the
        decoding loops call it once a symbol; a bound method with its checks costs more)."""
        if n == 1:
            return lambda p: 0
        decode, model = self._coder.decode, _Categorical
        return lambda p: decode(model(p, None, False))  # positional: keywords cost 0.2 µs

    def decode_uniform(self, sizes: npt.ArrayLike) -> IntArray:
        """The next values, `v_i` uniform in `[0, sizes[i])` (see Encoder.encode_uniform)."""
        n = np.asarray(sizes, dtype=np.int64).reshape(-1)
        if np.any(n < 1):
            raise InputError("uniform sizes must be >= 1")
        return self._uniform(n)

    def _uniform(self, n: IntArray) -> IntArray:
        out = np.zeros(len(n), dtype=np.int64)
        small = (n >= 2) & (n <= MAX_ALPHABET)
        if small.any():
            dec = self._coder.decode(_uniform_family(), n[small].astype(np.int32))
            out[small] = np.asarray(dec, dtype=np.int64)
        wide = n > MAX_ALPHABET
        if wide.any():
            q_size = (n[wide] + _DIGIT - 1) // _DIGIT
            q = self._uniform(q_size)
            r = self._uniform(np.minimum(_DIGIT, n[wide] - q * _DIGIT))
            out[wide] = q * _DIGIT + r
        return out

    def decode_bytes(self, model: AdaptiveByteModel, max_len: int = 1 << 20) -> bytes:
        """The next byte string coded by `encode_bytes` with an identical `model`."""
        out = bytearray()
        while len(out) <= max_len:  # a damaged stream could otherwise run on
            symbol = int(self.decode_categorical(model.distribution()[None, :])[0])
            if symbol == END:
                data = bytes(out)
                model.update(data)
                return data
            out.append(symbol)
        raise InputError("the coded stream is damaged (a string runs past its length limit)")


def encode_escaped(
    encoder: Encoder,
    symbols: npt.ArrayLike,
    probs: npt.ArrayLike,
    escaped: list[bytes],
    model: AdaptiveByteModel,
) -> float:
    """A batch from an open alphabet: the last column of `probs` is the escape symbol `E`.

    `P(x) = p(x)` for a listed symbol; `P(s) = p(E) * Q(bytes of s)` for an unlisted one, Q the
    fallback byte model. Codes the batch, then `escaped` (the unlisted values, in the order
    their rows take `E`) one by one with `model`. Returns the ideal bits of it all."""
    p = check_distributions(probs)
    x = np.asarray(symbols, dtype=np.int64).reshape(-1)
    n_escapes = int(np.sum(x == p.shape[1] - 1))
    if n_escapes != len(escaped):
        raise InputError(f"{n_escapes} escape symbols but {len(escaped)} escaped values")
    bits = encoder.encode_categorical(x, p)
    for data in escaped:
        bits += encoder.encode_bytes(data, model)
    return bits


def decode_escaped(
    decoder: Decoder, probs: npt.ArrayLike, model: AdaptiveByteModel
) -> tuple[IntArray, list[bytes]]:
    """The symbols of a batch coded by `encode_escaped`, and the escaped values in order."""
    p = check_distributions(probs)
    x = decoder.decode_categorical(p)
    n_escapes = int(np.sum(x == p.shape[1] - 1))
    return x, [decoder.decode_bytes(model) for _ in range(n_escapes)]


#: The end mark of a byte string in `AdaptiveByteModel`'s alphabet {0..255, END}.
END = 256


@dataclass
class AdaptiveByteModel:
    """Fallback model for the bytes of strings an alphabet does not list (escapes).

    `P(b) = (c_b + a) / (sum_k c_k + 257 a)` over the 256 bytes and an end mark, with counts
    `c` of everything coded before the current string (so a string's bytes share one
    distribution: vectorised, and equal on both sides). `a = 0.5` (Krichevsky-Trofimov)."""

    prior: float = 0.5
    counts: FloatArray = field(default_factory=lambda: np.zeros(END + 1, dtype=np.float64))

    def distribution(self) -> FloatArray:
        """The current `P` over {0..255, END}, as float64."""
        return (self.counts + self.prior) / (self.counts.sum() + self.prior * (END + 1))

    def batch(self, data: bytes) -> tuple[IntArray, FloatArray]:
        """Symbols (`data`'s bytes then END) and one row of `P` per symbol."""
        symbols = np.append(np.frombuffer(data, dtype=np.uint8).astype(np.int64), END)
        return symbols, np.repeat(self.distribution()[None, :], len(symbols), axis=0)

    def update(self, data: bytes) -> None:
        """Count `data`'s bytes and one end mark."""
        self.counts += np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=END + 1)
        self.counts[END] += 1
