"""What a sequence model is to the text and events twins, whatever computes it (n-gram
counts today, a neural network next).

A `SequenceModel` is a distribution over blocks of symbols 0..B-1 (BOS = 0 only begins a
block, EOS = 1 ends it, UNK = 2 stands for any symbol never seen in training):

    P(x_1 .. x_n, EOS) = prod_{i=1..n+1} p(x_i | x_0 .. x_{i-1}),   x_0 = BOS, x_{n+1} = EOS,

where every p(. | context) sums to one over the B ids (p(BOS | .) = 0) and is never zero on
the others. The model offers it three ways that agree exactly:

- `next_distribution(context)`: the whole vector p(. | context), one step at a time (what a
  compressor needs, and what tests check the others against);
- `prob_layout(lay)`: p(x_i | its history) at every predicted position of a `Layout`, all
  blocks at once (the vectorised scoring path: log_prob = sum of log prob_layout);
- `sampler()`: a `SymbolSampler` drawing from the same p, step by step.

It stores itself as arrays (`to_arrays`, read back by a classmethod `from_arrays(arrays, ...,
source)` that validates them). The layers (`layers.py`: the document cache, length-aware
ends) use only these methods, so they work over any SequenceModel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from .counts import Layout


@runtime_checkable
class SymbolSampler(Protocol):
    """Draws symbols of one model; a *state* (an int) summarises the block so far."""

    base: int
    start: int  # the state at the beginning of a document (after BOS)

    def advance(self, state: int, w: int) -> int:
        """The state after symbol `w` follows `state`."""
        ...

    def walk(self, ids: np.ndarray, state: int | None = None) -> int:
        """The state after reading `ids` from `state` (default: `start`)."""
        ...

    def state_of(self, context: np.ndarray) -> int:
        """The state after a block's symbols so far (BOS first at a document start)."""
        ...

    def draw(
        self, state: int, next_u: Callable[[], float], rng: np.random.Generator
    ) -> tuple[int, int]:
        """One symbol from p(. | state), using uniforms from `next_u`, and the next state."""
        ...

    def distribution(self, state: int) -> np.ndarray:
        """p(. | state) as a dense vector of length `base`."""
        ...

    def generate(
        self, n: int, rng: np.random.Generator, state: int | None = None, temperature: float = 1.0
    ) -> tuple[list[int], bool]:
        """Up to n symbols (EOS excluded) and whether the block ended."""
        ...


@runtime_checkable
class SequenceModel(Protocol):
    """p(x_i | x_<i) over symbol ids 0..base-1, as above."""

    base: int

    def next_distribution(self, context: np.ndarray) -> np.ndarray:
        """p(. | context): length `base`, sums to one, BOS entry 0. `context` holds the ids of
        the block so far, starting with BOS when the block starts a document."""
        ...

    def prob_layout(self, lay: Layout) -> np.ndarray:
        """p(x_i | history) at every predicted position of `lay` (float64, all > 0)."""
        ...

    def prob_of_symbol(self, lay: Layout, symbol: int) -> np.ndarray:
        """p(symbol | history) at every predicted position of `lay` (instead of x_i): one
        column of `next_distribution`, vectorised (length-aware ends need the EOS column)."""
        ...

    def sampler(self) -> SymbolSampler:
        """A sampler of this model (built once)."""
        ...

    @property
    def n_params(self) -> int:
        """How many numbers the model stores."""
        ...

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Arrays that, with the model-file metadata, rebuild the model (`from_arrays`)."""
        ...
