"""What a series conditional model offers the twin: `SeriesModel`.

A series twin factorises the probability of a series step by step and, within a step, column
by column (a chain). In the model space z = (g(y) - center) / scale of each column,

    log P(y_1..T) = Σ_t Σ_j log P(y[t, j] | y[t, <j], y[<t, :])

and a value recorded with `dec` decimals has the probability of its cell [v - δ/2, v + δ/2)
mapped through g (see precision.py). The model gives each observed cell's log mass given the
steps before it; the twin adds what is about the data, not the conditional: the escape mass
of values outside a column's support and the missing-value rate (see scoring.py).

`LinearModel` (linear.py) implements it: a vector AR in chain form with Gaussian or mixture
residuals, optional calendar levels and seasonal-phase residual scales.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .ar import Columns, Prepared


@runtime_checkable
class SeriesModel(Protocol):
    """A conditional model of one step of a series given the steps before it."""

    #: facts about the fit (family, order, difference lag, scanned orders, ...), JSON-able
    info: dict[str, Any]

    @property
    def max_lag(self) -> int:
        """How many past steps a conditional looks at (the history a scored step needs)."""
        ...

    def n_params(self) -> int:
        """Free parameters, for the leaderboard."""
        ...

    def cell_log_probs(
        self, prep: Prepared, rows: np.ndarray, steps: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per column j: (observed mask of `rows`, log P of each observed value's cell given
        the earlier columns of its step and the steps before), rows of a prepared series;
        `steps` are the rows' step indices on the training grid (calendar and phase terms)."""
        ...

    def simulate(
        self,
        cols: Columns,
        transforms: list[str],
        center: np.ndarray,
        scale: np.ndarray,
        missing_rate: np.ndarray,
        history_z: np.ndarray,
        n: int,
        paths: int,
        rng: np.random.Generator,
        step0: int = 0,
    ) -> np.ndarray:
        """`paths` continuations of `n` steps after `history_z` (paths, n, d) in data units,
        on the recorded grid, NaN where a value is drawn missing."""
        ...

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Numeric arrays that, with `info`, describe the model in a model file."""
        ...

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], info: dict[str, Any], d: int, source: str
    ) -> SeriesModel:
        """Rebuild and validate a model of `d` columns (ModelFileError when malformed)."""
        ...
