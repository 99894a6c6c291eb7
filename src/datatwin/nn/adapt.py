"""Dynamic evaluation of a network's output layer: the model keeps learning the document it reads.

A recurrent network trained on other text meets new names and a new style in a new document.
An n-gram chain learns them through its document cache; the network learns them here, by
gradient steps on its output layer as it reads (Krause et al. 2018 adapt every weight; the
output layer alone keeps the states independent of the adaptation, so they are computed in
batches as for the static network, and it takes most of the gain: see the note of issue 11).
For the positions j = 1, 2, ... of a block (a document from its start), in segments of S:

    p_j(y)  = (1 - ε) softmax_{y ≠ escape}(W_k h_j + b_k) + ε / V,     k = (j - 1) // S
    W_{k+1} = W_k - (η / S) Σ_{j in segment k} (p_j - e_{y_j}) h_jᵀ,    b likewise with 1 for h_j

where h_j is the network's state after reading the symbols before j (the static rule of
`scoring`), y_j the symbol at j (a target that is padding or the escape adds nothing), e_y its
indicator, η the rate, and (W_0, b_0) the trained output layer. The row at j depends on
weights learnt from segments before j's, i.e. on symbols before j only, and each row sums to
one: the product over a block is an exact sequential probability. Sampling runs the same
updates on the symbols it draws (`AdaptiveHead.read`, one row at a time, gives the same bits
as scoring's batched rows: `matmul_t` computes every row alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .recurrent import SymbolNet, output_probs
from .scoring import jobs_of

#: positions per learning step (the prototype measured 32, 64 and 128 within 0.005 bits)
SEGMENT = 64
#: chunks of a block whose states are computed in one batch (GRU-512: 75 MB of states)
GROUP = 16


@dataclass(frozen=True)
class Adaptation:
    """Rate η and segment length S of the output layer's learning while reading."""

    rate: float
    segment: int = SEGMENT

    def __post_init__(self) -> None:
        if not (0.0 < self.rate < 100.0) or not (1 <= self.segment <= 1 << 20):
            raise ValueError(f"bad adaptation (rate {self.rate}, segment {self.segment})")

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "segment": self.segment}

    @classmethod
    def from_json(cls, d: Any) -> Adaptation:
        if not isinstance(d, dict) or set(d) != {"rate", "segment"}:
            raise ValueError("adaptation must be an object with rate and segment")
        rate, segment = d["rate"], d["segment"]
        if not isinstance(rate, float) or not isinstance(segment, int):
            raise ValueError("adaptation rate must be a number and segment an integer")
        return cls(rate, segment)


def segment_pieces(done: int, n: int, size: int) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, completes a segment) of the next n positions after `done` read ones,
    cut at every multiple of `size`."""
    i = 0
    while i < n:
        k = min(size - (done + i) % size, n - i)
        yield i, i + k, (done + i + k) % size == 0
        i += k


class AdaptiveHead:
    """The output layer of one block as it is read: rows, then learning at segment ends."""

    def __init__(self, net: SymbolNet, spec: Adaptation) -> None:
        self.net, self.spec = net, spec
        self.w, self.b = net.w_out.copy(), net.b_out.copy()
        self.read_so_far = 0  # positions read in this block
        self._h: list[np.ndarray] = []  # (k, H) states of the current segment
        self._g: list[np.ndarray] = []  # (k, V) rows minus the targets' indicators

    def rows(self, h: np.ndarray) -> np.ndarray:
        """The distributions at states `h` (k, H) with the weights learnt so far: (k, V)."""
        return output_probs(h, self.w, self.b, self.net.escape)

    def read(self, h: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Probability of each target (outcome index; < 0: padding, 1.0) at the next len(h)
        positions of the block, whose states are `h`; learns after every full segment."""
        out = np.ones(len(h))
        for a, b, full in segment_pieces(self.read_so_far, len(h), self.spec.segment):
            hs, ys = h[a:b], targets[a:b]
            p = self.rows(hs)
            live = ys >= 0
            out[a:b][live] = p[np.flatnonzero(live), ys[live]]
            learn = live & (ys != (-1 if self.net.escape is None else self.net.escape))
            g = p.copy()
            g[np.flatnonzero(learn), ys[learn]] -= 1.0
            g[~learn] = 0.0
            self._h.append(hs)
            self._g.append(g)
            if full:
                self._learn()
        self.read_so_far += len(h)
        return out

    def _learn(self) -> None:
        g, h = np.concatenate(self._g), np.concatenate(self._h).astype(np.float64)
        step = self.spec.rate / self.spec.segment
        self.w = (self.w - step * (g.T @ h)).astype(np.float32)
        self.b = (self.b - step * g.sum(axis=0)).astype(np.float32)
        self._h, self._g = [], []


def block_reads(
    net: SymbolNet, seq: np.ndarray, upto: int, chunk: int, warm: int, out_offset: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(j0, states, targets) for the positions j0.. of a block in order, up to position
    `upto`, chunk by chunk: the states that predict seq[j] (the static rule of `scoring`) and
    seq[j]'s outcome index (-1 for a symbol below `out_offset`), as `AdaptiveHead.read` takes
    them."""
    jobs = [(a, j0, min(j1, upto)) for a, j0, j1 in jobs_of(upto + 1, chunk, warm)]
    for g in range(0, len(jobs), GROUP):
        group = jobs[g : g + GROUP]
        T = max(j1 - a for a, _, j1 in group)
        x = np.zeros((len(group), T), np.int64)
        for r, (a, _, j1) in enumerate(group):
            x[r, : j1 - a] = seq[a:j1]
        states = net.states(x)  # (B, T, H): the state after each input
        for r, (a, j0, j1) in enumerate(group):
            tgt = seq[j0 : j1 + 1] - out_offset
            yield j0, states[r, j0 - 1 - a : j1 - a], np.where(tgt >= 0, tgt, -1)


def score_adapted(
    net: SymbolNet,
    seqs: list[np.ndarray],
    wanted: list[np.ndarray],
    out_offset: int,
    chunk: int,
    warm: int,
    specs: list[Adaptation],
) -> list[list[np.ndarray]]:
    """For each spec, P(seq[j] | seq[<j]) for every j of each block where `wanted[b][j]`
    (others 1.0): every position of a block is read (and learnt from) in order."""
    out: list[list[np.ndarray]] = [[np.ones(len(s)) for s in seqs] for _ in specs]
    for b, seq in enumerate(seqs):
        if len(seq) < 2 or not wanted[b].any():
            continue
        heads = [AdaptiveHead(net, s) for s in specs]
        for j0, h, tgt in block_reads(net, seq, len(seq) - 1, chunk, warm, out_offset):
            j1 = j0 + len(h)
            keep = wanted[b][j0:j1]
            for res, head in zip(out, heads, strict=True):
                res[b][j0:j1][keep] = head.read(h, tgt)[keep]
    return out
