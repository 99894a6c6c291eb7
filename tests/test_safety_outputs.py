"""Outputs never destroy inputs: same-file outputs, folders and missing folders are refused
before any work; devices, FIFOs and stdout are written through, never replaced; a full disk is
one line with no partial file; SIGTERM leaves no temporary file."""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin import modelfile as mf
from datatwin import outputs
from datatwin.cli import main
from datatwin.errors import InputError
from datatwin.tabular.twin import TableTwin

SRC = str(Path(datatwin.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC}


def write_table(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    a = rng.choice(["x", "y"], n)
    pd.DataFrame({"a": a, "k": rng.integers(0, 4, n)}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    data = write_table(folder / "d.csv")
    assert main(["-q", "fit", str(data), "-o", str(folder / "m.twin")]) == 0
    return folder / "m.twin"


@pytest.fixture()
def work(tmp_path, model) -> Path:
    """A folder with d.csv, a symlink and a hard link to it, m.twin, schema/dag/holdout files."""
    write_table(tmp_path / "d.csv")
    (tmp_path / "link.csv").symlink_to("d.csv")
    os.link(tmp_path / "d.csv", tmp_path / "hard.csv")
    (tmp_path / "m.twin").write_bytes(model.read_bytes())
    (tmp_path / "h.csv").write_bytes((tmp_path / "d.csv").read_bytes())
    (tmp_path / "s.json").write_text("{}")
    (tmp_path / "dag.txt").write_text("a -> k\n")
    return tmp_path


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if a command gets as far as fitting, loading or reporting."""

    def boom(*a, **k):
        raise AssertionError("work started before the outputs were checked")

    monkeypatch.setattr(TableTwin, "cli_fit", classmethod(boom))
    monkeypatch.setattr(datatwin, "load", boom)
    import datatwin.report.commands as rc

    monkeypatch.setattr(rc, "run_report", boom)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("datatwin: error:"), err
    for w in words:
        assert w in err, err
    return err


SAME_FILE = [
    ["fit", "d.csv", "-o", "d.csv"],
    ["fit", "d.csv", "-o", "link.csv"],
    ["fit", "d.csv", "-o", "hard.csv"],
    ["fit", "link.csv", "-o", "hard.csv"],
    ["fit", "d.csv", "--write-schema", "d.csv"],
    ["fit", "d.csv", "-o", "x.twin", "--write-schema", "hard.csv"],
    ["fit", "d.csv", "--holdout", "h.csv", "-o", "h.csv"],
    ["fit", "d.csv", "--schema", "s.json", "-o", "s.json"],
    ["fit", "d.csv", "--schema", "s.json", "--write-schema", "s.json"],
    ["fit", "d.csv", "--dag", "dag.txt", "-o", "dag.txt"],
    ["fit", "m.twin", "-o", "m.twin"],
    ["sample", "m.twin", "-o", "m.twin"],
    ["report", "m.twin", "--real", "d.csv", "-o", "d.csv"],
    ["report", "m.twin", "--real", "h.csv", "--train", "d.csv", "-o", "link.csv"],
    ["report", "m.twin", "--real", "d.csv", "-o", "m.twin"],
]


@pytest.mark.parametrize("argv", SAME_FILE, ids=[" ".join(a) for a in SAME_FILE])
def test_output_that_is_an_input_is_refused_before_any_work(
    work, argv, capsys, monkeypatch, no_work
):
    monkeypatch.chdir(work)
    before = _snapshot(work)
    assert main(argv) == 2
    _one_line_error(capsys, "are the same file")
    assert _snapshot(work) == before
    assert (work / "link.csv").is_symlink()
    assert not list(work.glob(".*.tmp"))


def test_default_model_path_that_is_the_data_is_refused(work, capsys, monkeypatch, no_work):
    monkeypatch.chdir(work)
    (work / "t.twin").write_bytes((work / "d.csv").read_bytes())  # DATA t.twin -> t.twin
    assert main(["fit", "t.twin", "--kind", "table"]) == 2
    _one_line_error(capsys, "model file t.twin", "same file")


BAD_PLACES = [
    (["fit", "d.csv", "-o", "missing/m.twin"], "does not exist"),
    (["fit", "d.csv", "-o", "sub"], "is a folder"),
    (["fit", "d.csv", "-o", "d.csv/m.twin"], "not a folder"),
    (["fit", "d.csv", "--write-schema", "sub"], "is a folder"),
    (["fit", "d.csv", "--write-schema", "-"], "stdout"),
    (["fit", "d.csv", "-o", "a.twin", "--write-schema", "./a.twin"], "same file"),
    (["sample", "m.twin", "-o", "missing/x.csv"], "does not exist"),
    (["sample", "m.twin", "-o", "sub"], "is a folder"),
    (["report", "m.twin", "--real", "d.csv", "-o", "sub"], "is a folder"),
    (["report", "m.twin", "--real", "d.csv", "-o", "-"], "stdout"),
    (["demo", "-o", "d.csv"], "not a folder"),
    (["demo", "-o", "d.csv/deeper"], "not a folder"),
]


@pytest.mark.parametrize("argv,words", BAD_PLACES, ids=[" ".join(a) for a, _ in BAD_PLACES])
def test_unwritable_outputs_are_refused_before_any_work(
    work, argv, words, capsys, monkeypatch, no_work
):
    monkeypatch.chdir(work)
    (work / "sub").mkdir()
    assert main(argv) == 2
    _one_line_error(capsys, words)
    assert not (work / "a.twin").exists() and not (work / "missing").exists()


def test_read_only_folder_is_refused(work, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(
        outputs.os, "access", lambda p, m: False if Path(p) == work else real_access(p, m)
    )
    with pytest.raises(InputError, match="not writable"):
        outputs.check_output(work / "new.csv")
    with pytest.raises(InputError, match="not writable"):
        outputs.check_folder_output(work / "a" / "b")


def test_demo_folder_files_that_are_folders_are_refused(tmp_path, capsys, monkeypatch, no_work):
    (tmp_path / "demo" / "adult.twin").mkdir(parents=True)
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 2
    _one_line_error(capsys, "adult.twin", "is a folder")
    assert not (tmp_path / "demo" / "adult.csv.gz").exists()


# ---- devices, FIFOs, stdout -----------------------------------------------------------------
def test_write_mode_is_a_dry_run_that_never_renames_system_paths(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "null").symlink_to("/dev/null")
    (tmp_path / "f.txt").write_text("x")
    assert outputs.write_mode("-") == "stdout"
    for p in ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/1"):
        assert outputs.write_mode(p) == "through", p
    assert outputs.write_mode("/dev/no-such-device") == "through"  # never created there
    assert outputs.write_mode(tmp_path / "fifo") == "through"
    assert outputs.write_mode(tmp_path / "null") == "through"
    assert outputs.write_mode(tmp_path / "f.txt") == "atomic"
    assert outputs.write_mode(tmp_path / "new.txt") == "atomic"
    with pytest.raises(InputError):
        outputs.check_output("/dev/no-such-device")


def test_sample_to_dev_null_leaves_it_a_device(model, capsys):
    assert outputs.write_mode("/dev/null") == "through"  # else this test must not run
    before = os.stat("/dev/null")
    assert main(["sample", str(model), "-n", "20", "-o", "/dev/null"]) == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert capsys.readouterr().out == ""


def test_symlink_to_a_device_is_written_through_not_replaced(model, tmp_path):
    link = tmp_path / "out.csv"
    link.symlink_to("/dev/null")
    assert main(["sample", str(model), "-n", "20", "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert not list(tmp_path.glob(".*.tmp"))


def _sample_bytes(model: Path, tmp_path: Path, n: int = 50) -> bytes:
    ref = tmp_path / "ref.csv"
    assert main(["sample", str(model), "-n", str(n), "--seed", "3", "-o", str(ref)]) == 0
    return ref.read_bytes()


def test_fifo_output_is_written_through(model, tmp_path):
    expected = _sample_bytes(model, tmp_path)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader():
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert main(["sample", str(model), "-n", "50", "--seed", "3", "-o", str(fifo)]) == 0
    t.join(timeout=20)
    assert not t.is_alive(), "the FIFO was replaced instead of written"
    assert got == [expected]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


def test_dash_is_stdout_for_sample_and_fit(model, tmp_path):
    expected = _sample_bytes(model, tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "datatwin.cli", "sample", str(model), "-n", "50", "--seed", "3"]
        + ["-o", "-"],
        capture_output=True,
        timeout=120,
        env=ENV,
        cwd=tmp_path,
    )
    assert run.returncode == 0 and run.stdout == expected
    assert not (tmp_path / "-").exists()
    data = write_table(tmp_path / "d.csv")
    fit = [sys.executable, "-m", "datatwin.cli", "-q", "fit", str(data), "--json"]
    run = subprocess.run(fit + ["-o", "-"], capture_output=True, timeout=120, env=ENV)
    assert run.returncode == 0, run.stderr
    assert run.stdout[:2] == b"PK" and b'"selected"' in run.stderr  # results to stderr
    assert main(["-q", "fit", str(data), "-o", str(tmp_path / "f.twin")]) == 0
    assert run.stdout == (tmp_path / "f.twin").read_bytes()


def test_through_write_never_creates_or_truncates(tmp_path, monkeypatch):
    """Write-through opens without O_CREAT and O_TRUNC (so /dev/stdout >> log appends)."""
    flags: list[int] = []
    real_open = os.open

    def spy(path, fl, *a):
        flags.append(fl)
        return real_open(path, fl, *a)

    monkeypatch.setattr(outputs.os, "open", spy)
    outputs.write_file("/dev/null", lambda fh: fh.write(b"x"))
    assert flags and not flags[0] & (os.O_CREAT | os.O_TRUNC)


# ---- full disk --------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_disk_full_during_sample_is_one_line_and_leaves_nothing(
    model, tmp_path, capsys, monkeypatch, code
):
    out = tmp_path / "out.csv"
    out.write_text("old content\n")

    def full(self, args):
        def write(fh):
            fh.write(b"a,k\n" * 1000)
            raise OSError(code, os.strerror(code))

        return write

    monkeypatch.setattr(TableTwin, "cli_sample_writer", full)
    assert main(["sample", str(model), "-n", "20", "-o", str(out)]) == 2
    err = _one_line_error(capsys, f"writing {out}", "free some space or choose another -o")
    assert ("no space left" in err) == (code == errno.ENOSPC)
    assert out.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_disk_full_while_saving_a_model(tmp_path, capsys, monkeypatch):
    data = write_table(tmp_path / "d.csv")
    real = mf.write_archive

    def full(fh, meta, arrays):
        real(fh, meta, arrays)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mf, "write_archive", full)
    assert main(["-q", "fit", str(data), "-o", str(tmp_path / "m.twin")]) == 2
    _one_line_error(capsys, "no space left on device writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_disk_full_on_stdout_is_one_line(monkeypatch):
    class Full(io.RawIOBase):
        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    class Out:
        buffer = Full()

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Out())
    with pytest.raises(InputError, match="no space left on device writing -"):
        outputs.write_file("-", lambda fh: fh.write(b"x"), stdout_ok=True)


# ---- SIGTERM -----------------------------------------------------------------------------------
SLOW_SAMPLE = """
import sys, time
from datatwin import cli
from datatwin.tabular.twin import TableTwin
real = TableTwin.cli_sample_writer
def slow(self, args):
    write = real(self, args)
    def w(fh):
        write(fh)
        fh.flush()
        sys.stderr.write("WRITING\\n"); sys.stderr.flush()
        time.sleep(60)
    return w
TableTwin.cli_sample_writer = slow
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_mid_write_leaves_no_temporary_file(model, tmp_path):
    out = tmp_path / "big.csv"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAMPLE, "sample", str(model), "-n", "200000", "-o", str(out)],
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        assert proc.stderr.readline() == b"WRITING\n"
        tmp = list(tmp_path.glob(".big.csv.*.tmp"))
        assert len(tmp) == 1 and tmp[0].stat().st_size > 100_000  # a large partial write
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
        assert b"terminated" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(tmp_path.glob(".big.csv.*.tmp"))
    assert not out.exists()


def test_sigterm_handler_is_restored_after_main(model, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["sample", str(model), "-n", "3", "-o", str(tmp_path / "s.csv")]) == 0
    assert signal.getsignal(signal.SIGTERM) is before
