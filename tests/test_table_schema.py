"""Schema inference: column types, recorded decimals, missing markers, identifiers, and user
overrides through a schema JSON (`--schema`, `--write-schema`, `--not-missing`)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from datatwin import cli
from datatwin.reader import read_table
from datatwin.tabular.schema import infer_schema
from datatwin.tabular.twin import TableTwin

N = 400


def write_csv(path, columns: dict[str, list[str]]) -> None:
    names = list(columns)
    lines = [",".join(names)]
    for row in zip(*columns.values(), strict=True):
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture()
def typed_csv(tmp_path):
    rng = np.random.default_rng(2)
    cols = {
        "count": [str(v) for v in rng.integers(0, 50, N)],
        "price": [f"{v:.2f}" for v in rng.gamma(2.0, 5.0, N)],
        "ratio": [f"{v:.4f}" for v in rng.random(N)],
        "flag": list(rng.choice(["true", "false"], N)),
        "colour": list(rng.choice(["red", "green", "blue"], N)),
        "day": [
            str(d.date())
            for d in pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 365, N), "D")
        ],
        "stamp": [
            str(t)
            for t in pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 10**7, N), "s")
        ],
    }
    path = tmp_path / "typed.csv"
    write_csv(path, cols)
    return path


def specs_of(path, overrides=None):
    return {s.name: s for s in infer_schema(read_table(path), overrides)}


def test_types_and_decimals(typed_csv):
    s = specs_of(typed_csv)
    assert s["count"].type == "integer"
    assert (s["price"].type, s["price"].decimals) == ("float", 2)
    assert (s["ratio"].type, s["ratio"].decimals) == ("float", 4)
    assert s["flag"].type == "boolean"
    assert s["colour"].type == "categorical"
    assert (s["day"].type, s["day"].datetime_unit) == ("datetime", "D")
    assert (s["stamp"].type, s["stamp"].datetime_unit) == ("datetime", "s")


def test_decimals_count_trailing_zeros(tmp_path):
    path = tmp_path / "z.csv"
    write_csv(path, {"v": ["1.50", "2.00", "3.25", "4.10"] * 20, "w": ["1", "2.5"] * 40})
    s = specs_of(path)
    assert (s["v"].type, s["v"].decimals) == ("float", 2)
    assert (s["w"].type, s["w"].decimals) == ("float", 1)


def test_samples_of_each_type(typed_csv):
    twin = TableTwin.fit(typed_csv, structure="independent")
    toks = twin.sample_tokens(1_000, seed=1)
    assert toks["count"].str.fullmatch(r"-?\d+").all()
    assert toks["price"].str.fullmatch(r"-?\d+\.\d{2}").all()
    assert toks["ratio"].str.fullmatch(r"-?\d+\.\d{4}").all()
    assert set(toks["flag"]) <= {"true", "false"}
    assert toks["day"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert toks["stamp"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
    typed = twin.sample(1_000, seed=1)
    assert typed["count"].dtype == np.int64
    assert typed["price"].dtype == np.float64
    assert typed["flag"].dtype == bool
    assert pd.api.types.is_datetime64_any_dtype(typed["day"])


@pytest.fixture()
def missing_csv(tmp_path):
    rng = np.random.default_rng(3)
    n = 2_000
    num = [str(v) for v in rng.integers(0, 100, n)]
    cat = list(rng.choice(["a", "b", "c"], n))
    marks = rng.random(n)
    for i in range(n):
        if marks[i] < 0.05:
            num[i], cat[i] = "", "?"
        elif marks[i] < 0.10:
            num[i], cat[i] = "?", "NA"
        elif marks[i] < 0.15:
            num[i], cat[i] = "NA", ""
    path = tmp_path / "missing.csv"
    write_csv(path, {"num": num, "cat": cat})
    return path


def _share(path, col: str, tokens: set[str]) -> float:
    data = pd.read_csv(path, dtype=str, keep_default_na=False)
    return float(data[col].isin(tokens).mean())


def test_missing_markers_are_missing(missing_csv):
    s = specs_of(missing_csv)
    assert s["num"].type == "integer"
    assert set(s["num"].missing) == {"", "?", "NA"}
    assert set(s["cat"].missing) == {"", "?", "NA"}
    assert s["cat"].type == "categorical"
    twin = TableTwin.fit(missing_csv, structure="independent")
    typed = twin.sample(10_000, seed=2)
    markers = {"", "?", "NA"}
    assert abs(typed["num"].isna().mean() - _share(missing_csv, "num", markers)) < 0.015
    assert abs(typed["cat"].isna().mean() - _share(missing_csv, "cat", markers)) < 0.015
    assert set(typed["cat"].dropna()) <= {"a", "b", "c"}
    toks = twin.sample_tokens(10_000, seed=2)
    for col in ("num", "cat"):  # each marker keeps its own share, written back as recorded
        for marker in ("", "?", "NA"):
            want = _share(missing_csv, col, {marker})
            assert abs((toks[col] == marker).mean() - want) < 0.01, (col, marker)


def test_schema_override_keeps_na_as_a_category(missing_csv):
    twin = TableTwin.fit(
        missing_csv, structure="independent", schema={"cat": {"missing": ["", "?"]}}
    )
    spec = {s.name: s for s in twin.schema}["cat"]
    assert "NA" not in spec.missing
    typed = twin.sample(10_000, seed=2)
    assert abs((typed["cat"] == "NA").mean() - _share(missing_csv, "cat", {"NA"})) < 0.01
    assert abs(typed["cat"].isna().mean() - _share(missing_csv, "cat", {"", "?"})) < 0.012


def test_cli_not_missing_keeps_na(missing_csv, tmp_path, capsys):
    model = tmp_path / "m.twin"
    schema_out = tmp_path / "schema.json"
    code = cli.main(
        [
            "-q",
            "fit",
            str(missing_csv),
            "-o",
            str(model),
            "--not-missing",
            "NA",
            "--json",
            "--write-schema",
            str(schema_out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    doc = json.loads(schema_out.read_text())
    cols = {c["name"]: c for c in doc["columns"]}
    assert "NA" not in cols["cat"]["missing"]
    assert cols["cat"]["type"] == "categorical"
    out = tmp_path / "s.csv"
    assert cli.main(["-q", "sample", str(model), "-n", "5000", "--seed", "1", "-o", str(out)]) == 0
    s = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert abs((s["cat"] == "NA").mean() - _share(missing_csv, "cat", {"NA"})) < 0.012
    # "NA" in the numeric column is now a junk token of an integer column, kept as recorded
    assert abs((s["num"] == "NA").mean() - _share(missing_csv, "num", {"NA"})) < 0.012


# ---- identifiers -------------------------------------------------------------------------
@pytest.fixture()
def id_frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 500
    return pd.DataFrame(
        {
            # six-digit customer numbers below 500000: room for new ones in the same format
            "cust": [f"CU-{v:06d}" for v in rng.choice(500_000, n, replace=False)],
            "row": np.arange(1, n + 1),
            "colour": rng.choice(["red", "blue"], n),
            "size": rng.integers(1, 5, n),
        }
    )


def test_identifier_columns_detected(id_frame):
    specs = {s.name: s for s in infer_schema(read_table(id_frame))}
    assert specs["cust"].type == "id"
    assert specs["row"].type == "id"
    assert specs["colour"].type == "categorical"
    assert specs["size"].type == "integer"


def test_identifiers_not_in_the_likelihood(id_frame):
    twin = TableTwin.fit(id_frame, structure="bayesnet")
    assert twin.modelled == ["colour", "size"]
    other = id_frame.copy()
    other["cust"] = "ZZ"
    other["row"] = -7
    np.testing.assert_array_equal(twin.log_prob(other), twin.log_prob(id_frame))
    without = id_frame.drop(columns=["cust", "row"])
    np.testing.assert_array_equal(twin.log_prob(without), twin.log_prob(id_frame))


def test_identifiers_regenerated_in_format_never_copied(id_frame):
    twin = TableTwin.fit(id_frame, structure="independent")
    s = twin.sample(3_000, seed=8)
    assert s["cust"].str.fullmatch(r"CU-\d{6}").all()
    assert s["cust"].is_unique
    assert not set(s["cust"]) & set(id_frame["cust"])
    assert s["row"].is_unique
    assert not set(s["row"]) & set(id_frame["row"])
    assert s["row"].dtype == id_frame["row"].dtype
    toks = twin.sample_tokens(3_000, seed=8)
    assert not set(toks["cust"]) & set(id_frame["cust"])
    assert toks["cust"].is_unique


def test_short_identifier_template_stays_unique_without_copying():
    """With few possible values (two digits), a large sample cannot be unique in format:
    it must still never reproduce a training identifier."""
    ids = [f"A{v:02d}" for v in range(60)]
    df = pd.DataFrame({"code": ids, "v": ["x", "y"] * 30})
    twin = TableTwin.fit(df, structure="independent", schema={"code": {"type": "id"}})
    s = twin.sample(500, seed=1)
    assert s["code"].is_unique
    assert not set(s["code"]) & set(ids)


# ---- overrides through a schema file -----------------------------------------------------
def test_schema_file_overrides_type(tmp_path, capsys):
    rng = np.random.default_rng(5)
    path = tmp_path / "zip.csv"
    write_csv(
        path,
        {
            "zipcode": [f"{v}" for v in rng.choice([10115, 20095, 80331, 50667], 300)],
            "n": [str(v) for v in rng.integers(0, 9, 300)],
        },
    )
    assert specs_of(path)["zipcode"].type == "integer"
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"columns": [{"name": "zipcode", "type": "categorical"}]}))
    model = tmp_path / "m.twin"
    assert (
        cli.main(["-q", "fit", str(path), "-o", str(model), "--schema", str(schema), "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "table"
    from datatwin import load

    twin = load(model)
    assert {s.name: s.type for s in twin.schema}["zipcode"] == "categorical"
    s = twin.sample(500, seed=1)
    assert set(s["zipcode"]) <= {"10115", "20095", "80331", "50667"}


def test_write_schema_round_trips(typed_csv, tmp_path, capsys):
    schema = tmp_path / "schema.json"
    m1, m2 = tmp_path / "a.twin", tmp_path / "b.twin"
    assert (
        cli.main(
            ["-q", "fit", str(typed_csv), "-o", str(m1), "--json", "--write-schema", str(schema)]
        )
        == 0
    )
    doc = json.loads(schema.read_text(encoding="utf-8"))
    types = {c["name"]: c["type"] for c in doc["columns"]}
    assert types["price"] == "float" and types["day"] == "datetime"
    # edit it: price becomes an integer-free float with 1 decimal, colour stays
    for c in doc["columns"]:
        if c["name"] == "price":
            c["decimals"] = 1
    schema.write_text(json.dumps(doc), encoding="utf-8")
    assert (
        cli.main(["-q", "fit", str(typed_csv), "-o", str(m2), "--json", "--schema", str(schema)])
        == 0
    )
    capsys.readouterr()
    from datatwin import load

    t1, t2 = load(m1), load(m2)
    assert [s.type for s in t1.schema] == [s.type for s in t2.schema]
    assert {s.name: s.decimals for s in t2.schema}["price"] == 1
    toks = t2.sample_tokens(200, seed=1)
    assert toks["price"].map(lambda t: bool(re.fullmatch(r"\d+\.\d", t))).all()


def test_unknown_type_in_schema_is_an_input_error(typed_csv, tmp_path, capsys):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"columns": [{"name": "colour", "type": "colourful"}]}))
    assert (
        cli.main(
            ["-q", "fit", str(typed_csv), "-o", str(tmp_path / "m.twin"), "--schema", str(schema)]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "colourful" in err[0]
    assert not (tmp_path / "m.twin").exists()


def test_schema_naming_an_absent_column(typed_csv, tmp_path, capsys):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"nosuch": {"type": "categorical"}}))
    assert (
        cli.main(
            ["-q", "fit", str(typed_csv), "-o", str(tmp_path / "m.twin"), "--schema", str(schema)]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch" in err[0]


def test_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "bom.csv"
    body = "".join(f"{i % 7},{'xy'[i % 2]}\r\n" for i in range(40))
    path.write_bytes(("\ufeffage,k\r\n" + body).encode("utf-8"))
    raw = read_table(path)
    assert raw.columns == ["age", "k"]
    assert specs_of(path)["age"].type == "integer"


def test_float32_frame_keeps_its_recorded_decimals():
    """float32 values are read at their own precision (0.1, not 0.10000000149011612)."""
    df = pd.DataFrame({"f": np.round(np.linspace(0, 5, 300), 1).astype("float32")})
    spec = infer_schema(read_table(df))[0]
    assert (spec.type, spec.decimals) == ("float", 1)
    twin = TableTwin.fit(df, structure="independent")
    assert twin.sample(100, seed=1)["f"].dtype == np.float32
    assert np.isfinite(twin.log_prob(pd.DataFrame({"f": [1e12, -3.3]}))).all()


def test_very_fine_precision_over_a_wide_range():
    """12 recorded decimals over a range of 1e5: 1e17 grid points, still finite everywhere."""
    rng = np.random.default_rng(6)
    df = pd.DataFrame({"v": [f"{x:.12f}" for x in rng.uniform(0, 1e5, 500)]})
    twin = TableTwin.fit(df, structure="independent")
    assert twin.schema[0].decimals == 12
    probe = pd.DataFrame({"v": ["-5.000000000000", "3e9", "50000.5", df["v"].iloc[0]]})
    assert np.isfinite(twin.log_prob(probe)).all()
    assert twin.sample(50, seed=1, novel=True)["v"].notna().all()


@pytest.fixture()
def dates_csv(tmp_path):
    rng = np.random.default_rng(7)
    n = 500
    days = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")
    stamps = days + pd.to_timedelta(rng.integers(0, 86_400, n), "s")
    path = tmp_path / "dates.csv"
    write_csv(
        path,
        {
            "day": [d.strftime("%d/%m/%Y") for d in days],
            "stamp": [t.strftime("%Y-%m-%d %H:%M") for t in stamps],
            "k": list(rng.choice(["a", "b"], n)),
        },
    )
    return path


def test_datetime_precision_follows_the_format(dates_csv):
    s = specs_of(dates_csv)
    assert (s["day"].datetime_format, s["day"].datetime_unit) == ("%d/%m/%Y", "D")
    assert (s["stamp"].datetime_format, s["stamp"].datetime_unit) == ("%Y-%m-%d %H:%M", "min")
    twin = TableTwin.fit(dates_csv, structure="independent")
    typed = twin.sample(1_000, seed=3)
    assert (typed["stamp"].dt.second == 0).all()
    assert (typed["day"] == typed["day"].dt.normalize()).all()
    toks = twin.sample_tokens(1_000, seed=3)
    assert toks["day"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert toks["stamp"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}").all()


def test_typed_samples_score_like_their_csv_form(dates_csv):
    """Scoring a sample as a DataFrame (ISO datetimes) or as CSV tokens gives the same bits."""
    twin = TableTwin.fit(dates_csv, structure="independent")
    typed = twin.sample(1_000, seed=3)
    toks = twin.sample_tokens(1_000, seed=3)
    np.testing.assert_allclose(twin.log_prob(typed), twin.log_prob(toks), rtol=1e-12)
    # and a sample is about as probable as the data itself (within a bit per record)
    assert abs(twin.bits(toks) - twin.bits(dates_csv)) < 1.0


def test_integers_too_large_for_floats_are_kept_exactly():
    rng = np.random.default_rng(8)
    big = [str(10**22 + int(v) * 10**12) for v in rng.integers(0, 40, 300)]
    df = pd.DataFrame({"big": big, "k": rng.choice(["a", "b"], 300)})
    twin = TableTwin.fit(df, structure="independent")
    assert twin.schema[0].type == "categorical"
    toks = twin.sample_tokens(500, seed=1)
    assert set(toks["big"]) <= set(big)
    assert twin.bits(df) < 8  # about log2(40) + 1 bits, not a uniform spread over 1e12 points


def test_zero_padded_codes_keep_their_digits(tmp_path):
    """Zip codes and zero-padded identifiers are codes: 02134 must not become 2134."""
    rng = np.random.default_rng(9)
    n = 300
    path = tmp_path / "zips.csv"
    zips = ["02134", "02139", "10001", "00501", "94103"]
    write_csv(
        path,
        {
            "id": [f"{v:06d}" for v in range(1, n + 1)],
            "zip": list(rng.choice(zips, n)),
            "count": [str(v) for v in rng.integers(0, 100, n)],
        },
    )
    s = specs_of(path)
    assert (s["id"].type, s["zip"].type, s["count"].type) == ("id", "categorical", "integer")
    twin = TableTwin.fit(path, structure="independent")
    toks = twin.sample_tokens(500, seed=1)
    assert set(toks["zip"]) <= set(zips)
    assert toks["id"].str.fullmatch(r"\d{6}").all()
    assert not set(toks["id"]) & {f"{v:06d}" for v in range(1, n + 1)}
    assert twin.sample(10, seed=1)["zip"].str.len().eq(5).all()


def test_missing_cells_of_a_frame_match_the_recorded_marker(tmp_path):
    """Data marks missing values with "?": a DataFrame's NaN (a typed sample) is the same
    missing value, so typed samples score like their CSV tokens."""
    rng = np.random.default_rng(10)
    n = 2_000
    cat = rng.choice(["a", "b", "?"], n, p=[0.5, 0.4, 0.1])
    num = np.where(rng.random(n) < 0.1, "?", rng.integers(0, 50, n).astype(str))
    path = tmp_path / "q.csv"
    write_csv(path, {"cat": list(cat), "num": list(num)})
    twin = TableTwin.fit(path, structure="independent")
    typed = twin.sample(3_000, seed=1)
    toks = twin.sample_tokens(3_000, seed=1)
    assert typed["cat"].isna().any() and typed["num"].isna().any()
    np.testing.assert_allclose(twin.log_prob(typed), twin.log_prob(toks), rtol=1e-12)


def test_frame_cells_become_the_text_a_csv_would_hold():
    """Each distinct value is formatted once and shared; the text is what a CSV would hold:
    whole floats without '.0', -0.0 keeps its sign, nullable integers stay integers, mixed
    object columns keep each cell's own type, missing cells are empty."""
    from datatwin.reader import from_frame

    df = pd.DataFrame(
        {
            "f": [0.0, -0.0, 1.5, np.nan],
            "g": [2.0, 1.25, 2.0, np.nan],
            "f32": np.array([0.1, 0.2, 0.1, np.nan], dtype="float32"),
            "i": pd.array([1, None, 3, 1], dtype="Int64"),
            "i64": [5, 6, 5, 7],
            "o": ["a", None, "b", "a"],
            "m": [1, 1.0, True, "x"],
            "cat": pd.Categorical(["u", "v", "u", None]),
            "bn": [True, None, False, True],
        }
    )
    raw = from_frame(df)
    tok = {c: raw.text(c) for c in raw.columns}
    assert list(tok["f"]) == ["0", "-0", "1.5", ""]
    assert list(tok["g"]) == ["2", "1.25", "2", ""]
    assert list(tok["f32"]) == ["0.1", "0.2", "0.1", ""]
    assert list(tok["i"]) == ["1", "", "3", "1"]
    assert list(tok["i64"]) == ["5", "6", "5", "7"]
    assert list(tok["o"]) == ["a", "", "b", "a"]
    assert list(tok["m"]) == ["1", "1.0", "True", "x"]
    assert list(tok["cat"]) == ["u", "v", "u", ""]
    assert list(tok["bn"]) == ["True", "", "False", "True"]
    assert tok["g"][0] is tok["g"][2]  # one string per distinct value


@pytest.mark.parametrize("bounded", [False, True])
def test_a_column_forced_to_dates_that_are_not_dates_is_one_clear_error(monkeypatch, bounded):
    """Exact and bounded column summaries (`sketch.MAX_DISTINCT`) give the same one line."""
    import datatwin
    from datatwin.errors import InputError
    from datatwin.tabular import sketch

    if bounded:
        monkeypatch.setattr(sketch, "MAX_DISTINCT", 20)
    df = pd.DataFrame({"d": [f"x{i}" for i in range(200)], "k": ["a", "b"] * 100})
    with pytest.raises(InputError, match="column 'd': cannot parse as dates; give datetime_format"):
        datatwin.fit(df, schema={"d": {"type": "datetime"}}, seed=0)


def test_numbers_are_parsed_once_inside_parsed_once(monkeypatch):
    """Inside `parsed_once` the same texts are parsed once, with the results of parsing
    them afresh (a caller changing its copy changes nothing kept)."""
    from datatwin.tabular import schema

    texts = np.array([f"{i / 7:.3f}" for i in range(200)] + ["x", " 12 ", "-3"], dtype=object)
    want = schema.parse_numbers(texts)
    calls = []
    plain = schema._parse_numbers
    monkeypatch.setattr(schema, "_parse_numbers", lambda t: calls.append(1) or plain(t))
    with schema.parsed_once():
        first = schema.parse_numbers(texts)
        first[0][:] = 0.0
        again = schema.parse_numbers(texts.copy())
    after = schema.parse_numbers(texts)
    assert len(calls) == 2  # once inside the block, once after it
    for got in (again, after):
        assert np.array_equal(got[0], want[0], equal_nan=True)
        assert np.array_equal(got[1], want[1])
