"""A character-level model of strings, giving every possible string a finite probability.

Used for category values never seen in training (the escape state) and for the rare tail of
very high-cardinality columns: P(s) = geometric(len(s)) · Π P(char), with an escape for
characters never seen that spreads its mass over all Unicode code points.
"""

from __future__ import annotations

import math

import numpy as np

_UNICODE = 0x110000


class SpellingModel:
    """Unigram characters + geometric length; `chars`/`logp` arrays are its parameters."""

    def __init__(self, chars: np.ndarray, logp: np.ndarray, log_escape: float, mean_len: float):
        self.chars = np.asarray(chars, dtype=np.int64)
        self.logp = np.asarray(logp, dtype=float)
        self.log_escape = float(log_escape)
        self.mean_len = float(mean_len)
        self._index = {int(c): i for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, strings: list[str], weights: np.ndarray | None = None) -> SpellingModel:
        text = "".join(strings)
        lens = np.array([len(s) for s in strings], dtype=float)
        if weights is None:
            weights = np.ones(len(strings))
        mean_len = float(np.average(lens, weights=weights)) if len(strings) else 8.0
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        chars, counts = np.unique(codes, return_counts=True)
        total = counts.sum() + 1.0
        logp = np.log(counts / total)
        return cls(chars, logp, math.log(1.0 / total), max(mean_len, 1.0))

    def _stop(self) -> float:
        return 1.0 / (self.mean_len + 1.0)

    def log_prob(self, s: str) -> float:
        """log P(s), finite for any string."""
        stop = self._stop()
        lp = math.log(stop) + len(s) * math.log1p(-stop)
        esc = self.log_escape - math.log(_UNICODE)
        for ch in s:
            i = self._index.get(ord(ch))
            lp += self.logp[i] if i is not None else esc
        return lp

    def log_prob_many(self, strings: list[str]) -> np.ndarray:
        """log P(s) of each string, vectorised (equal to `log_prob` one by one)."""
        n = len(strings)
        if n == 0:
            return np.zeros(0)
        stop = self._stop()
        lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
        codes = np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32)
        codes = codes.astype(np.int64)
        esc = self.log_escape - math.log(_UNICODE)
        if len(self.chars):
            i = np.minimum(np.searchsorted(self.chars, codes), len(self.chars) - 1)
            char_lp = np.where(self.chars[i] == codes, self.logp[i], esc)
        else:
            char_lp = np.full(len(codes), esc)
        sums = np.bincount(np.repeat(np.arange(n), lens), weights=char_lp, minlength=n)
        return math.log(stop) + lens * math.log1p(-stop) + sums

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` new strings (characters never seen are not generated)."""
        stop = self._stop()
        lens = rng.geometric(stop, size=n) - 1
        lens = np.maximum(lens, 1)
        p = np.exp(self.logp)
        p = p / p.sum()
        draws = self.chars[rng.choice(len(self.chars), size=int(lens.sum()), p=p)]
        text = draws.astype(np.uint32).tobytes().decode("utf-32-le")
        ends = np.cumsum(lens)
        starts = ends - lens
        return np.array([text[a:b] for a, b in zip(starts, ends, strict=True)], dtype=object)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}chars": self.chars,
            f"{prefix}logp": self.logp,
            f"{prefix}scalars": np.array([self.log_escape, self.mean_len]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> SpellingModel:
        from ..modelfile import require_integer

        require_integer(arrays, [f"{prefix}chars"], "spelling model")
        chars, logp = arrays[f"{prefix}chars"], arrays[f"{prefix}logp"]
        scal = arrays[f"{prefix}scalars"]
        if chars.shape != logp.shape or scal.shape != (2,) or not np.all(np.isfinite(logp)):
            raise ValueError("spelling model arrays are inconsistent")
        if np.exp(logp).sum() + math.exp(scal[0]) > 1.0 + 1e-6 or scal[1] < 1:
            raise ValueError("spelling model probabilities do not sum to one")
        return cls(chars, logp, float(scal[0]), float(scal[1]))
