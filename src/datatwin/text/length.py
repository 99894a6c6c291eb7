"""Length-aware sequence ends for event twins (the `+len` structures).

An order-m Markov chain decides where a sequence ends from its last m events only, so it
cannot tell a sequence that has run for 3 events from one that has run for 15: sampled
lengths get too heavy a tail. `+len` re-splits, at every step, the chain's probability of
the end between "end now" and "go on", by how many events the sequence already has:

    logit P'(end | context, t) = logit P(end | context) + w · c(t)

The offsets c(t) are fit by maximum likelihood on the training sequences (the chain's own
end probabilities there, plus one pseudo-step per t that pulls c(t) towards 0), so that
the ends expected after t events match the ends seen; lengths reached by fewer than 20
training sequences share one offset. w ≥ 0 is chosen on the holdout (w = 0 is the plain
chain; w > 1 makes up for the chain being surer of its training data than of new data).
Every other event keeps its share, P'(x) = P(x | context) · (1 − P'(end)) / (1 − P(end |
context)), so each step still sums to one and the likelihood stays exact. Sampling draws the
end with P'(end) and otherwise an event from the chain given "not the end".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from .counts import EOS, Layout
from .protocols import SequenceModel, SymbolSampler
from .sampling import tempered

WEIGHTS = (0.5, 1.0, 1.5, 2.0)
_MIN_AT_RISK = 20  # lengths reached by fewer sequences share the last offset
_EPS = 1e-12
_BOUND = 30.0  # |c(t)| at most (logit units)


@dataclass
class LengthHazard:
    """End offsets c(t) by events so far (the last one for every longer t) and a weight."""

    offsets: np.ndarray
    weight: float

    @classmethod
    def fit(cls, ends: Ends, weight: float = 1.0) -> LengthHazard:
        """Offsets from the chain's ends at every step of the training sequences."""
        t = np.asarray(ends.t, dtype=np.int64)
        at_risk = np.bincount(t)
        short = np.flatnonzero(at_risk < _MIN_AT_RISK)
        top = int(short[0]) if len(short) else len(at_risk)
        g = np.minimum(t, top - 1) if top == len(at_risk) else np.minimum(t, top)
        n_groups = int(g.max()) + 1 if len(g) else 1
        target = np.bincount(g, weights=ends.is_end.astype(float), minlength=n_groups) + 0.5
        z = logit(np.clip(ends.p_end, _EPS, 1 - _EPS))
        lo = np.full(n_groups, -_BOUND)
        hi = np.full(n_groups, _BOUND)
        for _ in range(60):  # bisection: expected ends (plus the pseudo-step) = seen ends
            mid = 0.5 * (lo + hi)
            f = np.bincount(g, weights=expit(z + mid[g]), minlength=n_groups) + expit(mid)
            below = f < target
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return cls(0.5 * (lo + hi), float(weight))

    def end_prob(self, p_end: np.ndarray, t: np.ndarray) -> np.ndarray:
        """P'(end) from the chain's P(end | context) after t events."""
        c = self.offsets[np.minimum(t, len(self.offsets) - 1)]
        z = logit(np.clip(p_end, _EPS, 1 - _EPS)) + self.weight * c
        return np.clip(expit(z), _EPS, 1 - _EPS)

    def adjust(self, p: np.ndarray, ends: Ends) -> np.ndarray:
        """Probabilities `p` of the observed symbols under the length-aware ends."""
        e = self.end_prob(ends.p_end, ends.t)
        return np.where(ends.is_end, e, p * (1.0 - e) / (1.0 - ends.p_end))

    def with_weight(self, weight: float) -> LengthHazard:
        return LengthHazard(self.offsets, float(weight))

    # ---- persistence -------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"len_offsets": self.offsets, "len_weight": np.array([self.weight])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LengthHazard | None:
        if "len_offsets" not in arrays:
            return None
        c = np.asarray(arrays["len_offsets"], dtype=float)
        w = np.asarray(arrays.get("len_weight", []), dtype=float)
        if (
            c.ndim != 1
            or len(c) == 0
            or not np.all(np.isfinite(c))
            or np.any(np.abs(c) > _BOUND)
            or w.shape != (1,)
            or not (np.isfinite(w[0]) and 0 <= w[0] <= 10)
        ):
            raise ValueError("the length-aware end offsets are not finite logits")
        return cls(c, float(w[0]))


@dataclass
class Ends:
    """At every predicted position of a layout: the chain's P(end | context), whether the
    position is the end, and the events already in the sequence (blocks start with BOS)."""

    p_end: np.ndarray
    is_end: np.ndarray
    t: np.ndarray

    @classmethod
    def of(cls, model: SequenceModel, lay: Layout) -> Ends:
        """The chain's ends at every predicted position of `lay` (`model`: any SequenceModel)."""
        return cls(model.prob_of_symbol(lay, EOS), lay.t[lay.pred] == EOS, lay.offset[lay.pred] - 1)


def generate(
    sampler: SymbolSampler,
    hazard: LengthHazard,
    n: int,
    rng: np.random.Generator,
    state: int,
    temperature: float,
    end_cache: dict[int, float],
) -> tuple[list[int], bool]:
    """Up to n events (the end excluded) and whether the sequence ended; `end_cache` keeps
    the chain's logit P(end) per state between calls."""
    out: list[int] = []
    s = int(state)
    draws = rng.random(4 * n + 16).tolist()
    pos = [0]

    def next_u() -> float:
        if pos[0] >= len(draws):
            draws.extend(rng.random(256).tolist())
        v = draws[pos[0]]
        pos[0] += 1
        return v

    shift = (hazard.weight * hazard.offsets).tolist()
    last = len(shift) - 1
    while len(out) < n:
        if temperature == 1.0:
            z = end_cache.get(s)  # logit of the chain's P(end) at this state
            if z is None:
                p_end = min(max(float(sampler.distribution(s)[EOS]), _EPS), 1 - _EPS)
                z = end_cache[s] = math.log(p_end / (1.0 - p_end))
            # `end_prob` for one step, in plain floats: this loop runs once per event
            e = 1.0 / (1.0 + math.exp(-(z + shift[min(len(out), last)])))
            if next_u() < min(max(e, _EPS), 1 - _EPS):
                return out, True
            w, nx = _draw_not_end(sampler, s, next_u, rng)
        else:
            p = tempered(sampler.distribution(s), temperature)
            e = float(hazard.end_prob(np.array([p[EOS]]), np.array([len(out)]))[0])
            if next_u() < e:
                return out, True
            q = p.copy()
            q[EOS] = 0.0
            w = min(int(np.searchsorted(np.cumsum(q / q.sum()), next_u(), "right")), len(q) - 1)
            nx = sampler.advance(s, w)
        out.append(w)
        s = nx
    return out, False


def _draw_not_end(
    sampler: SymbolSampler, s: int, next_u: Callable[[], float], rng
) -> tuple[int, int]:
    """One event from the chain at state s given that it is not the end (by rejection)."""
    while True:
        w, nx = sampler.draw(s, next_u, rng)
        if w != EOS:
            return w, nx
