"""The uniform API: foreign options refused (Python and CLI), seeds, repr, imports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin import cli
from datatwin.core.seeding import as_int_seed, seed_sequence, stream


def _table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 3, 200), "b": rng.choice(["x", "y"], 200)})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return path


def _series(tmp_path: Path) -> Path:
    t = np.arange(120)
    y = np.round(10 + np.sin(t / 5) + np.random.default_rng(1).normal(0, 0.1, 120), 2)
    path = tmp_path / "s.csv"
    pd.DataFrame({"time": t, "value": y}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("kind", "option"),
    [("series", "bins"), ("text", "bins"), ("table", "max_lag"), ("events", "tokens")],
)
def test_python_fit_refuses_a_foreign_option(kind: str, option: str) -> None:
    with pytest.raises(datatwin.InputError) as err:
        datatwin.fit("whatever.csv", kind=kind, **{option: 5})
    msg = str(err.value)
    assert repr(option) in msg and "valid:" in msg and "\n" not in msg
    assert "holdout" in msg  # lists what the kind does take


def _cli_error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(err) == 1, err
    return err[0]


def test_cli_refuses_a_series_option_for_a_table(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.twin"
    line = _cli_error(["fit", _table(tmp_path), "--max-lag", "5", "-o", out], capsys)
    assert "--max-lag" in line and "table" in line and "--bins" in line
    assert not out.exists()


def test_cli_refuses_a_table_option_for_a_series(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.twin"
    argv = ["fit", _series(tmp_path), "--kind", "series", "--bins", "5", "-o", out]
    line = _cli_error(argv, capsys)
    assert "--bins" in line and "series" in line and "--max-lag" in line
    assert not out.exists()


def test_cli_refuses_a_sample_option_of_another_kind(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.twin"
    assert cli.main(["-q", "fit", str(_table(tmp_path)), "-o", str(model)]) == 0
    line = _cli_error(["sample", model, "--paths", "3"], capsys)
    assert "--paths" in line and "table" in line and "--given" in line


def test_cli_option_shared_by_text_and_events_is_accepted_for_both(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("abracadabra " * 200)
    assert cli.main(["-q", "fit", str(text), "--max-order", "3", "-o", str(tmp_path / "a")]) == 0
    ev = tmp_path / "e.csv"
    rows = [(f"s{i}", j, "xyz"[(i + j) % 3]) for i in range(60) for j in range(1 + i % 4)]
    pd.DataFrame(rows, columns=["sid", "pos", "ev"]).to_csv(ev, index=False)
    argv = ["-q", "fit", str(ev), "--kind", "events", "--sequence-id", "sid"]
    argv += ["--order-by", "pos", "--event", "ev", "--max-order", "2", "-o", str(tmp_path / "b")]
    assert cli.main(argv) == 0


def test_twin_classes_import_from_the_package_and_repr(tmp_path: Path) -> None:
    from datatwin.tabular.twin import TableTwin

    assert datatwin.TableTwin is TableTwin
    twin = datatwin.fit(_table(tmp_path), seed=0)
    text = repr(twin)
    assert text.startswith("<TableTwin kind='table' structure=")
    assert f"params={twin.n_params()}" in text and "unit='record'" in text
    with pytest.raises(AttributeError):
        datatwin.NoSuchTwin  # noqa: B018


def test_seed_streams_are_reproducible_independent_and_validated() -> None:
    a = stream(7, "values").integers(0, 2**32, 5)
    assert np.array_equal(a, stream(7, "values").integers(0, 2**32, 5))
    assert not np.array_equal(a, stream(7, "ids").integers(0, 2**32, 5))
    assert not np.array_equal(a, stream(8, "values").integers(0, 2**32, 5))
    fresh = [stream(None, "ids").integers(0, 2**62) for _ in range(2)]
    assert fresh[0] != fresh[1]  # None: fresh entropy each call, never a constant
    g = np.random.default_rng(3)
    assert isinstance(seed_sequence(g), np.random.SeedSequence)
    assert as_int_seed(5) == 5
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(datatwin.InputError):
            seed_sequence(bad)  # type: ignore[arg-type]


def test_reading_options_are_the_same_for_tables_series_and_events(tmp_path: Path, capsys):
    """--encoding, --sep and --no-header reach every kind that reads a CSV; text refuses them."""
    t = np.arange(120)
    y = np.round(10 + np.sin(t / 5), 2)
    series = tmp_path / "s.csv"
    series.write_bytes(
        ("tïme;value\n" + "".join(f"{a};{b}\n" for a, b in zip(t, y, strict=True))).encode(
            "latin-1"
        )
    )
    argv = ["-q", "fit", series, "--kind", "series", "--time", "tïme", "--sep", ";"]
    argv += ["--encoding", "latin-1", "-o", tmp_path / "s.twin"]
    assert cli.main([str(a) for a in argv]) == 0
    ev = tmp_path / "e.csv"
    rows = "".join(f"s{i}|{j}|{'xyz'[(i + j) % 3]}\n" for i in range(60) for j in range(1 + i % 4))
    ev.write_text(rows)  # no header line: col1, col2, col3
    argv = ["-q", "fit", ev, "--kind", "events", "--no-header", "--sep", "|"]
    argv += ["--sequence-id", "col1", "--order-by", "col2", "--event", "col3"]
    argv += ["--max-order", "2", "-o", tmp_path / "e.twin"]
    assert cli.main([str(a) for a in argv]) == 0
    text = tmp_path / "t.txt"
    text.write_text("abc " * 100)
    line = _cli_error(["fit", text, "--sep", ";", "-o", tmp_path / "t.twin"], capsys)
    assert "--sep" in line and "text" in line
