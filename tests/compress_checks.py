"""Checks every kind's compression tests share: damaged input is a one-line error, and the
CLI round trip is byte-exact and leaves no partial or temporary file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datatwin.cli import main
from datatwin.coding import CompressedFileError
from datatwin.coding.api import decompress


def assert_damage_refused(blob: bytes, twin: Any) -> None:
    """Truncations and single-byte flips (every ~1/40 of the file) are one-line errors."""
    for cut in (3, 20, len(blob) // 2, len(blob) - 1):
        with pytest.raises(CompressedFileError) as info:
            decompress(blob[:cut], twin)
        assert "\n" not in str(info.value)
    for pos in range(0, len(blob), max(1, len(blob) // 40)):
        bad = bytearray(blob)
        bad[pos] ^= 0x10
        with pytest.raises(CompressedFileError) as info:
            decompress(bytes(bad), twin)
        assert "\n" not in str(info.value)


def assert_cli_round_trip(
    twin: Any, raw: bytes, tmp_path: Path, suffix: str, self_contained: bool = True
) -> Path:
    """`compress` then `decompress` give `raw` back (shared model, and self-contained when
    asked); a flipped file is exit 2 with no output and no temporary file. Returns the data
    file written."""
    model = tmp_path / "m.twin"
    twin.save(model)
    data = tmp_path / f"d{suffix}"
    data.write_bytes(raw)
    out = tmp_path / "d.dtz"
    assert main(["-q", "compress", str(model), str(data), "-o", str(out)]) == 0
    back = tmp_path / f"back{suffix}"
    assert main(["-q", "decompress", str(model), str(out), "-o", str(back)]) == 0
    assert back.read_bytes() == data.read_bytes()
    # the CLI fingerprints MODEL by its file's bytes: the twin object agrees with them
    assert decompress(out.read_bytes(), twin) == raw
    if self_contained:
        selfc = tmp_path / "s.dtz"
        argv = ["-q", "compress", str(model), str(data), "-o", str(selfc), "--self-contained"]
        assert main(argv) == 0
        back2 = tmp_path / f"back2{suffix}"
        assert main(["-q", "decompress", str(selfc), "-o", str(back2)]) == 0
        assert back2.read_bytes() == data.read_bytes()
    bad = tmp_path / "bad.dtz"
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 1
    bad.write_bytes(bytes(blob))
    target = tmp_path / f"never{suffix}"
    assert main(["-q", "decompress", str(model), str(bad), "-o", str(target)]) == 2
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    return data
