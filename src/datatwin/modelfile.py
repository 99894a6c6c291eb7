"""Safe model files: a zip holding `model.json` and `arrays.npz`, never pickle.

Writing is atomic (temporary file, then rename) so a failure never leaves a partial file, and
reproducible: the same twin gives the same bytes (fixed zip dates and attributes, `.npy` members
written here rather than by `np.savez`, which stamps the current time).

Reading trusts nothing before checking it: the path must be a regular file (not a device, FIFO
or folder) under `MAX_FILE_BYTES`; the zip holds exactly the two members, none inflating beyond
`MAX_RATIO` or `MAX_UNCOMPRESSED_BYTES`; `model.json` is bounded in size and nesting and holds
only the top-level keys the kinds write; each array's header is read first and its declared shape
must match the bytes present before anything is allocated; arrays are plain numbers (bool, int,
float; never object, structured or text) and floats are finite. The kind-specific loaders then
validate shapes, ranges and sums.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import numpy as np
from numpy.lib import format as npy

from .errors import InputError, ModelFileError
from .outputs import write_file

FORMAT_NAME = "datatwin"
#: the newest model-file format this datatwin reads; a file says the oldest that holds it
#: (`Twin.file_format`), so older datatwin still read what they can score exactly.
#: 2: a text network whose output layer adapts while it reads (nn/adapt.py), or a mixture
#: whose weights learn while they read (text/mixer.py)
FORMAT_VERSION = 2

#: the whole model file
MAX_FILE_BYTES = 4 * 1024**3
#: model.json, uncompressed
_MAX_JSON_BYTES = 64 * 1024 * 1024
#: arrays.npz, uncompressed (and the sum of the arrays inside it)
MAX_UNCOMPRESSED_BYTES = 8 * 1024**3
#: a member inflating more than this many times its stored size ...
MAX_RATIO = 200
#: ... and to more than this many bytes is a zip bomb
_RATIO_FLOOR_BYTES = 32 * 1024 * 1024
#: how deep `[` / `{` may nest in model.json
MAX_JSON_DEPTH = 64
#: how many arrays arrays.npz may hold
MAX_ARRAYS = 1_000_000

MEMBERS = ("model.json", "arrays.npz")
#: top-level keys of model.json that the container and `Twin.save` write; each kind adds the
#: keys its `to_archive` writes (`Twin.archive_keys`)
CONTAINER_KEYS = frozenset({"format", "format_version", "kind", "unit", "structure", "leaderboard"})


@dataclass(frozen=True)
class ArchiveRules:
    """What one kind's files may hold beyond the container: its top-level keys, and the
    arrays (by name pattern) that may hold a non-finite value with a predicate saying which."""

    keys: frozenset[str]
    nonfinite_ok: Mapping[str, Callable[[np.ndarray], bool]]


def rules_for(kind: object, path: Path) -> ArchiveRules:
    """The rules of the twin class registered for `kind` (a ModelFileError if none is)."""
    from .kinds import twin_class

    if not isinstance(kind, str):
        raise ModelFileError(f"{path}: model file names no kind; the file is corrupted")
    try:
        cls = twin_class(kind)
    except InputError:
        raise ModelFileError(f"{path}: unknown model kind {kind!r}; upgrade datatwin") from None
    return ArchiveRules(CONTAINER_KEYS | cls.archive_keys, cls.archive_nonfinite)


#: numpy kinds an array may have: bool, signed, unsigned, float
_ARRAY_KINDS = "biuf"

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Write an output file via `write(fileobj)`; see `datatwin.outputs.write_file`.

    Regular files are replaced atomically, devices and FIFOs written through; a full disk is a
    one-line `InputError`.
    """
    write_file(path, write)


def _member(name: str, compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A zip entry with a fixed date and attributes, so equal content gives equal bytes."""
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = compress
    info.create_system = 3
    info.external_attr = _FILE_ATTR
    return info


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """`arrays` as an .npz (what `np.load` reads), the same bytes for the same arrays."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            with zf.open(_member(name + ".npy", zipfile.ZIP_STORED), "w", force_zip64=True) as fh:
                npy.write_array(fh, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def write_archive(fh: BinaryIO, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write a model file's bytes to `fh` (which `save_archive` makes atomic)."""
    header = {"format": FORMAT_NAME, "format_version": 1, **meta}
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(
                f"array {name!r} has dtype object; model files hold numeric arrays only"
            )
    text = json.dumps(header, ensure_ascii=False, allow_nan=False)
    inner = npz_bytes(arrays)
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_member("model.json"), text.encode("utf-8"))
        zf.writestr(_member("arrays.npz"), inner)


def save_archive(
    path: str | os.PathLike,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    stdout_ok: bool = False,
) -> None:
    """Write a model file: `meta` (JSON-serialisable) and named numeric arrays."""
    write_file(path, lambda fh: write_archive(fh, meta, arrays), stdout_ok=stdout_ok)


# ---- reading ---------------------------------------------------------------------------
def _open_regular(path: Path) -> BinaryIO:
    """Open `path` for reading only if it is a regular file of a plausible size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(
            f"model file not found: {path}; run `datatwin fit DATA -o {path}` first"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    _require_regular(path, st)
    try:  # O_NONBLOCK: a FIFO swapped in after the stat cannot make open() hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    fh = open(fd, "rb")  # noqa: SIM115  (returned to the caller, who closes it)
    try:
        _require_regular(path, os.fstat(fd))
    except BaseException:
        fh.close()
        raise
    return fh


def _require_regular(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{path} is a folder, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(
            f"{path} is not a regular file (a device, FIFO or socket); give a model file"
        )
    if st.st_size > MAX_FILE_BYTES:
        raise ModelFileError(
            f"{path} is {st.st_size / 1024**3:.1f} GiB, more than a model file may be "
            f"({MAX_FILE_BYTES / 1024**3:.0f} GiB); it is not a datatwin model file"
        )


def _check_members(path: Path, infos: list[zipfile.ZipInfo], inner: bool) -> None:
    """Refuse zip entries that inflate implausibly (zip bombs) or too far in total."""
    total = 0
    for info in infos:
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and (
            info.file_size > _RATIO_FLOOR_BYTES
        ):
            raise ModelFileError(
                f"{path}: member {info.filename!r} inflates {info.file_size} bytes from "
                f"{info.compress_size}; refusing a zip bomb"
            )
        total += info.file_size
    if total > MAX_UNCOMPRESSED_BYTES:
        what = "arrays.npz" if inner else "the model file"
        raise ModelFileError(
            f"{path}: {what} unpacks to {total} bytes, more than {MAX_UNCOMPRESSED_BYTES}; "
            "refusing it"
        )


def json_depth(text: str) -> int:
    """How deep `[` and `{` nest in JSON `text` (strings skipped); no recursion."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text).encode("utf-8", "replace")
    b = np.frombuffer(bare, dtype=np.uint8)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int64)
    step -= np.isin(b, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} in model.json")


def _read_meta(path: Path, zf: zipfile.ZipFile) -> dict[str, Any]:
    """model.json: bounded in size and depth, plain JSON (no NaN), only known top-level keys."""
    if zf.getinfo("model.json").file_size > _MAX_JSON_BYTES:
        raise ModelFileError(f"{path}: model.json is implausibly large; the file is corrupted")
    text = zf.read("model.json").decode("utf-8")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(
            f"{path}: model.json nests {depth} levels deep (at most {MAX_JSON_DEPTH}); "
            "the file is corrupted or tampered with"
        )
    meta = json.loads(text, parse_constant=_no_constant)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not a datatwin model file (wrong format tag)")
    return meta


def _check_keys(path: Path, meta: dict[str, Any], keys: frozenset[str]) -> None:
    unknown = sorted(set(meta) - keys)
    if unknown:
        raise ModelFileError(
            f"{path}: model.json has unknown entries {', '.join(map(repr, unknown[:5]))}; "
            "the file is corrupted, tampered with, or from a newer datatwin"
        )


def _read_header(path: Path, name: str, fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, order and dtype an .npy member declares, checked to be plain numbers."""
    version = npy.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(fh)
    else:
        raise ModelFileError(f"{path}: array {name!r} has an unsupported .npy version {version}")
    if (
        dtype.kind not in _ARRAY_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.hasobject
    ):
        raise ModelFileError(
            f"{path}: array {name!r} has dtype {dtype}; model files hold plain numbers only"
        )
    if any(d < 0 for d in shape):
        raise ModelFileError(f"{path}: array {name!r} declares a negative shape {shape}")
    return shape, fortran, dtype


def _read_array(path: Path, npz: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member, its declared size checked against the bytes present before allocating."""
    name = info.filename[:-4]
    with npz.open(info) as fh:
        shape, fortran, dtype = _read_header(path, name, fh)
        available = info.file_size - fh.tell()
        declared = math.prod(shape) * dtype.itemsize
        if declared != available:
            raise ModelFileError(
                f"{path}: array {name!r} declares {shape} x {dtype} = {declared} bytes but "
                f"holds {available}; the file is corrupted or tampered with"
            )
        data = bytearray(declared)
        if cast(io.BufferedIOBase, fh).readinto(data) != declared:
            raise ModelFileError(f"{path}: array {name!r} is truncated")
    arr = np.frombuffer(data, dtype=dtype)
    return arr.reshape(shape, order="F" if fortran else "C")


def _check_finite(path: Path, name: str, arr: np.ndarray, rules: ArchiveRules) -> None:
    """Floats in a model file are finite, except where a kind stores +inf on purpose."""
    if arr.dtype.kind != "f" or bool(np.isfinite(arr).all()):
        return
    for pattern, ok in rules.nonfinite_ok.items():
        if re.fullmatch(pattern, name) and ok(arr):
            return
    raise ModelFileError(
        f"{path}: array {name!r} holds NaN or infinity; the model file is corrupted or tampered with"
    )


def _read_arrays(path: Path, raw: bytes) -> dict[str, np.ndarray]:
    """Every array of arrays.npz, each checked before it is read."""
    with zipfile.ZipFile(io.BytesIO(raw)) as npz:
        infos = npz.infolist()
        if len(infos) > MAX_ARRAYS:
            raise ModelFileError(f"{path}: arrays.npz holds {len(infos)} arrays; refusing it")
        _check_members(path, infos, inner=True)
        arrays: dict[str, np.ndarray] = {}
        for info in infos:
            name = info.filename[:-4]
            if not info.filename.endswith(".npy") or name in arrays:
                raise ModelFileError(
                    f"{path}: arrays.npz has an unexpected member {info.filename!r}"
                )
            arr = _read_array(path, npz, info)
            arrays[name] = arr
    return arrays


def _read_container(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with _open_regular(path) as fh, zipfile.ZipFile(fh, "r") as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if not set(MEMBERS) <= set(names):
            raise ModelFileError(
                f"{path} is not a datatwin model file (missing model.json or arrays.npz)"
            )
        if sorted(names) != sorted(MEMBERS):
            extra = sorted(set(names) - set(MEMBERS)) or ["a repeated member"]
            raise ModelFileError(
                f"{path}: unexpected member {extra[0]!r} in the model file; "
                "the file is corrupted or tampered with"
            )
        _check_members(path, infos, inner=False)
        meta = _read_meta(path, zf)
        raw = zf.read("arrays.npz")
    return meta, _read_arrays(path, raw)


def load_archive(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a model file; raise `ModelFileError` for anything that is not a valid one."""
    path = Path(path)
    try:
        meta, arrays = _read_container(path)
    except ModelFileError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        KeyError,
    ) as exc:
        raise ModelFileError(
            f"{path} is truncated or not a datatwin model file ({exc}); refit it with `datatwin fit`"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is corrupted ({exc}); refit it with `datatwin fit`") from None
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(
            f"{path}: model file has no valid format_version; the file is corrupted"
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer datatwin (format {version} > {FORMAT_VERSION}); upgrade datatwin to read it"
        )
    rules = rules_for(meta.get("kind"), path)
    _check_keys(path, meta, rules.keys)
    for name, arr in arrays.items():
        _check_finite(path, name, arr, rules)
    return meta, arrays


def require(cond: bool, path_or_what: str, problem: str) -> None:
    """Validation helper for loaders: raise ModelFileError if `cond` is false."""
    if not cond:
        raise ModelFileError(
            f"{path_or_what}: {problem}; the model file is corrupted or tampered with"
        )


def require_integer(arrays: Mapping[str, np.ndarray], names: list[str], what: str) -> None:
    """Arrays a component stores as integers (counts, indices, code points, flags) must come
    back as integers: a float array, even of whole numbers, is refused, never cast."""
    for name in names:
        arr = arrays.get(name)
        if arr is not None and arr.dtype.kind not in "iub":
            raise ModelFileError(
                f"{what}: array {name!r} holds {arr.dtype} values where integers belong; "
                "the model file is corrupted or tampered with"
            )
