"""The compressed file format: strict parsing with one-line errors, shared vs self-contained,
and an end-to-end toy table kind (layout + coder + container) that decodes byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datatwin.coding import (
    Compressed,
    CompressedFileError,
    Decoder,
    Encoder,
    Layout,
    pack,
    rebuild,
    split,
)
from datatwin.coding.container import FORMAT, MAGIC
from datatwin.coding.wire import varint
from datatwin.errors import InputError

MODEL = b'{"kind": "toy", "weights": [1, 2, 3]}' * 20
OTHER_MODEL = MODEL.replace(b"3", b"4")
OUTPUT = b"id,x\n1,a\n2,b\n"


def sample(embed: bool = False) -> Compressed:
    return pack("table", (2, 7), OUTPUT, MODEL, b"\x00layout", bytes(range(200)), embed_model=embed)


def one_line_error(data: bytes, model: bytes | None = MODEL) -> str:
    with pytest.raises(CompressedFileError) as info:
        Compressed.from_bytes(data).model_bytes(model)
    msg = str(info.value)
    assert "\n" not in msg and msg
    assert isinstance(info.value, InputError)
    return msg


@pytest.mark.parametrize("embed", [False, True])
def test_round_trip(embed: bool) -> None:
    c = sample(embed)
    back = Compressed.from_bytes(c.to_bytes())
    assert back == c
    assert back.model_bytes(None if embed else MODEL) == MODEL
    back.verify_output(OUTPUT)


def test_header_is_small_and_sizes_add_up() -> None:
    shared, embedded = sample(False), sample(True)
    assert len(shared.header()) < 1024 and len(shared.header()) < 120
    assert shared.sizes()["total"] == len(shared.to_bytes())
    assert embedded.sizes()["total"] == len(embedded.to_bytes())
    growth = len(embedded.to_bytes()) - len(shared.to_bytes())
    assert growth == len(MODEL) + len(varint(len(MODEL))) - len(varint(0))


def test_wrong_model_is_refused() -> None:
    data = sample().to_bytes()
    assert "wrong model" in one_line_error(data, OTHER_MODEL)
    assert "pass the model" in one_line_error(data, None)


def test_embedded_model_is_used_and_checked_against_a_given_one() -> None:
    data = sample(True).to_bytes()
    assert Compressed.from_bytes(data).model_bytes() == MODEL
    assert "wrong model" in one_line_error(data, OTHER_MODEL)


@pytest.mark.parametrize("embed", [False, True])
def test_truncation_at_every_tenth(embed: bool) -> None:
    data = sample(embed).to_bytes()
    for k in range(10):
        one_line_error(data[: len(data) * k // 10])
    one_line_error(data[:-1])
    one_line_error(data + b"\x00")


@pytest.mark.parametrize("embed", [False, True])
def test_every_flipped_byte_is_caught(embed: bool) -> None:
    data = sample(embed).to_bytes()
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x10
        one_line_error(bytes(damaged))


def test_not_a_compressed_file_and_newer_format() -> None:
    assert "not a datatwin compressed file" in one_line_error(b"PK\x03\x04whatever")
    data = bytearray(sample().to_bytes())
    data[len(MAGIC)] = FORMAT + 1
    assert "upgrade" in one_line_error(bytes(data))
    data[len(MAGIC)] = FORMAT - 1  # e.g. a series file whose means were summed differently
    assert "written by an older datatwin" in one_line_error(bytes(data))


def test_output_checksum() -> None:
    c = Compressed.from_bytes(sample().to_bytes())
    with pytest.raises(CompressedFileError, match="checksum"):
        c.verify_output(OUTPUT[:-1] + b"\r")
    with pytest.raises(CompressedFileError, match="checksum"):
        c.verify_output(OUTPUT + b"\n")


# ---------------------------------------------------------------- a toy kind, end to end


def toy_model(columns: list[list[str]]) -> tuple[bytes, list[list[str]]]:
    """Column 0 ~ its frequencies; column c > 0 ~ frequencies given column c-1 (so decoding
    needs the previous column first). Returns the model file bytes and each alphabet."""
    alphabets = [sorted(set(col)) for col in columns]
    return json.dumps(alphabets, sort_keys=True).encode(), alphabets


def distributions(model: bytes, c: int, prev: np.ndarray | None, n: int) -> np.ndarray:
    """P(column c | column c-1) rows, from the model (add-one smoothed, deterministic)."""
    alphabets = json.loads(model)
    k = len(alphabets[c])
    if prev is None:
        return np.full((n, k), 1.0 / k)
    table = np.ones((len(alphabets[c - 1]), k))
    table[np.arange(len(table)), np.arange(len(table)) % k] += 5.0
    return table[prev]


def compress(raw: bytes, embed: bool) -> tuple[bytes, dict[str, int]]:
    s = split(raw)
    model, alphabets = toy_model(s.columns)
    enc, prev = Encoder(), None
    for c, col in enumerate(s.columns):  # model order: column by column
        index = {v: i for i, v in enumerate(alphabets[c])}
        x = np.array([index[v] for v in col])
        enc.encode_categorical(x, distributions(model, c, prev, len(col)))
        prev = x
    counts = (s.layout.n_rows,)
    box = pack("toy", counts, raw, model, s.layout.to_bytes(), enc.to_bytes(), embed_model=embed)
    return box.to_bytes(), box.sizes()


def decompress(data: bytes) -> bytes:
    box = Compressed.from_bytes(data)
    model = box.model_bytes()
    alphabets = json.loads(model)
    layout = Layout.from_bytes(box.layout)
    (n_rows,) = box.counts
    dec, prev, columns = Decoder(box.payload), None, []
    for c in range(len(alphabets)):  # each column's distributions from the decoded ones
        x = dec.decode_categorical(distributions(model, c, prev, n_rows))
        columns.append([alphabets[c][i] for i in x])
        prev = x
    out = rebuild(columns, layout)
    box.verify_output(out)
    return out


def test_toy_kind_end_to_end() -> None:
    rng = np.random.default_rng(0)
    rows = [f'{rng.integers(5)},{"abc"[rng.integers(3)]},"q,{rng.integers(4)}"' for _ in range(300)]
    raw = ("k,l,m\r\n" + "\r\n".join(rows) + "\r\n").encode()
    data, sizes = compress(raw, embed=True)
    assert decompress(data) == raw
    assert sizes["layout"] < 16 and sizes["header"] < 120
    assert len(data) < len(raw) / 3
    damaged = bytearray(data)
    damaged[-10] ^= 1
    with pytest.raises(CompressedFileError):
        decompress(bytes(damaged))
