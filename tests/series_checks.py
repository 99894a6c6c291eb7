"""Checks the series model tests share."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest


def assert_next_step_sums_to_one(twin, train: pd.DataFrame, nxt: pd.DataFrame, sds: float) -> None:
    """The integer cells of column y at the step after `train` (precision 1), over its range
    ± `sds` standard deviations, hold all the mass (negligible border cells) and sum to one
    with the finer mass φ (values with decimals: `series/finer.py`)."""
    y = train["y"].to_numpy(float)
    s = float(y.std())
    grid = range(math.floor(y.min() - sds * s), math.ceil(y.max() + sds * s) + 1)
    lp = np.array([twin.log_prob(nxt.assign(y=v), history=train)[0] for v in grid])
    p = np.exp(lp)
    assert p[0] + p[-1] < 1e-12
    y_col = twin.cols.names.index("y")
    assert float(p.sum()) + twin.cols.finer[y_col] == pytest.approx(1.0, rel=1e-6)
