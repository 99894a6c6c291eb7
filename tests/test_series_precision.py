"""Cell probabilities at recorded precision: exact, finite, summing to one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from datatwin.series.io import _decimals_of
from datatwin.series.precision import cell_edges, log_cell_mass, log_gauss_cell, to_grid


def test_log_gauss_cell_matches_cdf_difference():
    a = np.array([-3.0, -0.5, 0.2, 2.0, -np.inf, 1.0])
    b = np.array([-2.0, 0.5, 0.9, 4.0, 0.0, np.inf])
    want = np.log(norm.cdf(b) - norm.cdf(a))
    np.testing.assert_allclose(log_gauss_cell(a, b), want, rtol=1e-10)


def test_log_gauss_cell_is_finite_for_tiny_and_far_cells():
    a = np.array([0.1, 40.0, -60.0, 1e6, 3.0])
    b = a + np.array([1e-12, 1e-9, 1e-3, 1.0, 1e-300])
    out = log_gauss_cell(a, b)
    assert np.all(np.isfinite(out))
    # tiny cell: density times width
    assert out[0] == pytest.approx(norm.logpdf(0.1) + np.log(b[0] - a[0]), rel=1e-9)
    # a far tail cell keeps its (very small) mass
    assert out[2] == pytest.approx(
        norm.logcdf(-60.0 + 1e-3)
        + np.log1p(-np.exp(norm.logcdf(-60.0) - norm.logcdf(-60.0 + 1e-3))),
        rel=1e-6,
    )


def test_log_gauss_cell_agrees_with_high_precision_arithmetic():
    """Cells of every width from 1e-5 to 10, centred up to 45 standard deviations out
    (beyond where the CDFs underflow), against 60-digit arithmetic."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.standard_normal(150) * s for s in (1.0, 5.0, 20.0, 45.0)])
    b = a + 10 ** rng.uniform(-5, 1, a.size)
    got = log_gauss_cell(a, b)
    for lo, hi, g in zip(a, b, got, strict=True):
        narrow = (hi - lo) * (1 + abs(lo + hi) / 2) < 1e-3  # midpoint rule: mass to 1e-7
        lo, hi = (-hi, -lo) if lo > 0 else (lo, hi)  # the smaller tail: no cancellation
        want = float(mp.log(mp.ncdf(mp.mpf(hi)) - mp.ncdf(mp.mpf(lo))))
        assert g == (pytest.approx(want, abs=1e-7) if narrow else pytest.approx(want, rel=1e-9))


@pytest.mark.parametrize("transform", ["none", "sqrt"])
@pytest.mark.parametrize("mixture", [False, True])
def test_cell_masses_of_a_grid_sum_to_one(transform, mixture):
    # non-negative column, 1 decimal, mass below 0 folded into the 0 cell
    grid = np.round(np.arange(0, 4000) * 0.1, 1)
    center, scale = (1.5, 0.8) if transform == "sqrt" else (3.0, 2.0)
    a, b = cell_edges(grid, 1, 0.0, None, transform, center, scale)
    mean = np.full(grid.shape, 0.3)
    if mixture:
        w, mu, sd = np.array([0.5, 0.3, 0.2]), np.array([0.0, 0.4, -0.2]), np.array([0.3, 0.7, 1.5])
    else:
        w, mu, sd = np.ones(1), np.zeros(1), np.array([0.6])
    total = np.exp(log_cell_mass(a, b, mean, w, mu, sd)).sum()
    assert total == pytest.approx(1.0, abs=1e-9)


def test_binary_column_cells_sum_to_one():
    a, b = cell_edges(np.array([0.0, 1.0]), 0, 0.0, 1.0, "none", 0.5, 0.5)
    p = np.exp(log_gauss_cell(a - 0.2, b - 0.2))
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_sampling_grid_never_leaves_support():
    y = np.array([-3.2, -0.04, 0.04, 0.051, 2.449, 7.0])
    out = to_grid(y, 1, 0.0, None)
    assert list(out) == [0.0, 0.0, 0.0, 0.1, 2.4, 7.0]
    assert list(to_grid(np.array([-1.0, 0.4, 0.6, 3.0]), 0, 0.0, 1.0)) == [0, 0, 1, 1]


def test_decimals_read_from_text_ignore_float_noise():
    import pandas as pd

    s = pd.Series(["3.91464713", "3.0780282860000003", "4.029811491999999", "58.0"])
    assert _decimals_of(s) == 9
    assert _decimals_of(pd.Series(["58.0", "0.0", "112.5"])) == 1
    assert _decimals_of(pd.Series(["1", "0", "1"])) == 0
    assert _decimals_of(pd.Series(["1.5e-3", "2e-4"])) == 4
