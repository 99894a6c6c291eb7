"""Text compression with a text twin: one file = one document, coded symbol by symbol.

The payload is, in order: the document's symbol ids then EOS, each with the twin's exact
next-symbol distribution (`steps.Steps`: n-gram state, document cache, all layers), then
what every UNK stands for, as the twin scores it: for characters and bytes a uniform choice
among the symbols training never saw; for words the spelling model (known characters, the
end mark, an escape followed by a uniform unseen character). So the payload is the twin's
own `-log2 P(document)` plus a few bytes.

What the twin does not model is coded in the side section, its cost reported apart (as
`layout.py` does for CSV): a UTF-8 byte order mark (the twin drops it when reading), CRLF
line endings when the twin never saw a CR (the text is coded with LF and the flag restores
CRLF), and byte runs that are not valid UTF-8 (removed from the text, kept with their
positions). A `tokens="bytes"` twin models the raw bytes and needs none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..text.counts import BOS, EOS, N_SPECIAL, UNK
from ..text.spelling import Spelling
from ..text.steps import Steps, paused_gc
from ..text.tokenize import Vocabulary, WordVocabulary
from .coder import MAX_ALPHABET, Decoder, Encoder
from .sections import pack_bytes, unpack_bytes
from .text_rows import encode_document, vectorisable
from .wire import ByteReader, CompressedFileError, varint

if TYPE_CHECKING:
    from ..text.twin import TextTwin

#: the step distribution of a spelling after a prefix of its step symbols
Row = Callable[[list[int]], np.ndarray]
_BOM = b"\xef\xbb\xbf"
_CHUNK = 4096  # rows of distributions coded per batch


@dataclass
class TextCoded:
    side: bytes
    payload: bytes
    counts: tuple[int, ...]
    stats: dict[str, Any]


# ------------------------------------------------------------------------ unseen symbols


def _compact(codes: np.ndarray, chars: bool) -> np.ndarray:
    """Code points without the surrogate gap (so unseen symbols are numbered densely)."""
    c = np.asarray(codes, np.int64)
    return np.where(c >= 0xE000, c - 2048, c) if chars else c


def unseen_rank(code: int, vocab_compact: np.ndarray, chars: bool) -> int:
    """The rank of `code` among the symbols not in the (compacted, sorted) vocabulary."""
    v = int(_compact(np.array([code]), chars)[0])
    return v - int(np.searchsorted(vocab_compact, v))


def unseen_code(rank: int, vocab_compact: np.ndarray, chars: bool) -> int:
    """Inverse of `unseen_rank`: the rank-th symbol not in the vocabulary."""
    v = rank
    while True:  # v = rank + #(vocabulary <= v), a monotone fixed point
        nxt = rank + int(np.searchsorted(vocab_compact, v, side="right"))
        if nxt == v:
            break
        v = nxt
    return v + 2048 if chars and v >= 0xD800 else v


# ------------------------------------------------------------------------ side section


@dataclass
class _Side:
    bom: bool = False
    crlf: bool = False
    invalid: tuple[tuple[int, bytes], ...] = ()  # (character position in the coded text, bytes)

    def to_bytes(self) -> bytes:
        out = bytearray([int(self.bom) | int(self.crlf) << 1])
        out += varint(len(self.invalid))
        last = 0
        for pos, raw in self.invalid:
            out += varint(pos - last) + varint(len(raw)) + raw
            last = pos
        return pack_bytes(bytes(out))

    @classmethod
    def from_bytes(cls, data: bytes) -> _Side:
        r = ByteReader(unpack_bytes(data, "text layout"), "text layout")
        flags = r.byte()
        if flags & ~3:
            raise r.fail("has unknown flags")
        runs, pos = [], 0
        for _ in range(r.varint(len(r.data))):
            pos += r.varint(1 << 40)
            runs.append((pos, r.take(r.varint(len(r.data)))))
        r.end()
        return cls(bool(flags & 1), bool(flags & 2), tuple(runs))


def _split_text(raw: bytes, vocab: Vocabulary | WordVocabulary) -> tuple[str, _Side]:
    """The text the twin models and the side information that rebuilds `raw` from it."""
    bom = raw.startswith(_BOM)
    body = raw[len(_BOM) :] if bom else raw
    s = body.decode("utf-8", "surrogateescape")
    invalid: list[tuple[int, bytes]] = []
    if any("\udc80" <= ch <= "\udcff" for ch in s):
        parts: list[str] = []
        i, n_kept = 0, 0
        while i < len(s):
            j = i
            while j < len(s) and "\udc80" <= s[j] <= "\udcff":
                j += 1
            if j > i:
                invalid.append((n_kept, s[i:j].encode("utf-8", "surrogateescape")))
                i = j
                continue
            while j < len(s) and not ("\udc80" <= s[j] <= "\udcff"):
                j += 1
            parts.append(s[i:j])
            n_kept += j - i
            i = j
        s = "".join(parts)
    crlf = False
    if "\r\n" in s and int(vocab.encode("\r")[0]) == UNK:
        n_cr, n_lf, n_crlf = s.count("\r"), s.count("\n"), s.count("\r\n")
        if n_cr == n_lf == n_crlf:
            s = s.replace("\r\n", "\n")
            crlf = True
    return s, _Side(bom, crlf, tuple(invalid))


def _join_text(s: str, side: _Side) -> bytes:
    if side.crlf:
        s = s.replace("\n", "\r\n")
    body = s.encode("utf-8")
    if side.invalid:
        parts, last = [], 0
        for pos, raw in side.invalid:
            if pos < last or pos > len(s):
                raise CompressedFileError("compressed file damaged: text layout positions")
            parts.append(s[last:pos].encode("utf-8"))
            parts.append(raw)
            last = pos
        parts.append(s[last:].encode("utf-8"))
        body = b"".join(parts)
    return (_BOM if side.bom else b"") + body


# ------------------------------------------------------------------------ symbols


def _tokens(twin: TextTwin, content: str | bytes) -> tuple[np.ndarray, list[Any]]:
    """Symbol ids of the document and the values its UNKs stand for (codes or words)."""
    vocab = twin.vocab
    ids = vocab.encode(content)
    where = np.flatnonzero(ids == UNK)
    if isinstance(vocab, WordVocabulary):
        toks = vocab.split(content)
        return ids, [toks[i] for i in where]
    from ..text.tokenize import to_codes

    codes = to_codes(content)
    return ids, [int(c) for c in codes[where]]


def code_symbols(steps: Steps, ids: np.ndarray, enc: Encoder) -> float:
    """Code a block's ids then EOS with the incremental distributions; the ideal bits."""
    return code_blocks(steps, ids, [0], [len(ids)], enc)


def code_blocks(
    steps: Steps, ids: np.ndarray, starts: list[int], lengths: list[int], enc: Encoder
) -> float:
    """Code blocks `ids[start : start + length]`, each then EOS and each from a document
    start (as `code_symbols` one by one), their rows gathered across blocks into one coder
    call per `_CHUNK` symbols; the ideal bits."""
    rows = np.empty((_CHUNK, steps.base))
    syms = np.empty(_CHUNK, np.int64)
    flat = np.asarray(ids, np.int64).tolist()
    bits, k = 0.0, 0
    for s0, n in zip(starts, lengths, strict=True):
        steps.reset()
        for i in range(s0, s0 + n + 1):
            rows[k] = steps.distribution()
            if i < s0 + n:
                w = flat[i]
                syms[k] = w
                steps.push(w)
            else:
                syms[k] = EOS
            k += 1
            if k == _CHUNK:
                bits += enc.encode_categorical(syms, rows)
                k = 0
    if k:
        bits += enc.encode_categorical(syms[:k], rows[:k])
    return bits


def decode_symbols(steps: Steps, dec: Decoder, n: int) -> np.ndarray:
    """The n ids of a block coded by `code_symbols` (and its EOS, checked)."""
    walk = steps.walk()
    p = next(walk)
    out: list[int] = []
    decode, send = dec.one_decoder(steps.base), walk.send
    for _ in range(n):
        w = decode(p)
        if w in (BOS, EOS):
            raise CompressedFileError("compressed file damaged: a document ends early")
        out.append(w)
        p = send(w)
    if decode(p) != EOS:
        raise CompressedFileError("compressed file damaged: a document does not end")
    return np.asarray(out, dtype=np.int64)


def encode_spelled(
    spelling: Spelling, strings: list[str], enc: Encoder, row: Row | None = None
) -> float:
    """Code each string as `spelling` scores it: its step symbols (listed characters, an
    escape per unlisted one, the end mark) with the step distribution after each prefix
    (`row`; default the model's constant step), then the ranks of its unlisted characters
    among the scalar values the model does not list, uniformly. Returns the ideal bits."""
    compact = _compact(spelling.codes, True)
    step = spelling.step()[None, :]
    bits = 0.0
    for s in strings:
        syms, unlisted = spelling.symbols(s)
        if row is None:
            rows = np.repeat(step, len(syms), axis=0)
        else:
            rows = np.array([row(syms[:i]) for i in range(len(syms))])
        bits += enc.encode_categorical(syms, rows)
        if unlisted:
            ranks = [unseen_rank(c, compact, True) for c in unlisted]
            bits += enc.encode_uniform(ranks, [spelling.n_unlisted] * len(ranks))
    return bits


def decode_spelled(spelling: Spelling, n: int, dec: Decoder, row: Row | None = None) -> list[str]:
    """The `n` strings coded by `encode_spelled` with the same model and `row`."""
    k = spelling.n_known
    compact = _compact(spelling.codes, True)
    step = spelling.step()
    out = []
    for _ in range(n):
        syms: list[int] = []
        while True:
            if len(syms) > 1 << 20:
                raise CompressedFileError("compressed file damaged: an endless word")
            sym = dec.decode_one(step if row is None else row(syms))
            if sym == k:
                break
            syms.append(sym)
        n_esc = sum(x == k + 1 for x in syms)
        ranks = iter(dec.decode_uniform([spelling.n_unlisted] * n_esc).tolist() if n_esc else [])
        out.append(
            "".join(
                chr(int(spelling.codes[x]))
                if x < k
                else chr(unseen_code(next(ranks), compact, True))
                for x in syms
            )
        )
    return out


def _code_unks(vocab: Vocabulary | WordVocabulary, values: list[Any], enc: Encoder) -> float:
    if isinstance(vocab, WordVocabulary):
        return encode_spelled(vocab.spelling, values, enc)
    bits = 0.0
    chars = vocab.tokens != "bytes"
    if values:
        comp = _compact(vocab.codes, chars)
        ranks = [unseen_rank(c, comp, chars) for c in values]
        if max(ranks) >= vocab.n_unseen or min(ranks) < 0:
            raise InputError("a symbol the vocabulary lists was taken for an unseen one")
        bits += enc.encode_uniform(ranks, [vocab.n_unseen] * len(ranks))
    return bits


def _decode_unks(vocab: Vocabulary | WordVocabulary, n: int, dec: Decoder) -> list[Any]:
    if isinstance(vocab, WordVocabulary):
        return decode_spelled(vocab.spelling, n, dec)
    chars_ = vocab.tokens != "bytes"
    if not n:
        return []
    comp = _compact(vocab.codes, chars_)
    ranks = dec.decode_uniform([vocab.n_unseen] * n)
    return [unseen_code(int(r), comp, chars_) for r in ranks]


def _render(vocab: Vocabulary | WordVocabulary, ids: np.ndarray, unks: list[Any]) -> str | bytes:
    if isinstance(vocab, WordVocabulary):
        it = iter(unks)
        return "".join(vocab.words[int(i) - N_SPECIAL] if i >= N_SPECIAL else next(it) for i in ids)
    return vocab.decode(ids, np.asarray(unks, np.int64) if unks else None)


# ------------------------------------------------------------------------ the adapter


def chain_steps(twin: Any) -> Steps:
    """The coder's rows of a text or events twin's chain; a network cannot code (one-line
    error): its rows are float32 products and numpy functions whose last bits differ
    between CPUs, so a file could not be promised to decode on another machine."""
    from ..text.model import NgramModel

    if not isinstance(twin.chain.model, NgramModel):
        raise InputError(
            f"compression needs a count model and this twin is {twin.structure!r} (a network's "
            "probabilities differ in their last bits between CPUs); fit one for compression "
            "with the default structures (no --structures)"
        )
    return Steps(twin.chain)


def encode_text(twin: TextTwin, raw: bytes) -> TextCoded:
    vocab = twin.vocab
    if vocab.base > MAX_ALPHABET:
        raise InputError("the twin's vocabulary is too large to code")
    content: str | bytes
    if vocab.tokens == "bytes":
        content, side = raw, b""
    else:
        content, sd = _split_text(raw, vocab)
        side = sd.to_bytes()
    ids, unk_values = _tokens(twin, content)
    enc = Encoder()
    steps = chain_steps(twin)
    with paused_gc():
        if vectorisable(steps):
            sym_bits = encode_document(steps, np.asarray(ids, np.int64), enc)
        else:
            sym_bits = code_symbols(steps, ids, enc)
    unk_bits = _code_unks(vocab, unk_values, enc)
    payload = enc.to_bytes()
    stats = {
        "model_bits": sym_bits + unk_bits,
        "coded_bits": enc.bits,
        "payload": len(payload),
        "symbols": int(len(ids)),
        "unseen_symbols": len(unk_values),
        "unseen_bits": unk_bits,
        "side_layout": len(side),
    }
    return TextCoded(side, payload, (int(len(ids)), len(unk_values)), stats)


def decode_text(twin: TextTwin, side: bytes, payload: bytes, counts: tuple[int, ...]) -> bytes:
    if len(counts) != 2 or counts[1] > counts[0]:
        raise CompressedFileError("compressed file damaged: wrong counts for a text")
    n, n_unk = counts
    vocab = twin.vocab
    if vocab.tokens == "bytes":
        if side:
            raise CompressedFileError("compressed file damaged: unexpected text layout")
        sd = None
    else:
        sd = _Side.from_bytes(side)
    dec = Decoder(payload)
    with paused_gc():
        ids = decode_symbols(chain_steps(twin), dec, n)
    if int(np.sum(ids == UNK)) != n_unk:
        raise CompressedFileError("compressed file damaged: wrong number of unseen symbols")
    content = _render(vocab, ids, _decode_unks(vocab, n_unk, dec))
    if isinstance(content, bytes):
        return content
    assert sd is not None
    return _join_text(content, sd)
