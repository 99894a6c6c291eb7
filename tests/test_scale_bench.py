"""The scale benchmark's own table generator and growth fit (bench/scale_bench.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scale_bench import exponent, flights, stage_times  # noqa: E402


def _minutes(hhmm: np.ndarray) -> np.ndarray:
    return (hhmm // 100) * 60 + hhmm % 100


def test_flights_delays_are_differences_of_clock_times():
    f = flights(3000, seed=1)
    ok = f["cancelled"] == 0
    assert (~ok).any() and f.loc[~ok, "dep_time"].isna().all()
    dep = _minutes(f.loc[ok, "dep_time"].to_numpy(int))
    sched = _minutes(f.loc[ok, "sched_dep"].to_numpy(int))
    delay = f.loc[ok, "dep_delay"].to_numpy(int)
    assert np.array_equal((dep - sched - delay) % 1440, np.zeros(ok.sum(), int))
    hhmm = f["sched_dep"].to_numpy(int)
    assert (hhmm % 100 < 60).all() and (hhmm < 2400).all()
    assert f["tail"].nunique() > 500 and f["date"].str.match(r"^2023-\d\d-\d\d$").all()


def test_growth_exponent_of_a_power_law():
    rows = [10_000, 100_000, 1_000_000]
    assert abs(exponent(rows, [2e-4 * n**1.1 for n in rows]) - 1.1) < 1e-9
    assert exponent(rows[:1], [1.0]) is None
    assert exponent(rows, [0.0, 1.0, 2.0]) is None  # a stage that took no time


def test_a_table_fit_records_its_stages_and_they_sum_to_at_most_the_fit():
    import time

    import pandas as pd

    import datatwin
    from datatwin import progress

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 3, 400), "b": rng.normal(size=400).round(2)})
    start = time.perf_counter()
    with progress.recording() as steps:
        twin = datatwin.fit(df, structures="independent,chow-liu", seed=0)
    fit_s = time.perf_counter() - start
    messages = [m for m, _ in steps]
    assert messages[:2] == ["holding out rows of 400", "inferring the types of 2 columns"]
    assert "fitting independent" in messages and "fitting chow-liu" in messages
    assert any(m.startswith("refitting " + twin.structure) for m in messages)
    stages = stage_times(steps, fit_s)
    assert stages["search_s"] > 0 and stages["refit_s"] > 0
    assert abs(sum(stages.values()) - fit_s) < 1e-9  # other_s is the rest


def test_a_long_step_prints_its_label_and_time_off_a_terminal(monkeypatch, capsys):
    from datatwin import progress

    clock = iter([100.0, 102.5])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(progress.LOGGER, "propagate", progress.LOGGER.propagate)
    monkeypatch.setattr(progress.LOGGER, "level", progress.LOGGER.level)
    progress.enable_cli(quiet=False)
    try:
        with progress.step("fitting trees[bins=20]"):
            pass
    finally:
        progress.enable_cli(quiet=True)
    assert capsys.readouterr().err.strip() == "fitting trees[bins=20]: 2.5 s"
