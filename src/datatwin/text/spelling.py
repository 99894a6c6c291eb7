"""The character model that spells strings a sequence twin's alphabet does not list: the
unknown words of a `tokens="words"` text twin and the unseen event names of an events twin.

One step draws the next character, the end mark or an escape, from counts of training strings:

    p(c) = n_c / (T + 1),   p(end) = n_end / (T + 1),   p(escape) = 1 / (T + 1),

T = sum of the n_c and n_end; an escape is followed by a uniform choice among the
`N_UNICODE - len(codes)` Unicode scalar values the counts do not list. So

    P(s) = p(end) * prod_{ch in s} p(ch)      (p(ch) = p(escape) / #unlisted for unlisted ch).

It sums to one over all finite strings: every step is a distribution over (listed character,
unlisted character, end), and the string ends with probability one (p(end) > 0).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Unicode scalar values: all code points except the 2048 surrogates
N_UNICODE = 0x110000 - 2048
#: a spelled string longer than this is cut when sampling (its mass is below 2**-1000)
MAX_SPELLED = 1000


@dataclass
class Spelling:
    """Counts of a character model: `codes` sorted code points, `counts` their counts then the
    end count (length len(codes) + 1, all positive)."""

    codes: np.ndarray
    counts: np.ndarray
    _logq: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def fit(cls, strings: list[str]) -> Spelling:
        """Count the characters of `strings` and one end per string (+1, so n_end > 0)."""
        chars: Counter[str] = Counter()
        for s in strings:
            chars.update(s)
        codes = np.array(sorted(ord(c) for c in chars), np.int64)
        counts = np.array([chars[chr(c)] for c in codes] + [len(strings) + 1], np.int64)
        return cls(codes, counts)

    @property
    def n_known(self) -> int:
        return len(self.codes)

    @property
    def n_unlisted(self) -> int:
        """How many characters an escape chooses among (uniformly)."""
        return max(N_UNICODE - len(self.codes), 1)

    def step(self) -> np.ndarray:
        """One step's distribution over (listed characters..., end, escape), float64."""
        p = np.append(self.counts, 1).astype(np.float64)
        return p / p.sum()

    def log_step(self) -> np.ndarray:
        """`log` of `step()` (cached)."""
        if self._logq is None:
            self._logq = np.log(self.step())
        return self._logq

    def symbols(self, s: str) -> tuple[list[int], list[int]]:
        """`s` as step symbols (index of a listed character, `n_known` for the end, `n_known
        + 1` for an escape) and the code points of its unlisted characters, in order."""
        syms, unlisted = [], []
        for ch in s:
            c = ord(ch)
            i = int(np.searchsorted(self.codes, c))
            if i < len(self.codes) and self.codes[i] == c:
                syms.append(i)
            else:
                syms.append(len(self.codes) + 1)
                unlisted.append(c)
        syms.append(len(self.codes))
        return syms, unlisted

    def bits(self, s: str) -> float:
        """Bits to spell `s` (end mark included): -log2 P(s)."""
        total = float(self.counts.sum()) + 1.0
        bits = -math.log2(self.counts[-1] / total)
        unseen = self.n_unlisted
        for ch in s:
            c = ord(ch)
            i = int(np.searchsorted(self.codes, c))
            if i < len(self.codes) and self.codes[i] == c:
                bits -= math.log2(self.counts[i] / total)
            else:
                bits += math.log2(total) + math.log2(unseen)
        return bits

    def nats_many(self, strings: list[str]) -> np.ndarray:
        """-log P(s) of each string, vectorised (equal to `bits` * ln 2 up to rounding)."""
        n = len(strings)
        if n == 0:
            return np.zeros(0)
        lens = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
        text = "".join(strings).encode("utf-32-le", "surrogatepass")
        codes = np.frombuffer(text, dtype="<u4").astype(np.int64)
        logq = self.log_step()
        k = len(self.codes)
        escape = logq[k + 1] - math.log(self.n_unlisted)
        if k:
            i = np.minimum(np.searchsorted(self.codes, codes), k - 1)
            char_lp = np.where(self.codes[i] == codes, logq[i], escape)
        else:
            char_lp = np.full(len(codes), escape)
        sums = np.bincount(np.repeat(np.arange(n), lens), weights=char_lp, minlength=n)
        return -(logq[k] + sums)

    def spell(self, rng: np.random.Generator) -> str:
        """A string drawn from the model (cut at `MAX_SPELLED` characters)."""
        cum = np.cumsum(self.step())
        out: list[str] = []
        while len(out) < MAX_SPELLED:
            i = min(int(np.searchsorted(cum, rng.random(), "right")), len(cum) - 1)
            if i == len(self.codes):
                break
            if i < len(self.codes):
                out.append(chr(int(self.codes[i])))
            else:
                out.append(chr(self.unlisted_char(rng)))
        return "".join(out)

    def unlisted_char(self, rng: np.random.Generator) -> int:
        """A code point drawn uniformly among the scalar values `codes` does not list."""
        while True:
            r = int(rng.integers(N_UNICODE))
            r = r + 2048 if r >= 0xD800 else r
            j = int(np.searchsorted(self.codes, r))
            if j >= len(self.codes) or self.codes[j] != r:
                return r

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"spell_codes": self.codes, "spell_counts": self.counts}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Spelling:
        """The model stored by `to_arrays`; ValueError naming what is wrong."""
        codes: Any = arrays.get("spell_codes")
        counts: Any = arrays.get("spell_counts")
        if codes is None or codes.ndim != 1 or codes.dtype.kind not in "iu":
            raise ValueError("bad spell_codes")
        codes = codes.astype(np.int64)
        if not np.all(np.diff(codes) > 0):
            raise ValueError("spell_codes is not sorted and unique")
        if len(codes) and (codes[0] < 0 or codes[-1] >= 0x110000):
            raise ValueError("spell_codes out of range")
        if (
            counts is None
            or counts.shape != (len(codes) + 1,)
            or counts.dtype.kind not in "iu"
            or not np.all(counts > 0)
        ):
            raise ValueError("bad spelling counts")
        return cls(codes, counts.astype(np.int64))
