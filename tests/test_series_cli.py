"""Series twins end to end: CLI fit/score/sample, model files, bad input."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.cli import main
from datatwin.errors import InputError, ModelFileError
from datatwin.modelfile import load_archive, save_archive

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "series"


def write_series(path: Path, n: int = 600, seed: int = 0, start: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = pd.date_range("2020-01-01", periods=n + start, freq="h")[start:]
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = 0.8 * x[i - 1] + rng.normal()
    hour = t.hour.to_numpy()
    y = 10 + 3 * np.sin(2 * np.pi * hour / 24) + x
    flag = (hour >= 8) & (hour < 18)
    df = pd.DataFrame(
        {
            "time": t.strftime("%Y-%m-%d %H:%M:%S"),
            "load": [f"{v:.2f}" for v in y],
            "open": flag.astype(int),
        }
    )
    df.to_csv(path, index=False)
    return path


def test_cli_fit_score_sample_round_trip(tmp_path, capsys):
    data = write_series(tmp_path / "s.csv")
    model = tmp_path / "s.twin"
    assert main(["fit", str(data), "--kind", "series", "-o", str(model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "series" and out["unit"] == "step"
    assert sum(r["selected"] for r in out["leaderboard"]) == 1
    nxt = write_series(tmp_path / "next.csv", n=100, seed=1, start=600)
    assert main(["score", str(model), str(nxt), "--json"]) == 0
    sc = json.loads(capsys.readouterr().out)
    assert sc["count"] == 100 and np.isfinite(sc["bits_per_unit"])
    samp = tmp_path / "samp.csv"
    assert (
        main(["sample", str(model), "-n", "30", "--paths", "3", "--seed", "5", "-o", str(samp)])
        == 0
    )
    text = samp.read_text().splitlines()
    assert text[0] == "path,time,load,open"
    assert text[1].startswith("0,2020-01-26 00:00:00,")  # continues after the last hour
    assert len(text) == 1 + 90
    df = pd.read_csv(samp, dtype=str)
    assert set(df["open"]) <= {"0", "1"}
    assert df["load"].str.match(r"^-?\d+\.\d\d$").all()  # recorded precision kept
    # same seed, same bytes
    samp2 = tmp_path / "samp2.csv"
    main(["sample", str(model), "-n", "30", "--paths", "3", "--seed", "5", "-o", str(samp2)])
    assert samp.read_bytes() == samp2.read_bytes()
    # sampling from a user-given history continues that history's time
    hist = write_series(tmp_path / "h.csv", n=200, seed=2, start=1000)
    assert main(["sample", str(model), "-n", "2", "--history", str(hist)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("2020-02-20 00:00:00,")  # 1200 hours after the start


def test_save_load_round_trip_exact(tmp_path):
    data = write_series(tmp_path / "s.csv", n=500)
    tw = datatwin.fit(str(data), kind="series", max_lag=30)
    tw.save(tmp_path / "m.twin")
    back = datatwin.load(tmp_path / "m.twin")
    assert back.structure == tw.structure
    assert back.leaderboard == [
        {k: v for k, v in r.items() if k != "fit_seconds"} for r in tw.leaderboard
    ]
    pd.testing.assert_frame_equal(back.sample(40, seed=9, paths=4), tw.sample(40, seed=9, paths=4))
    nxt = write_series(tmp_path / "n.csv", n=50, seed=3, start=500)
    np.testing.assert_array_equal(back.log_prob(str(nxt)), tw.log_prob(str(nxt)))


def test_tampered_model_file_is_rejected(tmp_path):
    data = write_series(tmp_path / "s.csv", n=300)
    tw = datatwin.fit(str(data), kind="series", max_lag=5)
    tw.save(tmp_path / "m.twin")
    meta, arrays = load_archive(tmp_path / "m.twin")
    bad = dict(arrays)
    bad["mix_sd"] = -bad["mix_sd"]
    save_archive(tmp_path / "bad.twin", meta, bad)
    with pytest.raises(ModelFileError, match="residual scales"):
        datatwin.load(tmp_path / "bad.twin")
    bad = dict(arrays)
    bad["B"] = bad["B"][:, :1]
    save_archive(tmp_path / "bad2.twin", meta, bad)
    with pytest.raises(ModelFileError):
        datatwin.load(tmp_path / "bad2.twin")
    with zipfile.ZipFile(tmp_path / "m.twin") as zf:
        raw = json.loads(zf.read("model.json"))
    assert raw["kind"] == "series"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("time,y\n", "no data rows"),
        ("time,y\n1,2\n2,3\n3,4\n", "too short"),
        ("time,y,name\n" + "".join(f"{i},{i % 7},a{i}\n" for i in range(30)), "not numeric"),
        ("time,y\n" + "".join(f"{t},{t % 5}\n" for t in [*range(20), 25, 26, 27]), "irregular"),
        (
            "time,y\n" + "".join(f"2020-01-{d:02d},{d % 3}\n" for d in [*range(1, 20), 22, 23]),
            "irregular",
        ),
        (  # a guessed time column (year) repeats: the fix names --time
            "year,quarter,y\n" + "".join(f"{1990 + i // 4},{i % 4 + 1},{i}\n" for i in range(30)),
            "name another with --time",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, capsys, content, message):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    model = tmp_path / "bad.twin"
    with pytest.raises(InputError, match=message):
        datatwin.fit(str(data), kind="series")
    code = main(["fit", str(data), "--kind", "series", "-o", str(model)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not model.exists()


def test_time_gaps_fill_models_missing_steps(tmp_path):
    rows = [f"{t},{(t * 7) % 11}.5\n" for t in range(200) if t not in (50, 51, 120)]
    data = tmp_path / "gaps.csv"
    data.write_text("time,y\n" + "".join(rows))
    with pytest.raises(InputError, match="time_gaps=.fill."):
        datatwin.fit(str(data), kind="series")
    tw = datatwin.fit(str(data), kind="series", time_gaps="fill", max_lag=4)
    assert tw.missing_rate[0] > 0
    assert tw.sample(3)["time"].tolist() == ["200", "201", "202"]


def test_sample_and_score_options_validate(tmp_path, capsys):
    data = write_series(tmp_path / "s.csv", n=300)
    model = tmp_path / "s.twin"
    main(["fit", str(data), "--kind", "series", "-o", str(model), "--max-lag", "5"])
    capsys.readouterr()
    out = tmp_path / "o.csv"
    assert main(["sample", str(model), "--paths", "0", "-o", str(out)]) == 2
    assert not out.exists()
    other = tmp_path / "other.csv"
    pd.DataFrame({"time": range(20), "load": range(20)}).to_csv(other, index=False)
    assert main(["score", str(model), str(other)]) == 2
    assert "open" in capsys.readouterr().err


@pytest.mark.skipif(not (DATA / "sunspot_month.csv").exists(), reason="shared data not present")
def test_sunspots_beat_iid_and_stay_non_negative():
    tw = datatwin.fit(str(DATA / "sunspot_month.csv"), kind="series")
    board = {r["structure"]: r for r in tw.leaderboard}
    chosen = next(r for r in tw.leaderboard if r["selected"])
    assert chosen["holdout_bits"] < board["iid"]["holdout_bits"] - 1.0
    assert tw.transforms == ["sqrt"]
    s = tw.sample(600, seed=0, paths=10)
    assert (s["value"] >= 0).all()
    assert s["time"].iloc[0] == "2013.75"


@pytest.mark.skipif(not (DATA / "elecdemand.csv").exists(), reason="shared data not present")
def test_elecdemand_slice_vector_ar(tmp_path):
    df = pd.read_csv(DATA / "elecdemand.csv", dtype=str).iloc[:2500]
    path = tmp_path / "elec.csv"
    df.to_csv(path, index=False)
    tw = datatwin.fit(str(path), kind="series", max_lag=10)
    assert tw.cols.decimals == [9, 0, 1]
    assert tw.cols.upper[1] == 1.0
    s = tw.sample(100, seed=0, paths=2)
    assert set(np.unique(s["WorkDay"])) <= {0.0, 1.0}
    buf = io.BytesIO()
    tw.cli_write(s, buf, None)
    assert buf.getvalue().decode().splitlines()[1].startswith("0,2014-02-22 02:00:00,")


def test_dates_written_as_yyyymmdd_numbers_are_dates(tmp_path):
    """Weekly 19580329-style times are irregular as numbers (a month's end jumps by ~70):
    they are read as dates, and samples and compression write them the same way."""
    days = pd.date_range("2019-12-07", periods=120, freq="W-SAT")
    rng = np.random.default_rng(0)
    y = np.round(300 + np.cumsum(rng.normal(0, 0.3, len(days))), 1)
    text = "date,y\n" + "".join(f"{d:%Y%m%d},{v:.1f}\n" for d, v in zip(days, y, strict=True))
    path = tmp_path / "weekly.csv"
    path.write_text(text)
    tw = datatwin.fit(path, kind="series", structures="ar(1)")
    assert tw.time.kind == "datetime" and tw.time.compact
    fake = tw.sample(3, seed=1)
    after = pd.date_range(days[-1], periods=4, freq="W-SAT")[1:]
    assert fake["date"].astype(str).tolist() == [f"{d:%Y%m%d}" for d in after]
    dashed = tmp_path / "dashed.csv"  # the same series with ISO dates: the same twin
    dashed.write_text(
        "date,y\n" + "".join(f"{d:%Y-%m-%d},{v:.1f}\n" for d, v in zip(days, y, strict=True))
    )
    same = datatwin.fit(dashed, kind="series", structures="ar(1)")
    assert same.leaderboard[0]["holdout_bits"] == tw.leaderboard[0]["holdout_bits"]
    raw = text.encode()
    assert tw.decompress(tw.compress(raw)) == raw


def test_time_none_takes_the_rows_as_steps(tmp_path, capsys):
    """A guessed time column that is not one (year beside quarter): --time none reads the
    rows as consecutive steps, the guessed column among the values unless --values says."""
    text = "year,quarter,y\n" + "".join(f"{1990 + i // 4},{i % 4 + 1},{i % 7}\n" for i in range(40))
    path = tmp_path / "q.csv"
    path.write_text(text)
    with pytest.raises(InputError, match="--time none"):
        datatwin.fit(path, kind="series")
    tw = datatwin.fit(path, kind="series", time="none", values=["y"], structures="ar(1)")
    assert tw.time.kind == "none" and tw.cols.names == ["y"]
    model = tmp_path / "q.twin"
    assert main(["fit", str(path), "--kind", "series", "--time", "none", "-o", str(model)]) == 0
    assert datatwin.load(model).cols.names == ["year", "quarter", "y"]
