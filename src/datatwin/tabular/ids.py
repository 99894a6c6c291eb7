"""Identifier columns (unique per row): left out of the likelihood, regenerated in samples.

Integers continue past the largest training identifier; strings follow the most common
character template of the training identifiers (digit / upper / lower / literal, with the
positions every such identifier shares kept literally, e.g. the "CU-" of "CU-004217") and
continue past the largest of them in that template's order, so a sample is unique and never
reproduces a training identifier. No training identifier is stored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_CLASSES = {"9": "0123456789", "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "a": "abcdefghijklmnopqrstuvwxyz"}
_MIN_FOR_LITERAL = 20  # identifiers needed before a shared character is taken as literal


def template_of(s: str) -> str:
    return "".join(
        "9"
        if c.isdigit()
        else "A"
        if c.isupper()
        else "a"
        if c.islower()
        else ("\\" + c if c in "9Aa\\" else c)
        for c in s
    )


def _slots(template: str) -> list[tuple[bool, str]]:
    """(is a character class, class or literal character) for each position of a template."""
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if c == "\\" and i + 1 < len(template):
            out.append((False, template[i + 1]))
            i += 2
            continue
        out.append((c in _CLASSES, c))
        i += 1
    return out


def _render(slots: list[tuple[bool, str]]) -> str:
    return "".join(c if cls or c not in "9Aa\\" else "\\" + c for cls, c in slots)


class IdGenerator:
    """Parameters: kind ("integer" or "string"), a start integer, a character template."""

    def __init__(self, kind: str, start: int = 0, template: str = ""):
        self.kind, self.start, self.template = kind, int(start), template

    @classmethod
    def fit(cls, tokens: np.ndarray, integer: bool) -> IdGenerator:
        if integer:  # Python ints: 21-digit identifiers are integers too
            return cls("integer", start=max(int(str(t).strip()) for t in tokens) + 1)
        strings = [str(t) for t in tokens]
        temps = [template_of(s) for s in strings]
        uniq, counts = np.unique(temps, return_counts=True)
        template = str(uniq[np.argmax(counts)])
        matching = [s for s, t in zip(strings, temps, strict=True) if t == template]
        chars = ["".join(sorted({s[p] for s in matching})) for p in range(len(matching[0]))]
        return cls.build(template, len(matching), chars, max(matching))

    @classmethod
    def build(cls, template: str, rows: int, chars: list[str], largest: str) -> IdGenerator:
        """The string generator of a template, from the `rows` identifiers that follow it:
        the characters seen at each position (a class seen with one character only is
        literal, from `_MIN_FOR_LITERAL` identifiers on) and the largest of them."""
        slots = _slots(template)
        if rows >= _MIN_FOR_LITERAL:  # positions all identifiers share are literal
            for p, (is_cls, _) in enumerate(slots):
                if is_cls and len(chars[p]) == 1:
                    slots[p] = (False, chars[p])
        # start after the largest identifier of the template (same order as the strings)
        ordinal = 0
        for (is_cls, c), ch in zip(slots, largest, strict=True):
            if is_cls:
                ordinal = ordinal * len(_CLASSES[c]) + _CLASSES[c].index(ch)
        return cls("string", start=ordinal + 1, template=_render(slots))

    def fits_int64(self, n: int, offset: int = 0) -> bool:
        """Whether identifiers `offset` .. `offset + n - 1` of an integer generator fit int64."""
        return self.kind == "integer" and self.start >= -(2**63) and self.start + offset + n < 2**63

    def sample(self, n: int, rng: np.random.Generator, offset: int = 0) -> np.ndarray:
        """Identifiers number `offset` .. `offset + n - 1` of the generator's sequence (a
        sample written in chunks continues it), as strings."""
        if self.kind == "integer":
            lo = self.start + offset
            if self.fits_int64(n, offset):
                return np.arange(lo, lo + n, dtype=np.int64).astype(str).astype(object)
            return np.array([str(lo + k) for k in range(n)], dtype=object)
        slots = _slots(self.template)
        variable = [p for p, (is_cls, _) in enumerate(slots) if is_cls]
        # digits of start + k (k = 0..n-1) in the template's mixed radix, least significant last
        first: list[int] = []
        rest = self.start + offset
        for p in reversed(variable):
            radix = len(_CLASSES[slots[p][1]])
            first.append(rest % radix)
            rest //= radix
        carry = np.arange(n, dtype=np.int64)
        parts: list[np.ndarray] = [np.full(n, c, dtype=object) for _, c in slots]
        for p, d0 in zip(reversed(variable), first, strict=True):
            alphabet = _CLASSES[slots[p][1]]
            total = carry + d0
            parts[p] = np.array(list(alphabet), dtype=object)[total % len(alphabet)]
            carry = total // len(alphabet)
        out = np.full(n, "", dtype=object)
        for part in parts:
            out = out + part
        exhausted = (carry > 0) | (rest > 0)  # the template has no room left: add a suffix
        if np.any(exhausted):
            idx = np.flatnonzero(exhausted)
            out[idx] = np.array([f"{out[j]}-{j + offset}" for j in idx], dtype=object)
        return out

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": self.start, "template": self.template}


def int_like(texts: np.ndarray) -> bool:
    """Plain integers (zero-padded ones like 000123 keep their width as string identifiers)."""
    return bool(pd.Series(texts, dtype=object).str.strip().str.match(r"^[+-]?(0|[1-9]\d*)$").all())
