"""Structures as data, candidates, and the one selection loop every kind runs.

A *structure* is a name from a kind's registry plus its parameters (bins, order, smoother,
transform, weight, ...), held as data so that a leaderboard row can be handed back to `fit`
and reproduce the same twin. A *candidate* is one structure fit on the training split and
scored on it and on the holdout, in the kind's unit (bits per record, character, event,
step). The selection loop keeps the candidate under which the holdout is most probable:

    board = Board()
    for cand in search.candidates(board):   # a kind proposes, fits and scores; it may look
        board.add(cand)                      # at the board so far to propose more
    best = board.best()                      # fewest holdout bits, ties to the earlier one
    model = search.refit(best)               # on all rows (or best.model when not refitting)

Leaderboard rows (`Board.rows`) are a view of the candidates, never control state.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..errors import InputError

M = TypeVar("M")

Param = str | int | float | bool | None


@dataclass(frozen=True)
class Structure:
    """A registered structure `name` with its parameters; `label` is how the kind spells it
    in a leaderboard (``bayesnet[bins=20]``, ``sqrt:ar(19)+seasonal``, ``markov6+kn+cache``)."""

    name: str
    params: tuple[tuple[str, Param], ...] = ()
    label: str = ""

    @staticmethod
    def of(name: str, label: str = "", **params: Param) -> Structure:
        """A structure from keyword parameters (kept sorted, so equal structures compare equal)."""
        return Structure(name, tuple(sorted(params.items())), label or name)

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def as_dict(self) -> dict[str, Param]:
        return dict(self.params)


@dataclass
class Candidate(Generic[M]):
    """One structure fit on the training split, with its bits per unit on train and holdout.

    `model` is the fitted object (whatever the kind needs to refit or keep it); `columns` are
    extra leaderboard columns (bins, edges, params, order, transform, ...) in display order.
    A `baseline` (gzip, xz, ...) is shown for comparison but never selected.
    """

    structure: Structure
    train_bits: float
    holdout_bits: float
    fit_seconds: float
    model: M | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    baseline: bool = False

    def row(self, selected: bool = False) -> dict[str, Any]:
        """The leaderboard row: structure label, bits, seconds, extra columns, flags."""
        out: dict[str, Any] = {
            "structure": self.structure.label,
            "train_bits": float(self.train_bits),
            "holdout_bits": float(self.holdout_bits),
            "fit_seconds": float(self.fit_seconds),
            **self.columns,
        }
        if self.baseline:
            out["baseline"] = True
        out["selected"] = selected
        return out


class Board(Generic[M]):
    """The candidates fit so far, in the order they were fit."""

    def __init__(self) -> None:
        self.candidates: list[Candidate[M]] = []

    def add(self, cand: Candidate[M]) -> Candidate[M]:
        if not math.isfinite(cand.holdout_bits) and not cand.baseline:
            raise ValueError(f"candidate {cand.structure.label} scored {cand.holdout_bits} bits")
        self.candidates.append(cand)
        return cand

    def __len__(self) -> int:
        return len(self.candidates)

    def __iter__(self) -> Iterator[Candidate[M]]:
        return iter(self.candidates)

    def contenders(self) -> list[Candidate[M]]:
        return [c for c in self.candidates if not c.baseline]

    def best(self) -> Candidate[M]:
        """The non-baseline candidate with the fewest holdout bits (ties: the earlier one)."""
        rows = self.contenders()
        if not rows:
            raise InputError("no candidate structure applies to this data")
        return min(enumerate(rows), key=lambda ic: (ic[1].holdout_bits, ic[0]))[1]

    def find(self, label: str) -> Candidate[M] | None:
        return next((c for c in self.candidates if c.structure.label == label), None)

    def rows(self, selected: Candidate[M] | None = None) -> list[dict[str, Any]]:
        """The leaderboard: one dict per candidate, the selected one flagged."""
        return [c.row(selected=c is selected) for c in self.candidates]


class Search(Protocol[M]):
    """What a kind gives the selection loop."""

    def candidates(self, board: Board[M]) -> Iterable[Candidate[M]]:
        """Fit and score candidates on the split, one at a time; may read `board` to adapt."""
        ...

    def refit(self, best: Candidate[M]) -> M:
        """The selected candidate's model for the whole data (or `best.model` as it is)."""
        ...


@dataclass
class Selection(Generic[M]):
    """The outcome of a selection: the kept model, the winning candidate and the board."""

    model: M
    best: Candidate[M]
    board: Board[M]

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        return self.board.rows(self.best)


def select(
    search: Search[M], shown: Callable[[], Iterable[Candidate[M]]] | None = None
) -> Selection[M]:
    """Run `search`'s candidates onto a board, keep the best by holdout bits, refit it.

    `shown`: candidates only shown for comparison (baselines), asked for after the refit so
    that they can be computed alongside the search and the refit; they join the board last."""
    board: Board[M] = Board()
    for cand in search.candidates(board):
        board.add(cand)
    choose = getattr(search, "choose", None)  # a kind may weigh more than holdout bits
    best = choose(board) if choose is not None else board.best()
    _note_small_holdout(board, best, getattr(search, "holdout_units", None))
    model = search.refit(best)
    for cand in shown() if shown is not None else ():
        board.add(cand)
    return Selection(model, best, board)


#: fewer held-out units than this decide a leaderboard by noise (a note says so)
MIN_HOLDOUT_UNITS = 30


def _note_small_holdout(board: Board[M], best: Candidate[M], units: Any) -> None:
    """A search that says how many units it holds out (`holdout_units`) gets a note when
    fewer than `MIN_HOLDOUT_UNITS` decide between several candidates: however confident
    the leaderboard looks, the choice is at noise level."""
    contenders = board.contenders()
    if not isinstance(units, int) or units >= MIN_HOLDOUT_UNITS or len(contenders) < 2:
        return
    gap = min(c.holdout_bits - best.holdout_bits for c in contenders if c is not best)
    logging.getLogger("datatwin").info(  # the progress note (core imports no datatwin module)
        f"only {units} held-out unit{'s' * (units != 1)} decide{'s' * (units == 1)} the leaderboard (the "
        f"runner-up is {gap * units:.2f} bits behind in all): choosing "
        f"{best.structure.label} is at noise level; hold out at least {MIN_HOLDOUT_UNITS} "
        "units (more data or a larger holdout) to trust it"
    )


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as secs: ...; secs()` — wall-clock seconds since the block began."""
    t0 = time.perf_counter()
    yield lambda: time.perf_counter() - t0


def parse_structure_list(
    structures: str | Iterable[str] | None, known: Mapping[str, Any]
) -> list[str] | None:
    """`"a,b"` or `["a", "b"]` as a list (None stays None); empty names are refused."""
    if structures is None:
        return None
    items = structures.split(",") if isinstance(structures, str) else list(structures)
    out = [str(s).strip() for s in items]
    if not out or any(not s for s in out):
        raise InputError(f"structures: give one or more of {', '.join(known)}")
    return out
