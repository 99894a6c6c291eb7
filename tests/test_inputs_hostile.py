"""Valid but awkward inputs (issue 14): each works, or ends in one line naming the problem and
the fix with exit code 2 — never an internal error."""

from __future__ import annotations

from pathlib import Path

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
