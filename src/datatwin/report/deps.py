"""Lazy imports of the optional `report` extra (matplotlib, scikit-learn)."""

from __future__ import annotations

from types import ModuleType

from ..errors import DataTwinError

HINT = 'install the report extra: pip install "datatwin[report]"'


class MissingExtraError(DataTwinError):
    """matplotlib or scikit-learn is not installed."""

    exit_code = 2


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError(f"the report needs matplotlib; {HINT}") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def sklearn() -> None:
    """Fail with one line if scikit-learn is missing."""
    try:
        import sklearn as _  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"the evaluation needs scikit-learn; {HINT}") from None
