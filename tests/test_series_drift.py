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
