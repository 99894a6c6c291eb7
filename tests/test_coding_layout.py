"""CSV formatting: rebuild(split(raw)) is raw byte for byte, the cells are the reader's tokens,
and the layout of a clean file costs a few bytes."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatwin.coding import CompressedFileError, Layout, rebuild, split
from datatwin.errors import InputError
from datatwin.reader import read_csv

AWKWARD: dict[str, tuple[bytes, str]] = {
    "clean": (b"a,b,c\n1,x,2.5\n2,y,\n3,,7\n", "utf-8"),
    "crlf": (b"a,b\r\n1,2\r\n3,4\r\n", "utf-8"),
    "cr": (b"a,b\r1,2\r3,4\r", "utf-8"),
    "mixed_no_final": (b"a,b\n1,2\r\n3,4\r5,6\n7,8", "utf-8"),
    "quoted": (
        b'id,text\n1,"a, b"\n2,"say ""hi"""\n3,"two\nlines"\n4,"crlf\r\ninside"\n5,plain\n',
        "utf-8",
    ),
    "quote_all": (b'"a","b"\n"1","x"\n"2","y"\n"3",""\n', "utf-8"),
    "quote_some": (b'a,b\n"1",x\n2,"y"\n3,z\n', "utf-8"),
    "odd_quoting": (b'a,b\n"ab"cd,x"y\n  "q" ,2\n', "utf-8"),
    "bom": (b"\xef\xbb\xbfa,b\n1,2\n", "utf-8"),
    "empty_cells": (b"a,b,c\n,,\n1,,\n,,3\n", "utf-8"),
    "one_column_empty": (b'a\n""\nx\n""\n', "utf-8"),
    "blank_lines": (b"a,b\n\n1,2\n\n\n3,4\n\n", "utf-8"),
    "only_header": (b"a,b,c\n", "utf-8"),
    "only_header_no_newline": (b"a,b,c", "utf-8"),
    "unicode": ('név,城市\nÉva,東京\n😀,"a,😀"\n'.encode(), "utf-8"),
    "latin1": ("name,city\nJosé,Zürich\nçà,ø\n".encode("latin-1"), "latin-1"),
    "semicolon": (b"a;b\n1,5;2\n3;4\n", "utf-8"),
    "tab": (b"a\tb\n1\t2\n3\t4\n", "utf-8"),
    "pipe": (b"a|b\n1|2\n3|4\n", "utf-8"),
    "spaces": (b" a , b \n 1 ,2 \n", "utf-8"),
}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("case", sorted(AWKWARD))
def test_round_trip_is_byte_exact(case: str) -> None:
    raw, encoding = AWKWARD[case]
    s = split(raw, encoding=encoding)
    layout = Layout.from_bytes(s.layout.to_bytes())
    assert layout == s.layout
    assert sha(rebuild(s.columns, layout)) == sha(raw)


@pytest.mark.parametrize("case", sorted(AWKWARD))
def test_cells_are_the_readers_tokens(case: str, tmp_path: Path) -> None:
    raw, encoding = AWKWARD[case]
    s = split(raw, encoding=encoding)
    path = tmp_path / "data.csv"
    path.write_bytes(raw)
    if s.layout.n_rows == 0:
        with pytest.raises(InputError):
            read_csv(path, encoding=encoding, delimiter=None)
        return
    table = read_csv(path, encoding=encoding, delimiter=None)
    assert table.columns == s.names
    assert [list(table.text(n)) for n in table.columns] == s.columns


def test_clean_csv_layout_costs_a_few_bytes() -> None:
    rows = "\n".join(f"{i},{i * 7 % 13},{'x' * (i % 5)}" for i in range(1000))
    raw = f"id,k,s\n{rows}\n".encode()
    s = split(raw, names=["id", "k", "s"])
    assert s.layout.header is None
    assert len(s.layout.to_bytes()) <= 8
    verbatim = split(raw)
    assert len(verbatim.layout.to_bytes()) <= 8 + len("id,k,s") + 1
    assert rebuild(s.columns, s.layout, names=["id", "k", "s"]) == raw
    with pytest.raises(InputError, match="names"):
        rebuild(s.columns, s.layout)


def test_exceptions_are_sparse() -> None:
    """One odd line ending, one blank line and one needlessly quoted cell in 2000 rows
    cost a handful of bytes, not one per row."""
    lines = [f"{i},{i % 3}" for i in range(2000)]
    lines[700] = f'"{700}",1'
    body = "\n".join(lines)
    body = body.replace("\n1500,", "\r\n1500,").replace("\n1800,", "\n\n1800,")
    raw = f"a,b\n{body}\n".encode()
    s = split(raw, names=["a", "b"])
    assert len(s.layout.cell_exceptions) == 1
    assert len(s.layout.newline_exceptions) == 1 and len(s.layout.blank_lines) == 1
    assert len(s.layout.to_bytes()) <= 24
    assert rebuild(s.columns, s.layout, names=["a", "b"]) == raw


def test_quote_all_columns_are_a_column_default() -> None:
    rows = "\n".join(f'"{i}","v{i % 4}"' for i in range(500))
    raw = f'"a","b"\n{rows}\n'.encode()
    s = split(raw)
    assert s.layout.quoted_columns == (0, 1) and not s.layout.cell_exceptions
    assert len(s.layout.to_bytes()) <= 24
    assert s.columns[0][:2] == ["0", "1"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"a,b\n1,2,3\n", "ragged"),
        (b'a,b\n"1,2\n', "unterminated"),
        (b"a,b\n\xff,2\n", "not valid utf-8"),
        (b"\n\n", "empty"),
    ],
)
def test_bad_files_are_one_line_input_errors(raw: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as info:
        split(raw)
    assert "\n" not in str(info.value)


def test_unknown_encoding() -> None:
    with pytest.raises(InputError, match="encoding"):
        split(b"a\n1\n", encoding="no-such-codec")


def test_damaged_layout_bytes_are_one_line_errors() -> None:
    data = split(AWKWARD["quoted"][0]).layout.to_bytes()
    for cut in range(len(data)):
        try:
            Layout.from_bytes(data[:cut])
        except CompressedFileError as exc:
            assert "\n" not in str(exc)
    with pytest.raises(CompressedFileError):
        Layout.from_bytes(b"")
    with pytest.raises(CompressedFileError):
        Layout.from_bytes(data + b"\x00")


def test_rebuild_checks_the_shape() -> None:
    s = split(AWKWARD["clean"][0])
    with pytest.raises(InputError, match="rows"):
        rebuild(s.columns[:-1], s.layout)


def test_adult_test_csv_round_trips(shared_data: Path) -> None:
    path = shared_data / "tables/adult/adult_test.csv"
    raw = path.read_bytes()
    s = split(raw)
    assert sha(rebuild(s.columns, Layout.from_bytes(s.layout.to_bytes()))) == sha(raw)
    assert len(split(raw, names=s.names).layout.to_bytes()) <= 10


cell = st.text(alphabet=st.sampled_from(list('ab ,;"\n\r\té1')), max_size=6)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(st.lists(cell, min_size=3, max_size=3), min_size=1, max_size=8),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    final=st.booleans(),
)
def test_any_csv_the_csv_module_writes(
    rows: list[list[str]], sep: str, quoting: int, newline: str, final: bool
) -> None:
    lines = []
    for row in [["x", "y", "z"], *rows]:  # one at a time: "\r\n" makes csv quote CR and LF
        buf = io.StringIO()
        csv.writer(buf, delimiter=sep, quoting=quoting, lineterminator="\r\n").writerow(row)
        lines.append(buf.getvalue().removesuffix("\r\n"))
    raw = (newline.join(lines) + (newline if final else "")).encode()
    s = split(raw, sep=sep)
    assert s.columns == [list(c) for c in zip(*rows, strict=True)]
    assert rebuild(s.columns, Layout.from_bytes(s.layout.to_bytes())) == raw
