"""Property-based fuzzing with a fixed budget: random CSV contents, random CLI arguments and
damaged model files must each end in success or a one-line user error (exit code 2) — never an
internal error (exit 1), a traceback or a hang.

The budget (examples per property) is fixed and derandomised so CI is fast and repeatable;
set DATATWIN_FUZZ_EXAMPLES to search harder locally.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import datatwin  # noqa: E402
from datatwin import cli  # noqa: E402

EXAMPLES = int(os.environ.get("DATATWIN_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# cells as a careless or hostile user writes them
_CELL = st.one_of(
    st.sampled_from(["", "?", "NA", "null", "0", "-0", "1e308", "1e-320", "inf", "nan"]),
    st.sampled_from(['=HYPERLINK("x")', "@SUM(A1)", "a,b", 'q"uote', "line\nbreak", " "]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.3f}"),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def _assert_user_outcome(code: int, err: list[str]) -> None:
    """Success, or exit 2 with one line naming the problem; an internal error is a bug."""
    assert code in (0, 2), err
    if code == 2:
        assert len(err) == 1 and err[0].startswith("datatwin"), err
    assert not any("Traceback" in line or "internal error" in line for line in err), err


@FUZZ
@given(
    rows=st.integers(0, 30),
    cols=st.integers(1, 4),
    data=st.data(),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_random_csv_fits_or_fails_in_one_line(
    rows, cols, data, sep, newline, tmp_path_factory, capsys
):
    folder = tmp_path_factory.mktemp("csv")
    header = [f"c{i}" for i in range(cols)]
    body = [[data.draw(_CELL) for _ in range(cols)] for _ in range(rows)]
    frame = pd.DataFrame(body, columns=header, dtype=object)
    text = io.StringIO()
    frame.to_csv(text, index=False, sep=sep, lineterminator=newline)
    path = folder / "d.csv"
    path.write_text(text.getvalue(), encoding="utf-8", newline="")
    out = folder / "d.twin"
    argv = ["-q", "fit", path, "-o", out, "--structures", "independent,chow-liu", "--bins", "5"]
    code, err = _run(argv, capsys)
    _assert_user_outcome(code, err)
    if code != 0:
        assert not out.exists()
        return
    code, err = _run(["score", out, path], capsys)
    _assert_user_outcome(code, err)
    code, err = _run(["sample", out, "-n", "20", "-o", folder / "s.csv"], capsys)
    _assert_user_outcome(code, err)


_WORDS = [
    "fit", "score", "sample", "report", "evaluate", "--kind", "table", "text", "series",
    "events", "--structures", "trees", "bogus", "--holdout", "0", "1.5", "-3", "--bins", "0",
    "-1", "x", "--seed", "-5", "99999999999999999999", "-n", "--max-parents", "--given",
    "a=1", "=", "--json", "--max-lag", "--max-order", "--tokens", "--time-gaps", "--no-refit",
    "--score", "bic", "--paths", "--temperature", "1e-300", "--schema", "--dag", "MODEL",
    "DATA", "-o", "OUT", "--encoding", "utf-16", "nope",
]  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    data = folder / "data.csv"
    pd.DataFrame({"a": rng.integers(0, 4, 80), "b": rng.choice(["x", "y"], 80)}).to_csv(
        data, index=False
    )
    model = folder / "m.twin"
    datatwin.fit(data, seed=0, structures="independent").save(model)
    return {"MODEL": model, "DATA": data, "OUT": folder / "out.csv"}


@FUZZ
@given(words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=7))
def test_random_cli_arguments_never_crash(words, fuzz_files, capsys):
    argv = [str(fuzz_files.get(w, w)) for w in words]
    try:
        code, err = _run(argv, capsys)
    except SystemExit as exc:  # argparse usage errors and --help exit through SystemExit
        assert exc.code in (0, 2)
        return
    _assert_user_outcome(code, err)


@pytest.fixture(scope="module")
def model_bytes(fuzz_files) -> bytes:
    return fuzz_files["MODEL"].read_bytes()


@FUZZ
@given(
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4),
)
def test_damaged_model_files_load_or_are_refused(cut, flips, model_bytes, tmp_path_factory):
    raw = bytearray(model_bytes[: max(1, int(len(model_bytes) * (0.5 + cut / 2)))])
    if cut > 0.9:
        raw = bytearray(model_bytes)  # whole file, bytes flipped only
    for where, mask in flips:
        raw[int(where * (len(raw) - 1))] ^= mask
    path = tmp_path_factory.mktemp("bad") / "bad.twin"
    path.write_bytes(bytes(raw))
    try:
        twin = datatwin.load(path)
    except datatwin.ModelFileError as exc:
        assert "\n" not in str(exc)
        return
    # loaded: it must still be a proper model (finite bits, valid samples)
    frame = twin.sample(50, seed=0)
    assert np.isfinite(twin.log_prob(frame)).all()


def test_zip_with_extra_member_is_still_a_model_or_refused(fuzz_files, tmp_path):
    """A model file with an unexpected member never loads silently with junk in it."""
    path = tmp_path / "extra.twin"
    with (
        zipfile.ZipFile(fuzz_files["MODEL"]) as src,
        zipfile.ZipFile(path, "w") as dst,
    ):
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("payload.py", "print('never run')")
    try:
        datatwin.load(path)
    except datatwin.ModelFileError as exc:
        assert "\n" not in str(exc)
