"""Identifier columns (unique per row): left out of the likelihood, regenerated in samples.

Integers continue past the largest training identifier; strings follow the most common
character template of the training identifiers (digit / upper / lower / literal), drawn at
random and kept unique within a sample. No training identifier is stored.
"""

from __future__ import annotations

import numpy as np

_CLASSES = {"9": "0123456789", "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "a": "abcdefghijklmnopqrstuvwxyz"}


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


class IdGenerator:
    """Parameters: kind ("integer" or "string"), a start integer, a character template."""

    def __init__(self, kind: str, start: int = 0, template: str = ""):
        self.kind, self.start, self.template = kind, int(start), template

    @classmethod
    def fit(cls, tokens: np.ndarray, integer: bool) -> IdGenerator:
        if integer:
            vals = np.array([int(str(t).strip()) for t in tokens], dtype=np.int64)
            return cls("integer", start=int(vals.max()) + 1)
        temps, counts = np.unique([template_of(str(t)) for t in tokens], return_counts=True)
        return cls("string", template=str(temps[np.argmax(counts)]))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "integer":
            return np.arange(self.start, self.start + n, dtype=np.int64).astype(str).astype(object)
        parts: list[np.ndarray] = []
        i, t = 0, self.template
        while i < len(t):
            c = t[i]
            if c == "\\":
                parts.append(np.full(n, t[i + 1], dtype=object))
                i += 2
                continue
            alphabet = _CLASSES.get(c)
            parts.append(
                np.array(list(alphabet), dtype=object)[rng.integers(0, len(alphabet), n)]
                if alphabet
                else np.full(n, c, dtype=object)
            )
            i += 1
        out = np.full(n, "", dtype=object)
        for p in parts:
            out = out + p
        if len(set(out)) < n and any(ch in "9Aa" for ch in t):  # keep identifiers unique
            out = np.array([f"{v}-{j}" for j, v in enumerate(out)], dtype=object)
        return out

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": self.start, "template": self.template}
