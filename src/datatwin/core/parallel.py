"""Independent pieces of one fit on several cores: a map over forked worker processes.

A fit's pieces (e.g. one tree per column, every tree over the same state columns) are pure
functions of data the parent already holds. Forked workers see that data without copying it
(copy on write), and only the small results travel back, so the result is the same as the
serial loop's, bit for bit, in the same order. Workers: `DATATWIN_WORKERS` (1 turns it off),
else the cores this process may use. Forking is skipped where it is unsafe or not worth it:
no `fork` on the platform, torch loaded (its thread pools do not survive a fork), other
threads running (e.g. a Dask client's), inside a daemon process (a Dask worker), or too
little work. The command line's spinners redraw from threads of their own: they are paused
while the workers fork (`progress.paused`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from .. import progress

T = TypeVar("T")
R = TypeVar("R")

#: the function and shared arguments of the running map, inherited by forked workers
_SHARED: tuple[Callable[..., Any], tuple[Any, ...]] | None = None


def workers() -> int:
    """Worker processes a parallel map may use."""
    env = os.environ.get("DATATWIN_WORKERS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _fork_safe() -> bool:
    """Forking copies one thread: only when no other thread could hold a lock at that moment."""
    return (
        "fork" in mp.get_all_start_methods()
        and "torch" not in sys.modules
        and not mp.current_process().daemon
        and threading.active_count() == 1
    )


def _call(item: Any) -> Any:
    assert _SHARED is not None
    func, shared = _SHARED
    return func(item, *shared)


def parallel_map(
    func: Callable[..., R],
    items: Sequence[T],
    *shared: Any,
    worth_it: bool = True,
    on_result: Callable[[float], None] | None = None,
) -> list[R]:
    """[func(item, *shared) for item in items], on forked workers when that is safe and
    `worth_it` (the caller's judgement of the work); results in the order of `items`.
    `on_result(1)` is called as each result arrives (a progress meter's `advance`)."""
    n = min(workers(), len(items))
    tick = on_result or (lambda amount: None)
    if n < 2 or not worth_it:
        return [_ticked(func(item, *shared), tick) for item in items]
    global _SHARED
    _SHARED = (func, shared)
    try:
        with progress.paused():  # a spinner's thread stops while the workers fork
            if not _fork_safe():
                pool = None
            else:
                pool = ProcessPoolExecutor(n, mp_context=mp.get_context("fork"))
                results = pool.map(_call, items)  # every item submitted: workers forked
        if pool is None:
            return [_ticked(func(item, *shared), tick) for item in items]
        with pool:
            return [_ticked(r, tick) for r in results]
    finally:
        _SHARED = None


def _ticked(result: R, tick: Callable[[float], None]) -> R:
    tick(1)
    return result


def _noop() -> None:
    return None


class WorkerPool:
    """Forked workers kept for several maps (the rounds of a search), forked once, on
    entering, with the data the parent holds then: `map(items)` is [func(item, *shared)
    for item in items] in order, on the workers when they could fork (as `parallel_map`),
    else in this process. Results are the serial loop's, bit for bit."""

    def __init__(self, func: Callable[..., R], *shared: Any, worth_it: bool = True):
        self.func, self.shared, self.worth_it = func, shared, worth_it
        self.pool: ProcessPoolExecutor | None = None
        self.n = workers()

    def __enter__(self) -> WorkerPool:
        global _SHARED
        if self.n < 2 or not self.worth_it:
            return self
        _SHARED = (self.func, self.shared)  # the workers keep their copy
        try:
            with progress.paused():
                if _fork_safe():
                    self.pool = ProcessPoolExecutor(self.n, mp_context=mp.get_context("fork"))
                    self.pool.submit(_noop).result()  # every worker forked now
        finally:
            _SHARED = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def map(self, items: Sequence[T]) -> list[Any]:
        if self.pool is None or len(items) < 2:
            return [self.func(item, *self.shared) for item in items]
        chunk = max(1, len(items) // (4 * self.n))
        return list(self.pool.map(_call, items, chunksize=chunk))
