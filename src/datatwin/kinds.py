"""Registry of data kinds: kind name -> twin class, imported lazily, plus kind inference."""

from __future__ import annotations

import importlib
from pathlib import Path

from .base import Twin
from .errors import InputError

_KINDS: dict[str, str] = {
    "table": "datatwin.tabular.twin:TableTwin",
    "text": "datatwin.text.twin:TextTwin",
    "events": "datatwin.text.twin:EventsTwin",
    "series": "datatwin.series.twin:SeriesTwin",
}


def available_kinds() -> list[str]:
    """Kinds whose implementation is importable."""
    out = []
    for name in _KINDS:
        try:
            twin_class(name)
        except InputError:
            continue
        out.append(name)
    return out


def twin_class(kind: str) -> type[Twin]:
    """The twin class implementing `kind`."""
    if kind not in _KINDS:
        raise InputError(f"unknown kind {kind!r}; choose one of: {', '.join(_KINDS)}")
    module_name, _, cls_name = _KINDS[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("datatwin"):
            raise InputError(
                f"kind {kind!r} is not available in this version of datatwin"
            ) from None
        raise
    cls: type[Twin] = getattr(module, cls_name)
    return cls


def infer_kind(path: Path) -> str:
    """A .txt file or a folder is text; anything else is a table (events/series need --kind)."""
    if path.is_dir() or path.suffix.lower() == ".txt":
        return "text"
    return "table"
