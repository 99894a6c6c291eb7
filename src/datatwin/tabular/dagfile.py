"""Edges you write down: a DAG file (JSON pairs or `parent -> child` lines) and edge checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import InputError


def parse_edges(edges: Iterable[Sequence[object]], columns: list[str]) -> list[tuple[str, str]]:
    """`edges` as (parent, child) name pairs, each naming a column of the data."""
    out = []
    for e in edges:
        if len(e) != 2:
            raise InputError(f"an edge must be a pair (parent, child), got {e!r}")
        a, b = str(e[0]), str(e[1])
        for c in (a, b):
            if c not in columns:
                raise InputError(f"edge {a} -> {b}: no column named {c!r} in the data")
        out.append((a, b))
    return out


def read_dag_file(path: str | Path) -> list[tuple[str, str]]:
    """Edges from a file: JSON [[parent, child], ...] or lines `parent -> child` / `parent,child`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"DAG file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"--dag {path} is not UTF-8 text (byte {exc.start}); give edges as "
            "`parent -> child` lines or JSON pairs"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read the DAG file {path}: {exc.strerror or exc}") from None
    text_s = text.strip()
    if text_s.startswith("[") or text_s.startswith("{"):
        try:
            doc = json.loads(text_s)
        except json.JSONDecodeError as exc:
            raise InputError(f"DAG file {path} is not valid JSON ({exc})") from None
        if isinstance(doc, dict):
            doc = doc.get("edges", [])
        if not isinstance(doc, list) or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 for e in doc
        ):
            raise InputError(f"DAG file {path}: expected a JSON list of [parent, child] pairs")
        return [(str(a), str(b)) for a, b in doc]
    edges = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        sep = "->" if "->" in line else ","
        parts = [p.strip() for p in line.split(sep)]
        if len(parts) != 2 or not all(parts):
            raise InputError(
                f"DAG file {path}: cannot read the line {line!r}; write `parent -> child`"
            )
        edges.append((parts[0], parts[1]))
    return edges
