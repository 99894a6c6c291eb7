"""Values outside the support learned from training: a small, finite escape probability."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import ModelFileError
from datatwin.series.ar import Columns, prepare
from datatwin.series.precision import cell_edges, escape_log_prob, log_cell_mass

LN2 = math.log(2.0)


def positive_frame(n=600, seed=0, decimals=1):
    """A positive series (log- and sqrt-eligible) with no time column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": np.round(np.exp(rng.normal(3.0, 0.15, n)), decimals)})


def workday_frame(n=800, seed=1):
    """A continuous column and a 0/1 indicator (support [0, 1]), not predictable exactly."""
    rng = np.random.default_rng(seed)
    w = (rng.random(n) < 0.7).astype(float)
    x = np.round(10 + 2 * w + rng.normal(0, 1, n), 2)
    return pd.DataFrame({"x": x, "WorkDay": w})


def step_bits(tw, row):
    return float(-tw.log_prob(pd.DataFrame([row]))[0] / LN2)


@pytest.mark.parametrize("transform", ["log", "sqrt"])
def test_negative_and_far_values_in_a_transformed_column_score_finite(transform):
    df = positive_frame()
    tw = datatwin.fit(df, kind="series", structures=f"iid,{transform}")
    assert tw.transforms == [transform]
    y = df["y"].to_numpy()
    grid = np.round(np.arange(y.min(), y.max() + 0.05, 0.1), 1)
    inside = [step_bits(tw, {"y": v}) for v in grid]
    assert all(np.isfinite(inside))
    worst_inside = max(inside)
    for v in (-0.1, -3.0, -1e6, -1e300):
        b = step_bits(tw, {"y": v})
        assert np.isfinite(b)
        assert b > worst_inside
    # farther below the bound is less likely
    assert step_bits(tw, {"y": -3.0}) > step_bits(tw, {"y": -0.1})
    # a whole file with out-of-support values scores finite bits too
    lp = tw.log_prob(pd.DataFrame({"y": [20.0, -1.0, 21.5, -50.0, 19.9]}))
    assert np.all(np.isfinite(lp))


def test_indicator_column_values_outside_0_1_score_finite():
    df = workday_frame()
    tw = datatwin.fit(df, kind="series", structures="iid,ar,none", max_lag=8)
    assert tw.cols.lower[1] == 0.0 and tw.cols.upper[1] == 1.0
    nxt = pd.DataFrame({"x": [12.0] * 4, "WorkDay": [1.0, 0.0, 1.0, 1.0]})
    base = tw.log_prob(nxt)
    for v in (2.0, -1.0, 7.0, 1e9):
        bad = nxt.copy()
        bad.loc[1, "WorkDay"] = v
        lp = tw.log_prob(bad)
        assert np.all(np.isfinite(lp))
        # the out-of-support step costs more than either in-support value there
        for w in (0.0, 1.0):
            ok = nxt.copy()
            ok.loc[1, "WorkDay"] = w
            assert lp[1] < tw.log_prob(ok)[1]
        # later steps condition on the nearest in-support value (here 1 or 0)
        near = nxt.copy()
        near.loc[1, "WorkDay"] = 1.0 if v > 1 else 0.0
        np.testing.assert_allclose(lp[2:], tw.log_prob(near)[2:], rtol=1e-12)
    assert np.isfinite(base).all()
    # far beyond the range costs more than just beyond it
    far = nxt.copy()
    far.loc[1, "WorkDay"] = 1e9
    near = nxt.copy()
    near.loc[1, "WorkDay"] = 2.0
    assert tw.log_prob(far)[1] < tw.log_prob(near)[1]


def test_in_support_values_keep_their_probability_up_to_one_minus_escape():
    df = workday_frame()
    tw = datatwin.fit(df, kind="series", structures="iid,ar,none", max_lag=8)
    nxt = pd.DataFrame({"x": [12.0, 9.5, 11.0], "WorkDay": [1.0, 0.0, 1.0]})
    lp = tw.log_prob(nxt)
    # the same model without the escape (ε = 0) differs by log(1 - ε) per bounded column-step
    eps = tw.cols.escape[1]
    assert eps == pytest.approx(1.0 / (len(df) + 1.0))
    tw.cols.escape[1] = 0.0
    lp0 = tw.log_prob(nxt)
    np.testing.assert_allclose(lp, lp0 + math.log1p(-eps), rtol=1e-12)


@pytest.mark.parametrize(
    ("lower", "upper", "transform", "decimals", "center", "scale"),
    [
        (0.0, 1.0, "none", 0, 0.5, 0.5),  # 0/1 indicator
        (0.0, None, "none", 1, 3.0, 2.0),  # non-negative
        (0.0, None, "sqrt", 1, 1.5, 0.8),
        (None, None, "log", 1, 1.0, 0.6),  # log implies ≥ 0
        (2.0, 5.0, "none", 0, 3.5, 1.5),  # two values {2, 5}
    ],
)
@pytest.mark.parametrize("mixture", [False, True])
def test_one_steps_cells_over_a_wide_grid_sum_to_one(
    lower, upper, transform, decimals, center, scale, mixture
):
    delta = 10.0 ** (-decimals)
    span = 2000 if decimals == 0 else 6000
    grid = np.round(np.arange(-span, span + 1) * delta, decimals)
    cols = Columns(["y"], [decimals], [lower], [upper], [True], [True], [0.01], [3.0], [0.02])
    prep = prepare(grid[:, None], cols, [transform], np.array([center]), np.array([scale]))
    a, b = cell_edges(grid, decimals, lower, upper, transform, center, scale)
    np.testing.assert_array_equal(a, prep.a[:, 0])
    mean = np.full(grid.shape, 0.3)
    if mixture:
        w, mu, sd = np.array([0.5, 0.3, 0.2]), np.array([0.0, 0.4, -0.2]), np.array([0.3, 0.7, 1.5])
    else:
        w, mu, sd = np.ones(1), np.zeros(1), np.array([0.6])
    model = log_cell_mass(a, b, mean, w, mu, sd)
    lp = prep.cell_logp(np.arange(len(grid)), 0, model)
    assert np.all(np.isfinite(lp))
    total = float(np.exp(lp).sum())  # the grid's values: all but the finer mass φ = 0.02
    assert total <= 0.98 + 1e-12
    assert total >= 0.98 - 1e-6
    # the escape mass is exactly ε, spread beyond the bounds
    out = prep.outside[:, 0]
    assert out.any()
    assert float(np.exp(lp[out]).sum()) == pytest.approx(0.01 * 0.98, rel=1e-6)
    assert float(np.exp(lp[~out]).sum()) == pytest.approx(0.99 * 0.98, rel=1e-6)


def test_escape_is_zero_for_unbounded_columns():
    x = np.array([-1e6, -3.0, 0.0, 5.0, np.nan])
    out, adj = escape_log_prob(x, 2, None, None, "none", 0.01, 3.0)
    assert not out.any()
    assert np.all(adj == 0.0)


def test_escape_is_finite_for_extreme_values():
    x = np.array([-1e308, -1e300, -1.0, 0.0, 1.0, 2.0, 1e300, 1e308, np.nan])
    out, adj = escape_log_prob(x, 9, 0.0, 1.0, "none", 1e-4, 1.0)
    assert list(out) == [True, True, True, False, False, True, True, True, False]
    assert np.all(np.isfinite(adj))
    assert adj[0] <= adj[1] < adj[2]


def test_sampling_never_produces_out_of_support_values():
    tw = datatwin.fit(workday_frame(), kind="series", structures="iid,ar,none", max_lag=8)
    s = tw.sample(500, seed=3, paths=4)
    assert set(np.unique(s["WorkDay"])) <= {0.0, 1.0}
    tw2 = datatwin.fit(positive_frame(), kind="series", structures="iid,ar,log")
    assert tw2.sample(2000, seed=1)["y"].min() >= 0.0


def test_save_load_round_trip_keeps_log_prob(tmp_path):
    df = workday_frame()
    tw = datatwin.fit(df, kind="series", structures="iid,ar,none", max_lag=8)
    nxt = pd.DataFrame({"x": [12.0, 9.5, -4.0, 11.0], "WorkDay": [1.0, 2.0, -1.0, 1.0]})
    lp = tw.log_prob(nxt)
    path = tmp_path / "m.twin"
    tw.save(path)
    tw2 = datatwin.load(path)
    np.testing.assert_array_equal(tw2.log_prob(nxt), lp)
    assert tw2.cols.escape == tw.cols.escape
    assert tw2.cols.spread == tw.cols.spread
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
    assert meta["escape"] == pytest.approx([1.0 / (len(df) + 1.0)] * 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("escape", [0.0, 0.001]),
        ("escape", [1.0, 0.001]),
        ("escape", [0.001]),
        ("escape", [0.001, "x"]),
        ("escape", [0.001, None]),
        ("spread", [0.0, 1.0]),
        ("spread", [-1.0, 1.0]),
        ("spread", [1.0, 2.0, 3.0]),
        ("spread", "wide"),
    ],
)
def test_model_file_escape_fields_are_validated(tmp_path, key, value):
    tw = datatwin.fit(workday_frame(), kind="series", structures="iid,ar,none", max_lag=4)
    path = tmp_path / "m.twin"
    tw.save(path)
    bad = tmp_path / "bad.twin"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.json":
                meta = json.loads(data)
                meta[key] = value
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    with pytest.raises(ModelFileError):
        datatwin.load(bad)


def test_model_file_without_escape_fields_loads_with_defaults(tmp_path):
    tw = datatwin.fit(workday_frame(), kind="series", structures="iid,ar,none", max_lag=4)
    path = tmp_path / "m.twin"
    tw.save(path)
    old = tmp_path / "old.twin"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(old, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.json":
                meta = json.loads(data)
                del meta["escape"], meta["spread"]
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    tw2 = datatwin.load(old)
    assert tw2.cols.escape == pytest.approx(tw.cols.escape)
    lp = tw2.log_prob(pd.DataFrame({"x": [12.0], "WorkDay": [2.0]}))
    assert np.all(np.isfinite(lp))
