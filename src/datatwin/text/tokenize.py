"""Reading text documents and mapping them to symbol ids (characters or bytes).

A text twin models Unicode characters by default (`tokens="chars"`), raw bytes
(`tokens="bytes"`) or words (`tokens="words"`: runs of word characters, and every other
character as its own token, so the tokens join back to the exact text). Symbols seen in
training are numbered 3..; anything else becomes UNK. For characters and bytes an UNK costs the
model's escape probability times a uniform choice among all the symbols training never used;
for words, words seen only once in training are counted as UNK (so the escape probability is
learned) and an unknown word is spelled out by a character model with an end mark.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import InputError
from .counts import N_SPECIAL, UNK
from .spelling import N_UNICODE, Spelling

TOKENS = ("chars", "bytes", "words")
WORD_RE = re.compile(r"\w+|[^\w]", re.UNICODE)


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
            "use tokens='bytes' to model its raw bytes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = np.frombuffer(raw[:65536], np.uint8)
        odd = ((head < 9) | ((head > 13) & (head < 32))).mean() if len(head) else 0.0
        if odd > 0.05:
            raise InputError(
                f"{name} looks binary ({odd:.0%} control bytes, invalid UTF-8 at offset "
                f"{exc.start}), not text; use tokens='bytes' to model its raw bytes"
            ) from None
        raise InputError(
            f"{name} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-encode it as UTF-8 or use tokens='bytes' to model its raw bytes"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def folder_files(folder: Path) -> list[Path]:
    """The regular files inside `folder` and its sub-folders, sorted, hidden ones left out.
    Symbolic links (to files or folders, inside or out), devices and FIFOs are not read: a
    folder's documents are the files it holds, and a link must not reach beyond it."""
    files: list[Path] = []
    skipped = 0
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        skipped += sum(os.path.islink(os.path.join(root, d)) for d in dirs)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in names:
            if name.startswith("."):
                continue
            p = Path(root) / name
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                files.append(p)
            else:
                skipped += 1
    if skipped:
        progress.note(
            f"folder {folder}: {skipped} entries that are not regular files (symbolic links, "
            "devices, FIFOs) are not read"
        )
    return sorted(files)


def read_documents(path: str | Path, tokens: str = "chars") -> list[Document]:
    """Documents from a file (one document) or a folder (every non-hidden file, sorted)."""
    path = Path(path)
    if tokens not in TOKENS:
        raise InputError(f"unknown tokens {tokens!r}; choose one of: {', '.join(TOKENS)}")
    if not path.exists():
        raise InputError(f"data file not found: {path}")
    if path.is_dir():
        files = folder_files(path)
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


#: characters (or bytes) converted at once when building a vocabulary or encoding
SLICE = 1 << 20


def _slices(content: str | bytes) -> Iterator[str | bytes]:
    return (content[a : a + SLICE] for a in range(0, len(content), SLICE))


def symbol_dtype(base: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned type holding symbol ids 0..base-1."""
    return np.uint8 if base <= 256 else np.uint16 if base <= 65536 else np.uint32


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
        seen = [np.unique(to_codes(piece)) for d in docs for piece in _slices(d.content)]
        codes = np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        return cls(tokens, codes.astype(np.int64))

    @property
    def base(self) -> int:
        """Number of symbol ids (3 specials + vocabulary)."""
        return len(self.codes) + N_SPECIAL

    def unk_bits_total(self, content: str | bytes) -> float:
        """Bits to say which unseen symbols the UNKs of `content` are."""
        return float(np.sum(self.encode(content) == UNK)) * self.unk_bits

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
        """Symbol ids of `content` (UNK for symbols not in the vocabulary), int64."""
        return self.encode_compact(content).astype(np.int64)

    def encode_compact(self, content: str | bytes) -> np.ndarray:
        """The same ids in the narrowest unsigned type that holds the alphabet (one byte per
        symbol for most texts), encoded a slice at a time (bounded temporaries)."""
        out = np.empty(len(content), symbol_dtype(self.base))
        at = 0
        for piece in _slices(content):
            out[at : at + len(piece)] = self._encode(piece)
            at += len(piece)
        return out

    def _encode(self, content: str | bytes) -> np.ndarray:
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

    def unk_nats(self, ids: np.ndarray, content: str | bytes) -> np.ndarray:
        """Extra nats at each UNK position: which unseen symbol it is (uniform)."""
        return np.where(ids == UNK, self.unk_bits * math.log(2.0), 0.0)

    def render(self, ids: list[int] | np.ndarray, rng: np.random.Generator) -> str | bytes:
        """Content of sampled ids; each UNK becomes a uniformly drawn unseen symbol."""
        arr = np.asarray(ids, np.int64)
        n_unk = int(np.sum(arr == UNK))
        return self.decode(arr, np.array([self.random_unseen(rng) for _ in range(n_unk)], np.int64))

    def symbol_names(self) -> list[str]:
        """Printable names of symbol ids 3.. (ARPA words)."""
        out = []
        for c in self.codes:
            ch = chr(int(c)) if self.tokens == "chars" else None
            if ch is not None and ch.isprintable() and not ch.isspace():
                out.append(ch)
            else:
                out.append(f"<U+{int(c):04X}>" if ch is not None else f"<0x{int(c):02X}>")
        return out

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


def split_words(text: str) -> list[str]:
    """Word tokens: runs of word characters, every other character alone (joins back exactly)."""
    return WORD_RE.findall(text)


@dataclass
class WordVocabulary:
    """Words seen at least twice in training, and the spelling model for all other words.

    Spelling model: p(next char) = n_c / (T + 1), p(end) = n_end / (T + 1), p(escape) = 1 / (T+1)
    followed by a uniform choice among the Unicode characters it has not seen; n_c and n_end
    count the characters and ends of the training words seen once (T their total). It sums to
    one over all finite strings.
    """

    words: list[str]
    spell_codes: np.ndarray  # sorted code points
    spell_counts: np.ndarray  # per code point, then the end count (length len(codes) + 1)
    tokens: str = "words"

    @classmethod
    def build(cls, docs: list[Document], min_count: int = 2) -> WordVocabulary:
        counts: Counter[str] = Counter()
        for d in docs:
            counts.update(split_words(str(d.content)))
        words = sorted(w for w, c in counts.items() if c >= min_count)
        spelling = Spelling.fit([w for w, c in counts.items() if c < min_count])
        return cls(words, spelling.codes, spelling.counts)

    @property
    def spelling(self) -> Spelling:
        """The spelling model of unknown words (`spelling.Spelling`)."""
        sp: Spelling | None = getattr(self, "_spelling", None)
        if sp is None:
            sp = self._spelling = Spelling(self.spell_codes, self.spell_counts)
        return sp

    @property
    def base(self) -> int:
        return len(self.words) + N_SPECIAL

    def _index(self):
        idx = getattr(self, "_idx", None)
        if idx is None:
            import pandas as pd

            idx = pd.Index(self.words)
            self._idx = idx
        return idx

    def split(self, content: str | bytes) -> list[str]:
        return split_words(content.decode("utf-8") if isinstance(content, bytes) else content)

    def encode(self, content: str | bytes) -> np.ndarray:
        toks = self.split(content)
        if not toks:
            return np.zeros(0, np.int64)
        idx = self._index().get_indexer(toks)
        return np.where(idx >= 0, idx + N_SPECIAL, UNK).astype(np.int64)

    def spell_bits(self, word: str) -> float:
        """Bits to spell `word` with the spelling model (end mark included)."""
        return self.spelling.bits(word)

    def unk_nats(self, ids: np.ndarray, content: str | bytes) -> np.ndarray:
        """Extra nats at each UNK position: spelling the unknown word out."""
        out = np.zeros(len(ids))
        where = np.flatnonzero(ids == UNK)
        if len(where):
            toks = self.split(content)
            for i in where:
                if i < len(toks):
                    out[i] = self.spell_bits(toks[i]) * math.log(2.0)
        return out

    def unk_bits_total(self, content: str | bytes) -> float:
        ids = self.encode(content)
        return float(self.unk_nats(ids, content).sum() / math.log(2.0))

    def spell(self, rng: np.random.Generator) -> str:
        """A word drawn from the spelling model."""
        return self.spelling.spell(rng)

    def render(self, ids: list[int] | np.ndarray, rng: np.random.Generator) -> str:
        words = self.words
        return "".join(words[i - N_SPECIAL] if i >= N_SPECIAL else self.spell(rng) for i in ids)

    def symbol_names(self) -> list[str]:
        out = []
        for w in self.words:
            if w.isprintable() and not any(ch.isspace() for ch in w):
                out.append(w)
            else:
                out.append("".join(f"<U+{ord(ch):04X}>" for ch in w))
        return out
