"""The leaderboard on a terminal: one row per candidate (`core.candidates.Board.rows`)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: the table's width off a terminal (a file or a pipe has no width to fit)
WIDE = 240


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:.4f}" if abs(x) < 1000 else f"{x:.1f}"
    return str(x)


def render(
    entries: list[dict[str, Any]],
    unit: str,
    console: Console | None = None,
    title: str | None = None,
) -> None:
    """Print the leaderboard as a rich table; the selected row is marked with ★."""
    console = console or Console()
    if not console.is_terminal:  # a file or a pipe has no width to fit: labels stay whole
        console = Console(file=console.file, width=max(console.width, WIDE))
    extra_keys: list[str] = []
    for e in entries:
        for k in e:
            if (
                k
                not in {
                    "structure",
                    "train_bits",
                    "holdout_bits",
                    "fit_seconds",
                    "selected",
                    "baseline",
                    "edges",
                    "options",
                }
                and k not in extra_keys
            ):
                extra_keys.append(k)
    table = Table(title=title or f"datatwin leaderboard (bits per {unit}, lower is better)")
    table.add_column("", justify="center")
    table.add_column("structure")
    table.add_column("train bits", justify="right")
    table.add_column("holdout bits", justify="right")
    table.add_column("fit s", justify="right")
    for k in extra_keys:
        table.add_column(k.replace("_", " "), justify="right")
    for e in sorted(entries, key=lambda e: e["holdout_bits"]):
        mark = "★" if e.get("selected") else ("·" if e.get("baseline") else "")
        name = e["structure"] + (" (baseline)" if e.get("baseline") else "")
        table.add_row(
            mark,
            escape(name),
            _fmt(e["train_bits"]),
            _fmt(e["holdout_bits"]),
            _fmt(e.get("fit_seconds", float("nan"))),  # not saved: absent once loaded
            *[_fmt(e.get(k, "")) for k in extra_keys],
        )
    console.print(table)
