"""Byte-level helpers shared by the container and the layout: varints, strings, a strict
reader whose every failure is one `CompressedFileError` line."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


class CompressedFileError(InputError):
    """A compressed file that is truncated, damaged, of another format or for another model."""


def varint(n: int) -> bytes:
    """LEB128: 7 bits a byte, low first, high bit = more follows (0..127 take one byte)."""
    if n < 0:
        raise ValueError("varints are non-negative")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def text(s: str) -> bytes:
    """A string as varint(byte length) + UTF-8 bytes (lone surrogates kept)."""
    b = s.encode("utf-8", "surrogatepass")
    return varint(len(b)) + b


@dataclass
class ByteReader:
    """Reads `data` front to back; running short or malformed raises CompressedFileError
    naming `what` (e.g. "header", "layout")."""

    data: bytes
    what: str
    pos: int = 0

    def fail(self, problem: str) -> CompressedFileError:
        return CompressedFileError(f"compressed file damaged: {self.what} {problem}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self, limit: int = 1 << 63) -> int:
        n, shift = 0, 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > 63:
                raise self.fail("has an overlong number")
        if n > limit:
            raise self.fail(f"has an out-of-range number ({n} > {limit})")
        return n

    def text(self) -> str:
        raw = self.take(self.varint(len(self.data)))
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise self.fail("has invalid text") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"has {len(self.data) - self.pos} unexpected trailing bytes")
