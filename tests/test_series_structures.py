"""Series structures as data: the family registry, labels that round-trip through `fit`,
strict keywords, and series files read through the one table reader."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.core.options import check_keywords
from datatwin.errors import InputError
from datatwin.series import SeriesTwin
from datatwin.series.builders import FAMILIES
from datatwin.series.select import SERIES_STRUCTURES
from datatwin.series.structures import SeriesStructure


def hourly_frame(n_days=120, seed=21):
    """Two hourly columns: a positive one with a daily profile, phase-dependent heavy-tailed
    noise and AR memory, and a noisy daily cycle."""
    rng = np.random.default_rng(seed)
    n, per = 24 * n_days, 24
    h = np.arange(n) % per
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.7 * e[t - 1] + (0.3 if h[t] >= 7 else 1.0) * rng.standard_t(3) * 0.3
    y = np.round(np.exp(2 + 0.5 * np.sin(2 * np.pi * h / per) + 0.3 * e), 2)
    x = np.round(5 + 2 * np.cos(2 * np.pi * h / per) + rng.normal(0, 1, n), 1)
    times = pd.date_range("2022-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    return pd.DataFrame({"time": times, "y": y, "x": x})


def test_family_registry_lists_every_family_with_help():
    assert FAMILIES == (
        "iid",
        "ar",
        "seasonal",
        "diff",
        "sdiff",
        "calendar",
        "fourier",
        "exog",
        "blocks",
        "regime",
        "hetero",
        "phase",
        "mix",
    )
    assert SERIES_STRUCTURES.names() == list(FAMILIES)
    text = SERIES_STRUCTURES.help_text()
    for name in FAMILIES:
        assert f"{name}: " in text
    with pytest.raises(InputError, match="choose from iid, ar, seasonal, diff, sdiff"):
        SERIES_STRUCTURES.get("arima")
    df = hourly_frame(20)
    with pytest.raises(InputError, match="unknown series structure 'arima'.*iid, ar, seasonal"):
        datatwin.fit(df, kind="series", structures="ar,arima")
    with pytest.raises(InputError, match="not both"):
        datatwin.fit(df, kind="series", structures="ar,sqrt:ar(3)")


MOD_NAMES = ("calendar", "blocks", "regime", "hetero", "phase", "mix")


@pytest.mark.parametrize(
    ("label", "family", "order", "transform", "diff_lag", "mods"),
    [
        ("iid", "iid", 0, "none", 0, ()),
        ("ar(18)", "ar", 18, "none", 0, ()),
        ("sqrt:iid", "iid", 0, "sqrt", 0, ()),
        ("sqrt:ar(19)+seasonal+calendar", "seasonal", 19, "sqrt", 0, ("calendar",)),
        ("log:ar(67)+seasonal+phase+mix", "seasonal", 67, "log", 0, ("phase", "mix")),
        (
            "mixed:ar(10)+seasonal+calendar+phase+mix",
            "seasonal",
            10,
            "mixed",
            0,
            (
                "calendar",
                "phase",
                "mix",
            ),
        ),
        ("sqrt:ar(18) of Δ1", "diff", 18, "sqrt", 1, ()),
        ("log:ar(63) of Δ48", "sdiff", 63, "log", 48, ()),
        ("ar(2)+phase", "ar", 2, "none", 0, ("phase",)),
        (
            "sqrt:ar(19)+seasonal+calendar+blocks+regime+hetero+phase",
            "seasonal",
            19,
            "sqrt",
            0,
            ("calendar", "blocks", "regime", "hetero", "phase"),
        ),
    ],
)
def test_labels_parse_to_structures_and_back(label, family, order, transform, diff_lag, mods):
    st = SeriesStructure.parse(label)
    assert (st.family, st.order, st.transform, st.diff_lag) == (family, order, transform, diff_lag)
    assert {m for m in MOD_NAMES if getattr(st, m)} == set(mods)
    assert st.label == label


@pytest.mark.parametrize(
    "label",
    [
        "ar(x)",
        "cubic:ar(2)",
        "ar(2)+weekly",
        "ar(2)+mix+mix",
        "ar(2) of Δ1+calendar",
        "ar(2) of Δ1+regime",
        "ar(2)+blocks+blocks",
    ],
)
def test_malformed_labels_are_refused(label):
    with pytest.raises(InputError):
        SeriesStructure.parse(label)


def test_every_leaderboard_row_refits_exactly_from_its_label():
    df = hourly_frame()
    tw = datatwin.fit(df, kind="series", max_lag=3)
    labels = [r["structure"] for r in tw.leaderboard]
    parts = ("iid", "sqrt:", "+seasonal", " of Δ1", " of Δ24", "+calendar", "+fourier", "+phase")
    parts += ("+blocks", "+regime", "+hetero")
    for part in (*parts, "+mix"):
        assert any(part in s for s in labels), part
    for row in tw.leaderboard:
        # a bare "iid" is the family name (iid under every transform); none: makes it a label
        label = "none:iid" if row["structure"] == "iid" else row["structure"]
        one = SeriesTwin.fit_select(df, structures=label, max_lag=3, refit=False)
        assert one.structure == row["structure"]
        (only,) = one.leaderboard
        assert only["holdout_bits"] == row["holdout_bits"]
        assert only["train_bits"] == row["train_bits"]
        assert only["params"] == row["params"] and only["selected"]


def test_selected_twin_round_trips_through_its_label_bit_for_bit(tmp_path):
    df = hourly_frame()
    train, nxt = df.iloc[:-300], df.iloc[-300:]
    tw = datatwin.fit(train, kind="series", max_lag=3)
    # (the innovations are heavy-tailed with a scale by hour: a volatility scale helps too)
    assert tw.structure == "log:ar(1)+seasonal+fourier+hetero+phase+mix"
    p = tw.params
    assert p["family"] == "seasonal" and p["order"] == 1 and p["transform"] == "log"
    assert p["phase"] == 24 and p["calendar"] is None and p["mix"] and p["max_lag"] == 3
    assert p["fourier"] and p["exog"] == [] and p["hetero"] == [24, 96]
    again = datatwin.fit(train, kind="series", structures=tw.structure, max_lag=p["max_lag"])
    assert again.structure == tw.structure and again.params == p
    np.testing.assert_array_equal(again.log_prob(nxt), tw.log_prob(nxt))
    pd.testing.assert_frame_equal(again.sample(30, seed=4), tw.sample(30, seed=4))
    tw.save(tmp_path / "m.twin")
    assert datatwin.load(tmp_path / "m.twin").params == p


def test_iid_and_calendar_twins_round_trip():
    rng = np.random.default_rng(5)
    white = pd.DataFrame({"y": np.round(rng.normal(0, 1, 3000), 2)})
    tw = datatwin.fit(white, kind="series", max_lag=3, structures="iid,none")
    assert tw.structure == "iid"
    again = datatwin.fit(white, kind="series", structures=tw.structure, max_lag=3)
    np.testing.assert_array_equal(again.log_prob(white), tw.log_prob(white))
    df = hourly_frame(60)
    tw = datatwin.fit(df, kind="series", structures="ar(2)+calendar", max_lag=3)
    assert tw.structure == "ar(2)+calendar" and tw.params["calendar"] == 24
    assert tw.model.level.shape[1] == tw.params["calendar"]


def test_labels_beyond_the_scanned_orders_or_the_season_are_refused():
    df = hourly_frame(30)
    with pytest.raises(InputError, match="max_lag=9"):
        datatwin.fit(df, kind="series", structures="ar(9)", max_lag=3)
    with pytest.raises(InputError, match="Δ24"):
        datatwin.fit(df, kind="series", structures="ar(2) of Δ12", max_lag=3)


def test_foreign_keywords_are_refused():
    df = hourly_frame(20)
    with pytest.raises(TypeError):
        SeriesTwin.fit_select(df, bins=5)
    with pytest.raises(InputError, match="'bins'.*valid: .*max_lag"):
        check_keywords(SeriesTwin.fit_select, {"bins": 5}, "series fit")
    with pytest.raises(TypeError):
        SeriesTwin.fit_select(df, "0.2")  # options are keyword-only
    tw = datatwin.fit(df, kind="series", max_lag=2, structures="ar,none")
    with pytest.raises(InputError, match="'temperature'.*valid: seed, paths, history"):
        tw.sample(5, seed=0, temperature=0.5)
    with pytest.raises(InputError, match="max_lag must be ≥ 0"):
        datatwin.fit(df, kind="series", max_lag=-1)


def test_seed_takes_ints_none_and_generators():
    df = hourly_frame(20)
    tw = datatwin.fit(df, kind="series", max_lag=2, structures="ar,none")
    a = tw.sample(20, seed=np.random.default_rng(3), paths=2)
    b = tw.sample(20, seed=np.random.default_rng(3), paths=2)
    pd.testing.assert_frame_equal(a, b)
    assert len(tw.sample(5, seed=None)) == 5
    with pytest.raises(InputError, match="seed"):
        tw.sample(5, seed=-1)


def _write_like(df: pd.DataFrame, path, sep: str) -> None:
    text = df.to_csv(index=False, sep=sep)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)


def test_semicolon_tab_and_gzipped_series_read_like_the_csv(tmp_path):
    df = hourly_frame(20)
    csv = tmp_path / "s.csv"
    df.to_csv(csv, index=False)
    base = datatwin.fit(str(csv), kind="series", max_lag=2)
    for name, sep in (("semi.csv", ";"), ("s.csv.gz", ","), ("s.tsv", "\t"), ("semi.csv.gz", ";")):
        path = tmp_path / name
        _write_like(df, path, sep)
        tw = datatwin.fit(str(path), kind="series", max_lag=2)
        assert tw.structure == base.structure and tw.cols.decimals == base.cols.decimals
        assert tw.leaderboard == [
            {**r, "fit_seconds": tw.leaderboard[i]["fit_seconds"]}
            for i, r in enumerate(base.leaderboard)
        ]
        np.testing.assert_array_equal(tw.log_prob(str(path)), base.log_prob(str(csv)))


def test_missing_markers_are_the_shared_list_case_insensitively_plus_a_dash(tmp_path):
    rows = [f"{t},{(t * 7) % 11}.5" for t in range(60)]
    for i, marker in zip(
        (5, 9, 14, 20, 33, 41), ("NA", "-", "#N/A", "null", "n/a", "NaN"), strict=True
    ):
        rows[i] = f"{i},{marker}"
    path = tmp_path / "m.csv"
    path.write_text("time,y\n" + "\n".join(rows) + "\n")
    tw = datatwin.fit(str(path), kind="series", max_lag=2)
    assert tw.missing_rate[0] == pytest.approx((6 + 0.5) / 61)
    assert tw.cols.decimals == [1]


def test_a_short_row_is_a_ragged_file_not_a_missing_value(tmp_path):
    # behaviour change with the shared reader: pandas filled a short row with a missing value
    path = tmp_path / "short.csv"
    path.write_text("time,y\n" + "".join(f"{t},{t % 5}\n" for t in range(20)) + "20\n")
    with pytest.raises(InputError, match="ragged"):
        datatwin.fit(str(path), kind="series")
