"""Exact sequential scoring of symbol blocks with a `SymbolNet`, batched.

The model's conditional at position j of a block (inputs seq[0..j-1], seq[0] = BOS or the
first history symbol) reads the inputs from a zero state starting at
``a(j) = max(0, c·R - W)``, c = (j - 1) // R: the state restarts at every R-th position after
a warm-up over the W symbols before it. P(seq[j] | seq[<j]) depends on the past only and each
row sums to one, so the product is an exact probability; it lets a long document be scored as
many independent chunks in one batched pass, and the sampler applies the same rule.
"""

from __future__ import annotations

import numpy as np

from .recurrent import SymbolNet

CHUNK = 2048
WARM = 256
BATCH = 256


def jobs_of(n: int, chunk: int = CHUNK, warm: int = WARM) -> list[tuple[int, int, int]]:
    """(first input a, first scored position j0, last scored position j1) for a block of
    n symbols (positions 1..n-1 are predicted)."""
    out = []
    for c in range(0, max(n - 1, 0), chunk):
        j0, j1 = c + 1, min(c + chunk, n - 1)
        out.append((max(0, c - warm), j0, j1))
    return out


def score_blocks(
    net: SymbolNet,
    seqs: list[np.ndarray],
    wanted: list[np.ndarray],
    out_offset: int,
    chunk: int = CHUNK,
    warm: int = WARM,
) -> list[np.ndarray]:
    """P(seq[j] | seq[<j]) for every j of each block where `wanted[b][j]` (others 1.0)."""
    jobs = [
        (b, a, j0, j1)
        for b, s in enumerate(seqs)
        for a, j0, j1 in jobs_of(len(s), chunk, warm)
        if wanted[b][j0 : j1 + 1].any()
    ]
    jobs.sort(key=lambda j: j[3] - j[1])
    res = [np.ones(len(s)) for s in seqs]
    for g in range(0, len(jobs), BATCH):
        group = jobs[g : g + BATCH]
        T = max(j1 - a for _, a, _, j1 in group)
        x = np.zeros((len(group), T), np.int64)
        y = np.full((len(group), T), -1, np.int64)
        for r, (b, a, j0, j1) in enumerate(group):
            s = seqs[b]
            x[r, : j1 - a] = s[a:j1]
            tgt = s[a + 1 : j1 + 1] - out_offset
            keep = wanted[b][a + 1 : j1 + 1].copy()
            keep[: j0 - a - 1] = False
            y[r, : j1 - a] = np.where(keep & (tgt >= 0), tgt, -1)
        p = net.run(x, y)
        for r, (b, a, _j0, j1) in enumerate(group):
            mask = y[r, : j1 - a] >= 0
            res[b][a + 1 : j1 + 1][mask] = p[r, : j1 - a][mask]
    return res
