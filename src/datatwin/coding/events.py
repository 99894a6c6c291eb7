"""Events compression with an events twin: a CSV of (sequence id, order, event) rows.

The payload codes the sequences as the twin reads them (grouped by the sequence id in order
of first appearance, sorted by the order column), each event with the twin's exact
next-symbol distribution (`steps.Steps`: n-gram state, `+len` ends, cache), then EOS; then
the names of events the twin never saw, spelled as the twin scores them (`UnseenNames.row`:
its spelling model without the seen names), so the payload is the twin's own -log2 P.
Files written before the twin spelled unseen names (an events header of 4 fields) coded
those names with an adaptive byte model; they still decode.

Everything else is side information with its own simple model, its cost reported apart:

* the sequence ids, one per sequence: integer deltas when they are integers, else front-coded
  strings (shared prefix with the previous id + the rest), packed;
* the order column: `start + position` within the sequence (start 0 or 1, whichever fits
  more rows); any other cell (and any sequence-id cell written otherwise than its
  sequence's first) is an exception (row, text);
* the row order: nothing when the file lists each sequence's rows together, in sequence and
  order; otherwise the sequence of every row (and, if needed, its rank within the sequence);
* other columns verbatim (packed), and the CSV layout (`layout.py`).
"""

from __future__ import annotations

import bz2
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..text.counts import BOS, EOS, N_SPECIAL, UNK
from ..text.steps import Steps, paused_gc
from .coder import AdaptiveByteModel, Decoder, Encoder
from .layout import Layout, rebuild, split
from .sections import frame, pack_bytes, read_texts, texts_bytes, unframe, unpack_bytes
from .text import chain_steps, code_blocks, decode_spelled, encode_spelled
from .text_rows import block_rows
from .wire import ByteReader, CompressedFileError, text, varint

if TYPE_CHECKING:
    from ..text.events import EventsTwin


@dataclass
class EventsCoded:
    side: bytes
    payload: bytes
    counts: tuple[int, ...]
    stats: dict[str, Any]


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


def _is_int(s: str) -> bool:
    try:
        return str(int(s)) == s
    except ValueError:
        return False


def _pack(body: bytes) -> bytes:
    """`pack_bytes`, or bzip2 behind mode byte 3 when that is shorter (word lists)."""
    packed = pack_bytes(body)
    other = b"\x03" + bz2.compress(body, 9)
    return other if len(other) < len(packed) else packed


def _unpack(data: bytes, what: str) -> bytes:
    if data[:1] == b"\x03":
        try:
            return bz2.decompress(data[1:])
        except (OSError, ValueError, EOFError):
            raise CompressedFileError(
                f"compressed file damaged: {what} does not decompress"
            ) from None
    return unpack_bytes(data, what)


def _ids_bytes(ids: list[str]) -> bytes:
    """The sequence ids: mode 0 integer deltas; else front coding in separate streams (shared
    prefix lengths; the rest of each id, newline-joined (mode 1) or length-prefixed (2))."""
    if ids and all(_is_int(s) for s in ids):
        out, last = bytearray(), 0
        for s in ids:
            v = int(s)
            out += varint(_zigzag(v - last))
            last = v
        return b"\x00" + _pack(bytes(out))
    prefix, rest, lens, prev = bytearray(), [], bytearray(), ""
    for s in ids:
        k = 0
        while k < min(len(s), len(prev)) and s[k] == prev[k]:
            k += 1
        prefix += varint(k)
        tail = s[k:].encode("utf-8", "surrogatepass")
        rest.append(tail)
        lens += varint(len(tail))
        prev = s
    if not any(b"\n" in t for t in rest):
        return b"\x01" + frame([_pack(bytes(prefix)), _pack(b"\n".join(rest))])
    return b"\x02" + frame([_pack(bytes(prefix)), _pack(bytes(lens)), _pack(b"".join(rest))])


def _read_ids(data: bytes, n: int) -> list[str]:
    if not data:
        raise CompressedFileError("compressed file damaged: sequence ids are truncated")
    mode, body = data[0], data[1:]
    out: list[str] = []
    if mode == 0:
        r = ByteReader(_unpack(body, "sequence ids"), "sequence ids")
        last = 0
        for _ in range(n):
            last += _unzigzag(r.varint())
            out.append(str(last))
        r.end()
        return out
    if mode not in (1, 2):
        raise CompressedFileError("compressed file damaged: sequence ids have an unknown mode")
    parts = [_unpack(p, "sequence ids") for p in unframe(body, 1 + mode, "sequence ids")]
    r = ByteReader(parts[0], "sequence ids")
    prefixes = [r.varint(1 << 30) for _ in range(n)]
    r.end()
    if mode == 1:
        tails = parts[1].split(b"\n") if n else []
    else:
        lr = ByteReader(parts[1], "sequence ids")
        sizes = [lr.varint(len(parts[2])) for _ in range(n)]
        lr.end()
        ends = np.cumsum([0, *sizes]).tolist()
        if ends[-1] != len(parts[2]):
            raise CompressedFileError("compressed file damaged: sequence ids")
        tails = [parts[2][a:b] for a, b in zip(ends[:-1], ends[1:], strict=True)]
    if len(tails) != n:
        raise CompressedFileError("compressed file damaged: sequence ids")
    prev = ""
    for k, tail in zip(prefixes, tails, strict=True):
        if k > len(prev):
            raise CompressedFileError("compressed file damaged: sequence ids")
        prev = prev[:k] + tail.decode("utf-8", "surrogatepass")
        out.append(prev)
    return out


def _ints_bytes(values: np.ndarray) -> bytes:
    return pack_bytes(b"".join(varint(int(v)) for v in values))


def _read_ints(data: bytes, n: int, what: str, limit: int) -> np.ndarray:
    r = ByteReader(unpack_bytes(data, what), what)
    out = np.array([r.varint(limit) for _ in range(n)], dtype=np.int64)
    r.end()
    return out


def _exceptions_bytes(rows: list[tuple[int, str]]) -> bytes:
    out, last = bytearray(varint(len(rows))), 0
    for row, s in rows:
        out += varint(row - last) + text(s)
        last = row
    return pack_bytes(bytes(out))


def _read_exceptions(data: bytes, n_rows: int) -> list[tuple[int, str]]:
    r = ByteReader(unpack_bytes(data, "exceptions"), "exceptions")
    out, row = [], 0
    for _ in range(r.varint(n_rows)):
        row += r.varint(n_rows)
        out.append((row, r.text()))
    r.end()
    return out


def _where(twin: EventsTwin, names: list[str]) -> tuple[int, int, int]:
    cols = twin.columns
    try:
        return tuple(names.index(cols[k]) for k in ("sequence_id", "order_by", "event"))  # type: ignore[return-value]
    except ValueError:
        raise InputError(
            f"the data lacks columns the twin models: {[cols[k] for k in cols]}"
        ) from None


def _grouping(sid_cells: list[str], order_cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row its sequence (in order of first appearance) and the rows in the twin's
    reading order (by sequence, then the order column), as `EventsTwin.sequences` does."""
    from ..text.events import _typed

    codes, values = _typed(np.asarray(sid_cells, dtype=object), "")
    seq = pd.factorize(values, sort=False)[0][codes]
    codes, values = _typed(np.asarray(order_cells, dtype=object), "")
    order = values[codes]
    frame_ = pd.DataFrame({"seq": seq, "order": order, "i": np.arange(len(seq))})
    frame_ = frame_.sort_values(["seq", "order"], kind="stable")
    return np.asarray(seq, np.int64), frame_["i"].to_numpy().astype(np.int64)


def encode_events(twin: EventsTwin, raw: bytes) -> EventsCoded:
    s = split(raw)
    c_sid, c_ord, c_ev = _where(twin, s.names)
    n = s.layout.n_rows
    if n == 0:
        raise InputError("the table has no rows; there are no events to compress")
    sid_cells, ord_cells, ev_cells = s.columns[c_sid], s.columns[c_ord], s.columns[c_ev]
    seq, perm = _grouping(sid_cells, ord_cells)
    n_seq = int(seq.max()) + 1
    lengths = np.bincount(seq, minlength=n_seq)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ev_sorted = np.asarray(ev_cells, dtype=object)[perm]
    from ..text.events import _encode_events

    ids = _encode_events(twin.events, ev_sorted)
    # payload: sequences, then the names of unseen events
    enc = Encoder()
    steps = chain_steps(twin)
    with paused_gc():
        if steps.spec is None:  # no cache: every row at once
            blocks = block_rows(steps, ids, starts.tolist(), lengths.tolist())
            seq_bits = sum(enc.encode_categorical(y, P) for y, P in blocks)
        else:
            seq_bits = code_blocks(steps, ids, starts.tolist(), lengths.tolist(), enc)
    unseen = [str(v) for v in ev_sorted[ids == UNK]]
    names = twin.unseen
    unseen_bits = encode_spelled(names.spelling, unseen, enc, names.row)
    payload = enc.to_bytes()
    # row order
    rank = np.empty(n, np.int64)  # each row's position within its sequence (reading order)
    rank[perm] = np.arange(n) - np.repeat(starts, lengths)
    if np.array_equal(perm, np.arange(n)):
        order_part = b"\x00"
    else:
        file_rank = _file_ranks(seq, n_seq)
        same = np.array_equal(file_rank, rank)
        order_part = bytes([1 if same else 2]) + frame(
            [_ints_bytes(seq)] + ([] if same else [_ints_bytes(rank)])
        )
    # sequence ids and order column: expected cells and exceptions
    first_row = perm[starts]
    id_texts = [sid_cells[r] for r in first_row]
    order_int = np.array([_as_int(c) for c in ord_cells], dtype=object)
    start = (
        0
        if sum(o == k for o, k in zip(order_int, rank, strict=True))
        >= sum(o == k + 1 for o, k in zip(order_int, rank, strict=True))
        else 1
    )
    exc_sid = [(r, sid_cells[r]) for r in range(n) if sid_cells[r] != id_texts[seq[r]]]
    exc_ord = [(r, ord_cells[r]) for r in range(n) if ord_cells[r] != str(start + rank[r])]
    others = [c for c in range(len(s.names)) if c not in (c_sid, c_ord, c_ev)]
    other_cells = [v for c in others for v in s.columns[c]]
    parts = {
        "layout": s.layout.to_bytes(),
        "header": texts_bytes([str(c_sid), str(c_ord), str(c_ev), str(start), SPELLED]),
        "ids": _ids_bytes(id_texts),
        "row_order": order_part,
        "exceptions": frame([_exceptions_bytes(exc_sid), _exceptions_bytes(exc_ord)]),
        "other_columns": pack_bytes(texts_bytes(other_cells)),
    }
    stats = {
        "model_bits": seq_bits + unseen_bits,
        "coded_bits": enc.bits,
        "payload": len(payload),
        "events": n,
        "sequences": n_seq,
        "unseen_events": len(unseen),
        "unseen_event_bits": unseen_bits,
        "exceptions": len(exc_sid) + len(exc_ord),
        **{f"side_{k}": len(v) for k, v in parts.items()},
    }
    return EventsCoded(frame(list(parts.values())), payload, (n, n_seq, len(s.names)), stats)


#: the events header's fifth field: unseen names are spelled by the twin (absent: byte model)
SPELLED = "spelled"


def _read_header(head_b: bytes, n_cols: int) -> tuple[int, int, int, int, bool]:
    """(sequence-id, order and event columns, order start, unseen names spelled)."""
    r = ByteReader(head_b, "events header")
    head = read_texts(r, 5)
    r.end()
    if len(head) < 4:
        raise CompressedFileError("compressed file damaged: events header")
    try:
        c_sid, c_ord, c_ev, start = (int(v) for v in head[:4])
    except ValueError:
        raise CompressedFileError("compressed file damaged: events header") from None
    bad = len({c_sid, c_ord, c_ev}) != 3 or max(c_sid, c_ord, c_ev) >= n_cols
    if bad or start not in (0, 1) or head[4:] not in ([], [SPELLED]):
        raise CompressedFileError("compressed file damaged: events header")
    return c_sid, c_ord, c_ev, start, len(head) == 5


def _as_int(cell: str) -> int | None:
    return int(cell) if _is_int(cell) else None


def _file_ranks(seq: np.ndarray, n_seq: int) -> np.ndarray:
    """Each row's rank among the earlier rows of its sequence, in file order."""
    seen = np.zeros(n_seq, np.int64)
    out = np.empty(len(seq), np.int64)
    for r, c in enumerate(seq.tolist()):
        out[r] = seen[c]
        seen[c] += 1
    return out


def decode_events(twin: EventsTwin, side: bytes, payload: bytes, counts: tuple[int, ...]) -> bytes:
    if len(counts) != 3 or counts[1] > counts[0] or counts[1] < 1:
        raise CompressedFileError("compressed file damaged: wrong counts for events")
    n, n_seq, n_cols = counts
    layout_b, head_b, ids_b, order_b, exc_b, other_b = unframe(side, 6, "events sections")
    layout = Layout.from_bytes(layout_b)
    if layout.n_rows != n or layout.n_cols != n_cols:
        raise CompressedFileError("compressed file damaged: its layout does not match")
    c_sid, c_ord, c_ev, start, spelled = _read_header(head_b, n_cols)
    # the sequences
    dec = Decoder(payload)
    steps = chain_steps(twin)
    with paused_gc():
        seqs, total = _decode_sequences(steps, dec, n_seq, n)
    if total != n:
        raise CompressedFileError("compressed file damaged: the sequences do not fit")
    events = _name_events(twin, seqs, dec, spelled)
    cols = (c_sid, c_ord, c_ev, n_cols)
    return _rebuild(n, n_seq, events, order_b, ids_b, exc_b, other_b, layout, cols, start)


def _name_events(
    twin: EventsTwin, seqs: list[list[int]], dec: Decoder, spelled: bool
) -> list[list[str]]:
    """The decoded sequences as names: the unseen ones read after all the sequences, spelled
    by the twin (or, in files from before, by an adaptive byte model, `spelled` False)."""
    n_unk = sum(w == UNK for cur in seqs for w in cur)
    if spelled:
        unseen = iter(decode_spelled(twin.unseen.spelling, n_unk, dec, twin.unseen.row))
    else:
        model = AdaptiveByteModel()
        unseen = iter([_utf8(dec.decode_bytes(model)) for _ in range(n_unk)])
    names = twin.events
    return [[names[w - N_SPECIAL] if w != UNK else next(unseen) for w in cur] for cur in seqs]


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CompressedFileError("compressed file damaged: an event name") from None


def _decode_sequences(
    steps: Steps, dec: Decoder, n_seq: int, n: int
) -> tuple[list[list[int]], int]:
    seqs: list[list[int]] = []
    total = 0
    for _ in range(n_seq):
        steps.reset()
        cur: list[int] = []
        while True:
            w = dec.decode_one(steps.distribution())
            if w == EOS:
                break
            if w == BOS or total >= n:
                raise CompressedFileError("compressed file damaged: the sequences do not fit")
            cur.append(w)
            total += 1
            steps.push(w)
        seqs.append(cur)
    return seqs, total


def _rebuild(
    n: int,
    n_seq: int,
    events: list[list[str]],
    order_b: bytes,
    ids_b: bytes,
    exc_b: bytes,
    other_b: bytes,
    layout: Layout,
    cols: tuple[int, int, int, int],
    start: int,
) -> bytes:
    c_sid, c_ord, c_ev, n_cols = cols
    lengths = np.array([len(c) for c in events], np.int64)
    # row order
    if not order_b:
        raise CompressedFileError("compressed file damaged: row order is truncated")
    mode = order_b[0]
    if mode == 0:
        seq = np.repeat(np.arange(n_seq), lengths)
        rank = np.arange(n) - np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    elif mode in (1, 2):
        parts = unframe(order_b[1:], 1 if mode == 1 else 2, "row order")
        seq = _read_ints(parts[0], n, "row order", n_seq - 1)
        if not np.array_equal(np.bincount(seq, minlength=n_seq), lengths):
            raise CompressedFileError("compressed file damaged: row order")
        rank = _file_ranks(seq, n_seq) if mode == 1 else _read_ints(parts[1], n, "row order", n)
        if np.any(rank >= lengths[seq]):
            raise CompressedFileError("compressed file damaged: row order")
    else:
        raise CompressedFileError("compressed file damaged: row order has an unknown mode")
    id_texts = _read_ids(ids_b, n_seq)
    sid_col = [id_texts[c] for c in seq.tolist()]
    ord_col = [str(start + k) for k in rank.tolist()]
    ev_col = [events[c][k] for c, k in zip(seq.tolist(), rank.tolist(), strict=True)]
    e_sid, e_ord = unframe(exc_b, 2, "exceptions")
    for col, data in ((sid_col, e_sid), (ord_col, e_ord)):
        for row, val in _read_exceptions(data, n):
            if row >= n:
                raise CompressedFileError("compressed file damaged: exceptions")
            col[row] = val
    r = ByteReader(unpack_bytes(other_b, "other columns"), "other columns")
    other_cells = read_texts(r, n * n_cols)
    r.end()
    if len(other_cells) != n * (n_cols - 3):
        raise CompressedFileError("compressed file damaged: other columns")
    columns: list[list[str]] = []
    k = 0
    for c in range(n_cols):
        if c == c_sid:
            columns.append(sid_col)
        elif c == c_ord:
            columns.append(ord_col)
        elif c == c_ev:
            columns.append(ev_col)
        else:
            columns.append(other_cells[k * n : (k + 1) * n])
            k += 1
    return rebuild(columns, layout)
