"""Long-horizon drift columns of the series leaderboard (series/drift.py, issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.series import drift


def ar1(n: int = 3000, phi: float = 0.95, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + rng.normal()
    return pd.DataFrame({"y": np.round(y, 2)})


@pytest.fixture(scope="module")
def twin():
    return datatwin.fit(ar1(), kind="series", structures="iid,ar", max_lag=4)


def test_the_best_candidates_show_drift_and_the_rest_do_not(twin):
    rows = sorted(twin.leaderboard, key=lambda r: r["holdout_bits"])
    shown = [r for r in rows if "drift_acf" in r]
    assert [r["structure"] for r in shown] == [r["structure"] for r in rows[: drift.SHOWN]]
    for r in shown:
        assert 0 <= r["drift_ks"] <= 1 and r["drift_w1"] >= 0 and r["drift_acf"] >= 0


def test_drift_tells_a_memoryless_twin_from_one_that_remembers():
    """On an AR(1) with φ = 0.95 the iid twin's simulated paths have no autocorrelation (the
    holdout's is 0.95^l), the AR twin's have it: RMS ACF errors far apart."""
    from datatwin.series.ar import prepare

    df = ar1()
    vals = df.to_numpy(float)
    n_train = 2400
    got = {}
    for st in ("iid", "ar(1)"):
        tw = datatwin.fit(df.iloc[:n_train], kind="series", structures=st, max_lag=4)
        prep = prepare(vals, tw.cols, tw.transforms, tw.center, tw.scale)
        got[st] = drift.measure(tw.model, tw.cols, prep, np.zeros(1), n_train, vals[n_train:])
    assert got["iid"] is not None and got["ar(1)"] is not None
    assert got["iid"].acf > 0.3 > 0.1 > got["ar(1)"].acf


def test_drift_is_reproducible(twin):
    again = datatwin.fit(ar1(), kind="series", structures="iid,ar", max_lag=4)

    def timeless(rows):
        return [{k: v for k, v in r.items() if k != "fit_seconds"} for r in rows]

    assert timeless(again.leaderboard) == timeless(twin.leaderboard)


def test_acf_of_a_constant_or_short_series_is_not_a_number_error():
    assert drift.column_drift(np.ones((2, 40)), np.ones(40)) == (0.0, 0.0, 0.0)
    assert drift.column_drift(np.ones((2, 4)), np.ones(4)) is None
    np.testing.assert_allclose(drift.acf(np.arange(10.0), 3)[0], 1.0)


def test_two_sample_distances_match_scipy_with_ties():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = np.round(rng.normal(size=400), 1), np.round(rng.standard_t(3, size=250), 1)
    ks, w1 = drift.ks_w1(a, b)
    assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert w1 == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


# ---- the long-horizon variant (horizon.py) --------------------------------------------------
def daily_years(years: int = 2, seed: int = 6) -> pd.DataFrame:
    """Daily values with a weekly and a yearly cycle and AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2020-01-01", periods=365 * years, freq="D")
    e = np.zeros(len(t))
    for i in range(1, len(t)):
        e[i] = 0.8 * e[i - 1] + rng.normal()
    doy = 2 * np.pi * t.day_of_year.to_numpy() / 365.25
    y = 20 + 8 * np.sin(doy) + 3 * (t.day_of_week.to_numpy() < 5) + e
    return pd.DataFrame({"time": t.strftime("%Y-%m-%d"), "y": np.round(y, 1)})


@pytest.fixture(scope="module")
def yearly():
    return datatwin.fit(daily_years(), kind="series", max_lag=8)


def test_the_best_fourier_structure_gets_a_long_variant_with_a_yearly_harmonic(yearly):
    from datatwin.series.horizon import LONG_CAP

    rows = {r["structure"]: r for r in yearly.leaderboard}
    best = min(
        (r for r in rows.values() if not r["structure"].endswith("+long")),
        key=lambda r: r["holdout_bits"],
    )
    assert "+fourier" in best["structure"]
    long = rows[best["structure"] + "+long"]
    assert "drift_acf" in long and "drift_acf" in best
    again = datatwin.fit(daily_years(), kind="series", max_lag=8, structures=long["structure"])
    assert again.structure == long["structure"]
    assert again.params["long"] and again.params["fourier"][-1] >= 1  # the yearly harmonic
    assert again.model.info["radius_cap"] == LONG_CAP
    assert again.leaderboard[0]["holdout_bits"] == pytest.approx(long["holdout_bits"], abs=1e-12)


def test_choose_takes_the_long_variant_only_when_close_in_bits_and_drifting_less():
    from datatwin.core.candidates import Board, Candidate, Structure
    from datatwin.series.horizon import LONG_TOLERANCE, choose

    def cand(label, bits, d):
        cols = {"drift_acf": d, "drift_ks": d, "drift_w1": d}
        return Candidate(Structure.of("ar", label=label), bits, bits, 0.0, None, cols)

    def pick(long_bits, long_drift):
        board: Board = Board()
        board.add(cand("ar(2)+fourier", 10.0, 0.2))
        board.add(cand("ar(2)+fourier+long", long_bits, long_drift))
        return choose(board).structure.label

    near = 10.0 * (1 + LONG_TOLERANCE) - 1e-9
    assert pick(near, 0.1) == "ar(2)+fourier+long"
    assert pick(10.0 * (1 + 2 * LONG_TOLERANCE), 0.1) == "ar(2)+fourier"
    assert pick(near, 0.3) == "ar(2)+fourier"


def test_long_variant_straightens_a_transform_only_while_the_holdout_gains(monkeypatch):
    """`_straightened` moves each transformed column (calendar columns aside, in column order)
    down log → sqrt → none, one step at a time, while the holdout bits fall."""
    from types import SimpleNamespace

    from datatwin.series import horizon

    # holdout bits of each per-column transform choice (a, b, c); c is a calendar column
    bits = {
        ("log", "log", "log"): 10.0,
        ("sqrt", "log", "log"): 10.5,  # a straighter: worse, a stays log (none not tried)
        ("log", "sqrt", "log"): 9.0,  # b to sqrt: better, kept
        ("log", "none", "log"): 9.5,  # b to none: worse than sqrt, b stays sqrt
        ("none", "log", "log"): 1.0,  # never tried: a stopped at its first step
        ("log", "sqrt", "sqrt"): 0.5,  # never tried: c is a calendar column
    }
    tried = []

    def fake_prep(transforms):
        return SimpleNamespace(transforms=list(transforms))

    def refit(prep):
        tried.append(tuple(prep.transforms))
        return SimpleNamespace(model=None, prep=prep, exog=["c"])

    search = SimpleNamespace(
        cols=SimpleNamespace(names=["a", "b", "c"]),
        rate=None,
        hold_rows=None,
        prepared=lambda name, tr: fake_prep(tr),
    )
    monkeypatch.setattr(
        horizon, "bits_rows", lambda model, cols, rate, prep, rows: bits[tuple(prep.transforms)]
    )
    start = SimpleNamespace(model=None, prep=fake_prep(("log", "log", "log")), exog=["c"])
    got = horizon._straightened(search, start, refit)  # type: ignore[arg-type]
    assert tried == [("sqrt", "log", "log"), ("log", "sqrt", "log"), ("log", "none", "log")]
    assert got.prep.transforms == ["log", "sqrt", "log"]
