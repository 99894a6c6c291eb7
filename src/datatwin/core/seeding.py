"""Seeds: an int, None or a numpy Generator, turned into independent named streams.

One `SeedSequence` spawns every stream a fit or a sample uses, so a seed fixes all of them,
adding a stream never shifts another, and `seed=None` draws fresh entropy for every stream
(identifier columns, values, paths) rather than reusing a constant.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np

from ..errors import InputError

SeedLike = int | np.integer | np.random.Generator | np.random.SeedSequence | None


def seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """The root SeedSequence of `seed` (a Generator contributes fresh draws from itself)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4).tolist())
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise InputError(
            f"seed must be a whole number >= 0, None or a numpy Generator; got {seed!r}"
        )
    return np.random.SeedSequence(int(seed))


def stream(seed: SeedLike, name: str) -> np.random.Generator:
    """The generator of the stream `name` under `seed` (same seed and name, same draws)."""
    root = seed_sequence(seed)
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(
        np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, key))
    )


def as_int_seed(seed: SeedLike) -> int:
    """A plain int for code that still takes one (fresh when `seed` is None or a Generator)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        seed_sequence(seed)  # validates
        return int(seed)
    return int(seed_sequence(seed).generate_state(1, np.uint32)[0])


#: a sample is drawn in blocks of units, each from its own stream (`block_rng`), so the
#: same seed gives the same data however many blocks are written at a time
_BLOCKS_KEY = zlib.crc32(b"sample blocks")


def block_rng(root: np.random.SeedSequence, k: int) -> np.random.Generator:
    """The stream of block `k` of a sample under `root`. Block 0 is `default_rng(root)` (a
    sample of one block draws exactly as a single stream would); block k >= 1 is a child
    stream of its own."""
    if k == 0:
        return np.random.default_rng(root)
    return np.random.default_rng(
        np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, _BLOCKS_KEY, k))
    )


def blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, count) of each block of `size` units covering `n` units, lazily (one empty
    block when `n` is 0)."""
    if n <= 0:
        yield (0, 0)
        return
    for a in range(0, n, size):
        yield (a, min(size, n - a))
