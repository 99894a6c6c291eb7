"""datatwin: digital twins of datasets, fit by maximum likelihood and chosen by holdout bits.

import datatwin
twin = datatwin.fit(df, seed=0)      # leaderboard of structures, best one kept
twin.sample(1000, seed=1)
twin.save("data.twin"); datatwin.load("data.twin")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Twin
from .errors import DataTwinError, InputError, ModelFileError

__version__ = "0.1.0"

__all__ = [
    "DataTwinError",
    "EventsTwin",
    "InputError",
    "ModelFileError",
    "SeriesTwin",
    "TableTwin",
    "TextTwin",
    "Twin",
    "fit",
    "load",
    "__version__",
]

#: the twin classes, importable from `datatwin` but loaded only when asked for
_LAZY = {"TableTwin": "table", "TextTwin": "text", "EventsTwin": "events", "SeriesTwin": "series"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from .kinds import twin_class

        return twin_class(_LAZY[name])
    raise AttributeError(f"module 'datatwin' has no attribute {name!r}")


def fit(data: Any, *, kind: str = "table", **options: Any) -> Twin:
    """Fit a twin of `data` (a DataFrame or a path), choosing the structure by holdout bits.

    `options` go to the kind's `fit_select` (for tables: structures, holdout, seed, schema,
    refit, bins, score, ...); an option the kind does not take is an InputError that lists
    the ones it does. `structures=twin.structure` refits exactly the structure a twin names.
    """
    from .core.holdout import refuse_training_file_as_holdout
    from .core.options import check_keywords
    from .kinds import twin_class

    cls = twin_class(kind)
    check_keywords(cls.fit_select, options, f"kind {kind!r}")
    refuse_training_file_as_holdout(data, options.get("holdout"))
    if _is_dask_frame(data):  # statistics per partition, added up (tabular/dask.py)
        if kind != "table":
            raise InputError(f"a Dask DataFrame fits a table twin, not kind {kind!r}")
        from .tabular.dask import DaskRows

        data = DaskRows(data)
    return cls.fit_select(data, **options)


def _is_dask_frame(data: Any) -> bool:
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(
        data, "to_delayed"
    )


def load(path: str | Path) -> Twin:
    """Load a saved twin (never runs code; validates everything)."""
    from .kinds import twin_class
    from .modelfile import load_archive

    meta, arrays = load_archive(path)
    kind = meta.get("kind")
    if not isinstance(kind, str):
        raise ModelFileError(f"{path}: model file names no kind; the file is corrupted")
    try:
        cls = twin_class(kind)
    except InputError:
        raise ModelFileError(f"{path}: unknown model kind {kind!r}; upgrade datatwin") from None
    try:
        twin = cls.from_archive(meta, arrays, str(path))
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(
            f"{path}: model file is corrupted or tampered with ({type(exc).__name__}: {exc})"
        ) from None
    twin.leaderboard = list(meta.get("leaderboard", []))
    return twin
