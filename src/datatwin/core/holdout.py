"""Checks on a holdout given as a file: held-out data must not be the training data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError


def _as_path(x: Any) -> Path | None:
    if isinstance(x, (str, os.PathLike)):
        p = Path(x)
        try:  # a str may be text, not a path (too long a name is an OSError)
            return p if p.is_file() else None
        except (OSError, ValueError):
            return None
    return None


def refuse_training_file_as_holdout(data: Any, holdout: Any) -> None:
    """A holdout that is the training file itself would score the twin on rows it was fit on:
    the leaderboard would reward overfitting. Refuse it in one line."""
    a, b = _as_path(data), _as_path(holdout)
    if a is None or b is None:
        return
    try:
        same = os.path.samefile(a, b)
    except OSError:
        return
    if same:
        raise InputError(
            f"the holdout {b} is the training file itself, so its bits would reward "
            "overfitting; give held-out data (holdout=FILE, --holdout FILE) or a fraction"
        )
