"""Bad input through the command line: exit code 2, one line on stderr naming the problem, no
traceback, no output file left behind; and the awkward inputs that must simply work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datatwin import cli


def run(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def assert_input_error(argv, capsys, out_file: Path | None, *words: str) -> str:
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("datatwin: error:"), line
    assert "Traceback" not in line
    low = line.lower()
    for w in words:
        assert w.lower() in low, (w, line)
    if out_file is not None:
        assert not out_file.exists()
        assert not list(out_file.parent.glob(f".{out_file.name}.*"))  # no temporary file
    return line


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def good_csv(path: Path, n: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["age,colour,score"]
    for _ in range(n):
        lines.append(
            f"{rng.integers(18, 80)},{rng.choice(['red', 'green', 'blue'])},"
            f"{rng.normal(50, 10):.1f}"
        )
    return write(path, "\n".join(lines) + "\n")


@pytest.fixture()
def model(tmp_path, capsys) -> Path:
    data = good_csv(tmp_path / "good.csv")
    path = tmp_path / "good.twin"
    code, _, err = run(["-q", "fit", data, "-o", path, "--json"], capsys)
    assert code == 0, err
    return path


# ---- fit: bad files ----------------------------------------------------------------------
def test_missing_file(tmp_path, capsys):
    out = tmp_path / "m.twin"
    assert_input_error(
        ["fit", tmp_path / "nope.csv", "-o", out], capsys, out, "not found", "nope.csv"
    )


def test_empty_file(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = write(tmp_path / "empty.csv", "")
    assert_input_error(["fit", data, "-o", out], capsys, out, "empty")


def test_header_only(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = write(tmp_path / "h.csv", "a,b,c\n")
    assert_input_error(["fit", data, "-o", out], capsys, out, "no data rows")


def test_one_row(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = write(tmp_path / "one.csv", "a,b\n1,x\n")
    assert_input_error(["fit", data, "-o", out], capsys, out, "1 data row")


def test_ragged_rows(tmp_path, capsys):
    out = tmp_path / "m.twin"
    body = "1,x\n" * 30 + "2,y,extra\n" + "3,z\n" * 30
    data = write(tmp_path / "ragged.csv", "a,b\n" + body)
    assert_input_error(["fit", data, "-o", out], capsys, out, "ragged")


def test_short_rows(tmp_path, capsys):
    out = tmp_path / "m.twin"
    body = "1,x\n" * 30 + "2\n" + "3,z\n" * 30
    data = write(tmp_path / "short.csv", "a,b\n" + body)
    assert_input_error(["fit", data, "-o", out], capsys, out)


def test_duplicate_column_names(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = write(tmp_path / "dup.csv", "a,b,a\n" + "1,x,2\n" * 30)
    assert_input_error(["fit", data, "-o", out], capsys, out, "duplicate", "'a'")


def test_a_folder_is_not_a_table(tmp_path, capsys):
    out = tmp_path / "m.twin"
    (tmp_path / "dir.csv").mkdir()
    assert_input_error(["fit", tmp_path / "dir.csv", "-o", out, "--kind", "table"], capsys, out)


def test_bad_holdout_fraction(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    assert_input_error(["fit", data, "-o", out, "--holdout", "1.5"], capsys, out, "holdout")


def test_unknown_structure(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    assert_input_error(
        ["fit", data, "-o", out, "--structures", "independent,magic"], capsys, out, "magic"
    )


def test_dag_with_a_cycle(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    dag = write(tmp_path / "dag.txt", "age -> colour\ncolour -> score\nscore -> age\n")
    assert_input_error(["fit", data, "-o", out, "--dag", dag], capsys, out, "cycle")


def test_dag_naming_an_unknown_column(tmp_path, capsys):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    dag = write(tmp_path / "dag.txt", "age -> salary\n")
    assert_input_error(["fit", data, "-o", out, "--dag", dag], capsys, out, "salary")


def test_non_utf8_bytes_then_latin1_works(tmp_path, capsys):
    out = tmp_path / "m.twin"
    rows = "".join(f"caf\xe9 {i % 3},{i % 4}\n" for i in range(60))
    data = write(tmp_path / "latin.csv", "name,v\n" + rows, encoding="latin-1")
    line = assert_input_error(["fit", data, "-o", out], capsys, out, "utf-8", "--encoding")
    assert "latin.csv" in line
    code, _, err = run(["-q", "fit", data, "-o", out, "--encoding", "latin-1", "--json"], capsys)
    assert code == 0, err
    sample = tmp_path / "s.csv"
    assert run(["-q", "sample", out, "-n", "200", "-o", sample], capsys)[0] == 0
    s = pd.read_csv(sample, dtype=str)
    assert s["name"].str.startswith("café ").all()
    # scoring the same file needs the same option, and the error says so
    assert_input_error(["score", out, data], capsys, None, "--encoding")
    code, stdout, err = run(["score", out, data, "--encoding", "latin-1", "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["count"] == 60


def test_non_utf8_late_in_a_big_file(tmp_path, capsys):
    """A bad byte far past the first block read is still a one-line input error."""
    out = tmp_path / "m.twin"
    good = "".join(f"name{i % 7},{i % 5}\n" for i in range(20_000))
    raw = ("name,v\n" + good).encode("utf-8") + "caf\xe9,1\n".encode("latin-1")
    data = tmp_path / "late.csv"
    data.write_bytes(raw)
    assert_input_error(["fit", data, "-o", out], capsys, out, "utf-8")


# ---- fit: awkward inputs that work -------------------------------------------------------
def test_all_missing_column_is_constant_missing(tmp_path, capsys):
    data = write(tmp_path / "m.csv", "a,b,c\n" + "".join(f"{i % 5},,x{i % 2}\n" for i in range(80)))
    out = tmp_path / "m.twin"
    code, stdout, err = run(["fit", data, "-o", out, "--json"], capsys)
    assert code == 0, err
    assert any("all values missing" in e for e in err)
    sample = tmp_path / "s.csv"
    assert run(["-q", "sample", out, "-n", "300", "-o", sample], capsys)[0] == 0
    s = pd.read_csv(sample, dtype=str, keep_default_na=False)
    assert (s["b"] == "").all()
    assert set(s["a"]) <= {"0", "1", "2", "3", "4"}
    from datatwin import load

    typed = load(out).sample(300, seed=1)
    assert typed["b"].isna().all()


def test_constant_column(tmp_path, capsys):
    data = write(tmp_path / "c.csv", "a,k,n\n" + "".join(f"{i % 5},same,7\n" for i in range(80)))
    out = tmp_path / "c.twin"
    code, _, err = run(["-q", "fit", data, "-o", out, "--json"], capsys)
    assert code == 0, err
    sample = tmp_path / "s.csv"
    assert run(["-q", "sample", out, "-n", "300", "-o", sample], capsys)[0] == 0
    s = pd.read_csv(sample, dtype=str, keep_default_na=False)
    assert (s["k"] == "same").all() and (s["n"] == "7").all()
    code, stdout, _ = run(["-q", "score", out, data, "--json"], capsys)
    assert code == 0
    assert json.loads(stdout)["bits_per_unit"] < 3.0  # only column a carries information


def test_numeric_column_with_junk_tokens(tmp_path, capsys):
    rows = [
        f"{'oops' if i % 50 == 7 else 'n/k' if i % 97 == 3 else i % 37},{i % 2}"
        for i in range(1_000)
    ]
    data = write(tmp_path / "j.csv", "v,k\n" + "\n".join(rows) + "\n")
    out = tmp_path / "j.twin"
    code, _, err = run(["fit", data, "-o", out, "--json"], capsys)
    assert code == 0, err
    from datatwin import load

    twin = load(out)
    assert {s.name: s.type for s in twin.schema}["v"] == "integer"
    toks = twin.sample_tokens(5_000, seed=1)
    want = np.mean([r.startswith("oops") for r in rows])
    assert abs((toks["v"] == "oops").mean() - want) < 0.01
    assert (toks["v"] == "n/k").any()
    numeric = toks["v"][~toks["v"].isin(["oops", "n/k"])]
    assert numeric.str.fullmatch(r"\d+").all()
    code, stdout, _ = run(["-q", "score", out, data, "--json"], capsys)
    assert code == 0 and np.isfinite(json.loads(stdout)["total_bits"])


def test_high_cardinality_categorical(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 40_000
    names = np.array([f"user{v}" for v in rng.integers(0, 60_000, n)])  # ~29k distinct
    grp = rng.choice(["a", "b", "c"], n)
    data = tmp_path / "big.csv"
    pd.DataFrame({"name": names, "grp": grp}).to_csv(data, index=False)
    assert 25_000 < len(set(names)) < 35_000
    out = tmp_path / "big.twin"
    tracemalloc.start()
    t0 = time.perf_counter()
    code, _, err = run(["-q", "fit", data, "-o", out, "--json"], capsys)
    secs = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert code == 0, err
    assert secs < 30, secs
    assert peak < 500 * 2**20, peak  # far below what a dense name x name table would take
    assert out.stat().st_size < 5 * 2**20
    sample = tmp_path / "s.csv"
    assert run(["-q", "sample", out, "-n", "2000", "-o", sample], capsys)[0] == 0
    s = pd.read_csv(sample, dtype=str)
    assert len(s) == 2000 and s["name"].notna().all()
    code, stdout, _ = run(["-q", "score", out, data, "--json"], capsys)
    assert code == 0 and np.isfinite(json.loads(stdout)["bits_per_unit"])


def test_unicode_names_and_values(tmp_path, capsys):
    vals = ["東京", "Zürich", "Ångström", "naïve café"]
    rows = "".join(f"{vals[i % 4]},{i % 3},{'✓' if i % 2 else '✗'}\n" for i in range(120))
    data = write(tmp_path / "u.csv", "名前,température,état ✓\n" + rows)
    out = tmp_path / "u.twin"
    code, stdout, err = run(["-q", "fit", data, "-o", out, "--json"], capsys)
    assert code == 0, err
    sample = tmp_path / "s.csv"
    assert run(["-q", "sample", out, "-n", "400", "-o", sample], capsys)[0] == 0
    s = pd.read_csv(sample, dtype=str, encoding="utf-8")
    assert list(s.columns) == ["名前", "température", "état ✓"]
    assert set(s["名前"]) == set(vals)
    assert set(s["état ✓"]) == {"✓", "✗"}
    code, stdout, _ = run(["-q", "score", out, data, "--json"], capsys)
    assert code == 0


# ---- score -------------------------------------------------------------------------------
def test_score_json(model, tmp_path, capsys):
    data = good_csv(tmp_path / "more.csv", n=50, seed=4)
    code, stdout, err = run(["score", model, data, "--json"], capsys)
    assert code == 0, err
    res = json.loads(stdout)
    assert set(res) >= {"unit", "count", "total_bits", "bits_per_unit"}
    assert res["unit"] == "record" and res["count"] == 50
    assert res["total_bits"] == pytest.approx(50 * res["bits_per_unit"])


def test_score_data_missing_a_column(model, tmp_path, capsys):
    data = write(tmp_path / "lack.csv", "age,colour\n" + "30,red\n" * 20)
    line = assert_input_error(["score", model, data], capsys, None, "score")
    assert "lacks" in line or "missing" in line


def test_score_unseen_category_is_finite(model, tmp_path, capsys):
    data = write(tmp_path / "new.csv", "age,colour,score\n30,purple,51.2\n200,red,-3.7\n")
    code, stdout, err = run(["score", model, data, "--json"], capsys)
    assert code == 0, err
    res = json.loads(stdout)
    assert np.isfinite(res["total_bits"]) and res["count"] == 2


def test_score_missing_data_file(model, tmp_path, capsys):
    assert_input_error(["score", model, tmp_path / "none.csv"], capsys, None, "not found")


# ---- damaged model files -----------------------------------------------------------------
def _damage(model: Path, how: str) -> None:
    data = model.read_bytes()
    if how == "truncated":
        model.write_bytes(data[: len(data) // 2])
    elif how == "flipped":
        b = bytearray(data)
        for i in range(len(b) // 3, len(b) // 3 + 8):
            b[i] ^= 0x5A
        model.write_bytes(bytes(b))
    else:
        with zipfile.ZipFile(model) as zf:
            meta = json.loads(zf.read("model.json"))
            arrays = zf.read("arrays.npz")
        if how == "future":
            meta["format_version"] += 5
        elif how == "tampered":
            meta["schema"][0]["type"] = "spaceship"
        with zipfile.ZipFile(model, "w") as zf:
            zf.writestr("model.json", json.dumps(meta))
            zf.writestr("arrays.npz", arrays)


@pytest.mark.parametrize("how", ["truncated", "flipped", "future", "tampered"])
def test_damaged_model_sample(model, tmp_path, capsys, how):
    _damage(model, how)
    out = tmp_path / "s.csv"
    line = assert_input_error(["sample", model, "-n", "10", "-o", out], capsys, out)
    assert str(model.name) in line
    if how == "future":
        assert "upgrade" in line


@pytest.mark.parametrize("how", ["truncated", "tampered"])
def test_damaged_model_score(model, tmp_path, capsys, how):
    _damage(model, how)
    data = good_csv(tmp_path / "d.csv", n=20)
    assert_input_error(["score", model, data], capsys, None, model.name)


def test_missing_model(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert_input_error(["sample", tmp_path / "none.twin", "-o", out], capsys, out, "not found")


def test_sample_negative_n(model, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert_input_error(["sample", model, "-n", "-5", "-o", out], capsys, out, "-n")


def test_sample_zero_rows_writes_header(model, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert run(["-q", "sample", model, "-n", "0", "-o", out], capsys)[0] == 0
    assert out.read_text().strip() == "age,colour,score"


def test_sample_to_stdout(model, capsys):
    code, stdout, _ = run(["-q", "sample", model, "-n", "5", "--seed", "2"], capsys)
    assert code == 0
    lines = stdout.strip().splitlines()
    assert lines[0] == "age,colour,score" and len(lines) == 6


def test_failed_fit_keeps_an_existing_model(model, tmp_path, capsys):
    """A failing fit does not clobber or half-write the model file it was told to write."""
    before = model.read_bytes()
    data = write(tmp_path / "h.csv", "a,b\n")
    code, _, err = run(["fit", data, "-o", model], capsys)
    assert code == 2 and len(err) == 1
    assert model.read_bytes() == before


# ---- a real process ----------------------------------------------------------------------
def _proc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datatwin.cli", *[str(a) for a in args]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_process_bad_input_exit_code_and_one_line(tmp_path):
    data = write(tmp_path / "dup.csv", "x,x\n" + "1,2\n" * 20)
    res = _proc(["fit", data, "-o", tmp_path / "m.twin"], tmp_path)
    assert res.returncode == 2
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "duplicate" in err[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "m.twin").exists()


def test_process_round_trip(tmp_path):
    data = good_csv(tmp_path / "g.csv")
    res = _proc(["-q", "fit", data, "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["kind"] == "table" and summary["unit"] == "record"
    assert (tmp_path / "g.twin").exists()  # default model path: DATA's stem + .twin
    assert {"structure", "train_bits", "holdout_bits", "fit_seconds"} <= set(
        summary["leaderboard"][0]
    )
    res = _proc(["sample", "g.twin", "-n", "-5"], tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


# ---- bad options and option files --------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--bins", "0"], ["bins"]),
        (["--bins", "-3"], ["bins"]),
        (["--max-parents", "-1"], ["max_parents"]),
        (["--encoding", "klingon"], ["klingon"]),
    ],
)
def test_bad_option_values(tmp_path, capsys, extra, words):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    assert_input_error(["fit", data, "-o", out, *extra], capsys, out, *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[[1, 2, 3]]", ["pairs"]),
        ('{"edges": "age->colour"}', ["pairs"]),
        ("{not json", ["json"]),
        ("age colour\n", ["age colour"]),
    ],
)
def test_bad_dag_files(tmp_path, capsys, content, words):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    dag = write(tmp_path / "dag.json", content)
    assert_input_error(["fit", data, "-o", out, "--dag", dag], capsys, out, *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"columns": [{"type": "integer"}]}', ["name"]),
        ("[1, 2]", ["name"]),
        ('{"age": {"decimals": "two"}}', ["decimals"]),
        ('{"colour": {"missing": "NA"}}', ["missing"]),
        ('{"age": "integer"}', ["columns"]),
        ("{oops", ["json"]),
    ],
)
def test_bad_schema_files(tmp_path, capsys, content, words):
    out = tmp_path / "m.twin"
    data = good_csv(tmp_path / "g.csv")
    schema = write(tmp_path / "schema.json", content)
    assert_input_error(["fit", data, "-o", out, "--schema", schema], capsys, out, *words)


def test_output_in_a_missing_folder(tmp_path, capsys, model):
    data = good_csv(tmp_path / "g.csv")
    out = tmp_path / "no" / "such" / "m.twin"
    assert_input_error(["-q", "fit", data, "-o", out], capsys, None, "cannot write")
    assert not (tmp_path / "no").exists()
    sample = tmp_path / "no" / "s.csv"
    assert_input_error(["sample", model, "-o", sample], capsys, None, "cannot write")


def test_output_is_a_folder(tmp_path, capsys, model):
    data = good_csv(tmp_path / "g.csv")
    folder = tmp_path / "out"
    folder.mkdir()
    assert_input_error(["-q", "fit", data, "-o", folder], capsys, None, "folder")
    assert_input_error(["sample", model, "-o", folder], capsys, None, "folder")
    assert list(folder.iterdir()) == []
    assert not list(tmp_path.glob(".out.*"))


def test_corrupt_gzip_and_parquet(tmp_path, capsys):
    import gzip

    out = tmp_path / "m.twin"
    bad_gz = tmp_path / "bad.csv.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    assert_input_error(["fit", bad_gz, "-o", out], capsys, out, "bad.csv.gz")
    whole = gzip.compress(("a,b\n" + "".join(f"{i},{i % 7}\n" for i in range(50_000))).encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert_input_error(["fit", cut, "-o", out], capsys, out, "cut.csv.gz")
    bad_pq = tmp_path / "bad.parquet"
    bad_pq.write_bytes(b"PAR1 nonsense")
    assert_input_error(["fit", bad_pq, "-o", out], capsys, out, "parquet")
    empty_pq = tmp_path / "empty.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=int)}).to_parquet(empty_pq)
    assert_input_error(["fit", empty_pq, "-o", out], capsys, out, "empty.parquet", "no rows")


def test_gzip_and_parquet_inputs_work(tmp_path, capsys):
    import gzip

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"n": rng.integers(0, 9, 300), "c": rng.choice(["u", "v"], 300)})
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    pq = tmp_path / "t.parquet"
    df.to_parquet(pq)
    for data in (gz, pq):
        out = tmp_path / f"{data.name}.twin"
        code, _, err = run(["-q", "fit", data, "-o", out, "--json"], capsys)
        assert code == 0, err
        code, stdout, _ = run(["-q", "score", out, pq, "--json"], capsys)
        assert code == 0 and json.loads(stdout)["count"] == 300


@pytest.mark.parametrize("seed", ["-1", "x"])
def test_bad_seed(model, tmp_path, capsys, seed):
    out = tmp_path / "s.csv"
    for argv in (
        ["sample", model, "-o", out, "--seed", seed],
        ["fit", good_csv(tmp_path / "g.csv"), "-o", out, "--seed", seed],
    ):
        with pytest.raises(SystemExit) as info:
            run(argv, capsys)
        assert info.value.code == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "seed" in err[0], err
        assert not out.exists()


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_separator_is_sniffed(tmp_path, capsys, sep):
    """Semicolon, tab and pipe CSVs read exactly like the comma file (values with commas
    inside a semicolon file included); the twins score the same rows the same."""
    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame(
        {
            "price": [f"{v:.2f}" for v in rng.gamma(2.0, 10.0, n)],
            "city": rng.choice(["Paris", "Lyon, Rhône", "Nice"], n),
            "k": rng.integers(0, 5, n).astype(str),
        }
    )
    comma = tmp_path / "comma.csv"
    other = tmp_path / "other.csv"
    df.to_csv(comma, index=False)
    df.to_csv(other, index=False, sep=sep)
    from datatwin.reader import read_table

    a, b = read_table(comma), read_table(other)
    assert a.columns == b.columns == ["price", "city", "k"]
    for c in a.columns:
        np.testing.assert_array_equal(a.text(c), b.text(c))
    outs = []
    for data in (comma, other):
        out = tmp_path / f"{data.stem}.twin"
        code, _, err = run(["-q", "fit", data, "-o", out, "--seed", "1"], capsys)
        assert code == 0, err
        code, stdout, _ = run(["-q", "score", out, comma, "--json"], capsys)
        outs.append(json.loads(stdout)["total_bits"])
    assert outs[0] == outs[1]


def test_single_column_csv_is_not_split(tmp_path):
    from datatwin.reader import read_table

    path = write(tmp_path / "one.csv", "note\n" + "\n".join(["a;b", "c|d", "e"] * 20) + "\n")
    raw = read_table(path)
    assert raw.columns == ["note"] and raw.text("note")[0] == "a;b"
