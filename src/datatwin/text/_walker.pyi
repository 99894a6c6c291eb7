# Types of the compiled walk (_walker.c); see steps.Steps._walker for its arguments.
from collections.abc import Sequence

import numpy as np

class Walker:
    def __init__(
        self,
        meta: np.ndarray,
        gamma: np.ndarray,
        sym: np.ndarray,
        alpha: np.ndarray,
        child: np.ndarray,
        uniform: float,
        bos: int,
        start: int,
        rows: int,
        orders: Sequence[int],
        es: Sequence[float],
        cap: float,
    ) -> None: ...
    def reset(self) -> None: ...
    def row(self, out: np.ndarray) -> None: ...
    def step(self, w: int, out: np.ndarray, /) -> None: ...
    def rows(self, ids: np.ndarray, out: np.ndarray, /) -> None: ...
