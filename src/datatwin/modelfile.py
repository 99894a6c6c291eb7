"""Safe model files: a zip holding `model.json` and `arrays.npz`, never pickle.

Writing is atomic (temporary file, then rename) so a failure never leaves a partial file.
Reading checks the container, the format version, and loads arrays with
`allow_pickle=False`; the kind-specific loaders then validate shapes, ranges and sums.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ModelFileError

FORMAT_NAME = "datatwin"
FORMAT_VERSION = 1
_MAX_JSON_BYTES = 64 * 1024 * 1024


def _umask() -> int:
    """The process umask, read without changing it where the OS says it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)  # elsewhere: set and restore (briefly racy in threaded programs)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Call `write(fileobj)` on a temporary file next to `path`, then rename it into place."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:  # no such folder, no permission: bad usage, one line
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_archive(
    path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Write a model file: `meta` (JSON-serialisable) and named numeric arrays."""
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta}
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(
                f"array {name!r} has dtype object; model files hold numeric arrays only"
            )
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("model.json", json.dumps(header, ensure_ascii=False, allow_nan=False))
            zf.writestr("arrays.npz", buf.getvalue())

    atomic_write_bytes(path, write)


def load_archive(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a model file; raise `ModelFileError` for anything that is not a valid one."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(
            f"model file not found: {path}; run `datatwin fit DATA -o {path}` first"
        )
    try:
        with zipfile.ZipFile(path, "r") as zf:
            names = set(zf.namelist())
            if not {"model.json", "arrays.npz"} <= names:
                raise ModelFileError(
                    f"{path} is not a datatwin model file (missing model.json or arrays.npz)"
                )
            if zf.getinfo("model.json").file_size > _MAX_JSON_BYTES:
                raise ModelFileError(
                    f"{path}: model.json is implausibly large; the file is corrupted"
                )
            meta = json.loads(zf.read("model.json").decode("utf-8"))
            raw = zf.read("arrays.npz")
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not a datatwin model file (wrong format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(
            f"{path}: model file has no valid format_version; the file is corrupted"
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer datatwin (format {version} > {FORMAT_VERSION}); upgrade datatwin to read it"
        )
    return meta, arrays


def require(cond: bool, path_or_what: str, problem: str) -> None:
    """Validation helper for loaders: raise ModelFileError if `cond` is false."""
    if not cond:
        raise ModelFileError(
            f"{path_or_what}: {problem}; the model file is corrupted or tampered with"
        )
