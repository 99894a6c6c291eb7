"""Lossless table compression with a twin (coding/table.py, coding/api.py, the CLI):
byte-exact round trips of awkward CSVs, one-line errors on damage, payload vs the twin's bits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("constriction")

from compress_checks import assert_cli_round_trip, assert_damage_refused  # noqa: E402

from datatwin.cli import main  # noqa: E402
from datatwin.coding import CompressedFileError  # noqa: E402
from datatwin.coding.api import compress_report, decompress  # noqa: E402
from datatwin.errors import InputError  # noqa: E402
from datatwin.tabular import TableTwin  # noqa: E402


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", ""], size=n, p=[0.5, 0.3, 0.15, 0.05])
    size = np.where(colour == "red", rng.integers(0, 50, n), rng.integers(40, 100, n))
    price = np.round(rng.gamma(2.0, 10.0, n), 2)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "colour": colour,
            "size": size,
            "price": [f"{p:.2f}" for p in price],
            "note": rng.choice(["a", "b, c", 'say "hi"', "x"], size=n),
        }
    )


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> TableTwin:
    path = tmp_path_factory.mktemp("fit") / "train.csv"
    _frame(600, 0).to_csv(path, index=False)
    return TableTwin.fit(path, structure="bayesnet")


def _csv(df: pd.DataFrame, **kw: object) -> bytes:
    return df.to_csv(index=False, **kw).encode("utf-8")  # type: ignore[arg-type]


def _cases() -> dict[str, bytes]:
    df = _frame(120, 1)
    clean = _csv(df)
    weird = df.astype(str)
    weird.loc[3, "colour"] = "purple"  # unseen category
    weird.loc[4, "size"] = "100000"  # far outside the training range
    weird.loc[5, "size"] = "-7"
    weird.loc[6, "price"] = "1.5"  # fewer decimals than recorded
    weird.loc[11, "price"] = "3.14159"  # more decimals than recorded: a token
    weird.loc[7, "price"] = "n/a"  # junk in a numeric column
    weird.loc[8, "size"] = " 12"  # a blank before a number
    weird.loc[9, "note"] = "line one\nline two"  # a newline inside a quoted field
    weird.loc[10, "colour"] = "émoji 🎉"
    return {
        "clean": clean,
        "crlf": clean.replace(b"\n", b"\r\n"),
        "no final newline": clean.rstrip(b"\n"),
        "bom": b"\xef\xbb\xbf" + clean,
        "awkward cells": _csv(weird),
        "all quoted": _csv(df, quoting=1),
        "blank lines": clean.replace(b"\n", b"\n\n", 3),
        "one row": clean.split(b"\n", 2)[0] + b"\n" + clean.split(b"\n", 2)[1] + b"\n",
        "no rows": clean.split(b"\n", 1)[0] + b"\n",
        "mixed line ends": clean.replace(b"\n", b"\r\n", 5),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_round_trip_is_byte_exact(twin: TableTwin, case: str) -> None:
    raw = _cases()[case]
    blob = twin.compress(raw)
    assert twin.decompress(blob) == raw
    assert decompress(twin.compress(raw, embed_model=True)) == raw  # self-contained


def test_payload_is_the_twins_bits(twin: TableTwin, tmp_path: Path) -> None:
    raw = _cases()["clean"]
    path = tmp_path / "d.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(twin.log_prob(path))) / math.log(2) / 8
    blob, report = compress_report(twin, raw)
    assert report["model_bits"] / 8 == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] <= predicted * 1.005 + 8
    assert report["sizes"]["header"] < 1024
    assert report["exceptions"] == 0
    assert report["sizes"]["layout"] < 64  # a clean CSV's side information is a few bytes


def test_wrong_model_truncated_and_flipped_are_one_line_errors(
    twin: TableTwin, tmp_path: Path
) -> None:
    raw = _cases()["awkward cells"]
    blob = twin.compress(raw)
    other_path = tmp_path / "other.csv"
    _frame(300, 7).to_csv(other_path, index=False)
    other = TableTwin.fit(other_path, structure="independent")
    with pytest.raises(CompressedFileError, match="wrong model"):
        decompress(blob, other)
    with pytest.raises(CompressedFileError, match="does not embed"):
        decompress(blob)
    assert_damage_refused(blob, twin)


def test_data_with_other_columns_is_refused(twin: TableTwin) -> None:
    with pytest.raises(InputError, match="columns"):
        twin.compress(b"a,b\n1,2\n")


def test_cli_round_trip_and_no_partial_output(twin: TableTwin, tmp_path: Path) -> None:
    data = assert_cli_round_trip(twin, _cases()["awkward cells"], tmp_path, ".csv")
    assert (
        main(["-q", "compress", str(tmp_path / "m.twin"), str(data), "-o", str(data)]) == 2
    )  # input kept
    assert data.read_bytes() == (tmp_path / "back.csv").read_bytes()


def _linear(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(5.0, 2.0, n)
    b = 0.5 * a + rng.normal(0, 1.0, n)
    c = -1.0 * b + rng.normal(0, 0.5, n)
    return pd.DataFrame({"a": a.round(2), "b": b.round(2), "c": c.round(3)})


@pytest.fixture(scope="module")
def gaussian() -> TableTwin:
    return TableTwin.fit(_linear(800, 0), structure="gaussian")


def test_gaussian_twin_round_trips_and_pays_its_bits(gaussian: TableTwin, tmp_path: Path) -> None:
    """A linear-Gaussian twin: byte-exact round trip, the coder's model bits equal the twin's
    log-probability, the payload within 0.5 % of it; non-numbers, far values and odd
    formatting are coded too."""
    raw = _csv(_linear(300, 1))
    path = tmp_path / "h.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(gaussian.log_prob(path))) / math.log(2)
    blob, report = compress_report(gaussian, raw)
    assert decompress(blob, gaussian) == raw
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] <= predicted / 8 * 1.005 + 8
    odd = _linear(60, 2).astype(str)
    odd.loc[3, "a"] = "n/a"  # a non-number
    odd.loc[4, "b"] = "1e9"  # far outside the window
    odd.loc[5, "c"] = " -0.5"  # a blank before a number
    odd.loc[6, "a"] = "ünïcode"
    weird = _csv(odd).replace(b"\n", b"\r\n")
    assert decompress(compress_report(gaussian, weird)[0], gaussian) == weird
    assert decompress(gaussian.compress(weird, embed_model=True)) == weird
    assert_damage_refused(blob, gaussian)
