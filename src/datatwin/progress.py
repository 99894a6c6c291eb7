"""Progress and notes.

The library reports through `logging` (the "datatwin" logger): a note for the user (a column
left out of the likelihood, a holdout too small to trust) is an INFO record, so a program that
uses datatwin sees notes only when it configures logging, and nothing is printed behind its
back. The command line calls `enable_cli()`, which prints notes on stderr and shows a spinner
while long steps run on a terminal; `-q` leaves both off.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

LOGGER = logging.getLogger("datatwin")
_console = Console(stderr=True)
_spinners = False


@dataclass
class _Shown:
    """A rich Status or Progress on screen and the threads that redraw it."""

    display: Any
    threads: set[threading.Thread]


#: the spinners and bars on screen, innermost last
_displays: list[_Shown] = []


class _NoteHandler(logging.Handler):
    """Prints each record as one `note:` line on stderr (rich markup escaped)."""

    def emit(self, record: logging.LogRecord) -> None:
        _console.print(f"[dim]note:[/dim] {escape(record.getMessage())}", highlight=False)


def enable_cli(quiet: bool) -> None:
    """Print notes and show spinners (the CLI's behaviour), unless `quiet`."""
    global _spinners
    _spinners = not quiet
    for h in list(LOGGER.handlers):
        if isinstance(h, _NoteHandler):
            LOGGER.removeHandler(h)
    if not quiet:
        LOGGER.addHandler(_NoteHandler())
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False


def note(message: str) -> None:
    """A one-line note for the user (e.g. an ID column left out of the likelihood)."""
    LOGGER.info(message)


def console() -> Console:
    return _console


@contextmanager
def meter(
    message: str, total: float | None, unit: str = "B", *, summary: bool = True
) -> Iterator[Callable[[float], None]]:
    """A progress bar with rate and time left while a long stage advances (CLI, on a
    terminal); elsewhere, unless quiet, one line when it ends: how much, how long, how fast
    (not with `summary=False`: an inner stage whose step prints its own line).
    Yields `advance(amount)`."""
    message = escape(message)  # a file name may hold [brackets]
    start = time.perf_counter()
    done = [0.0]
    if _spinners and sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        done_column = TransferSpeedColumn() if unit == "B" else MofNCompleteColumn()
        columns = [TextColumn(message), BarColumn(), done_column, TimeRemainingColumn()]
        before = set(threading.enumerate())
        with Progress(*columns, console=_console, transient=True) as bar, _shown(bar, before):
            task = bar.add_task(message, total=total)

            def advance(amount: float) -> None:
                done[0] += amount
                bar.update(task, advance=amount)

            yield advance
    else:

        def advance(amount: float) -> None:
            done[0] += amount

        yield advance
    secs = time.perf_counter() - start
    if _spinners and summary and secs >= 1.0:
        size = _human(done[0], unit)
        _console.print(
            f"[dim]{message}: {size} in {secs:.1f} s ({_human(done[0] / secs, unit)}/s)[/dim]",
            highlight=False,
        )


@contextmanager
def _shown(display: Any, before: set[threading.Thread]) -> Iterator[None]:
    """Keep `display` (just started) in `_displays` with the threads it started, while it
    is on screen."""
    entry = _Shown(display, set(threading.enumerate()) - before)
    _displays.append(entry)
    try:
        yield
    finally:
        _displays.remove(entry)


@contextmanager
def paused() -> Iterator[None]:
    """Stop the spinners and bars inside the block, their redrawing threads ended, then
    start them again: a process forked inside it (`core.parallel`) copies no thread that
    could hold a lock of the console or of stderr."""
    shown = list(_displays)
    for entry in reversed(shown):
        entry.display.stop()
        for t in entry.threads:
            t.join(timeout=5.0)
    try:
        yield
    finally:
        for entry in shown:
            before = set(threading.enumerate())
            entry.display.start()
            entry.threads = set(threading.enumerate()) - before


def _human(amount: float, unit: str) -> str:
    for prefix in ("", "k", "M", "G", "T"):
        if abs(amount) < 1000 or prefix == "T":
            return f"{amount:.3g} {prefix}{unit}"
        amount /= 1000
    return f"{amount:.3g} {unit}"


#: (step message, seconds) of the steps run inside `recording()`, else None
_records: list[tuple[str, float]] | None = None


@contextmanager
def recording() -> Iterator[list[tuple[str, float]]]:
    """Collect every `step` run inside the block as (message, seconds), in the order they
    end (a benchmark's stage times)."""
    global _records
    outer, _records = _records, []
    try:
        yield _records
    finally:
        _records = outer


@contextmanager
def step(message: str) -> Iterator[None]:
    """Show a spinner with `message` while a long step runs (CLI, on a terminal); elsewhere,
    unless quiet, one line with its time when it took at least a second."""
    start = time.perf_counter()  # (messages are escaped: trees[bins=20] is not markup)
    if _spinners and sys.stderr.isatty():
        before = set(threading.enumerate())
        with _console.status(escape(message)) as status, _shown(status, before):
            yield
    else:
        yield
    secs = time.perf_counter() - start
    if _records is not None:
        _records.append((message, secs))
    if _spinners and secs >= 1.0:
        _console.print(f"[dim]{escape(message)}: {secs:.1f} s[/dim]", highlight=False)
