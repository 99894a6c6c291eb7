"""The two component families of a table twin, as Protocols, and their stored-kind registries.

A table twin models a row x = (x_1, ..., x_d) of the modelled (non-identifier) columns. A
*state model* is the whole-table model over the columns; the twin holds exactly one:

    discrete network      P(x) = Π_v P(s_v | s_pa(v)) · P(x_v | s_v)
    linear-Gaussian net   P(x) = Π_v ∫_cell(x_v) N(t; a_v + b_v · x_pa(v), σ_v²) dt

where s_v is column v's state under its codec (a category, a coarse bin, missing or the
escape state), P(x_v | s_v) the codec's within-state term (`ColumnCodec.encode`), and
cell(x_v) the interval of values that round to x_v at the recorded precision (non-numbers
get a small escape mass). `StateModel` is what the twin asks of either: the likelihood of
rows, samples, the edges and the parameter count, and the arrays that store it.

A *conditional table* is one factor P(s_v | s_pa(v)) of the discrete network: a smoothed
table of the seen parent configurations (`CPT`, tag "table"), a decision tree over the
parent states (`TreeCPT`, tag "tree"), or anything else that can score and sample a child
state given its parents' states (a neural conditional next). Each implementation registers
its class in `CONDITIONALS` under the tag stored with it, and loading dispatches on that tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..core.components import ComponentRegistry

if TYPE_CHECKING:
    from ..reader import RawTable
    from .codec import ColumnCodec, Decoded

Parents = tuple[int, ...]


class ConditionalTable(Protocol):
    """P(s_v = x | s_pa(v) = c) for one column v with `k` states given its parents' states.

    `columns[p]` is the state column of node p (only the parents' are read); `cards[p]` its
    number of states. Probabilities are strictly positive for every state and configuration.
    """

    k: int
    parents: Parents

    def n_params(self) -> int:
        """Free parameters (a complexity figure for the leaderboard)."""
        ...

    def log_prob(self, columns: list[np.ndarray], cards: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log P(x_i | parent states of row i) for each row, nats."""
        ...

    def state_probs(self, columns: list[np.ndarray], cards: np.ndarray, n: int) -> np.ndarray:
        """P(s_v = x | parent states of row i) for every state x: an (n, k) float64 array
        (what an entropy coder needs; deterministic, so a decoder recomputes it exactly)."""
        ...

    def sample(
        self,
        columns: list[np.ndarray],
        cards: np.ndarray,
        rng: np.random.Generator,
        n: int,
        allowed: np.ndarray,
    ) -> np.ndarray:
        """Draw the child of each of `n` rows given its parents, renormalised over the states
        where `allowed` (a boolean mask over the k states) is true."""
        ...

    def dense(self) -> np.ndarray:
        """The optional dense form: (parent configurations × k) probabilities, configurations
        in mixed radix with the first parent most significant (InputError when too large)."""
        ...

    def dense_cells(self) -> int:
        """Cells the dense form would hold (configurations × k)."""
        ...

    def parent_weights(self) -> dict[int, float] | None:
        """How much each parent shapes the table (a tree's splits on it), or None when every
        parent counts alike."""
        ...

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Numeric arrays that store the table, names starting with `prefix`."""
        ...

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, k: int, cards: np.ndarray
    ) -> ConditionalTable:
        """Load and validate (ValueError when inconsistent)."""
        ...


class StateModel(Protocol):
    """A whole-table model over the modelled columns (see the module docstring's formulas).

    `codecs` are the twin's column codecs (one per modelled column, in order); node v of the
    model is column v. `evidence` maps a node to the state it is conditioned on.
    """

    parents: list[Parents]

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(parent node, child node) pairs."""
        ...

    def n_params(self) -> int: ...

    def edge_weights(self) -> list[float] | None:
        """A weight per edge (in the order of `edges`), or None when all edges are alike."""
        ...

    def log_prob(self, codecs: list[ColumnCodec], raw: RawTable) -> np.ndarray:
        """log P(row) in nats of the modelled columns of each row of `raw`."""
        ...

    def sample(
        self,
        codecs: list[ColumnCodec],
        n: int,
        rng: np.random.Generator,
        allowed: list[np.ndarray],
        evidence: dict[int, int],
    ) -> list[Decoded]:
        """`n` rows drawn from the model (given `evidence`), decoded column by column;
        `allowed[v]` masks the states of node v that may be drawn."""
        ...

    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON metadata and arrays that store the model."""
        ...

    @classmethod
    def from_archive(
        cls,
        meta: dict[str, Any],
        arrays: dict[str, np.ndarray],
        codecs: list[ColumnCodec],
        source: str,
    ) -> StateModel:
        """Load and validate against the codecs (ModelFileError / ValueError)."""
        ...


#: conditional tables of the discrete network, by stored tag
CONDITIONALS: ComponentRegistry[type[Any]] = ComponentRegistry("conditional table")
#: whole-table state models, by stored tag
STATE_MODELS: ComponentRegistry[type[Any]] = ComponentRegistry("state model")
