"""Valid but awkward inputs (issue 14): each works, or ends in one line naming the problem and
the fix with exit code 2 — never an internal error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from datatwin import cli


def _run(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, [line for line in cap.err.splitlines() if line.strip()]


def _fit(path: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    out = path.with_suffix(".twin")
    code, _, err = _run(
        ["-q", "fit", path, "-o", out, "--structures", "independent", *extra], capsys
    )
    return code, err


def test_cr_line_endings_read_like_lf(tmp_path: Path, capsys) -> None:
    rows = "".join(f"{i % 3},x{i % 2}" + "{nl}" for i in range(40))
    cr, lf = tmp_path / "cr.csv", tmp_path / "lf.csv"
    cr.write_bytes(("a,b\r" + rows.replace("{nl}", "\r")).encode())
    lf.write_bytes(("a,b\n" + rows.replace("{nl}", "\n")).encode())
    assert _fit(cr, capsys) == (0, [])
    assert _fit(lf, capsys) == (0, [])
    _, out_cr, _ = _run(["score", cr.with_suffix(".twin"), cr, "--json"], capsys)
    _, out_lf, _ = _run(["score", lf.with_suffix(".twin"), lf, "--json"], capsys)
    assert out_cr == out_lf  # the same table, the same bits


def test_quoted_cr_inside_a_cell_is_a_value(tmp_path: Path, capsys) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(("a,b\n" + "".join(f'{i % 3},"x\r{i % 2}"\n' for i in range(40))).encode())
    assert _fit(path, capsys) == (0, [])
    code, out, err = _run(["sample", path.with_suffix(".twin"), "-n", "50"], capsys)
    assert code == 0, err
    assert "x\r" in out  # the recorded value, carriage return included


def test_wrong_encoding_is_one_line_naming_the_option(tmp_path: Path, capsys) -> None:
    path = tmp_path / "u.csv"
    pd.DataFrame({"a": [f"é{i % 3}" for i in range(40)]}).to_csv(path, index=False)
    for enc in ("utf-16", "utf-32"):
        code, err = _fit(path, capsys, "--encoding", enc)
        assert code == 2 and len(err) == 1, err
        assert enc in err[0] and "--encoding" in err[0]


def test_holdout_that_is_the_training_file_is_refused(tmp_path: Path, capsys) -> None:
    import datatwin

    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [i % 3 for i in range(40)]}).to_csv(path, index=False)
    link = tmp_path / "same.csv"
    link.symlink_to(path)
    code, err = _fit(path, capsys, "--holdout", str(link))
    assert code == 2 and len(err) == 1 and "training file" in err[0], err
    assert not path.with_suffix(".twin").exists()
    try:
        datatwin.fit(path, holdout=path)
    except datatwin.InputError as exc:
        assert "training file" in str(exc)
    else:
        raise AssertionError("a holdout equal to the training file was accepted")


# ---- numbers, identifiers and options that used to be internal errors -----------------------
def _one_line(code: int, err: list[str], *words: str) -> str:
    assert code == 2 and len(err) == 1, err
    assert "internal error" not in err[0] and "Traceback" not in err[0]
    for w in words:
        assert w in err[0], err
    return err[0]


def test_float_column_with_1e308_and_1e_320(tmp_path: Path, capsys) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        "x,y\n"
        + "".join(f"{v},{i % 3}\n" for i, v in enumerate(["1e308", "1e-320", "1.5", "2.25"] * 10))
    )
    assert _fit(path, capsys) == (0, [])
    code, out, err = _run(["sample", path.with_suffix(".twin"), "-n", "20"], capsys)
    assert code == 0, err
    code, out, err = _run(["score", path.with_suffix(".twin"), path, "--json"], capsys)
    assert code == 0 and '"bits_per_unit"' in out, err


def test_number_beyond_the_grid_scores_finite(tmp_path: Path) -> None:
    from datatwin.tabular import TableTwin

    df = pd.DataFrame({"x": [f"{i * 0.25:.2f}" for i in range(60)]})
    twin = TableTwin.fit(df, structure="independent")
    probe = pd.DataFrame({"x": ["1e308", "-1e300", "3.00"]})
    assert np.isfinite(twin.log_prob(probe)).all()


def test_schema_decimals_a_million_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "f.csv"
    path.write_text("x\n" + "".join(f"{i * 0.5}\n" for i in range(40)))
    schema = tmp_path / "s.json"
    schema.write_text('{"columns": [{"name": "x", "type": "float", "decimals": 1000000}]}')
    code, err = _fit(path, capsys, "--schema", str(schema))
    _one_line(code, err, "'x'", "decimals", "schema")
    assert not path.with_suffix(".twin").exists()


def test_identifiers_of_21_digits_and_near_2_63(tmp_path: Path, capsys) -> None:
    for name, base in (("id21", 10**20), ("id63", 2**63 - 100)):
        path = tmp_path / f"{name}.csv"
        train = [base + 7 * i for i in range(60)]
        path.write_text("id,y\n" + "".join(f"{v},{i % 3}\n" for i, v in enumerate(train)))
        assert _fit(path, capsys) == (0, [])
        code, out, err = _run(["sample", path.with_suffix(".twin"), "-n", "300"], capsys)
        assert code == 0, err
        ids = [int(line.split(",")[0]) for line in out.splitlines()[1:]]
        assert len(set(ids)) == 300 and min(ids) > max(train), name  # new, never negative
        import datatwin

        frame = datatwin.load(path.with_suffix(".twin")).sample(5, seed=0)
        assert [int(v) for v in frame["id"]] == ids[:5]


def test_binary_dag_file_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "".join(f"{i % 3},{i % 2}\n" for i in range(40)))
    dag = tmp_path / "dag.bin"
    dag.write_bytes(bytes(range(256)) * 4)
    code, err = _fit(path, capsys, "--dag", str(dag))
    _one_line(code, err, "--dag", "UTF-8")


def test_absurd_sample_count_and_repeated_given(tmp_path: Path, capsys) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "".join(f"{i % 3},{i % 2}\n" for i in range(40)))
    assert _fit(path, capsys) == (0, [])
    model = path.with_suffix(".twin")
    out_file = tmp_path / "o.csv"
    code, _, err = _run(["sample", model, "-n", "10000000000000000000", "-o", out_file], capsys)
    _one_line(code, err, "-n")
    code, _, err = _run(
        ["sample", model, "--given", "a=1", "--given", "a=2", "-o", out_file], capsys
    )
    _one_line(code, err, "--given", "twice")
    assert not out_file.exists()


def test_sample_streams_in_blocks_with_the_same_bytes(tmp_path: Path, capsys, monkeypatch) -> None:
    """A large sample is written block by block; the block size changes no byte."""
    from datatwin.tabular import twin as table_twin

    rng = np.random.default_rng(0)
    path = tmp_path / "d.csv"
    pd.DataFrame(
        {"id": np.arange(200), "a": rng.integers(0, 4, 200), "x": rng.normal(size=200).round(2)}
    ).to_csv(path, index=False)
    assert _run(["-q", "fit", path, "-o", tmp_path / "m.twin"], capsys)[0] == 0
    monkeypatch.setattr(table_twin, "SAMPLE_BLOCK", 1_000)
    outs = []
    for rows in (1_000, 2_500, 100_000):
        monkeypatch.setattr(table_twin, "CHUNK_ROWS", rows)
        out = tmp_path / f"s{rows}.csv"
        assert (
            _run(["sample", tmp_path / "m.twin", "-n", "5000", "--seed", "4", "-o", out], capsys)[0]
            == 0
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    import datatwin

    tw = datatwin.load(tmp_path / "m.twin")
    chunks = list(tw.sample_token_chunks(5000, seed=4, chunk_rows=2_000))
    assert [len(c) for c in chunks] == [2000, 2000, 1000]
    assert pd.concat(chunks, ignore_index=True).equals(tw.sample_tokens(5000, seed=4))
    typed = tw.sample(5000, seed=4)
    assert len(typed) == 5000 and typed["id"].is_unique


# ---- privacy: nearly unique values are never stored or sampled verbatim ---------------------
def _ssn_table(tmp_path: Path) -> tuple[Path, set[str]]:
    rng = np.random.default_rng(14)
    ssn = {
        f"{a}-{b:02d}-{c:04d}"
        for a, b, c in rng.integers([100, 10, 1000], [899, 99, 9999], (600, 3))
    }
    values = sorted(ssn)[:500]
    col = np.array(values * 2, dtype=object)
    rng.shuffle(col)
    path = tmp_path / "people.csv"
    pd.DataFrame(
        {"ssn": col, "group": rng.choice(["a", "b", "c"], 1000), "age": rng.integers(20, 70, 1000)}
    ).to_csv(path, index=False)
    return path, set(values)


def test_nearly_unique_values_are_withheld(tmp_path: Path, capsys) -> None:
    import io
    import json
    import zipfile

    import datatwin

    path, values = _ssn_table(tmp_path)
    capsys.readouterr()
    code = cli.main(["fit", str(path), "-o", str(tmp_path / "p.twin")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "'ssn'" in " ".join(err.split()) and "500 values" in err  # the fit-time note
    twin = datatwin.load(tmp_path / "p.twin")
    sampled = twin.sample(5000, seed=0)["ssn"]
    assert not set(sampled) & values
    with zipfile.ZipFile(tmp_path / "p.twin") as zf:
        meta = zf.read("model.json").decode("utf-8")
        npz = zf.read("arrays.npz")

    def strings(x):
        if isinstance(x, str):
            yield x
        elif isinstance(x, dict):
            for k, v in x.items():
                yield k
                yield from strings(v)
        elif isinstance(x, list):
            for v in x:
                yield from strings(v)

    assert not set(strings(json.loads(meta))) & values
    with np.load(io.BytesIO(npz), allow_pickle=False) as arrays:
        for name in arrays.files:
            arr = arrays[name]
            if arr.dtype.kind in "iu" and arr.size and arr.min() >= 0 and arr.max() < 0x110000:
                text = "".join(map(chr, arr.ravel().tolist()))
                assert not any(v in text for v in values), name
    for v in values:
        assert v.encode() not in npz and v.encode("utf-32-le") not in npz
    # min_count=1 stores them (the rule is an option), and low-cardinality rare values stay
    kept = datatwin.fit(path, structures="independent", min_count=1)
    assert set(kept.sample(2000, seed=0)["ssn"]) <= values
    assert twin.codecs[1].tokens and not twin.codecs[1].has_rare


def test_rare_category_of_a_closed_list_stays_a_category() -> None:
    import datatwin

    rng = np.random.default_rng(3)
    country = rng.choice([f"c{i}" for i in range(40)], 3000).astype(object)
    country[:2] = "Holand-Netherlands"  # two rows of a 41-value column: not identifying
    twin = datatwin.fit(pd.DataFrame({"country": country}), structures="independent")
    assert "Holand-Netherlands" in twin.codecs[0].tokens


# ---- text and events -------------------------------------------------------------------------
def _events_csv(path: Path) -> Path:
    rng = np.random.default_rng(5)
    rows = ["seq,pos,ev"]
    for s in range(80):
        rows += [f"s{s},{p},{rng.choice(list('ABCDE'))}" for p in range(int(rng.integers(2, 14)))]
    path.write_text("\n".join(rows) + "\n")
    return path


_EVENT_OPTS = ["--kind", "events", "--sequence-id", "seq", "--order-by", "pos", "--event", "ev"]


def test_extreme_temperatures_sample(tmp_path: Path, capsys) -> None:
    text = tmp_path / "t.txt"
    text.write_text(" ".join(["the cat sat on a mat", "a dog ran"] * 200))
    events = _events_csv(tmp_path / "e.csv")
    for data, opts in ((text, []), (events, _EVENT_OPTS)):
        model = tmp_path / f"{data.stem}.twin"
        assert _run(["-q", "fit", data, "-o", model, *opts], capsys)[0] == 0
        for t in ("1e-300", "5e-324", "1e300"):
            code, out, err = _run(["sample", model, "-n", "40", "--temperature", t], capsys)
            assert code == 0 and not err, (data.name, t, err)
        code, _, err = _run(["sample", model, "-n", "5", "--temperature", "0"], capsys)
        _one_line(code, err, "temperature")


def test_junk_cell_in_the_events_order_column_is_named(tmp_path: Path, capsys) -> None:
    path = _events_csv(tmp_path / "e.csv")
    lines = path.read_text().splitlines()
    lines[30] = lines[30].split(",")[0] + ",?," + lines[30].split(",")[2]
    path.write_text("\n".join(lines) + "\n")
    code, _, err = _run(["-q", "fit", path, "-o", tmp_path / "e.twin", *_EVENT_OPTS], capsys)
    _one_line(code, err, "'pos'", "row 30", "'?'")
    assert not (tmp_path / "e.twin").exists()


def test_text_folder_reads_no_link_out_of_itself(tmp_path: Path) -> None:
    from datatwin.text.tokenize import read_documents

    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE KEY " * 50)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "more.txt").write_text("PRIVATE TOO " * 50)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("hello world " * 50)
    (corpus / "sub").mkdir()
    (corpus / "sub" / "b.txt").write_text("more words " * 50)
    (corpus / "link.txt").symlink_to(secret)
    (corpus / "linkdir").symlink_to(outside, target_is_directory=True)
    (corpus / "self.txt").symlink_to(corpus / "a.txt")
    docs = read_documents(corpus)
    assert [Path(d.name).name for d in docs] == ["a.txt", "b.txt"]
    assert not any("PRIVATE" in str(d.content) for d in docs)


# ---- a leaderboard decided by a handful of units; spreadsheet formulas -----------------------
def test_tiny_holdout_gives_a_noise_level_note(tmp_path: Path, caplog) -> None:
    import logging

    import datatwin

    df = pd.DataFrame({"a": [i % 3 for i in range(40)], "b": [(i * 7) % 5 for i in range(40)]})
    with caplog.at_level(logging.INFO, logger="datatwin"):
        datatwin.fit(df, holdout=df.iloc[:1], structures="independent,chow-liu")
    notes = [r.getMessage() for r in caplog.records if "held-out unit" in r.getMessage()]
    assert len(notes) == 1 and "only 1 held-out unit decides" in notes[0] and "noise" in notes[0]
    caplog.clear()
    big = pd.DataFrame({"a": [i % 3 for i in range(400)], "b": [(i * 7) % 5 for i in range(400)]})
    with caplog.at_level(logging.INFO, logger="datatwin"):
        datatwin.fit(big, structures="independent,chow-liu")  # 80 held-out rows: no note
    assert not [r for r in caplog.records if "held-out unit" in r.getMessage()]


def test_formulas_are_noted_and_neutralised(tmp_path: Path, capsys) -> None:
    path = tmp_path / "f.csv"
    rows = [
        f'"=HYPERLINK(""http://x/{i % 3}"")",@SUM(A{i % 2}),-{i},+cmd{i % 2}' for i in range(40)
    ]
    path.write_text('name,"=1+1",v,w\n' + "\n".join(rows) + "\n")
    code, _, err = _run(
        ["fit", path, "-o", tmp_path / "f.twin", "--structures", "independent"], capsys
    )
    assert code == 0 and "formulas" in " ".join(err) and "--neutralise-formulas" in " ".join(err)
    code, out, _ = _run(
        ["sample", tmp_path / "f.twin", "-n", "50", "--neutralise-formulas"], capsys
    )
    assert code == 0
    frame = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["name", "'=1+1", "v", "w"]
    assert frame["name"].str.startswith("'=HYPERLINK").all()
    assert frame["'=1+1"].str.startswith("'@SUM").all() and frame["w"].str.startswith("'+cmd").all()
    assert frame["v"].str.match(r"^-?\d+$").all()  # numbers are not formulas
    import datatwin

    typed = datatwin.load(tmp_path / "f.twin").sample(20, seed=0, neutralise_formulas=True)
    assert typed["name"].str.startswith("'=").all() and (typed["v"] <= 0).all()


# ---- wide tables -----------------------------------------------------------------------------
def test_wide_table_screens_candidate_parents(tmp_path: Path, caplog) -> None:
    import logging

    import datatwin
    from datatwin.tabular.counting import FamilyCounter
    from datatwin.tabular.screen import WIDE_COLUMNS, pairwise_mi
    from datatwin.tabular.search import mutual_information

    rng = np.random.default_rng(2)
    cols = [rng.integers(0, 4, 200) for _ in range(6)]
    cols.append((cols[0] + rng.integers(0, 2, 200)) % 4)
    counter = FamilyCounter(cols, np.full(7, 4))
    assert np.allclose(pairwise_mi(counter), mutual_information(counter))
    d = WIDE_COLUMNS + 50
    base = rng.integers(0, 3, 60)
    df = pd.DataFrame({f"c{j}": (base + rng.integers(0, 2, 60) * (j % 2)) % 3 for j in range(d)})
    with caplog.at_level(logging.INFO, logger="datatwin"):
        twin = datatwin.fit(df, seed=0)
    assert {r["structure"] for r in twin.leaderboard} == {"independent", "chow-liu"}
    assert any("wide table" in r.getMessage() for r in caplog.records)


def test_codec_integer_arrays_rewritten_as_floats_are_refused(tmp_path: Path) -> None:
    import zipfile

    import datatwin

    df = pd.DataFrame({"a": [f"x{i % 4}" for i in range(60)], "v": [i * 0.5 for i in range(60)]})
    path = tmp_path / "m.twin"
    datatwin.fit(df, structures="independent").save(path)
    with zipfile.ZipFile(path) as zf:
        meta, raw = zf.read("model.json"), zf.read("arrays.npz")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for name in ("c0_spell_chars", "c0_token_missing", "c1_fine_coarse"):
        bad = {**arrays, name: arrays[name].astype(np.float64)}  # whole numbers, no NaN
        buf = io.BytesIO()
        np.savez(buf, **bad)
        out = tmp_path / f"{name}.twin"
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("model.json", meta)
            zf.writestr("arrays.npz", buf.getvalue())
        try:
            datatwin.load(out)
        except datatwin.ModelFileError as exc:
            assert name in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"{name} as float64 was accepted")


def test_report_figures_show_dollar_signs_literally(tmp_path: Path, capsys) -> None:
    pytest = __import__("pytest")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {"price $^$": rng.integers(0, 5, 120), "$odd": rng.choice(["$a", "b$\\frac$", "d"], 120)}
    )
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    model = tmp_path / "d.twin"
    assert _run(["-q", "fit", path, "-o", model, "--structures", "independent"], capsys)[0] == 0
    out = tmp_path / "r.html"
    code, _, err = _run(["-q", "report", model, "--real", path, "-o", out], capsys)
    assert code == 0 and out.stat().st_size > 1000, err


def _float_rewrites_refused(twin, tmp_path: Path) -> list[str]:
    """Rewrite each integer array of `twin`'s file as whole-number floats; return the
    arrays whose rewrite still loaded (none may)."""
    import zipfile

    import datatwin

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "src.twin"
    twin.save(path)
    with zipfile.ZipFile(path) as zf:
        meta, raw = zf.read("model.json"), zf.read("arrays.npz")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    accepted = []
    for name, arr in arrays.items():
        if arr.dtype.kind not in "iu" or not arr.size:
            continue
        buf = io.BytesIO()
        np.savez(buf, **{**arrays, name: arr.astype(np.float64)})
        out = tmp_path / f"{name}.twin"
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("model.json", meta)
            zf.writestr("arrays.npz", buf.getvalue())
        try:
            datatwin.load(out)
        except datatwin.ModelFileError as exc:
            assert "\n" not in str(exc)
        else:
            accepted.append(name)
    return accepted


def test_every_integer_array_of_every_table_structure_refuses_floats(tmp_path: Path) -> None:
    import datatwin

    rng = np.random.default_rng(2)
    a = rng.integers(0, 3, 300)
    cat = pd.DataFrame(
        {"a": a, "b": (a + rng.integers(0, 2, 300)) % 3, "c": rng.integers(0, 4, 300)}
    )
    num = pd.DataFrame({"x": rng.normal(size=300).round(2)})
    num["y"] = (2 * num["x"] + rng.normal(size=300)).round(2)
    for data, structure in ((cat, "bayesnet"), (cat, "trees"), (num, "gaussian")):
        twin = datatwin.fit(data, structures=structure, seed=0)
        assert _float_rewrites_refused(twin, tmp_path / structure) == [], structure
