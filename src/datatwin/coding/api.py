"""`compress(twin, data)` / `decompress(blob, twin)`: one entry point over every kind.

A kind's adapter codes the data's bytes into `(side, payload, counts, stats)`: `side` holds
what the twin does not model (layout, formats, exceptions, identifiers), `payload` the range
coded stream of everything it does. The container adds the header, the model fingerprint
(sha256 of the twin's model file bytes) and, in self-contained mode, the model itself.
Decompression decodes, rebuilds, and checks size and sha256 before returning anything.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .container import Compressed, pack
from .wire import CompressedFileError

if TYPE_CHECKING:
    from ..base import Twin

#: refuse to decompress outputs beyond this many bytes (a damaged size field)
MAX_OUTPUT = 1 << 40


def model_bytes(twin: Twin) -> bytes:
    """The twin's model file bytes (reproducible: equal twins, equal bytes)."""
    buf = io.BytesIO()
    twin.write_model(buf)
    return buf.getvalue()


def data_bytes(data: Any) -> bytes:
    """`data` as bytes: bytes as given, a str of text as UTF-8, a path's file contents."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, Path) or (isinstance(data, str) and len(data) < 4096 and "\n" not in data):
        path = Path(data)
        if path.is_file():
            return path.read_bytes()
        if isinstance(data, Path):
            raise InputError(f"data file not found: {path}")
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    raise InputError("compress takes bytes, a path or text")


def _adapters(kind: str) -> tuple[Callable[..., Any], Callable[..., bytes]]:
    if kind == "table":
        from .table import decode_table, encode_table

        return encode_table, decode_table
    if kind == "series":
        from .series import decode_series, encode_series

        return encode_series, decode_series
    raise InputError(f"compression is not available for {kind} twins")


def compress_report(
    twin: Twin, data: Any, *, embed_model: bool = False, model: bytes | None = None
) -> tuple[bytes, dict[str, Any]]:
    """The compressed bytes of `data` and a report: sizes per section, the model's ideal
    bits (`model_bits`), the coder's and what the side sections cost."""
    raw = data_bytes(data)
    encode, _ = _adapters(twin.kind)
    coded = encode(twin, raw)
    mb = model if model is not None else model_bytes(twin)
    box = pack(twin.kind, coded.counts, raw, mb, coded.side, coded.payload, embed_model=embed_model)
    blob = box.to_bytes()
    report = {"input": len(raw), **coded.stats, "sizes": box.sizes()}
    return blob, report


def compress(twin: Twin, data: Any, *, embed_model: bool = False) -> bytes:
    """`data` (bytes, text or a path) coded with the twin's exact probabilities."""
    return compress_report(twin, data, embed_model=embed_model)[0]


def load_model_bytes(data: bytes) -> Twin:
    """A twin from model file bytes (through a private temporary file)."""
    from .. import load

    fd, tmp = tempfile.mkstemp(suffix=".twin")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return load(tmp)
    finally:
        os.unlink(tmp)


def decompress(blob: bytes, twin: Twin | None = None, *, model: bytes | None = None) -> bytes:
    """The original bytes of a `compress` output; `twin` (or its model file bytes `model`)
    is needed unless the file embeds its model. Any damage is a one-line error."""
    box = Compressed.from_bytes(bytes(blob))
    given = model if model is not None else (model_bytes(twin) if twin is not None else None)
    mb = box.model_bytes(given)
    if twin is None:
        twin = load_model_bytes(mb)
    if twin.kind != box.kind:
        raise CompressedFileError(
            f"this file holds {box.kind} data, the model is a {twin.kind} twin"
        )
    if box.output_size > MAX_OUTPUT:
        raise CompressedFileError("compressed file damaged: its output size is implausible")
    _, decode = _adapters(box.kind)
    try:
        out = decode(twin, box.layout, box.payload, box.counts)
    except CompressedFileError:
        raise
    except (InputError, ValueError, IndexError, OverflowError, UnicodeError, MemoryError) as exc:
        raise CompressedFileError(
            f"compressed file damaged or not for this model: decoding failed ({exc})"
        ) from None
    box.verify_output(out)
    return out
