"""evaluate: fidelity and privacy numbers behave as they should on known cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from datatwin.cli import main  # noqa: E402
from datatwin.report import evaluate, metrics  # noqa: E402
from datatwin.report.evaluate import table_frames  # noqa: E402
from datatwin.report.tables import parse  # noqa: E402
from datatwin.tabular.twin import TableTwin  # noqa: E402


def make_table(n: int, seed: int) -> pd.DataFrame:
    """Strongly dependent columns: size follows colour, weight follows size, flag follows both."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    base = np.select([color == "red", color == "green"], [10, 30], 50)
    size = base + rng.integers(0, 5, n)
    weight = np.round(size * 2.0 + rng.normal(0, 1.0, n), 1)
    flag = np.where((size > 25) ^ (rng.random(n) < 0.1), "yes", "no")
    shape = rng.choice(["round", "square", ""], n, p=[0.6, 0.3, 0.1])  # "" = missing
    return pd.DataFrame(
        {"color": color, "size": size, "weight": weight, "flag": flag, "shape": shape}
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("report_data")
    train, hold = make_table(1500, 1), make_table(1000, 2)
    train.to_csv(d / "train.csv", index=False)
    hold.to_csv(d / "holdout.csv", index=False)
    twin = TableTwin.fit_select(d / "train.csv", seed=0)
    twin.save(d / "model.twin")
    return {"dir": d, "train": d / "train.csv", "holdout": d / "holdout.csv", "twin": twin}


def _frames(files, seed=0):
    return table_frames(files["twin"], files["holdout"], files["train"], seed=seed)


def test_twin_against_itself_is_indistinguishable(files):
    a = _frames(files, seed=1)["synth"]
    b = _frames(files, seed=2)["synth"]
    auc = metrics.c2st(a, b, seed=0)["auc"]
    assert 0.4 < auc < 0.6


def test_broken_dependence_and_shift_are_detected(files):
    fr = _frames(files)
    real, twin_rows = fr["real"], fr["synth"]
    rng = np.random.default_rng(0)
    shuffled = real.tokens.copy()
    for c in shuffled.columns:  # same marginals, no dependence
        shuffled[c] = rng.permutation(shuffled[c].to_numpy())
    broken = parse(shuffled, files["twin"].schema, "shuffled")
    shifted_tok = real.tokens.copy()
    shifted_tok["weight"] = (shifted_tok["weight"].astype(float) + 3.0).map("{:.1f}".format)
    shifted = parse(shifted_tok, files["twin"].schema, "shifted")
    good = metrics.c2st(real, twin_rows, seed=0)["auc"]
    bad = metrics.c2st(real, broken, seed=0)["auc"]
    moved = metrics.c2st(real, shifted, seed=0)["auc"]
    assert good < 0.6
    assert bad > 0.8 and moved > 0.7
    # the per-column distances see the shift but not the shuffle; MI sees the shuffle
    cols = metrics.column_distances(real, broken)
    assert max(c["tv"] for c in cols.values()) < 0.02
    assert metrics.column_distances(real, shifted)["weight"]["ks"] > 0.1
    mi_r, mi_b = metrics.mutual_information(real, broken)
    assert np.abs(mi_r - mi_b).max() > 0.5


def test_exact_copies(files):
    fr = _frames(files)
    train = fr["train"]
    assert metrics.exact_copy_share(train, train) == 1.0
    priv = metrics.privacy(fr["synth"], fr["real"], train)
    # this small table repeats rows often: the twin copies about as often as fresh real rows
    assert 0.0 < priv["holdout_exact_copy_share"] < 1.0
    assert abs(priv["exact_copy_share"] - priv["holdout_exact_copy_share"]) < 0.1
    # training rows offered as "synthetic": every one is a copy at distance 0
    copy = metrics.privacy(train, fr["real"], train)
    assert copy["exact_copy_share"] == 1.0 and copy["dcr_median_synthetic"] == 0.0


def test_distance_to_closest_record_is_gower():
    from datatwin.reader import from_frame
    from datatwin.tabular.schema import infer_schema

    df = pd.DataFrame({"a": ["x", "y", "x"], "n": ["1", "2", ""]})

    schema = infer_schema(from_frame(df))
    train = parse(df, schema, "train")
    probe = parse(pd.DataFrame({"a": ["x", "z", "y"], "n": ["1", "", "2"]}), schema, "probe")
    d = metrics.Gower(train).closest(probe)
    assert d[0] == 0.0  # identical to row 0
    assert d[1] == pytest.approx(0.5)  # unseen category, missing number matches row 2
    assert d[2] == 0.0


def test_python_api_and_json_keys(files, capsys):
    res = evaluate(files["twin"], files["holdout"], train=files["train"])
    assert set(res) >= {"fidelity", "privacy", "kind", "rows"}
    assert 0.0 <= res["fidelity"]["c2st_auc"] <= 1.0
    code = main(
        [
            "-q",
            "evaluate",
            str(files["dir"] / "model.twin"),
            "--real",
            str(files["holdout"]),
            "--train",
            str(files["train"]),
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("c2st_auc", "tv_mean", "ks_mean", "mi_diff_mean", "columns"):
        assert key in doc["fidelity"]
    for key in (
        "exact_copy_share",
        "holdout_exact_copy_share",
        "dcr_median_synthetic",
        "dcr_median_holdout",
        "train_bits",
        "holdout_bits",
        "bits_gap",
    ):
        assert doc["privacy"][key] is not None
    assert set(doc["fidelity"]["columns"]) == {"color", "size", "weight", "flag", "shape"}
    assert doc["fidelity"]["columns"]["shape"]["missing_real"] > 0.05


def test_without_train_privacy_is_null(files, capsys):
    code = main(
        [
            "-q",
            "evaluate",
            str(files["dir"] / "model.twin"),
            "--real",
            str(files["holdout"]),
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["privacy"]["exact_copy_share"] is None and "note" in doc["privacy"]
    assert doc["privacy"]["holdout_bits"] > 0


@pytest.mark.parametrize("which", ["missing_real", "missing_train", "columns", "model"])
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, which):
    model = str(files["dir"] / "model.twin")
    real, train = str(files["holdout"]), str(files["train"])
    if which == "missing_real":
        real = str(tmp_path / "nope.csv")
    elif which == "missing_train":
        train = str(tmp_path / "nope.csv")
    elif which == "columns":
        pd.DataFrame({"other": [1, 2], "cols": [3, 4]}).to_csv(tmp_path / "x.csv", index=False)
        real = str(tmp_path / "x.csv")
    else:
        model = str(tmp_path / "nope.twin")
    for cmd in ("evaluate", "report"):
        out = tmp_path / f"{which}.html"
        argv = ["-q", cmd, model, "--real", real, "--train", train]
        if cmd == "report":
            argv += ["-o", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("datatwin: error:")
        assert not out.exists()
        assert not list(tmp_path.glob(".*.tmp"))


def test_missing_extra_is_one_line(files, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    out = tmp_path / "r.html"
    argv = ["-q", "report", str(files["dir"] / "model.twin"), "--real", str(files["holdout"])]
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "datatwin[report]"' in err
    assert not out.exists()
