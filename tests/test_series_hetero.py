"""A residual scale following recent volatility (series/hetero.py): maximum likelihood
recovers known weights, cells over a grid sum to one, simulated volatility reverts, and a
damaged scale is refused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from series_checks import assert_next_step_sums_to_one

import datatwin
from datatwin.errors import DataTwinError
from datatwin.series.linear import LinearModel

W1, W2 = 2, 8  # the volatility windows of these series (no season: half of max_lag 4, × 4)


def vol_frame(n: int, th1: float, th2: float, seed: int = 0, decimals: int = 3) -> pd.DataFrame:
    """y_t = 0.5 y_{t-1} + s_t e_t, log s_t = c + th1 log(ā_2 + 0.01) + th2 log(ā_8 + 0.01),
    ā_k the mean |s e| of the last k steps (the model's own form)."""
    rng = np.random.default_rng(seed)
    m = n + 500
    y, r = np.zeros(m), np.zeros(m)
    c = -(th1 + th2) * math.log(0.8)  # typical s near 1
    for t in range(W2, m):
        a1 = np.abs(r[t - W1 : t]).mean()
        a2 = np.abs(r[t - W2 : t]).mean()
        s = math.exp(c + th1 * math.log(a1 + 0.01) + th2 * math.log(a2 + 0.01))
        r[t] = s * rng.standard_normal()
        y[t] = 0.5 * y[t - 1] + r[t]
    return pd.DataFrame({"time": np.arange(n), "y": np.round(y[500:], decimals)})


def test_maximum_likelihood_recovers_the_volatility_weights():
    tw = datatwin.fit(
        vol_frame(20000, 0.3, 0.4, seed=1), kind="series", structures="ar(1)+hetero", max_lag=4
    )
    h = tw.model.hetero
    assert h is not None and list(h.windows) == [W1, W2]
    assert h.theta[0, 1] == pytest.approx(0.3, abs=0.08)
    assert h.theta[0, 2] == pytest.approx(0.4, abs=0.1)
    assert tw.model.B[0, 0, 0] == pytest.approx(0.5, abs=0.03)


def test_the_likelihood_slope_in_log_scale_matches_finite_differences():
    """The analytic ∂ log P / ∂ log s the volatility fit climbs (one Gaussian and a
    mixture; narrow, wide and half-infinite cells) agrees with central differences."""
    from types import SimpleNamespace

    from datatwin.series.hetero import logp_and_slope

    rng = np.random.default_rng(0)
    u_a = 2.0 * rng.standard_normal(600)
    u_b = u_a + 10 ** rng.uniform(-4, 0.5, 600)
    u_a[:5], u_b[5:10] = -np.inf, np.inf
    s = np.exp(0.5 * rng.standard_normal(600))
    for w, mu, sd in (([1.0], [0.0], [0.8]), ([0.5, 0.3, 0.2], [0.0, 0.4, -0.2], [0.3, 0.7, 1.5])):
        model = SimpleNamespace(mix_w=np.array([w]), mix_mu=np.array([mu]), mix_sd=np.array([sd]))
        _, slope = logp_and_slope(model, 0, u_a, u_b, s)  # type: ignore[arg-type]
        h = 1e-6
        up = logp_and_slope(model, 0, u_a, u_b, s * math.exp(h))[0]  # type: ignore[arg-type]
        down = logp_and_slope(model, 0, u_a, u_b, s * math.exp(-h))[0]  # type: ignore[arg-type]
        np.testing.assert_allclose(slope, (up - down) / (2 * h), rtol=1e-4, atol=1e-5)


def test_selection_takes_the_scale_only_when_volatility_clusters():
    clustered = datatwin.fit(vol_frame(4000, 0.3, 0.4, seed=2), kind="series", max_lag=4)
    assert "+hetero" in clustered.structure
    flat = datatwin.fit(vol_frame(4000, 0.0, 0.0, seed=3), kind="series", max_lag=4)
    rows = {r["structure"]: r["holdout_bits"] for r in flat.leaderboard}
    gains = [rows[s.split("+hetero")[0]] - b for s, b in rows.items() if "+hetero" in s]
    assert gains and max(gains) < 0.01  # nothing to find: at most noise


def test_cells_of_the_next_step_sum_to_one():
    df = vol_frame(800, 0.3, 0.4, seed=4, decimals=0)
    df["y"] = (df["y"] * 3).round()
    train, nxt = df.iloc[:-1], df.iloc[-1:]
    tw = datatwin.fit(train, kind="series", structures="ar(1)+hetero", max_lag=4)
    assert tw.structure == "ar(1)+hetero"
    assert_next_step_sums_to_one(tw, train, nxt, sds=40)


def test_simulated_volatility_reverts_and_matches_the_data():
    df = vol_frame(4000, 0.3, 0.4, seed=5)
    tw = datatwin.fit(df, kind="series", structures="ar(1)+hetero", max_lag=4)
    sim = tw.sample(len(df), seed=6, paths=20)["y"].to_numpy(float).reshape(20, -1)
    y = df["y"].to_numpy(float)
    assert np.all(np.isfinite(sim)) and np.abs(sim).max() < 3 * np.abs(y).max()
    assert stats.ks_2samp(sim.ravel(), y).statistic < 0.05
    assert float(sim.std()) == pytest.approx(float(y.std()), rel=0.1)
    # volatility clusters in the simulation as in the data: |Δy| is autocorrelated
    a = np.abs(np.diff(sim, axis=1))
    assert np.corrcoef(a[:, 1:].ravel(), a[:, :-1].ravel())[0, 1] > 0.1
    again = tw.sample(len(df), seed=6, paths=20)["y"].to_numpy(float).reshape(20, -1)
    assert np.array_equal(sim, again)


def test_each_simulated_step_is_its_conditional_draw_past_the_buffers_wrap():
    """Simulation keeps only the last steps it needs (ring buffers of the lags and of the
    volatility windows): every simulated value, long after the buffers have wrapped, is the
    recorded cell of mean + scale × its normal draw under the model's own conditional given
    the simulated path before it (the same means and scales the likelihood uses)."""
    tw = datatwin.fit(
        vol_frame(3000, 0.3, 0.4, seed=8), kind="series", structures="ar(2)+hetero", max_lag=4
    )
    m = tw.model
    hist = tw._prepare(tw.tail, "history").Z
    n, paths, k = 300, 4, len(hist)
    step0 = tw.next_step
    vals = m.simulate(
        tw.cols,
        tw.transforms,
        tw.center,
        tw.scale,
        tw.missing_rate,
        hist,
        n,
        paths,
        np.random.default_rng(11),
        step0,
    )
    normals = np.random.default_rng(11).standard_normal((n, 1, paths))
    half_cell = 0.5 * 10.0 ** -tw.cols.decimals[0] / tw.scale[0]
    rows = np.arange(k, k + n)
    for p in range(paths):
        Z = np.concatenate([hist, (vals[p] - tw.center) / tw.scale])
        M, S = m.means_and_scales(Z, rows, step0 - k + rows)
        assert S is not None
        drawn = M[:, 0] + S[:, 0] * m.mix_sd[0, 0] * normals[:, 0, p]
        assert np.max(np.abs(Z[rows, 0] - drawn)) <= half_cell * (1 + 1e-6)


def test_a_damaged_scale_is_refused():
    tw = datatwin.fit(
        vol_frame(800, 0.3, 0.4, seed=7), kind="series", structures="ar(1)+hetero", max_lag=4
    )
    arrays = tw.model.to_arrays()
    LinearModel.from_arrays(arrays, tw.model.info, 1, "ok")
    th = arrays["hetero_theta"].copy()
    th[0, 1:] = 0.9  # weights summing above the cap: volatility would not revert
    for key, bad in (
        ("hetero_theta", th),
        ("hetero_windows", np.array([0, 8])),
        ("hetero_eps", np.array([0.0])),
    ):
        with pytest.raises(DataTwinError):
            LinearModel.from_arrays({**arrays, key: bad}, tw.model.info, 1, "damaged")
