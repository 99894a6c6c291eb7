"""The entropy coder: exact round trips and a coded size within 0.5 % + a few bytes of the
model's own bits (sum of -log2 p)."""

from __future__ import annotations

import numpy as np
import pytest

from datatwin.coding import AdaptiveByteModel, Decoder, Encoder, decode_escaped, encode_escaped
from datatwin.coding.coder import MAX_ALPHABET, ideal_bits
from datatwin.errors import InputError

SLACK_BYTES = 8  # the final flush: up to two 32-bit words


def draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One symbol from each row of `probs` (rows normalised)."""
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((cdf < rng.random((len(probs), 1))).sum(axis=1), probs.shape[1] - 1)


def assert_close_to_ideal(n_bytes: int, bits: float) -> None:
    assert n_bytes <= bits / 8 * 1.005 + SLACK_BYTES, (n_bytes, bits / 8)


@pytest.mark.parametrize(("n", "k", "alpha"), [(1, 2, 1.0), (500, 3, 1.0), (20_000, 40, 0.3)])
def test_random_distributions_round_trip_near_ideal_size(n: int, k: int, alpha: float) -> None:
    rng = np.random.default_rng(k)
    probs = rng.dirichlet(np.full(k, alpha), size=n)
    x = draw(rng, probs)
    enc = Encoder()
    bits = enc.encode_categorical(x, probs)
    assert bits == pytest.approx(-np.log2(probs[np.arange(n), x]).sum())
    data = enc.to_bytes()
    assert_close_to_ideal(len(data), bits)
    assert np.array_equal(Decoder(data).decode_categorical(probs), x)


def test_batches_of_different_alphabets_decode_in_the_same_order() -> None:
    rng = np.random.default_rng(1)
    batches = [
        rng.dirichlet(np.ones(k), size=m) for k, m in [(2, 300), (17, 50), (5, 1), (300, 80)]
    ]
    symbols = [draw(rng, p) for p in batches]
    enc = Encoder()
    for x, p in zip(symbols, batches, strict=True):
        enc.encode_categorical(x, p)
    dec = Decoder(enc.to_bytes())
    for x, p in zip(symbols, batches, strict=True):
        assert np.array_equal(dec.decode_categorical(p), x)
    assert_close_to_ideal(len(enc.to_bytes()), enc.bits)


def test_symbol_by_symbol_decoding_with_distributions_from_the_past() -> None:
    """Encode a Markov chain in one batch; decode one symbol at a time, each distribution
    computed from the symbol decoded just before (how a text twin decodes)."""
    rng = np.random.default_rng(2)
    trans = rng.dirichlet(np.full(6, 0.5), size=6)
    x = [0]
    for _ in range(2000):
        x.append(int(draw(rng, trans[x[-1]][None, :])[0]))
    seq = np.array(x[1:])
    prev = np.array(x[:-1])
    enc = Encoder()
    enc.encode_categorical(seq, trans[prev])
    dec = Decoder(enc.to_bytes())
    out = [0]
    for _ in range(len(seq)):
        out.append(int(dec.decode_categorical(trans[out[-1]][None, :])[0]))
    assert out[1:] == seq.tolist()
    assert_close_to_ideal(len(enc.to_bytes()), enc.bits)


def test_extreme_probabilities_near_zero_and_one() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    probs = np.tile([1 - 1e-12, 1e-12, 0.0], (n, 1))
    x = np.zeros(n, dtype=int)
    x[rng.choice(n, 3, replace=False)] = 1  # three near-impossible events
    enc = Encoder()
    bits = enc.encode_categorical(x, probs)
    assert bits > 3 * 39  # the model says ~40 bits each
    data = enc.to_bytes()
    assert len(data) <= 3 * 25 / 8 + SLACK_BYTES  # the coder caps a symbol at ~24 bits
    assert np.array_equal(Decoder(data).decode_categorical(probs), x)


def test_a_symbol_of_probability_zero_is_refused() -> None:
    with pytest.raises(InputError, match="probability 0"):
        Encoder().encode_categorical([1], [[1.0, 0.0]])


def test_single_symbol_alphabet_costs_nothing() -> None:
    enc = Encoder()
    assert enc.encode_categorical(np.zeros(1000, dtype=int), np.ones((1000, 1))) == 0.0
    assert len(enc.to_bytes()) == 0
    assert np.array_equal(
        Decoder(enc.to_bytes()).decode_categorical(np.ones((1000, 1))), np.zeros(1000)
    )


def test_long_stream() -> None:
    rng = np.random.default_rng(4)
    n = 300_000
    p = np.tile([0.7, 0.2, 0.1], (n, 1))
    x = draw(rng, p)
    enc = Encoder()
    bits = enc.encode_categorical(x, p)
    data = enc.to_bytes()
    assert_close_to_ideal(len(data), bits)
    assert len(data) >= bits / 8 - SLACK_BYTES  # no free lunch either
    assert np.array_equal(Decoder(data).decode_categorical(p), x)


def test_uniform_integers_any_range() -> None:
    sizes = np.array([1, 2, 3, 1000, MAX_ALPHABET, MAX_ALPHABET + 1, 2**40 + 3, 2**62, 7])
    rng = np.random.default_rng(5)
    values = np.array([int(rng.integers(0, s)) for s in sizes])
    values[-1] = 6  # the top of a range
    values[-3] = 2**40 + 2
    enc = Encoder()
    bits = enc.encode_uniform(values, sizes)
    assert bits == pytest.approx(np.log2(sizes.astype(float)).sum())
    data = enc.to_bytes()
    assert_close_to_ideal(len(data), bits)
    assert np.array_equal(Decoder(data).decode_uniform(sizes), values)


def test_uniform_out_of_range_is_refused() -> None:
    with pytest.raises(InputError):
        Encoder().encode_uniform([5], [5])


def test_escapes_from_an_open_alphabet() -> None:
    """Listed values by index, the rest (last column = escape) as bytes of a fallback."""
    rng = np.random.default_rng(6)
    n = 400
    probs = np.tile([0.5, 0.3, 0.15, 0.05], (n, 1))
    x = draw(rng, probs)
    escaped = [f"rare-é-{i}".encode() for i in range(int((x == 3).sum()))]
    assert escaped, "the test needs escapes"
    enc_model, dec_model = AdaptiveByteModel(), AdaptiveByteModel()
    enc = Encoder()
    bits = encode_escaped(enc, x, probs, escaped, enc_model)
    enc.encode_categorical([2], [[0.1, 0.2, 0.7]])  # something after the escapes
    data = enc.to_bytes()
    assert_close_to_ideal(len(data), enc.bits)
    dec = Decoder(data)
    y, strings = decode_escaped(dec, probs, dec_model)
    assert np.array_equal(y, x) and strings == escaped
    assert dec.decode_categorical([[0.1, 0.2, 0.7]]).tolist() == [2]
    assert np.array_equal(enc_model.counts, dec_model.counts)
    assert bits < len(escaped) * 9 * 8 + n * 2  # the byte model learns the shared prefix


def test_escape_count_must_match() -> None:
    with pytest.raises(InputError, match="escape"):
        encode_escaped(Encoder(), [1, 1], [[0.5, 0.5]] * 2, [b"x"], AdaptiveByteModel())


def test_coded_bytes_are_reproducible_and_pinned() -> None:
    """Same input, same bytes; and the bytes of a fixed input never change (a change of
    quantisation in the library would make old files undecodable)."""

    def code() -> bytes:
        enc = Encoder()
        enc.encode_categorical([0, 2, 1, 2], [[0.5, 0.25, 0.25]] * 4)
        enc.encode_uniform([5, 99999, 2**40], [10, 100000, 2**41 + 7])
        return enc.to_bytes()

    assert code() == code()
    assert code().hex() == "773313adc640eee1"  # format 2: big-endian words, sealed short


def test_sealed_streams_are_short_and_decode() -> None:
    """The stream ends at the shortest final point, trailing zero bytes dropped: never longer
    than the library's own words, on average more than a byte shorter, and it decodes."""
    rng = np.random.default_rng(1)
    saved = []
    for _ in range(400):
        n, a = int(rng.integers(1, 40)), int(rng.integers(2, 300))
        p = rng.random((n, a)) ** 3 + 1e-9
        x = np.array([rng.choice(a, p=r / r.sum()) for r in p], dtype=np.int64)
        enc = Encoder()
        enc.encode_categorical(x, p)
        blob = enc.to_bytes()
        saved.append(4 * len(enc._coder.get_compressed()) - len(blob))
        assert np.array_equal(Decoder(blob).decode_categorical(p), x)
    assert min(saved) >= 0 and np.mean(saved) > 1.0


def test_ideal_bits_normalises_rows() -> None:
    assert ideal_bits([0, 1], [[2.0, 2.0], [1.0, 3.0]]) == pytest.approx(1 + np.log2(4 / 3))


def test_bad_distributions_are_refused() -> None:
    for bad in ([[np.nan, 1.0]], [[-1.0, 2.0]], [[0.0, 0.0]], [0.5, 0.5]):
        with pytest.raises(InputError):
            Encoder().encode_categorical([0] * len(bad), bad)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.9, 0.999, 1 - 2.0**-20, 1 - 1e-12])
def test_geometric_codes_are_exact_and_portable(rho: float) -> None:
    """P(j) = (1-ρ) ρ^j: the split K = ceil(log2(1/(1-ρ))) is exact (from the float's
    exponent, powers of two included), the powers ρ^(2^i) are fixedmath's (to 4e-16 of
    pow, which differs between platforms' libms), and values round trip at about their
    ideal bits."""
    import math
    from fractions import Fraction

    from datatwin.coding.fixedmath import exp, log
    from datatwin.coding.values import (
        decode_geometric,
        encode_geometric,
        geometric_powers,
        geometric_split,
    )

    k = geometric_split(rho)
    m = Fraction(1) / (1 - Fraction(rho))
    assert 2 ** (k - 1) < m <= 2**k or (k == 0 and m <= 1)
    powers = geometric_powers(rho, k)
    expected = exp(np.ldexp(np.full(k + 1, log(np.array([rho]))[0]), np.arange(k + 1)))
    np.testing.assert_array_equal(powers, expected)
    for i, a in enumerate(powers):
        assert a == pytest.approx(rho ** float(1 << i), rel=4e-16, abs=1e-300)
    j = np.random.default_rng(1).geometric(max(1.0 - rho, 1e-3), 400) - 1
    enc = Encoder()
    bits = encode_geometric(enc, j, rho)
    if rho > 0:
        ideal = -(len(j) * math.log2(1 - rho) + j.sum() * math.log2(rho))
        assert bits == pytest.approx(ideal, rel=1e-6)
    assert np.array_equal(decode_geometric(Decoder(enc.to_bytes()), len(j), rho), j)
