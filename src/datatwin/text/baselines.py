"""General-purpose compressors as baselines, in bits per character on the same holdout.

Each compressor is measured incrementally, as a compressor would code the holdout after having
seen the training text: bits = 8 * (len(C(train + holdout)) - len(C(train))). Strongest
settings: zlib level 9 (gzip -9), bz2 level 9 (bzip2 -9), lzma preset 9 | EXTREME (xz -9e).

On large data the compressors see at most BASELINE_BYTES (8 MiB) of each side: the end of the
training text (what they remember most of: gzip's window is 32 KB, bzip2's blocks 900 KB; xz's
64 MB dictionary would remember more, so its row is then an estimate on a shorter history) and
the start of the holdout, with the units scaled to the bytes measured. Below the bound
(Shakespeare: 4.6 MB) nothing changes; above it the rows stay baselines in bounded time and
memory (xz -9e codes about 1 MB/s, touches ~10 bytes of match finder per byte of input, and
the whole text would otherwise be copied twice).
"""

from __future__ import annotations

import bz2
import lzma
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..core.candidates import Candidate, Structure

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: zlib.compress(b, 9),
    "bzip2": lambda b: bz2.compress(b, 9),
    "xz": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
}


#: bytes of training text (its end) and of holdout (its start) the compressors measure
BASELINE_BYTES = 1 << 23


def _bounded(data: bytes, units: int, head: bool) -> tuple[bytes, int]:
    """At most BASELINE_BYTES of `data` (its start or its end), units scaled to match."""
    if len(data) <= BASELINE_BYTES:
        return data, units
    cut = data[:BASELINE_BYTES] if head else data[-BASELINE_BYTES:]
    return cut, max(round(units * len(cut) / len(data)), 1)


def compressor_bits(name: str, train: bytes, holdout: bytes) -> tuple[float, float, float]:
    """(train total bits, incremental holdout bits, seconds) for one compressor."""
    fn = COMPRESSORS[name]
    t0 = time.perf_counter()
    a = len(fn(train))
    b = len(fn(train + holdout))
    return 8.0 * a, 8.0 * (b - a), time.perf_counter() - t0


def baseline_candidates(
    train: bytes, holdout: bytes, train_units: int, holdout_units: int
) -> list[Candidate[Any]]:
    """Leaderboard candidates (baseline: shown, never selected) for gzip, bzip2 and xz, bits
    per unit."""
    out: list[Candidate[Any]] = []
    for name in COMPRESSORS:
        tr, ho, secs = compressor_bits(name, train, holdout)
        out.append(
            Candidate(
                Structure.of(name),
                tr / max(train_units, 1),
                ho / max(holdout_units, 1),
                secs,
                baseline=True,
            )
        )
    return out


def start_baselines(
    train: bytes, holdout: bytes, train_units: int, holdout_units: int
) -> Future[list[Candidate[Any]]]:
    """Run the baselines in a background thread (the compressors release the GIL), on at
    most BASELINE_BYTES of each side."""
    train, train_units = _bounded(train, train_units, head=False)
    holdout, holdout_units = _bounded(holdout, holdout_units, head=True)
    pool = ThreadPoolExecutor(max_workers=1)
    fut = pool.submit(baseline_candidates, train, holdout, train_units, holdout_units)
    pool.shutdown(wait=False)
    return fut
