"""Run BLAS single-threaded while a series twin fits or simulates, or a network samples.

Series fitting does many small dense operations (Cholesky factors of a few hundred columns,
thin matrix products), and a network's sampling multiplies one row at a time; OpenBLAS's
threads cost more than they save on those and, on a busy machine, oversubscribed threads
make them several times slower. This sets the thread count
of the OpenBLAS copies numpy and scipy already loaded to 1 for the duration of a call and
restores it afterwards (what threadpoolctl does, without the dependency; the libraries are
found once per process, so entering it costs microseconds). Anything it cannot find is left
alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


@functools.lru_cache(maxsize=1)
def _controls() -> tuple[tuple[Any, Any], ...]:
    out = []
    dirs = []
    for mod in ("numpy", "scipy"):
        try:
            pkg = Path(str(__import__(mod).__file__)).parent
        except (ImportError, TypeError):
            continue
        dirs += [pkg.parent / f"{mod}.libs", pkg / ".dylibs"]
    mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 1)
    for d in dirs:
        if not d.is_dir():
            continue
        for lib in sorted(d.glob("*openblas*")):
            try:
                handle = ctypes.CDLL(str(lib), mode=mode)  # only if already loaded
            except OSError:
                continue
            setter = next((getattr(handle, s) for s in _SETTERS if hasattr(handle, s)), None)
            getter = next((getattr(handle, g) for g in _GETTERS if hasattr(handle, g)), None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                out.append((getter, setter))
    return tuple(out)


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Limit the loaded OpenBLAS libraries to one thread inside the block."""
    try:
        controls = _controls()
        old = [int(get()) for get, _ in controls]
        for _, set_ in controls:
            set_(1)
    except (OSError, AttributeError, ValueError):  # pragma: no cover - exotic builds
        controls, old = (), []
    try:
        yield
    finally:
        for (_, set_), n in zip(controls, old, strict=True):
            set_(max(int(n), 1))


F = TypeVar("F", bound=Callable[..., Any])


def blas_single_threaded(fn: F) -> F:
    """Decorator form of `single_thread_blas`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_thread_blas():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
