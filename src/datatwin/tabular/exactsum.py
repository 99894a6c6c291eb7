"""Exact sums of floats times counts, mergeable in any order.

Every finite float64 is m · 2^e with an integer mantissa |m| < 2^53, so Σ_i n_i · x_i is an
exact dyadic rational: a Python integer per exponent. Chunks' sums add up exactly (integer
addition), and the total is rounded to a float once (`value`), so the float does not depend
on how the rows were chunked or partitioned — what `rows.within_total` gets from merged
value counts, here without holding a column's distinct values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

_HALF = 26  # a mantissa is split in two halves of at most 27 bits, so n · half fits int64


@dataclass
class ExactSum:
    """Σ n_i · x_i as {exponent e: integer k} with the sum = Σ_e k · 2^e, exactly."""

    terms: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, values: np.ndarray, counts: np.ndarray) -> ExactSum:
        """Σ counts · values (finite floats; counts below 2^36 in total)."""
        x = np.asarray(values, dtype=np.float64)
        n = np.asarray(counts, dtype=np.int64)
        keep = (x != 0) & (n != 0)
        x, n = x[keep], n[keep]
        if not np.all(np.isfinite(x)):
            raise ValueError("an exact sum of non-finite values")
        frac, exp = np.frexp(x)  # x = frac · 2^exp, 0.5 <= |frac| < 1
        mant = np.ldexp(frac, 53).astype(np.int64)  # exact: 53 significant bits
        exp = exp.astype(np.int64) - 53
        hi, lo = mant >> _HALF, mant & ((1 << _HALF) - 1)  # mant = hi · 2^26 + lo
        order = np.argsort(exp, kind="stable")
        exp = exp[order]
        starts = np.flatnonzero(np.r_[True, exp[1:] != exp[:-1]])
        out = cls()
        for part, shift in ((hi, _HALF), (lo, 0)):
            sums = np.add.reduceat((part * n)[order], starts) if len(starts) else np.empty(0)
            for e, s in zip(exp[starts].tolist(), sums.astype(np.int64).tolist(), strict=True):
                if s:
                    out.terms[e + shift] = out.terms.get(e + shift, 0) + s
        return out

    def add(self, other: ExactSum) -> ExactSum:
        terms = dict(self.terms)
        for e, k in other.terms.items():
            terms[e] = terms.get(e, 0) + k
        return ExactSum(terms)

    def value(self) -> float:
        """The sum rounded once to the nearest float."""
        if not self.terms:
            return 0.0
        low = min(self.terms)
        whole = sum(k << (e - low) for e, k in self.terms.items())  # the sum / 2^low
        return float(Fraction(whole) * (Fraction(2) ** low))
