"""The compressed file format: a small header, then the model (optional), layout and payload.

    magic "DTWZ" | format u8 | flags u8 (bit 0: model embedded) | kind (text)
    | n_counts u8, counts (varints) | output size (varint) | output sha256 (32 bytes)
    | model sha256 (32 bytes) | model, layout, payload lengths (varints) | header crc32 (4)
    | model bytes | layout bytes | payload bytes | crc32 of those three (4)

Texts are varint(length) + UTF-8; varints are LEB128. The model fingerprint is the sha256 of
the model file's bytes (model files are written reproducibly, so equal models have equal
fingerprints). `counts` are whatever the kind needs to know when to stop (rows, symbols). The
header is about 90 bytes (at most 1 KB: kind <= 32 bytes, <= 16 counts).

Parsing is strict and every failure is one line (`CompressedFileError`, an `InputError`):
wrong magic, newer format, truncation, trailing bytes, a flipped bit (either crc32), the wrong
model. After decoding, `verify_output` checks the output's size and sha256, so a file either
decompresses to exactly what was compressed or fails with a one-line error.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

from .wire import ByteReader, CompressedFileError, text, varint

MAGIC = b"DTWZ"
#: compressed file format: 3 codes regime and hetero series twins with coding/series_moments.py
#: sums; 4 mixes the text and events caches as one unrolled sum (text/steps.py); 5 computes
#: exp, log and the normal CDF of series and linear-Gaussian cells with coding/fixedmath.py; 6
#: the geometric codes' split and powers (values outside a support) with it too, and a neural
#: table's rows in one fixed order of float64 operations (fixedmath.softmax_rows)
FORMAT = 6
_EMBEDDED = 1
MAX_KIND = 32
MAX_COUNTS = 16


def fingerprint(model_bytes: bytes) -> bytes:
    """sha256 of the model file's bytes."""
    return hashlib.sha256(model_bytes).digest()


@dataclass(frozen=True)
class Compressed:
    """The parts of a compressed file (`to_bytes` / `from_bytes` are inverses)."""

    kind: str
    counts: tuple[int, ...]
    output_size: int
    output_sha256: bytes
    model_sha256: bytes
    layout: bytes
    payload: bytes
    model: bytes | None = None  # the model file's bytes when embedded (self-contained)

    def header(self) -> bytes:
        """Everything before the model/layout/payload sections, its crc32 included."""
        kind = self.kind.encode("ascii")
        if len(kind) > MAX_KIND or len(self.counts) > MAX_COUNTS:
            raise ValueError("kind or counts too long for the header")
        out = bytearray(MAGIC)
        out += bytes([FORMAT, _EMBEDDED if self.model is not None else 0])
        out += text(self.kind) + bytes([len(self.counts)])
        for n in self.counts:
            out += varint(n)
        out += varint(self.output_size) + self.output_sha256 + self.model_sha256
        out += varint(len(self.model or b"")) + varint(len(self.layout))
        out += varint(len(self.payload))
        return bytes(out) + struct.pack("<I", zlib.crc32(out))

    def to_bytes(self) -> bytes:
        body = (self.model or b"") + self.layout + self.payload
        return self.header() + body + struct.pack("<I", zlib.crc32(body))

    def sizes(self) -> dict[str, int]:
        """Bytes per section: header, model, layout, payload, trailer (crc) and total."""
        parts = {
            "header": len(self.header()),
            "model": len(self.model or b""),
            "layout": len(self.layout),
            "payload": len(self.payload),
            "trailer": 4,
        }
        return {**parts, "total": sum(parts.values())}

    @classmethod
    def from_bytes(cls, data: bytes) -> Compressed:
        """Parse and check a compressed file's bytes (not yet against a model)."""
        r = ByteReader(data, "header")
        if data[:4] != MAGIC:
            raise CompressedFileError("not a datatwin compressed file (wrong magic bytes)")
        r.take(4)
        version, flags = r.byte(), r.byte()
        if version > FORMAT:
            raise CompressedFileError(
                f"compressed file format {version} is newer than this datatwin's ({FORMAT}); "
                "upgrade datatwin"
            )
        if version < FORMAT:
            raise CompressedFileError(
                f"compressed file format {version} was written by an older datatwin; this one "
                f"reads format {FORMAT} (decompress it with the datatwin that wrote it)"
            )
        if flags & ~_EMBEDDED:
            raise r.fail("has an unknown format or flags")
        kind = r.text()
        counts = tuple(r.varint() for _ in range(r.byte()))
        output_size = r.varint()
        output_sha, model_sha = r.take(32), r.take(32)
        n_model, n_layout, n_payload = (r.varint(len(data)) for _ in range(3))
        (crc,) = struct.unpack("<I", r.take(4))
        if crc != zlib.crc32(data[: r.pos - 4]):
            raise r.fail("fails its checksum (the file is corrupted)")
        if bool(flags & _EMBEDDED) != (n_model > 0):
            raise r.fail("disagrees with itself about the embedded model")
        body = ByteReader(data, "body", r.pos)
        model = body.take(n_model) if n_model else None
        layout, payload = body.take(n_layout), body.take(n_payload)
        (body_crc,) = struct.unpack("<I", body.take(4))
        body.end()
        if body_crc != zlib.crc32(data[r.pos : body.pos - 4]):
            raise body.fail("fails its checksum (the file is corrupted)")
        if model is not None and fingerprint(model) != model_sha:
            raise body.fail("holds a model that does not match its fingerprint")
        return cls(kind, counts, output_size, output_sha, model_sha, layout, payload, model)

    def model_bytes(self, given: bytes | None = None) -> bytes:
        """The model to decode with: `given` (checked against the fingerprint) or the
        embedded one."""
        if given is None:
            if self.model is None:
                raise CompressedFileError(
                    "this compressed file does not embed its model; pass the model file it "
                    f"was compressed with (sha256 {self.model_sha256.hex()[:16]}...)"
                )
            return self.model
        if fingerprint(given) != self.model_sha256:
            raise CompressedFileError(
                f"wrong model: the file was compressed with model sha256 "
                f"{self.model_sha256.hex()[:16]}..., this one is {fingerprint(given).hex()[:16]}...; "
                "pass the model it was compressed with"
            )
        return given

    def verify_output(self, output: bytes) -> None:
        """Raise unless `output` has the size and sha256 recorded at compression."""
        if len(output) != self.output_size or hashlib.sha256(output).digest() != self.output_sha256:
            raise CompressedFileError(
                "decompressed output fails its checksum (damaged file, or a model or datatwin "
                "version that computes different probabilities); nothing was written"
            )


def pack(
    kind: str,
    counts: tuple[int, ...],
    output: bytes,
    model_bytes: bytes,
    layout: bytes,
    payload: bytes,
    *,
    embed_model: bool = False,
) -> Compressed:
    """A container for `output` (the original bytes) coded as `layout` + `payload`."""
    return Compressed(
        kind=kind,
        counts=tuple(counts),
        output_size=len(output),
        output_sha256=hashlib.sha256(output).digest(),
        model_sha256=fingerprint(model_bytes),
        layout=layout,
        payload=payload,
        model=model_bytes if embed_model else None,
    )
