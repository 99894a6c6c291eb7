"""Keyword checks: an unknown option is an InputError naming the valid ones."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InputError


def accepted_keywords(fn: Callable[..., Any]) -> list[str]:
    """The keyword parameters `fn` accepts by name (self/cls and *args/**kwargs left out)."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "cls"):
            out.append(p.name)
    return out


def check_keywords(
    fn: Callable[..., Any], kwargs: Mapping[str, Any], what: str, skip: int = 1
) -> None:
    """Refuse keywords `fn` does not take, listing the ones it does (the first `skip`
    parameters, e.g. the data, are not options)."""
    valid = accepted_keywords(fn)[skip:]
    bad = [k for k in kwargs if k not in valid]
    if bad:
        raise InputError(
            f"unknown option(s) {', '.join(map(repr, bad))} for {what}; valid: {', '.join(valid)}"
        )
