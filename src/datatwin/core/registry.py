"""Structures as a registry per kind: name -> builder, with the help text the CLI shows.

    TABLE_STRUCTURES = StructureRegistry("table")

    @TABLE_STRUCTURES.register("chow-liu", "maximum-likelihood tree over the columns")
    def build_chow_liu(ctx, structure): ...

The CLI's `--structures` help and its validation come from the registry, so a new structure
is one module plus one `register` line (walkthrough: docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import InputError

B = TypeVar("B", bound=Callable[..., Any])


@dataclass(frozen=True)
class StructureEntry(Generic[B]):
    """A registered structure: its name, one line of help, whether it is tried by default."""

    name: str
    help: str
    builder: B
    default: bool = True


class StructureRegistry(Generic[B]):
    """The structures of one kind, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, StructureEntry[B]] = {}

    def register(self, name: str, help: str, *, default: bool = True) -> Callable[[B], B]:
        """Decorator: register `builder` under `name` (a name can be registered once)."""

        def deco(builder: B) -> B:
            if name in self._entries:
                raise ValueError(f"{self.kind} structure {name!r} is registered twice")
            self._entries[name] = StructureEntry(name, help, builder, default)
            return builder

        return deco

    def add(self, name: str, help: str, builder: B, *, default: bool = True) -> None:
        self.register(name, help, default=default)(builder)

    def remove(self, name: str) -> None:
        """Unregister `name` (tests that register a structure of their own clean up)."""
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def entries(self) -> list[StructureEntry[B]]:
        return list(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def defaults(self) -> list[str]:
        return [e.name for e in self._entries.values() if e.default]

    def get(self, name: str) -> StructureEntry[B]:
        """The entry for `name`, or an InputError listing the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            raise InputError(
                f"unknown {self.kind} structure {name!r}; choose from {', '.join(self.names())}"
            ) from None

    def check(self, names: list[str]) -> list[str]:
        """`names` unchanged if all are registered; else an InputError naming the bad ones."""
        bad = [n for n in names if n not in self._entries]
        if bad or not names:
            raise InputError(
                f"unknown {self.kind} structure(s) {bad}; choose from {', '.join(self.names())}"
            )
        return names

    def help_text(self) -> str:
        """`name: help` lines, defaults marked, for --help."""
        return "; ".join(
            f"{e.name}{'' if e.default else ' (on request)'}: {e.help}"
            for e in self._entries.values()
        )
