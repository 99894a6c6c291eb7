"""Writing output files without ever destroying an input, a device or a half-written file.

* `check_output` / `check_outputs` run before any work: an output that is the same file as an
  input (also through symlinks and hard links), a folder, or in a missing or read-only folder is
  refused in one line, so a typo never costs a long fit.
* `write_file` writes a regular file (or a path that does not exist yet) atomically: a
  temporary file next to it, renamed into place, removed on any failure (SIGTERM included once
  the CLI turns it into an exception). Character devices, FIFOs, sockets and names of the
  process's own streams (/dev/stdout, /dev/fd/N, /proc/self/fd/N, ...) are opened and written
  through: never replaced. `-` is stdout where the caller allows it.
* A full disk (ENOSPC, EDQUOT) or a file-size limit (EFBIG) is a one-line `InputError`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from .errors import InputError

STDOUT = "-"

#: how `write_file` treats a path: stdout, opened and written through, or atomically replaced
WriteMode = Literal["stdout", "through", "atomic"]

PathLike = str | os.PathLike

#: names that always mean a stream of this process, whatever they point at right now
_STREAM_NAME = re.compile(
    r"^/(dev/(stdout|stderr|stdin|tty|fd/\d+)|proc/(self|thread-self|\d+)/fd/\d+)$"
)
#: folders whose entries are never renamed over (devices and kernel files)
_SYSTEM_DIRS = ("/dev/", "/proc/", "/sys/")

_NO_SPACE = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
}


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


def _stat(path: PathLike) -> os.stat_result | None:
    """`os.stat(path)` following links, or None when there is nothing there."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_mode(path: PathLike) -> WriteMode:
    """How `write_file` would write `path` (a dry run: nothing is opened or created)."""
    text = os.fspath(path)
    if text == STDOUT:
        return "stdout"
    absolute = os.path.abspath(text)
    if _STREAM_NAME.match(absolute) or absolute.startswith(_SYSTEM_DIRS):
        return "through"
    real = os.path.realpath(text)
    if _STREAM_NAME.match(real) or real.startswith(_SYSTEM_DIRS):
        return "through"
    try:
        st = _stat(text)
    except OSError:
        return "atomic"  # unreadable: the write itself reports it
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        return "through"  # character or block device, FIFO, socket
    return "atomic"


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_folder(path: Path) -> None:
    """The folder a new file goes into exists, is a folder and is writable."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise InputError(f"cannot write {path}: folder {folder} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: folder {folder} is not writable")


def check_output(
    path: PathLike,
    inputs: Mapping[str, PathLike | None] | None = None,
    *,
    label: str = "-o",
    stdout_ok: bool = False,
) -> None:
    """Refuse, in one line, an output that cannot or must not be written; do nothing else.

    `inputs` maps option names (DATA, --schema, ...) to the files the command reads; an output
    that is the same file as one of them is refused like `cp` does.
    """
    text = os.fspath(path)
    if text == STDOUT:
        if not stdout_ok:
            raise InputError(f"{label} -: this output cannot go to stdout; give a file name")
        return
    out = Path(text)
    try:
        st = _stat(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"cannot write {out}: it is a folder; give a file name")
        for name, source in (inputs or {}).items():
            if source is None or os.fspath(source) == STDOUT:
                continue
            try:
                src = _stat(source)
            except OSError:
                continue
            if src is not None and _same(st, src):
                raise InputError(
                    f"{label} {out} and {name} {source} are the same file; "
                    "writing would destroy the input, choose another output"
                )
    if write_mode(out) == "through":
        if st is None or not os.access(out, os.W_OK):
            raise InputError(f"cannot write {out}: not writable")
        return
    _check_folder(out)


def _identity(path: PathLike) -> tuple:
    """What makes two output paths the same file, whether they exist yet or not."""
    st = _stat(path)
    if st is not None:
        return (st.st_dev, st.st_ino)
    p = Path(path)
    return (os.path.realpath(p.parent if str(p.parent) else "."), p.name)


def check_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Mapping[str, PathLike | None],
    stdout_ok: Iterable[str] = (),
) -> None:
    """`check_output` for each output, and no two outputs are the same (regular) file."""
    allowed = set(stdout_ok)
    seen: dict[tuple, str] = {}
    for label, path in outputs.items():
        if path is None:
            continue
        check_output(path, inputs, label=label, stdout_ok=label in allowed)
        if write_mode(path) != "atomic":
            continue
        key = _identity(path)
        if key in seen:
            raise InputError(
                f"{seen[key]} and {label} are the same file ({path}); give each its own file"
            )
        seen[key] = label


def _write_error(path: PathLike, exc: OSError) -> InputError:
    """A one-line error for an OSError met while writing `path`."""
    problem = _NO_SPACE.get(exc.errno or 0)
    if problem:
        return InputError(f"{problem} writing {path}; free some space or choose another -o")
    return InputError(f"cannot write {path}: {exc.strerror or exc}")


def _write_stdout(write: Callable[[BinaryIO], object], streaming: bool = False) -> None:
    """Build the output in memory (so seeking writers work) and copy it to stdout; a
    `streaming` writer (one that never seeks) writes to stdout as it goes."""
    sys.stdout.flush()
    if streaming:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    buf = io.BytesIO()
    write(buf)
    sys.stdout.flush()
    sys.stdout.buffer.write(buf.getbuffer())
    sys.stdout.buffer.flush()


def _write_through(
    path: PathLike, write: Callable[[BinaryIO], object], streaming: bool = False
) -> None:
    """Open an existing device, FIFO or stream and write into it; never create or rename.

    No O_CREAT (nothing is ever made in /dev) and no O_TRUNC (an output that is the shell's
    own `>> log` through /dev/stdout is appended to, as the shell asked). A `streaming`
    writer writes into it as it goes; others are built in memory first.
    """
    buf = io.BytesIO()
    if not streaming:
        write(buf)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _write_error(path, exc) from None
    with open(fd, "wb", closefd=True) as fh:
        if streaming:
            write(fh)
        else:
            fh.write(buf.getbuffer())


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(fileobj)` on a temporary file next to `path`, then rename it into place."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:  # no such folder, no permission: bad usage, one line
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _write_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_file(
    path: PathLike,
    write: Callable[[BinaryIO], object],
    *,
    stdout_ok: bool = False,
    streaming: bool = False,
) -> None:
    """Write an output through `write(fileobj)`: atomically, through a device, or to stdout.

    `-` means stdout only when `stdout_ok`; otherwise it is a file named `-`. Whatever the
    mode, a full disk is one line (`InputError`) and no partial file is left behind.
    `streaming`: `write` never seeks, so stdout and devices get its bytes as they come
    (bounded memory for a large sample) instead of after it has finished; a regular file is
    still replaced atomically.
    """
    mode = write_mode(path)
    if mode == "stdout" and not stdout_ok:
        mode = "atomic"
    try:
        if mode == "stdout":
            _write_stdout(write, streaming)
        elif mode == "through":
            _write_through(path, write, streaming)
        else:
            _write_atomic(Path(path), write)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise _write_error(path, exc) from None
        raise


def check_folder_output(folder: PathLike, label: str = "-o") -> None:
    """A folder to write files into: a folder if it exists, creatable and writable if not."""
    path = Path(folder)
    probe = path
    while True:
        try:
            st = _stat(probe)
        except OSError as exc:
            raise InputError(f"cannot write into {label} {path}: {exc.strerror or exc}") from None
        if st is not None:
            break
        if probe.parent == probe or not str(probe.parent):
            probe = Path(".")
            continue
        probe = probe.parent
    if not stat.S_ISDIR(st.st_mode):
        what = path if probe == path else probe
        raise InputError(f"cannot write into {label} {path}: {what} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {label} {path}: folder {probe} is not writable")
