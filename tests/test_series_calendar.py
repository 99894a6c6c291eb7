"""Calendar columns, Fourier levels over several seasons, gaps (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import InputError
from datatwin.series.calendar import Clock


def hourly_workdays(weeks: int = 8, gaps: bool = False, seed: int = 3) -> pd.DataFrame:
    """Hourly load with a WorkDay column (weekdays, minus two holidays) and a daily cycle."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2021-01-04", periods=weeks * 168, freq="h")  # a Monday
    work = (t.day_of_week < 5).astype(int)
    work[(t.normalize() == "2021-01-26") | (t.normalize() == "2021-02-09")] = 0
    e = np.zeros(len(t))
    for i in range(1, len(t)):
        e[i] = 0.7 * e[i - 1] + rng.normal(0, 1.0)
    y = 20 + 6 * work + 4 * np.sin(2 * np.pi * t.hour / 24) + e
    df = pd.DataFrame({"time": t.strftime("%Y-%m-%d %H:%M:%S"), "load": np.round(y)})
    df["WorkDay"] = work
    if gaps:
        drop = np.zeros(len(df), dtype=bool)
        drop[[100, 101, 102, 500, 777, 1000, 1001]] = True
        df = df[~drop].reset_index(drop=True)
    return df


@pytest.fixture(scope="module")
def twin():
    return datatwin.fit(hourly_workdays(), kind="series", max_lag=3)


def test_calendar_column_is_detected_and_selected(twin):
    assert "+exog" in twin.structure
    assert twin.params["exog"] == ["WorkDay"]
    assert twin.model.calendar is not None and list(twin.model.chain[:1]) == [1]


def test_a_step_sums_to_one_over_both_columns(twin):
    """Σ over WorkDay ∈ {-3..4} (outside values get the escape mass) and a wide load grid
    (integers; each column's finer mass φ is for values with decimals)."""
    df = hourly_workdays()
    nxt = hourly_workdays(9).iloc[len(df) : len(df) + 1].reset_index(drop=True)
    total = 0.0
    for w in range(-3, 5):
        grid = nxt.loc[np.repeat(0, 121)].reset_index(drop=True)
        grid["WorkDay"] = w
        grid["load"] = np.arange(-30, 91)
        lp = np.array([twin.log_prob(grid.iloc[[i]], history=df)[0] for i in range(len(grid))])
        assert np.all(np.isfinite(lp))
        total += float(np.exp(lp).sum())
    # the escape mass beyond the grid (geometric beyond each bound, see precision.py)
    cols = twin.cols
    jw, jl = cols.names.index("WorkDay"), cols.names.index("load")
    qw = 1 - 1 / (1 + cols.spread[jw])
    ql = 1 - 1 / (1 + cols.spread[jl])
    beyond = cols.escape[jw] * qw**3 + cols.escape[jl] * ql**30
    on_grid = (1 - cols.finer[jw]) * (1 - cols.finer[jl])  # the rest: values with more decimals
    assert total / on_grid + beyond == pytest.approx(1.0, abs=1e-6)


def test_calendar_probabilities_sum_to_one_alone(twin):
    cal = twin.model.calendar
    steps = np.arange(3000, 3200)
    k, lam = cal.key_probs(0, steps)
    assert np.allclose(k.sum(axis=1), 1.0) and np.all((lam >= 0) & (lam <= 1))


def test_simulated_calendar_follows_the_calendar(twin):
    s = twin.sample(24 * 7 * 4, seed=1, paths=5)
    t = pd.to_datetime(s["time"])
    weekend = s["WorkDay"][t.dt.day_of_week >= 5]
    weekday = s["WorkDay"][t.dt.day_of_week < 5]
    assert weekend.mean() < 0.05 and weekday.mean() > 0.9
    # within a day the indicator does not flip (it is a function of the date)
    per_day = s.groupby([s["path"], t.dt.normalize()])["WorkDay"].nunique()
    assert (per_day == 1).mean() > 0.97


def test_exception_days_repeat_on_the_same_weekday_of_the_month():
    clock = Clock("datetime", 168, 24, pd.Timestamp("2021-01-04").value, 3600 * 10**9)
    # 2021-01-26 is the 4th Tuesday of January; 2022's 4th Tuesday is 2022-01-25
    s21 = (pd.Timestamp("2021-01-26") - pd.Timestamp("2021-01-04")) // pd.Timedelta("1h")
    s22 = (pd.Timestamp("2022-01-25") - pd.Timestamp("2021-01-04")) // pd.Timedelta("1h")
    assert clock.keys(np.array([s21]))[3][0] == clock.keys(np.array([s22]))[3][0]


def test_fourier_and_calendar_twin_save_load_and_reproduce(twin, tmp_path):
    df = hourly_workdays()
    nxt = hourly_workdays(9).iloc[len(df) : len(df) + 48].reset_index(drop=True)
    twin.save(tmp_path / "c.twin")
    back = datatwin.load(tmp_path / "c.twin")
    np.testing.assert_array_equal(back.log_prob(nxt), twin.log_prob(nxt))
    pd.testing.assert_frame_equal(
        back.sample(50, seed=7, paths=3), twin.sample(50, seed=7, paths=3)
    )
    again = datatwin.fit(df, kind="series", structures=twin.structure, max_lag=3)
    np.testing.assert_array_equal(again.log_prob(nxt), twin.log_prob(nxt))


def test_declared_and_refused_exogenous_columns():
    df = hourly_workdays(4)
    tw = datatwin.fit(df, kind="series", max_lag=2, exogenous=["WorkDay"])
    assert tw.params["exog"] == ["WorkDay"]
    off = datatwin.fit(df, kind="series", max_lag=2, exogenous=[])
    assert "+exog" not in off.structure
    with pytest.raises(InputError, match="not a value column"):
        datatwin.fit(df, kind="series", max_lag=2, exogenous=["nope"])
    with pytest.raises(InputError, match="every column"):
        datatwin.fit(df, kind="series", max_lag=2, exogenous=["WorkDay", "load"])


def test_hourly_gaps_are_scored_and_simulated():
    df = hourly_workdays(gaps=True)
    with pytest.raises(InputError, match="time_gaps"):
        datatwin.fit(df, kind="series", max_lag=3)
    tw = datatwin.fit(df, kind="series", max_lag=3, time_gaps="fill")
    assert "+exog" in tw.structure
    assert np.isfinite(tw.leaderboard[0]["holdout_bits"])
    assert tw.missing_rate.max() > 0
    s = tw.sample(500, seed=2, paths=4)
    assert s["load"].isna().mean() < 0.05
    # the missing steps sit on the grid: the history through the gap is the carried value
    full = hourly_workdays()
    lp = tw.log_prob(hourly_workdays(9).iloc[len(full) : len(full) + 24])
    assert np.all(np.isfinite(lp))


def test_fourier_level_reverts_and_is_stable():
    tw = datatwin.fit(hourly_workdays(), kind="series", max_lag=3, structures="ar(2)+fourier")
    assert tw.params["fourier"]
    s = tw.sample(24 * 7 * 20, seed=3, paths=2)
    x = s["load"].to_numpy()
    data = hourly_workdays()["load"]
    assert abs(np.nanmean(x) - data.mean()) < 1.5 and np.nanstd(x) < 2 * data.std()


def test_a_new_holiday_costs_its_rate_not_near_certainty(twin):
    """A work day off that the training data never showed (an ordinary Wednesday of week 9)
    costs about -log2(π x(0)) bits at its day start: π the rate of exception days in the
    training span (two holidays in 8 weeks, add-½), x(0) their value; the same model file
    keeps π and x, and a damaged rate is refused."""
    from datatwin.errors import DataTwinError
    from datatwin.series.linear import LinearModel

    cal = twin.model.calendar
    assert cal.novel_rate is not None and cal.novel_dist is not None
    days = 8 * 7
    assert cal.novel_rate[0] == pytest.approx((2 + 0.5) / (days + 1))
    assert cal.novel_dist[0, 0] > 0.5  # both holidays were 0
    step = len(hourly_workdays()) + 48  # 00:00 of the Wednesday after the training weeks
    t = pd.Timestamp("2021-01-04") + pd.Timedelta(hours=step)
    assert t.day_name() == "Wednesday" and t.hour == 0
    k, lam = cal.key_probs(0, np.array([step]))
    off = 1 - cal.lam[0, 0]  # the day start's weight on the day's kernel (previous day: 1)
    assert lam[0] == cal.lam[0, 0]
    p_off = off * k[0, 0]
    assert -np.log2(p_off) == pytest.approx(
        -np.log2(cal.novel_rate[0] * cal.novel_dist[0, 0]), abs=0.5
    )
    phase = cal.clock.keys(np.array([step]))[0][0]
    assert p_off > 100 * cal.table[0, phase, 0]  # the weekly pattern alone: near-certainty
    arrays = twin.model.to_arrays()
    d = len(twin.model.intercept)
    back = LinearModel.from_arrays(arrays, twin.model.info, d, "ok").calendar
    assert back is not None and np.array_equal(back.novel_rate, cal.novel_rate)
    with pytest.raises(DataTwinError):
        LinearModel.from_arrays(
            {**arrays, "cal_novel_rate": np.array([1.5])}, twin.model.info, d, "bad"
        )


def test_calendar_columns_are_tried_without_a_fourier_level_once(twin):
    """Each leaderboard label is fit once; the calendar columns on the best without a Fourier
    level are an extra candidate only when the greedy path put them on a Fourier level."""
    labels = [r["structure"] for r in twin.leaderboard]
    assert len(labels) == len(set(labels))
    with_fourier = [s for s in labels if "+fourier+exog" in s]
    if with_fourier:
        assert any("+exog" in s and "+fourier" not in s for s in labels)


def test_new_exceptions_on_covered_dates_come_at_the_conserving_rate(twin):
    """A day whose key the training span covered as an ordinary day gets new exceptions at
    π_seen = ξ E / O (two learned holidays over 56 covered days), a day after the span at π;
    both survive save/load, and a damaged π_seen is refused."""
    from datatwin.errors import DataTwinError
    from datatwin.series.calendar import XI
    from datatwin.series.linear import LinearModel

    cal = twin.model.calendar
    assert cal.seen_rate is not None and cal.novel_rate is not None
    assert cal.seen_rate[0] == pytest.approx(XI * 2 / (56 - 2))
    inside, after = 48, len(hourly_workdays()) + 48  # 00:00 of two Wednesdays
    rates = cal._novel_rates(0, cal.clock.keys(np.array([inside, after]))[3])
    np.testing.assert_allclose(rates, [cal.seen_rate[0], cal.novel_rate[0]])
    arrays = twin.model.to_arrays()
    d = len(twin.model.intercept)
    back = LinearModel.from_arrays(arrays, twin.model.info, d, "ok").calendar
    assert back is not None and np.array_equal(back.seen_keys, cal.seen_keys)
    assert back.seen_rate is not None and np.array_equal(back.seen_rate, cal.seen_rate)
    with pytest.raises(DataTwinError):
        LinearModel.from_arrays(
            {**arrays, "cal_seen_rate": np.array([-0.1])}, twin.model.info, d, "bad"
        )


def daily_year(seed: int = 5) -> pd.DataFrame:
    """A year of daily demand with a WorkDay column: weekdays minus 12 holidays."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2021-01-01", periods=365, freq="D")
    work = (t.day_of_week < 5).astype(int)
    weekdays = np.flatnonzero(work)
    work[rng.choice(weekdays, 12, replace=False)] = 0
    e = np.zeros(len(t))
    for i in range(1, len(t)):
        e[i] = 0.6 * e[i - 1] + rng.normal(0, 1.0)
    y = np.round(50 + 10 * work + e, 1)
    return pd.DataFrame({"time": t.strftime("%Y-%m-%d"), "demand": y, "WorkDay": work})


def test_a_simulated_year_has_the_data_s_share_of_exception_days():
    """After a whole year, every date's key is covered: the learned holidays recur (or move
    to another day with probability ξ) and no extra ones come at π on top, so a simulated
    year's share of work days on weekdays matches the data's (the old π on every ordinary
    day took about π off it)."""
    df = daily_year()
    tw = datatwin.fit(df, kind="series", max_lag=3, exogenous=["WorkDay"])
    assert "+exog" in tw.structure
    s = tw.sample(365, seed=4, paths=40)
    wd = pd.to_datetime(s["time"]).dt.day_of_week < 5
    real = df["WorkDay"][pd.to_datetime(df["time"]).dt.day_of_week < 5].mean()
    cal = tw.model.calendar
    assert cal.novel_rate[0] > 0.025  # what the old rule would have taken off
    assert abs(s["WorkDay"][wd].mean() - real) < 0.01
