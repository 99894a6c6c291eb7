"""Series twins: MLE recovers known AR coefficients, selection, simulation statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.series import SeriesTwin


def ar_frame(coefs, n, seed=0, sd=1.0, decimals=3, start=0.0):
    rng = np.random.default_rng(seed)
    p = len(coefs)
    y = np.zeros(n + 200)
    e = rng.normal(0, sd, n + 200)
    for t in range(p, n + 200):
        y[t] = sum(c * y[t - 1 - i] for i, c in enumerate(coefs)) + e[t]
    y = np.round(y[200:] + start, decimals)
    return pd.DataFrame({"time": np.arange(n), "y": y})


def test_mle_recovers_ar2_coefficients_and_order():
    df = ar_frame([0.6, -0.3], 4000, seed=1)
    tw = datatwin.fit(df, kind="series", structures="iid,ar,none", max_lag=8)
    assert tw.model.info["family"] == "ar"
    assert 2 <= tw.model.info["order"] <= 4
    b = tw.model.B[0, :, 0]
    assert b[0] == pytest.approx(0.6, abs=0.05)
    assert b[1] == pytest.approx(-0.3, abs=0.05)
    assert np.all(np.abs(b[2:]) < 0.06)
    # residual sd in data units
    assert tw.model.mix_sd[0, 0] * tw.scale[0] == pytest.approx(1.0, abs=0.05)
    names = {r["structure"] for r in tw.leaderboard}
    assert "iid" in names
    iid = next(r for r in tw.leaderboard if r["structure"] == "iid")
    chosen = next(r for r in tw.leaderboard if r["selected"])
    assert chosen["holdout_bits"] < iid["holdout_bits"] - 0.2


def test_white_noise_prefers_iid():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": np.round(rng.normal(5, 2, 3000), 2)})
    tw = datatwin.fit(df, kind="series", structures="iid,ar,none", max_lag=5)
    iid = next(r for r in tw.leaderboard if r["structure"] == "iid")
    ar = next(r for r in tw.leaderboard if r["structure"].startswith("ar("))
    assert iid["holdout_bits"] <= ar["holdout_bits"] + 0.01
    # Gaussian with sd 2 at 0.01 precision: entropy ≈ log2(2 * sqrt(2πe) / 0.01)
    assert iid["holdout_bits"] == pytest.approx(
        np.log2(2 * np.sqrt(2 * np.pi * np.e) / 0.01), abs=0.1
    )


def test_vector_ar_recovers_cross_dependence():
    rng = np.random.default_rng(4)
    n = 5000
    x = np.zeros(n)
    y = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + rng.normal()
        y[t] = 0.5 * x[t - 1] + 0.2 * y[t - 1] + 0.5 * rng.normal()
    df = pd.DataFrame({"x": np.round(x, 3), "y": np.round(y, 3)})
    tw = datatwin.fit(df, kind="series", structures="ar,none", max_lag=3)
    lag1 = list(tw.model.lags).index(1)
    # z-space coefficient times the scale ratio = data-space coefficient
    cross = tw.model.B[1, lag1, 0] * tw.scale[1] / tw.scale[0]
    assert cross == pytest.approx(0.5, abs=0.05)
    assert tw.model.B[0, lag1, 0] == pytest.approx(0.7, abs=0.05)
    assert abs(tw.model.A[1, 0]) < 0.05  # no within-step dependence was simulated


def test_simulated_paths_match_stationary_statistics():
    df = ar_frame([0.8], 3000, seed=5)
    tw = datatwin.fit(df, kind="series", structures="ar,none", max_lag=3)
    s = tw.sample(400, seed=2, paths=200)
    y = s["y"].to_numpy().reshape(200, 400)[:, 100:]
    phi = tw.model.B[0, 0, 0]
    sd = tw.model.mix_sd[0, 0] * tw.scale[0]
    mu = tw.center[0] + tw.scale[0] * tw.model.intercept[0] / (1 - phi)
    assert y.mean() == pytest.approx(mu, abs=0.1)
    assert y.var() == pytest.approx(sd**2 / (1 - phi**2), rel=0.06)
    yc = y - y.mean()
    r1 = (yc[:, 1:] * yc[:, :-1]).mean() / yc.var()
    assert r1 == pytest.approx(phi, abs=0.02)


def test_holdout_bits_equal_log_prob_of_the_continuation():
    df = ar_frame([0.5, 0.2], 1500, seed=6)
    train, nxt = df.iloc[:1200], df.iloc[1200:]
    tw = SeriesTwin.fit_select(train, holdout=nxt, structures="ar,none", max_lag=4, refit=False)
    row = next(r for r in tw.leaderboard if r["selected"])
    # a no-refit twin keeps the training fit; its tail is the end of train + holdout, so score
    # the holdout through an explicit history instead
    lp = tw.log_prob(nxt, history=train)
    assert -lp.mean() / np.log(2) == pytest.approx(row["holdout_bits"], rel=1e-9)


def test_score_conditions_on_the_training_tail():
    df = ar_frame([0.9], 1000, seed=7)
    train, nxt = df.iloc[:800], df.iloc[800:]
    tw = datatwin.fit(train, kind="series", structures="ar,none", max_lag=3)
    auto = tw.log_prob(nxt)
    explicit = tw.log_prob(nxt, history=train)
    np.testing.assert_array_equal(auto, explicit)
    other = train.copy()
    other["y"] = other["y"] + 20.0
    shifted = tw.log_prob(nxt, history=other)
    assert shifted[0] < auto[0] - 5  # the first step depends on the history given
    np.testing.assert_allclose(shifted[5:], auto[5:])  # and later steps only on nxt itself
    # a file that does not continue in time uses its own first steps as history
    assert len(tw.log_prob(train)) == len(train) - tw.model.max_lag


def test_non_negative_series_never_sampled_negative_and_sqrt_chosen():
    rng = np.random.default_rng(8)
    n = 3000
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = 0.9 * z[t - 1] + rng.normal(0, 0.6)
    y = np.round((np.maximum(z + 2.0, 0)) ** 2, 1)  # counts-like, zeros included
    df = pd.DataFrame({"v": y})
    tw = datatwin.fit(df, kind="series", max_lag=4, structures="iid,ar")
    assert tw.cols.lower == [0.0]
    assert tw.transforms == ["sqrt"]
    s = tw.sample(500, seed=1, paths=20)
    assert (s["v"] >= 0).all()
    assert (s["v"] == 0).any()
    assert np.allclose(s["v"] * 10, np.round(s["v"] * 10))


def test_missing_values_are_modelled_and_carried_forward():
    df = ar_frame([0.7], 2000, seed=9)
    df.loc[[100, 101, 500, 1300, 1850], "y"] = np.nan
    tw = datatwin.fit(df, kind="series", structures="ar,none", max_lag=3)
    assert 0 < tw.missing_rate[0] < 0.01
    nxt = ar_frame([0.7], 50, seed=10)
    nxt["time"] = np.arange(2000, 2050)
    nxt.loc[3, "y"] = np.nan
    lp = tw.log_prob(nxt)
    assert np.all(np.isfinite(lp))
    assert lp[3] == pytest.approx(np.log(tw.missing_rate[0]))
    s = tw.sample(20000, seed=0)
    assert s["y"].isna().mean() == pytest.approx(tw.missing_rate[0], abs=0.002)


def test_reproducible_fit_and_samples():
    df = ar_frame([0.5, 0.3], 1500, seed=11)
    a = datatwin.fit(df, kind="series", max_lag=6)
    b = datatwin.fit(df, kind="series", max_lag=6)
    np.testing.assert_array_equal(a.model.B, b.model.B)
    pd.testing.assert_frame_equal(a.sample(50, seed=3, paths=3), b.sample(50, seed=3, paths=3))
    assert not a.sample(50, seed=3).equals(a.sample(50, seed=4))


def test_phase_scales_found_and_kept_consistent_across_entry_points(tmp_path):
    rng = np.random.default_rng(12)
    n, per = 24 * 200, 24
    phase = np.arange(n) % per
    noise_sd = np.where(phase < 6, 3.0, 0.5)  # noisy at night
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.6 * y[t - 1] + noise_sd[t] * rng.normal()
    times = pd.date_range("2021-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    df = pd.DataFrame({"time": times, "y": np.round(y, 2)})
    train, nxt = df.iloc[: n - 500], df.iloc[n - 500 :]
    tw = datatwin.fit(train, kind="series", max_lag=4, structures="ar,phase,none")
    assert tw.structure.endswith("+phase")
    ps = tw.model.phase_scale[0]
    assert ps[:6].mean() / ps[6:].mean() == pytest.approx(6.0, rel=0.15)
    auto = tw.log_prob(nxt)
    np.testing.assert_allclose(tw.log_prob(nxt, history=train), auto)
    # a file that does not continue: scored steps get their phase from their own times
    late = df.iloc[1000:1300]
    lp = tw.log_prob(late)
    m = tw.model.max_lag
    np.testing.assert_allclose(lp, tw.log_prob(late.iloc[m:], history=late.iloc[:m]))
    tw.save(tmp_path / "p.twin")
    back = datatwin.load(tmp_path / "p.twin")
    np.testing.assert_array_equal(back.log_prob(nxt), auto)
    # simulated noise follows the phase pattern: night steps vary more
    s = tw.sample(24 * 20, seed=1, paths=50)
    v = s["y"].to_numpy().reshape(50, -1)
    d = np.diff(v, axis=1)
    ph = (np.arange(1, v.shape[1]) + tw.next_step) % per
    assert d[:, ph < 6].std() > 3 * d[:, ph >= 8].std()


def test_calendar_terms_recover_a_time_of_day_profile(tmp_path):
    rng = np.random.default_rng(13)
    n, per = 24 * 300, 24
    hour = np.arange(n) % per
    profile = np.where((hour >= 9) & (hour < 17), 4.0, 0.0)
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.3 * e[t - 1] + rng.normal()
    times = pd.date_range("2021-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    df = pd.DataFrame({"time": times, "y": np.round(profile + e, 2)})
    tw = datatwin.fit(df, kind="series", max_lag=3, structures="ar,calendar,none")
    assert "+calendar" in tw.structure
    # the level is a mean per hour of the week (hourly data): the 0 / 4 profile in data units
    assert tw.model.level.shape == (1, 7 * 24)
    lvl = tw.center[0] + tw.scale[0] * tw.model.level[0]
    hour = np.arange(7 * 24) % 24
    assert lvl[(hour >= 9) & (hour < 17)].mean() - lvl[hour < 8].mean() == pytest.approx(4, abs=0.3)
    s = tw.sample(24 * 50, seed=0, paths=20)
    y = s["y"].to_numpy().reshape(20, -1)
    ph = (np.arange(y.shape[1]) + tw.next_step) % per
    assert y[:, (ph >= 9) & (ph < 17)].mean() - y[:, (ph < 8)].mean() == pytest.approx(4.0, abs=0.3)
    tw.save(tmp_path / "c.twin")
    back = datatwin.load(tmp_path / "c.twin")
    pd.testing.assert_frame_equal(back.sample(30, seed=2), tw.sample(30, seed=2))


@pytest.mark.parametrize("structures", ["seasonal", "diff,sdiff", "iid,mix", "ar,sqrt"])
def test_structure_subsets_fit_and_phase_alone_is_rejected(structures):
    rng = np.random.default_rng(14)
    n = 12 * 60
    y = np.round(10 + 3 * np.sin(2 * np.pi * np.arange(n) / 12) + rng.normal(0, 1, n), 1)
    df = pd.DataFrame({"time": np.round(1900 + np.arange(n) / 12, 5), "y": y})
    tw = datatwin.fit(df, kind="series", structures=structures, max_lag=6)
    assert np.all(np.isfinite(tw.log_prob(df.iloc[:100])))
    with pytest.raises(datatwin.InputError, match="modify a base structure"):
        datatwin.fit(df, kind="series", structures="phase")


@pytest.mark.parametrize("r", [0.999, 1.001, 1.02])
def test_stabilize_puts_the_largest_root_on_the_cap(r):
    """An AR(2) with complex roots r·e^{±2πi/48} (a daily cycle at half-hours): the power
    iteration finds |root| = r, and stabilize scales the roots onto RADIUS_CAP when r is above
    it (a root at 0.999 is left alone) — the same roots, shrunk, so the cycle's period stays."""
    from datatwin.series.linear import LinearModel
    from datatwin.series.residuals import RADIUS_CAP, spectral_radius, stabilize

    th = 2 * np.pi / 48
    B = np.array([2 * r * np.cos(th), -(r**2)]).reshape(1, 2, 1)
    one = np.ones((1, 1))
    m = LinearModel(np.array([1, 2]), np.zeros(1), np.zeros((1, 1)), B, one, 0 * one, one)
    # the power iteration's growth over a window of two steps wobbles with the cycle: ~1e-4
    assert spectral_radius(m) == pytest.approx(r, abs=2e-4)
    stabilize(m)
    roots = np.roots([1.0, -m.B[0, 0, 0], -m.B[0, 1, 0]])
    assert np.max(np.abs(roots)) == pytest.approx(min(r, RADIUS_CAP), abs=2e-4)
    assert np.max(np.abs(roots)) <= RADIUS_CAP + 1e-12 or r <= RADIUS_CAP
    assert np.abs(np.angle(roots)).max() == pytest.approx(th, rel=1e-9)


def test_conditional_means_of_a_run_of_rows_equal_those_of_scattered_rows():
    """`LinearModel.means` (and its intercepts per step) reads a run of consecutive rows' lags
    as views and scattered rows' by gathering: the same numbers either way."""
    from datatwin.series.linear import LinearModel

    rng = np.random.default_rng(4)
    d, lags = 2, np.array([1, 2, 5])
    B = 0.1 * rng.standard_normal((d, len(lags), d))
    A = np.array([[0.0, 0.0], [0.3, 0.0]])
    one = np.ones((d, 1))
    m = LinearModel(lags, rng.standard_normal(d), A, B, one, 0 * one, one)
    Z = rng.standard_normal((200, d))
    run = np.arange(5, 200)
    for fourier in (False, True):  # a level with Fourier terms: intercepts per step
        if fourier:
            m.fourier_periods, m.fourier_coef = np.array([7.0]), rng.standard_normal((d, 2))
        whole = m.means(Z, run)
        for part in (run[::2], run[1::3], run[[0, 7, 3]]):
            np.testing.assert_array_equal(m.means(Z, part), whole[part - 5])
