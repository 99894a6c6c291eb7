"""A twin's sequence model: any `SequenceModel` with its optional layers on top,

    q(x_i | x_<i) = ends_t( cache_doc( p(x_i | x_<i) ) ),

where `cache_doc` is the document cache (cache.py: the counts of the document so far mixed
over p) and `ends_t` the length-aware ends (length.py: P(EOS) re-split by the t symbols
already in the block, the others rescaled). Each layer maps one normalised distribution to
another, so q sums to one at every step; the layers only call the base model's protocol
methods (`prob_layout`, `prob_of_symbol`, `next_distribution`, `sampler`), so they wrap an
n-gram model today and a neural one tomorrow. `next_distribution` is the exact step-by-step
q (a compressor's view); `prob_layout` is the same q at every position at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cache import CacheSpec, CacheState, cache_probs, generate_cached
from .counts import BOS, EOS, Layout, Segment, layout
from .length import Ends, LengthHazard
from .length import generate as generate_with_ends
from .protocols import SequenceModel, SymbolSampler


@dataclass
class LayeredModel:
    """`model` with an optional document cache and optional length-aware ends (not both)."""

    model: SequenceModel
    cache: CacheSpec | None = None
    hazard: LengthHazard | None = None
    _end_cache: dict[int, float] = field(default_factory=dict, repr=False)

    @property
    def base(self) -> int:
        return self.model.base

    @property
    def n_params(self) -> int:
        extra = len(self.hazard.offsets) + 1 if self.hazard is not None else 0
        return self.model.n_params + extra

    def sampler(self) -> SymbolSampler:
        return self.model.sampler()

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The model's arrays and those of the length-aware ends (the cache is settings only,
        kept in the model file's metadata)."""
        arrays = self.model.to_arrays(prefix)
        if self.hazard is not None:
            arrays.update(self.hazard.to_arrays())
        return arrays

    # ---- likelihood --------------------------------------------------------------------
    def prob_layout(self, lay: Layout) -> np.ndarray:
        """q at every predicted position of `lay` (static model, then the layers)."""
        p = self.model.prob_layout(lay)
        if self.cache is not None:
            p = cache_probs(lay, self.model.base, p, self.cache)
        if self.hazard is not None:
            p = self.hazard.adjust(p, Ends.of(self.model, lay))
        return p

    def probs(self, segments: list[Segment]) -> np.ndarray:
        return self.prob_layout(layout(segments))

    def next_distribution(self, context: np.ndarray) -> np.ndarray:
        """q(. | context) over all ids (BOS 0, sums to one); `context` is the block so far,
        BOS first when it starts a document (the cache counts the block as its document)."""
        ctx = np.asarray(context, np.int64)
        p = self.model.next_distribution(ctx)
        body = ctx[1:] if len(ctx) and ctx[0] == BOS else ctx
        if self.cache is not None:
            p = CacheState(self.cache, [int(x) for x in body], self.model.base).dense(p)
        if self.hazard is not None:
            e = float(self.hazard.end_prob(np.array([p[EOS]]), np.array([len(body)]))[0])
            p = p * (1.0 - e) / (1.0 - p[EOS])
            p[EOS] = e
        return p

    # ---- sampling ----------------------------------------------------------------------
    def generate(
        self, n: int, rng: np.random.Generator, history: np.ndarray, temperature: float
    ) -> tuple[list[int], bool]:
        """Up to n symbols after `history` (a document's symbols so far, no BOS) and whether
        the block ended."""
        sampler = self.model.sampler()
        state = sampler.walk(history)
        if self.hazard is not None:
            return generate_with_ends(
                sampler, self.hazard, n, rng, state, temperature, self._end_cache
            )
        if self.cache is None:
            return sampler.generate(n, rng, state, temperature)
        return generate_cached(
            sampler, self.cache, [int(x) for x in history], n, rng, state, temperature
        )
