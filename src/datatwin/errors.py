"""User-facing errors: one clear line naming the problem and the fix.

`InputError` is bad usage or bad input (CLI exit code 2); `ModelFileError` is a model file that
cannot be trusted (also exit code 2). Anything else escaping the CLI is a bug (exit code 1).
"""

from __future__ import annotations


class DataTwinError(Exception):
    """Base class of every error datatwin reports to a user in one line."""

    exit_code = 1


class InputError(DataTwinError, ValueError):
    """The data or the arguments given cannot be used; the message says how to fix them."""

    exit_code = 2


class ModelFileError(DataTwinError, ValueError):
    """A model file is missing, truncated, corrupted, tampered with or from a future version."""

    exit_code = 2
