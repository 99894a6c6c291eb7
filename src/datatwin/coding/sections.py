"""Side sections of a compressed file (formats, exceptions, identifiers): framing and a
general-purpose packer (plain, zlib or raw LZMA2, whichever is shortest, one mode byte)."""

from __future__ import annotations

import lzma
import zlib

from .wire import ByteReader, CompressedFileError, text, varint

_DICT = 1 << 22
_LZMA = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": _DICT}]


def _filters(size: int) -> list[dict[str, int]]:
    """LZMA2 with a dictionary no larger than the body needs (setting up a 4 MiB one costs
    milliseconds; the decoder's 4 MiB dictionary reads any smaller one's stream)."""
    dict_size = min(_DICT, max(1 << 12, 1 << max(size - 1, 1).bit_length()))
    return [{**_LZMA[0], "dict_size": dict_size}]


def pack_bytes(body: bytes) -> bytes:
    """`body` behind one mode byte: 0 plain, 1 zlib, 2 raw LZMA2 (the shortest)."""
    options = [b"\x00" + body]
    if len(body) > 16:
        options.append(b"\x01" + zlib.compress(body, 9))
        options.append(b"\x02" + lzma.compress(body, lzma.FORMAT_RAW, filters=_filters(len(body))))
    return min(options, key=len)


def unpack_bytes(data: bytes, what: str) -> bytes:
    if not data:
        raise CompressedFileError(f"compressed file damaged: {what} is truncated")
    mode, body = data[0], data[1:]
    try:
        if mode == 0:
            return body
        if mode == 1:
            return zlib.decompress(body)
        if mode == 2:
            return lzma.decompress(body, lzma.FORMAT_RAW, filters=_LZMA)
    except (zlib.error, lzma.LZMAError):
        raise CompressedFileError(f"compressed file damaged: {what} does not decompress") from None
    raise CompressedFileError(f"compressed file damaged: {what} has an unknown mode {mode}")


def frame(parts: list[bytes]) -> bytes:
    """Length-prefixed parts, one after the other."""
    return b"".join(varint(len(p)) + p for p in parts)


def unframe(data: bytes, n: int, what: str) -> list[bytes]:
    r = ByteReader(data, what)
    parts = [r.take(r.varint(len(data))) for _ in range(n)]
    r.end()
    return parts


def texts_bytes(values: list[str]) -> bytes:
    return varint(len(values)) + b"".join(text(v) for v in values)


def read_texts(r: ByteReader, limit: int) -> list[str]:
    return [r.text() for _ in range(r.varint(limit))]
