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
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

LOGGER = logging.getLogger("datatwin")
_console = Console(stderr=True)
_spinners = False


class _NoteHandler(logging.Handler):
    """Prints each record as one `note:` line on stderr (rich markup escaped)."""

    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

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
def step(message: str) -> Iterator[None]:
    """Show a spinner with `message` while a long step runs (CLI, on a terminal only)."""
    if _spinners and sys.stderr.isatty():
        with _console.status(message):
            yield
    else:
        yield
