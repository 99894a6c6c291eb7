"""Lag blocks and regimes of the mean (series/regime.py): least squares recovers a known
threshold AR, cells over a grid sum to one, long simulations stay on the data's marginal,
and scoring and simulation decide the regime identically."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from series_checks import assert_next_step_sums_to_one

import datatwin
from datatwin.errors import DataTwinError
from datatwin.series.linear import LinearModel
from datatwin.series.regime import rising
from datatwin.series.simulate import _back

K = 2  # the regime window of these series (no season: half the largest order scanned, 4)


def threshold_frame(n: int, seed: int = 0, sd: float = 1.0, decimals: int = 3) -> pd.DataFrame:
    """y_t = 0.5 y_{t-1} + r_t (0.3 y_{t-1} + 0.4) + e_t, r_t = 1[y_{t-1} + y_{t-2} >
    y_{t-3} + y_{t-4}]: a two-regime AR whose regime is the sign of the recent change."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n + 200)
    e = rng.normal(0.0, sd, n + 200)
    for t in range(4, n + 200):
        up = y[t - 1] + y[t - 2] > y[t - 3] + y[t - 4]
        y[t] = 0.5 * y[t - 1] + up * (0.3 * y[t - 1] + 0.4 * sd) + e[t]
    return pd.DataFrame({"time": np.arange(n), "y": np.round(y[200:], decimals)})


def test_least_squares_recovers_a_threshold_ar():
    tw = datatwin.fit(
        threshold_frame(6000, seed=1), kind="series", structures="ar(1)+regime", max_lag=4
    )
    m = tw.model
    assert m.regime is not None and m.regime.k == K
    lag1 = list(m.lags).index(1)
    assert m.B[0, lag1, 0] == pytest.approx(0.5, abs=0.05)
    assert m.regime.B[0, lag1, 0] == pytest.approx(0.3, abs=0.07)
    # the upper regime's intercept in data units: it adds c' + B'(z - m) in the standardised
    # space z = (y - C) / s, i.e. B' y + s c' - B' (C + s m)
    b, s, lvl = m.regime.B[0, lag1, 0], tw.scale[0], m.level[0, 0]
    assert s * m.regime.c[0] - b * (tw.center[0] + s * lvl) == pytest.approx(0.4, abs=0.1)
    assert m.mix_sd[0, 0] * tw.scale[0] == pytest.approx(1.0, abs=0.05)


def test_selection_takes_the_regime_when_the_data_has_one():
    tw = datatwin.fit(threshold_frame(4000, seed=2), kind="series", max_lag=4)
    assert "+regime" in tw.structure
    rows = {r["structure"]: r["holdout_bits"] for r in tw.leaderboard}
    base = tw.structure.split("+regime")[0]
    assert rows[base + "+regime"] < rows[base] - 0.01


def test_cells_of_the_next_step_sum_to_one():
    df = threshold_frame(600, seed=3, sd=2.0, decimals=0)
    train, nxt = df.iloc[:-1], df.iloc[-1:]
    tw = datatwin.fit(train, kind="series", structures="ar(2)+blocks+regime", max_lag=4)
    assert tw.structure == "ar(2)+blocks+regime" and tw.model.info["blocks"]
    assert_next_step_sums_to_one(tw, train, nxt, sds=12)


def test_long_simulations_stay_on_the_data_marginal():
    df = threshold_frame(3000, seed=4)
    tw = datatwin.fit(df, kind="series", structures="ar(1)+blocks+regime", max_lag=4)
    sim = tw.sample(len(df), seed=5, paths=20)["y"].to_numpy(float).reshape(20, -1)
    y = df["y"].to_numpy(float)
    assert np.all(np.isfinite(sim)) and np.abs(sim).max() < 3 * np.abs(y).max()
    assert stats.ks_2samp(sim.ravel(), y).statistic < 0.05
    # seeded: the same paths again
    again = tw.sample(len(df), seed=5, paths=20)["y"].to_numpy(float).reshape(20, -1)
    assert np.array_equal(sim, again)


def test_scoring_and_simulation_decide_the_regime_identically():
    rng = np.random.default_rng(6)
    Z = rng.integers(-2, 3, size=(400, 3)).astype(float) / 7.0  # many exact ties
    rows = np.arange(2 * 12, 400)
    scored = rising(lambda lag: Z[rows - lag], 12)
    buf = np.repeat(Z[:, :, None], 2, axis=2)  # time-major (step, column, path), two paths
    for i, pos in enumerate(rows):
        simulated = rising(partial(_back, buf, int(pos)), 12)
        assert np.array_equal(simulated[:, 0], scored[i])
        assert np.array_equal(simulated[:, 1], scored[i])


def test_a_damaged_regime_is_refused():
    tw = datatwin.fit(
        threshold_frame(800, seed=7), kind="series", structures="ar(1)+regime", max_lag=4
    )
    arrays = tw.model.to_arrays()
    d = len(tw.model.intercept)
    LinearModel.from_arrays(arrays, tw.model.info, d, "ok")  # as written: accepted
    for key, bad in (
        ("regime_B", arrays["regime_B"][:, :-1]),
        ("regime_k", np.array([0])),
        ("regime_c", np.array([np.nan])),
    ):
        with pytest.raises(DataTwinError):
            LinearModel.from_arrays({**arrays, key: bad}, tw.model.info, d, "damaged")


def test_wide_short_series_get_no_extension_with_more_coefficients_than_rows():
    """12 columns × 60 steps (a year a row, a month a column): lag blocks would give each
    column ~100 coefficients for ~45 training rows, interpolating them (train bits ~0) and
    costing trillions of bits on the holdout. They are not fit; every row stays sane."""
    rng = np.random.default_rng(0)
    base = rng.normal(24.0, 1.0, (60, 1)) + rng.normal(0.0, 0.5, (60, 12))
    df = pd.DataFrame(np.round(base, 2), columns=[f"m{j}" for j in range(12)])
    tw = datatwin.fit(df, kind="series", seed=0)
    labels = [r["structure"] for r in tw.leaderboard]
    assert not any("+blocks" in s or "+regime" in s for s in labels)
    assert max(r["holdout_bits"] for r in tw.leaderboard) < 400
