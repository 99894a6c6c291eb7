"""Names an events twin never saw: the spelling model conditioned on not spelling a seen name.

An event outside the twin's alphabet is its UNK symbol followed by the name spelled out:

    P(name | history) = P(UNK | history) * P_spell(name) / (1 - S),   S = sum_{seen s} P_spell(s)

`P_spell` is the character model of `spelling.Spelling`, fit on the distinct training names.
Summed over every name not in the alphabet, P_spell(name) / (1 - S) is exactly one (P_spell
sums to one over all strings and the seen names take S of it), so the next-event distribution
(each seen name, every unseen name, the end) sums to exactly one, and two different unseen
names share P(UNK | history) instead of each receiving all of it.

Sampling spells names and redraws any that is a seen name: exactly the conditional above.
Coding (`row`): the same conditional one character at a time, the mass of the seen names below
the prefix taken out of each step, so that a coded name costs exactly what it is scored.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from .spelling import Spelling


@dataclass
class UnseenNames:
    """P(name | UNK) for names outside `seen` (sorted, unique): `spelling` without `seen`."""

    spelling: Spelling
    seen: list[str]
    _seen_set: frozenset[str] = field(init=False, repr=False)
    _log_keep: float = field(init=False, repr=False)
    _suffix: list[np.ndarray] | None = field(default=None, init=False, repr=False)
    _rows: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._seen_set = frozenset(self.seen)
        taken = float(np.exp(-self.spelling.nats_many(self.seen)).sum())
        if not taken < 1.0:
            raise ValueError("the spelling model gives the seen names all its mass")
        self._log_keep = math.log1p(-taken)

    @classmethod
    def fit(cls, names: list[str]) -> UnseenNames:
        """The spelling of the distinct training `names` (sorted), conditioned on not them."""
        seen = sorted(set(names))
        return cls(Spelling.fit(seen), seen)

    def covers_seen(self) -> bool:
        """Every character of a seen name is one the spelling model lists (as after `fit`):
        then no seen name passes through an escape, which `row` relies on."""
        listed = set(self.spelling.codes.tolist())
        return all(ord(ch) in listed for s in self.seen for ch in s)

    # ---- likelihood ----------------------------------------------------------------------
    def nats_many(self, names: list[str]) -> np.ndarray:
        """-log P(name | UNK) of each name (none of them may be a seen name)."""
        return self.spelling.nats_many(names) + self._log_keep

    # ---- sampling ------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> str:
        """A name drawn from P(. | UNK): spelled until it is not a seen name."""
        while True:
            name = self.spelling.spell(rng)
            if name not in self._seen_set:
                return name

    # ---- coding --------------------------------------------------------------------------
    def row(self, prefix: list[int]) -> np.ndarray:
        """The next step's distribution (unnormalised) over the spelling's symbols (listed
        characters, end, escape) after the step symbols `prefix`, given the name is unseen:

            row[x] = q(x) - sum_{seen s continuing prefix u with x} P_spell(s) / A(u),

        A(u) the product of the q of u's characters (the mass of strings starting with u), so
        the row sums to (1 - mass of the seen names below u) / A(u) and the product of the
        normalised rows of a name telescopes to P_spell(name) / (1 - S)."""
        k = self.spelling.n_known
        if any(s >= k for s in prefix):  # past an escape: no seen name continues it
            return self.spelling.step()
        u = "".join(chr(int(self.spelling.codes[s])) for s in prefix)
        cached = self._rows.get(u)
        if cached is None:
            cached = self._rows[u] = self._row(u)
        return cached

    def _row(self, u: str) -> np.ndarray:
        step = self.spelling.step()
        lo = bisect.bisect_left(self.seen, u)
        hi = lo
        while hi < len(self.seen) and self.seen[hi].startswith(u):
            hi += 1
        if lo == hi:
            return step
        suffix = self._suffixes()
        n = len(u)
        syms = [self._symbol(self.seen[j], n) for j in range(lo, hi)]
        mass = [math.exp(suffix[j][n]) for j in range(lo, hi)]
        row = step - np.bincount(syms, weights=mass, minlength=len(step))
        if u in self._seen_set:  # exactly nothing is left for ending at a seen name
            row[self.spelling.n_known] = 0.0
        return np.maximum(row, 0.0)

    def _symbol(self, s: str, n: int) -> int:
        """The step symbol of seen name `s` at position `n` (its end when n == len(s))."""
        if n == len(s):
            return self.spelling.n_known
        return int(np.searchsorted(self.spelling.codes, ord(s[n])))

    def _suffixes(self) -> list[np.ndarray]:
        """Per seen name, log P_spell of its characters from position n on, end included."""
        if self._suffix is None:
            logq = self.spelling.log_step()
            out = []
            for s in self.seen:
                syms, _ = self.spelling.symbols(s)
                out.append(np.cumsum(logq[syms][::-1])[::-1])
            self._suffix = out
        return self._suffix
