"""Mixture weights that learn as they read: a network and a chain, one weight per previous symbol.

A fixed weight w trusts the network as much after a newline (where the chain knows the next
speaker's name from its cache) as inside a word (where the network's longer view helps most).
Here the weight depends on the previous symbol s and is learnt from the block read so far, by
gradient steps on the mixture's log-likelihood in segments of S positions:

    q_j(y)    = w_j p_j(y) + (1 - w_j) c_j(y),     w_j = σ(z_k[x_{j-1}]),  k = (j - 1) // S
    z_{k+1}[s] = z_k[s] + (η / S) Σ_{j in segment k, x_{j-1} = s} w_j (1 - w_j) (p_j - c_j) / q_j

where p_j and c_j are the network's and the chain's probabilities of the symbol x_j read at j
(each an exact sequential probability of its own), and every z_0[s] = logit(w_0) at a block's
start. The weight at j depends on symbols before j only and q_j is a mixture of two rows that
sum to one, so q is an exact sequential probability too; a sampler runs the same steps on the
symbols it draws. No weight is fit on the holdout: η and w_0 are fixed.
"""

from __future__ import annotations

import numpy as np

from ..nn.adapt import Adaptation, segment_pieces
from .counts import Layout


class OnlineWeights:
    """The mixture weights of one block as it is read (see the module docstring)."""

    def __init__(self, base: int, start: float, spec: Adaptation) -> None:
        self.spec = spec
        self.z = np.full(base, np.log(start / (1.0 - start)))
        self.read_so_far = 0
        self._w = self._weights()
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # (previous symbols, gradients)

    def _weights(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.z))

    def weight(self, prev: int) -> float:
        """The weight of the network at the next position, after symbol `prev`."""
        return float(self._w[prev])

    def read(self, prev: np.ndarray, p: np.ndarray, c: np.ndarray) -> np.ndarray:
        """The weights at the next len(prev) positions (previous symbols `prev`, the
        network's and chain's probabilities `p`, `c` of the symbols read there); learns
        after every full segment."""
        out = np.empty(len(prev))
        for a, b, full in segment_pieces(self.read_so_far, len(prev), self.spec.segment):
            w = self._w[prev[a:b]]
            out[a:b] = w
            q = w * p[a:b] + (1.0 - w) * c[a:b]
            self._pending.append((prev[a:b], w * (1.0 - w) * (p[a:b] - c[a:b]) / q))
            if full:
                self._learn()
        self.read_so_far += len(prev)
        return out

    def _learn(self) -> None:
        prev = np.concatenate([s for s, _ in self._pending])
        grad = np.concatenate([g for _, g in self._pending])
        step = self.spec.rate / self.spec.segment
        self.z = self.z + step * np.bincount(prev, grad, len(self.z))
        self._w = self._weights()
        self._pending = []


def all_positions(lay: Layout) -> Layout:
    """`lay` with every position of a block after its first predicted (what the weights read:
    a block's history too)."""
    return Layout(lay.t, lay.offset > 0, lay.offset)


def learnt_weights(
    full: Layout, p: np.ndarray, c: np.ndarray, base: int, start: float, spec: Adaptation
) -> np.ndarray:
    """The network's weight at every predicted position of `full` (`all_positions` of a
    layout), each block read from its start; `p`, `c`: the two models' probabilities there."""
    idx = np.flatnonzero(full.pred)
    block = np.cumsum(full.offset == 0)[idx]
    prev = full.t[idx - 1]
    cuts = [0, *(np.flatnonzero(np.diff(block)) + 1), len(idx)]
    out = np.empty(len(idx))
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        out[a:b] = OnlineWeights(base, start, spec).read(prev[a:b], p[a:b], c[a:b])
    return out
