"""Stored components dispatch by a kind tag through a registry, never by `isinstance` or by
guessing from the arrays' names.

    CONDITIONALS = ComponentRegistry("conditional table")

    @CONDITIONALS.register("tree")
    class TreeCPT: ...                       # stores itself with tag "tree"

    cpt = CONDITIONALS.cls("tree").from_arrays(arrays, prefix, ...)

A new component registers its tag next to its class; loading an unknown tag is a
ModelFileError that says to upgrade datatwin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import ModelFileError

C = TypeVar("C", bound=type[Any])


class ComponentRegistry(Generic[C]):
    """Tag -> class for one family of stored components."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._by_tag: dict[str, C] = {}

    def register(self, tag: str) -> Callable[[C], C]:
        def deco(cls: C) -> C:
            if tag in self._by_tag:
                raise ValueError(f"{self.what} tag {tag!r} is registered twice")
            self._by_tag[tag] = cls
            cls.component_tag = tag
            return cls

        return deco

    def tags(self) -> list[str]:
        return list(self._by_tag)

    def cls(self, tag: object, source: str = "model file") -> C:
        """The class stored under `tag`, or a one-line ModelFileError."""
        if not isinstance(tag, str) or tag not in self._by_tag:
            raise ModelFileError(
                f"{source}: unknown {self.what} {tag!r} (known: {', '.join(self._by_tag)}); "
                "the file is corrupted or needs a newer datatwin"
            )
        return self._by_tag[tag]

    def tag_of(self, obj: object) -> str:
        tag = getattr(type(obj), "component_tag", None)
        if tag is None or self._by_tag.get(tag) is not type(obj):
            raise TypeError(f"{type(obj).__name__} is not a registered {self.what}")
        return str(tag)
