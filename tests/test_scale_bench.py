"""The scale benchmark's own table generator and growth fit (bench/scale_bench.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scale_bench import exponent, flights  # noqa: E402


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
