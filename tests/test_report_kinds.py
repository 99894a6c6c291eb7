"""evaluate and report for text, events and series twins: the same JSON shape, real numbers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from datatwin.cli import main  # noqa: E402


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def _check(tmp_path, capsys, model, real, train):
    doc = json.loads(
        _run(
            ["-q", "evaluate", str(model), "--real", str(real), "--train", str(train), "--json"],
            capsys,
        )
    )
    assert {"fidelity", "privacy"} <= set(doc)
    assert 0.0 <= doc["fidelity"]["c2st_auc"] <= 1.0
    assert "exact_copy_share" in doc["privacy"] and "holdout_exact_copy_share" in doc["privacy"]
    out = tmp_path / "r.html"
    _run(
        ["-q", "report", str(model), "--real", str(real), "--train", str(train), "-o", str(out)],
        capsys,
    )
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    srcs = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", text)
    assert len(srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    return doc


def test_text(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]

    def text(n):
        return "\n".join(" ".join(rng.choice(words, 8)) + "." for _ in range(n))

    (tmp_path / "train.txt").write_text(text(600))
    (tmp_path / "hold.txt").write_text(text(150))
    _run(["-q", "fit", str(tmp_path / "train.txt"), "-o", str(tmp_path / "t.twin")], capsys)
    doc = _check(
        tmp_path, capsys, tmp_path / "t.twin", tmp_path / "hold.txt", tmp_path / "train.txt"
    )
    assert doc["fidelity"]["char1gram_tv"] < 0.05
    # 32-character windows of random word strings rarely repeat; the twin copies no more
    assert doc["privacy"]["exact_copy_share"] <= doc["privacy"]["holdout_exact_copy_share"] + 0.05


def test_events(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows, names = [], list("ABCDEFGHIJKL")
    for i in range(800):  # short walks: each event moves 0-2 steps round a ring of 12
        prev = int(rng.integers(0, 12))
        for k in range(int(rng.integers(2, 9))):
            prev = (prev + int(rng.integers(0, 3))) % 12
            rows.append((f"w{i}", k, names[prev]))
    df = pd.DataFrame(rows, columns=["seq", "pos", "ev"])
    df[df.seq.isin([f"w{i}" for i in range(640)])].to_csv(tmp_path / "train.csv", index=False)
    df[~df.seq.isin([f"w{i}" for i in range(640)])].to_csv(tmp_path / "hold.csv", index=False)
    _run(
        [
            "-q",
            "fit",
            str(tmp_path / "train.csv"),
            "--kind",
            "events",
            "--sequence-id",
            "seq",
            "--order-by",
            "pos",
            "--event",
            "ev",
            "-o",
            str(tmp_path / "e.twin"),
        ],
        capsys,
    )
    doc = _check(
        tmp_path, capsys, tmp_path / "e.twin", tmp_path / "hold.csv", tmp_path / "train.csv"
    )
    assert doc["fidelity"]["event_tv"] < 0.1
    assert doc["privacy"]["holdout_exact_copy_share"] > 0  # short sequences recur by chance


def test_series(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = np.zeros(700)
    for t in range(1, 700):
        x[t] = 0.8 * x[t - 1] + rng.normal()
    df = pd.DataFrame({"time": np.arange(700), "value": np.round(x, 2)})
    df.iloc[:560].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[560:].to_csv(tmp_path / "hold.csv", index=False)
    _run(
        [
            "-q",
            "fit",
            str(tmp_path / "train.csv"),
            "--kind",
            "series",
            "-o",
            str(tmp_path / "s.twin"),
        ],
        capsys,
    )
    doc = _check(
        tmp_path, capsys, tmp_path / "s.twin", tmp_path / "hold.csv", tmp_path / "train.csv"
    )
    assert doc["privacy"]["exact_copy_share"] is None
    assert doc["fidelity"]["acf_rmse_mean"] < 0.25
