"""Reading text documents and mapping them to symbol ids (characters or bytes).

A text twin models Unicode characters by default (`tokens="chars"`) or raw bytes
(`tokens="bytes"`). Symbols seen in training are numbered 3.. in code-point order; anything else
becomes UNK, whose probability is the model's escape probability times a uniform choice among
all the symbols the training data never used (every Unicode scalar value, or every byte).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .counts import N_SPECIAL, UNK

TOKENS = ("chars", "bytes")
#: Unicode scalar values: all code points except the 2048 surrogates
N_UNICODE = 0x110000 - 2048


@dataclass
class Document:
    """One document: its name and content (str for chars, bytes for bytes)."""

    name: str
    content: str | bytes

    @property
    def n_chars(self) -> int:
        """Characters of the original text (bytes that are not UTF-8 count one each)."""
        return char_count(self.content)


def char_count(content: str | bytes) -> int:
    """Characters in `content`; for bytes, of its UTF-8 decoding, else the byte count."""
    if isinstance(content, str):
        return len(content)
    try:
        return len(content.decode("utf-8"))
    except UnicodeDecodeError:
        return len(content)


def _decode(raw: bytes, name: str) -> str:
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(
            f"{name} looks binary (a NUL byte at offset {nul}), not text; "
            "use --tokens bytes to model its raw bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = np.frombuffer(raw[:65536], np.uint8)
        odd = ((head < 9) | ((head > 13) & (head < 32))).mean() if len(head) else 0.0
        if odd > 0.05:
            raise InputError(
                f"{name} looks binary ({odd:.0%} control bytes, invalid UTF-8 at offset "
                f"{exc.start}), not text; use --tokens bytes to model its raw bytes"
            ) from None
        raise InputError(
            f"{name} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-encode it as UTF-8 or use --tokens bytes to model its raw bytes"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def read_documents(path: str | Path, tokens: str = "chars") -> list[Document]:
    """Documents from a file (one document) or a folder (every non-hidden file, sorted)."""
    path = Path(path)
    if tokens not in TOKENS:
        raise InputError(f"unknown --tokens {tokens!r}; choose one of: {', '.join(TOKENS)}")
    if not path.exists():
        raise InputError(f"data file not found: {path}")
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise InputError(f"folder {path} holds no files to read")
    else:
        files = [path]
    docs = []
    for f in files:
        raw = f.read_bytes()
        content: str | bytes = raw if tokens == "bytes" else _decode(raw, str(f))
        if len(content):
            docs.append(Document(str(f), content))
    if not docs:
        what = "every file in " if path.is_dir() else ""
        raise InputError(f"{what}{path} is empty; there is no text to learn from")
    return docs


def as_documents(data: object, tokens: str) -> list[Document]:
    """Accept a path, a str, bytes, or a list of those / of Documents."""
    if isinstance(data, Document):
        return [data]
    if isinstance(data, Path):
        return read_documents(data, tokens)
    if isinstance(data, str):
        return [Document("<text>", data.encode("utf-8") if tokens == "bytes" else data)]
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
        return [Document("<bytes>", raw if tokens == "bytes" else _decode(raw, "<bytes>"))]
    if isinstance(data, list | tuple):
        out: list[Document] = []
        for item in data:
            out.extend(as_documents(item, tokens))
        return out
    raise InputError(f"cannot read text from a {type(data).__name__}; give a str, bytes or a path")


def to_codes(content: str | bytes) -> np.ndarray:
    """Code points (chars) or byte values (bytes) as int64."""
    if isinstance(content, bytes):
        return np.frombuffer(content, np.uint8).astype(np.int64)
    return np.frombuffer(content.encode("utf-32-le"), np.uint32).astype(np.int64)


@dataclass
class Vocabulary:
    """Symbols seen in training (sorted code points or byte values) and the UNK escape."""

    tokens: str
    codes: np.ndarray  # int64, sorted

    @classmethod
    def build(cls, docs: list[Document], tokens: str) -> Vocabulary:
        codes = np.unique(np.concatenate([np.unique(to_codes(d.content)) for d in docs]))
        return cls(tokens, codes.astype(np.int64))

    @property
    def base(self) -> int:
        """Number of symbol ids (3 specials + vocabulary)."""
        return len(self.codes) + N_SPECIAL

    @property
    def n_unseen(self) -> int:
        """How many symbols UNK stands for."""
        total = 256 if self.tokens == "bytes" else N_UNICODE
        return max(total - len(self.codes), 1)

    @property
    def unk_bits(self) -> float:
        """Bits to say which unseen symbol an UNK is (uniform over all unseen symbols)."""
        return math.log2(self.n_unseen)

    def encode(self, content: str | bytes) -> np.ndarray:
        """Symbol ids of `content` (UNK for symbols not in the vocabulary)."""
        x = to_codes(content)
        if not len(self.codes):
            return np.full(len(x), UNK, np.int64)
        i = np.minimum(np.searchsorted(self.codes, x), len(self.codes) - 1)
        return np.where(self.codes[i] == x, i + N_SPECIAL, UNK).astype(np.int64)

    def decode(self, ids: np.ndarray, unk_codes: np.ndarray | None = None) -> str | bytes:
        """Content of symbol ids >= 3 (UNKs take `unk_codes` in order)."""
        ids = np.asarray(ids, np.int64)
        codes = np.empty(len(ids), np.int64)
        known = ids >= N_SPECIAL
        codes[known] = self.codes[ids[known] - N_SPECIAL]
        if (~known).any():
            codes[~known] = unk_codes if unk_codes is not None else 0xFFFD
        if self.tokens == "bytes":
            return codes.astype(np.uint8).tobytes()
        return codes.astype(np.uint32).tobytes().decode("utf-32-le")

    def random_unseen(self, rng: np.random.Generator) -> int:
        """A symbol drawn uniformly among those never seen in training."""
        total = 256 if self.tokens == "bytes" else N_UNICODE
        while True:
            r = int(rng.integers(total))
            if self.tokens == "chars" and r >= 0xD800:
                r += 2048  # skip surrogates
            i = int(np.searchsorted(self.codes, r))
            if i >= len(self.codes) or self.codes[i] != r:
                return r
