"""What every twin is: fit / log_prob / bits / score / sample / save, whatever the data kind.

A twin of any kind (table, text, events, series) subclasses `Twin`. Likelihoods are per unit
(record, character, event, time step) in nats from `log_prob`, and in bits from `bits`/`score`.
The CLI drives a kind through the `cli_*` class hooks so each kind keeps its own options.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from .core.registry import StructureRegistry
from .errors import InputError
from .modelfile import save_archive
from .units import LN2

#: the most units one `sample` may draw (a count beyond any disk; arrays index with int64)
MAX_SAMPLE_UNITS = 10**15


def check_count(n: Any, label: str = "n") -> None:
    """A sample count is a whole number from 0 to `MAX_SAMPLE_UNITS` (else one line)."""
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"{label} must be a non-negative whole number, got {n!r}")
    if n > MAX_SAMPLE_UNITS:
        raise InputError(
            f"{label} {n}: at most {MAX_SAMPLE_UNITS:.0e} units per run; "
            "sample in several runs with different seeds"
        )


#: wall-clock timings: kept on a fitted twin, never saved (model files must be reproducible)
_TIMINGS = frozenset({"fit_seconds", "fit_seconds_total"})


def _without_timings(value: Any) -> Any:
    """`value` without its timing entries when it is a dict (a leaderboard row, a section)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in _TIMINGS}
    return value


class Twin(ABC):
    """A fitted generative model of one dataset with an exact likelihood."""

    kind: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    #: top-level model.json keys this kind's `to_archive` writes (others are refused on load)
    archive_keys: ClassVar[frozenset[str]] = frozenset()
    #: the kind's structures (name -> builder, help); the CLI's lists and checks come from it
    structure_registry: ClassVar[StructureRegistry[Any] | None] = None
    #: arrays (name regex -> predicate) that may hold a non-finite value on purpose
    archive_nonfinite: ClassVar[Mapping[str, Callable[[np.ndarray], bool]]] = {}

    #: one dict per candidate structure: structure, train_bits, holdout_bits, fit_seconds
    #: (on a fitted twin only: timings are not saved), ...
    leaderboard: list[dict[str, Any]]
    #: name of the structure this twin uses
    structure: str

    def __repr__(self) -> str:
        count = self.n_params()
        return (
            f"<{type(self).__name__} kind={self.kind!r} structure={self.structure!r} "
            f"unit={self.unit!r}" + ("" if count is None else f" params={count}") + ">"
        )

    def n_params(self) -> int | None:
        """Free parameters of the fitted structure (None where a kind does not count them)."""
        return None

    # ---- fitting ----------------------------------------------------------------------
    @classmethod
    def fit_select(cls, *args: Any, **options: Any) -> Twin:
        """Fit every candidate structure on a training split, keep the one with the fewest
        holdout bits, refit it on all the data (each kind documents its options)."""
        raise NotImplementedError

    # ---- likelihood -------------------------------------------------------------------
    @abstractmethod
    def log_prob(self, data: Any) -> np.ndarray:
        """Log-probability (nats) of each unit of `data` under the twin."""

    def unit_count(self, data: Any, logp: np.ndarray) -> int:
        """How many units `data` holds (override when log_prob is not one entry per unit)."""
        return int(len(logp))

    def score(self, data: Any) -> dict[str, Any]:
        """Total and per-unit bits of `data`: {"unit", "count", "total_bits", "bits_per_unit"}."""
        logp = self.log_prob(data)
        count = self.unit_count(data, logp)
        total = float(-np.sum(logp) / LN2)
        return {
            "unit": self.unit,
            "count": count,
            "total_bits": total,
            "bits_per_unit": total / count if count else float("nan"),
        }

    def bits(self, data: Any) -> float:
        """Mean bits per unit of `data` (−log2 P / count)."""
        return float(self.score(data)["bits_per_unit"])

    # ---- generation -------------------------------------------------------------------
    @abstractmethod
    def sample(self, n: int, *args: Any, **kwargs: Any) -> Any:
        """Draw `n` units (records, sequences, characters, steps: the kind's `unit`) from the
        twin, reproducibly from the keyword `seed` (an int, None or a numpy Generator)."""

    # ---- persistence ------------------------------------------------------------------
    @abstractmethod
    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON metadata and numeric arrays that fully describe the fitted twin."""

    @classmethod
    @abstractmethod
    def from_archive(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str) -> Twin:
        """Rebuild a twin from `to_archive` output, validating everything (ModelFileError)."""

    def save(self, path: str | Path, *, stdout_ok: bool = False) -> None:
        """Write the twin to one safe file (zip of JSON + arrays, no pickle), atomically.

        The same fitted twin always gives the same bytes: wall-clock timings (`fit_seconds`)
        stay on this object and are not written. `stdout_ok`: `-` means stdout (the CLI).
        """
        meta, arrays = self._file_contents()
        save_archive(path, meta, arrays, stdout_ok=stdout_ok)

    def file_format(self) -> int:
        """The oldest model-file format that holds this twin (`modelfile.FORMAT_VERSION`)."""
        return 1

    def _file_contents(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self.to_archive()
        meta = {
            "format_version": self.file_format(),
            "kind": self.kind,
            "unit": self.unit,
            "structure": self.structure,
            "leaderboard": [_without_timings(row) for row in self.leaderboard],
            **{key: _without_timings(value) for key, value in meta.items()},
        }
        return meta, arrays

    def write_model(self, fh: BinaryIO) -> None:
        """Write the model file's bytes (as `save` would) to `fh`."""
        from .modelfile import write_archive

        write_archive(fh, *self._file_contents())

    # ---- compression ------------------------------------------------------------------
    def compress(self, data: Any, *, embed_model: bool = False) -> bytes:
        """`data` (bytes, text or a path) losslessly compressed with this twin's exact
        probabilities; `embed_model` makes the output self-contained."""
        from .coding.api import compress

        return compress(self, data, embed_model=embed_model)

    def decompress(self, blob: bytes) -> bytes:
        """The original bytes of `compress(data)` (checked: size and sha256)."""
        from .coding.api import decompress

        return decompress(blob, self)

    # ---- command-line hooks (each kind overrides what it supports) ----------------------
    @classmethod
    def cli_add_options(cls, fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
        """Add this kind's own options to the `fit` and `sample` sub-commands.

        Each option belongs to the kinds named by `cli_option_kinds` (default: this kind);
        an option another kind owns is refused by the CLI when given for this one.
        """
        return None

    @staticmethod
    def cli_option(
        group: argparse._ActionsContainer, *flags: str, kinds: tuple[str, ...], **kwargs: Any
    ) -> argparse.Action:
        """`group.add_argument(*flags, **kwargs)`, recording the kinds the option is for."""
        action = group.add_argument(*flags, **kwargs)
        setattr(action, "kinds", kinds)  # noqa: B010 (an attribute argparse does not declare)
        return action

    @classmethod
    def cli_fit(cls, path: Path, args: argparse.Namespace) -> Twin:
        """Read DATA, fit the candidates with holdout selection, return the chosen twin."""
        raise NotImplementedError

    def cli_read(self, path: Path, args: argparse.Namespace) -> Any:
        """Read data to score with this twin."""
        raise NotImplementedError

    def cli_sample(self, args: argparse.Namespace) -> Any:
        """Draw the samples `datatwin sample` asked for."""
        return self.sample(args.n, seed=args.seed)

    def cli_write(self, samples: Any, fh: BinaryIO, args: argparse.Namespace) -> None:
        """Write samples in the training data's format to a binary file object."""
        raise NotImplementedError

    def cli_sample_writer(self, args: argparse.Namespace) -> Callable[[BinaryIO], None]:
        """What `datatwin sample` writes: a function of the output file object, returned
        after the options are checked (an error then leaves no output at all). A kind that
        samples in blocks writes them as they are drawn (bounded memory, never seeking);
        this default draws everything first."""
        samples = self.cli_sample(args)
        return lambda fh: self.cli_write(samples, fh, args)

    def summary(self) -> dict[str, Any]:
        """A short JSON-able description for `fit --json`."""
        return {
            "kind": self.kind,
            "unit": self.unit,
            "selected": self.structure,
            "leaderboard": self.leaderboard,
        }
