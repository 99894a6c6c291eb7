"""Progress reporting on stderr (rich), silent when stderr is not a terminal or when quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

_console = Console(stderr=True)
_enabled = True


def set_enabled(flag: bool) -> None:
    global _enabled
    _enabled = flag


def console() -> Console:
    return _console


def note(message: str) -> None:
    """A one-line note for the user on stderr (e.g. an ID column left out of the likelihood)."""
    if _enabled:
        _console.print(f"[dim]note:[/dim] {message}", highlight=False)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Show a spinner with `message` while a long step runs (only on a terminal)."""
    if _enabled and sys.stderr.isatty():
        with _console.status(message):
            yield
    else:
        yield
