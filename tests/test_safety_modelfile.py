"""Model files that cannot be trusted are refused in one line before they cost memory or time
(devices, FIFOs, folders, oversized files, zip bombs, lying array headers, deep JSON, unknown
members and keys, NaN/inf in any float array), and saving is reproducible byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.lib import format as npy

import datatwin
from datatwin import ModelFileError
from datatwin import modelfile as mf
from datatwin.leaderboard import render

SRC = str(Path(datatwin.__file__).resolve().parents[1])


# ---- twins of every kind, small ------------------------------------------------------------
def table_frame(n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    num = np.round(rng.normal(np.where(a == "x", 10, 20), 3), 1).astype(object)
    num[rng.random(n) < 0.05] = None  # missing values
    return pd.DataFrame({"a": a, "num": num, "k": rng.integers(0, 5, n)})


def numeric_frame(n: int = 500, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    return pd.DataFrame({"x": np.round(x, 3), "y": np.round(2 * x + rng.normal(0, 0.5, n), 3)})


TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog.\n" * 20


def events_frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        for pos in range(int(rng.integers(2, 6))):
            rows.append((f"s{s}", pos, rng.choice(["a", "b", "c"])))
    return pd.DataFrame(rows, columns=["S", "P", "E"])


def series_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.6 * y[t - 1] + rng.normal()
    return pd.DataFrame({"time": np.arange(n), "y": np.round(y, 3)})


FITS = {
    "table": lambda: datatwin.fit(table_frame(), seed=0),
    "gaussian": lambda: datatwin.fit(numeric_frame(), structures=["gaussian"], seed=0),
    "text": lambda: datatwin.fit(TEXT, kind="text", max_order=3, seed=0, baselines=False),
    "events": lambda: datatwin.fit(
        events_frame(),
        kind="events",
        sequence_id="S",
        order_by="P",
        event="E",
        max_order=2,
        seed=0,
        baselines=False,
    ),
    "series": lambda: datatwin.fit(
        series_frame(), kind="series", structures="iid,ar,none", max_lag=4, seed=0
    ),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("twins")
    out = {}
    for name, fit in FITS.items():
        out[name] = folder / f"{name}.twin"
        fit().save(out[name])
    return out


# ---- helpers to build and damage files -----------------------------------------------------
def read_raw(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def write_raw(path: Path, members: dict[str, bytes], compress=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def npz_of(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def rewrite(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    write_raw(path, {"model.json": json.dumps(meta).encode(), "arrays.npz": npz_of(arrays)})


def refused(path: Path, *words: str) -> str:
    with pytest.raises(ModelFileError) as info:
        datatwin.load(path)
    msg = str(info.value)
    assert "\n" not in msg
    said = msg.replace(str(path), "<path>")  # the words must not come from the file's name
    for w in words:
        assert w in said, msg
    return msg


@pytest.fixture()
def table_copy(saved, tmp_path) -> Path:
    p = tmp_path / "t.twin"
    p.write_bytes(saved["table"].read_bytes())
    return p


# ---- not a regular file ---------------------------------------------------------------------
def _load_in_child(path: Path) -> subprocess.CompletedProcess:
    """datatwin.load(path) in a child with a time and memory limit, so a regression (reading
    /dev/zero forever, blocking on a FIFO) fails the test instead of hanging or exhausting it."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "import datatwin\n"
        "try:\n    datatwin.load(sys.argv[1])\n"
        "except datatwin.ModelFileError as e:\n    print('REFUSED', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=20, env=env
    )


def test_dev_zero_is_refused_at_once():
    run = _load_in_child(Path("/dev/zero"))
    assert run.stdout.startswith("REFUSED") and "not a regular file" in run.stdout, run


def test_folder_is_refused(tmp_path):
    refused(tmp_path, "is a folder")


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    run = _load_in_child(fifo)
    assert run.stdout.startswith("REFUSED") and "not a regular file" in run.stdout, run
    env = {**os.environ, "PYTHONPATH": SRC}
    cli = subprocess.run(
        [sys.executable, "-m", "datatwin.cli", "sample", str(fifo), "-n", "3"],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1, cli


def test_oversized_file_is_refused_by_its_size(tmp_path):
    big = tmp_path / "big.twin"
    with open(big, "wb") as fh:  # sparse: no disk space used
        fh.truncate(mf.MAX_FILE_BYTES + 1)
    refused(big, "GiB")


# ---- zip bombs and lying sizes --------------------------------------------------------------
def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_outer_zip_bomb_is_refused_before_inflating(table_copy):
    meta, _ = read_raw(table_copy)
    bomb = bytes(40 * 2**20)  # 40 MiB of zeros deflate ~1000x
    write_raw(table_copy, {"model.json": json.dumps(meta).encode(), "arrays.npz": bomb})
    del bomb
    with zipfile.ZipFile(table_copy) as zf:
        info = zf.getinfo("arrays.npz")
        assert info.file_size > mf.MAX_RATIO * info.compress_size
    assert _peak_mib(lambda: refused(table_copy, "zip bomb")) < 16


def test_inner_zip_bomb_is_refused(table_copy):
    meta, arrays = read_raw(table_copy)
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as inner,
        inner.open("cards.npy", "w") as fh,
    ):
        npy.write_array(fh, np.zeros(6 * 2**20, np.int64))  # 48 MiB of zeros
    members = {"model.json": json.dumps(meta).encode(), "arrays.npz": buf.getvalue()}
    write_raw(table_copy, members, compress=zipfile.ZIP_STORED)
    assert _peak_mib(lambda: refused(table_copy, "zip bomb")) < 16


def test_total_uncompressed_cap(table_copy, monkeypatch):
    monkeypatch.setattr(mf, "MAX_UNCOMPRESSED_BYTES", 1000)
    refused(table_copy, "unpacks to")


def _npy_declaring(shape: tuple[int, ...], payload: bytes, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _with_member(path: Path, name: str, data: bytes) -> None:
    meta, arrays = read_raw(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as inner:
        for k, v in arrays.items():
            with inner.open(k + ".npy", "w") as fh:
                npy.write_array(fh, v)
        inner.writestr(name, data)
    write_raw(path, {"model.json": json.dumps(meta).encode(), "arrays.npz": buf.getvalue()})


def test_huge_declared_array_is_refused_before_allocating(table_copy):
    _with_member(table_copy, "huge.npy", _npy_declaring((10**12,), bytes(8)))
    assert _peak_mib(lambda: refused(table_copy, "huge", "declares")) < 16


def test_array_declaring_fewer_bytes_than_it_holds(table_copy):
    _with_member(table_copy, "short.npy", _npy_declaring((2,), bytes(8 * 5)))
    refused(table_copy, "short", "declares")


@pytest.mark.parametrize("dtype", ["<U4", "|O", "|S4", "<c16", "<M8[s]"])
def test_only_plain_numbers(table_copy, dtype):
    _with_member(table_copy, "odd.npy", _npy_declaring((1,), bytes(16), dtype))
    refused(table_copy, "odd", "plain numbers")


def test_structured_dtype_is_refused(table_copy):
    meta, arrays = read_raw(table_copy)
    arrays["rec"] = np.zeros(2, dtype=[("a", "<i8"), ("b", "<f8")])
    rewrite(table_copy, meta, arrays)
    refused(table_copy, "rec", "plain numbers")


def test_non_npy_member_in_arrays_is_refused(table_copy):
    _with_member(table_copy, "notes.txt", b"hello")
    refused(table_copy, "notes.txt")


# ---- model.json -----------------------------------------------------------------------------
def test_json_depth_scan_skips_strings_and_does_not_recurse():
    assert mf.json_depth('{"a": "[[[{{{", "b": [1, {"c": "]]]\\"[["}]}') == 3
    assert mf.json_depth("[" * 1_000_000 + "]" * 1_000_000) == 1_000_000


def test_deep_json_is_refused_without_recursion_error(table_copy):
    meta, arrays = read_raw(table_copy)
    text = json.dumps(meta)[:-1] + ', "options": ' + "[" * 100_000 + "]" * 100_000 + "}"
    write_raw(table_copy, {"model.json": text.encode(), "arrays.npz": npz_of(arrays)})
    refused(table_copy, "nests", "100001")


def test_json_at_the_depth_limit_is_not_refused_for_depth(table_copy):
    meta, arrays = read_raw(table_copy)
    depth = mf.json_depth(json.dumps(meta))
    assert depth < mf.MAX_JSON_DEPTH  # real twins are far from the limit
    meta["options"] = {
        "nest": json.loads("[" * (mf.MAX_JSON_DEPTH - 2) + "]" * (mf.MAX_JSON_DEPTH - 2))
    }
    assert mf.json_depth(json.dumps(meta)) == mf.MAX_JSON_DEPTH
    rewrite(table_copy, meta, arrays)
    try:
        datatwin.load(table_copy)
    except ModelFileError as exc:
        assert "nests" not in str(exc)


def test_nan_constant_in_json_is_refused(table_copy):
    meta, arrays = read_raw(table_copy)
    meta["leaderboard"][0]["holdout_bits"] = float("nan")
    rewrite(table_copy, meta, arrays)  # json.dumps writes NaN
    refused(table_copy, "NaN")


def test_unknown_top_level_key_is_refused(table_copy):
    meta, arrays = read_raw(table_copy)
    meta["payload"] = {"x": 1}
    rewrite(table_copy, meta, arrays)
    refused(table_copy, "unknown", "payload")


def test_unknown_zip_member_is_refused(table_copy):
    with zipfile.ZipFile(table_copy, "a") as zf:
        zf.writestr("extra.bin", b"x")
    refused(table_copy, "unexpected member", "extra.bin")


def test_repeated_zip_member_is_refused(table_copy):
    meta, arrays = read_raw(table_copy)
    with zipfile.ZipFile(table_copy, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("arrays.npz", npz_of(arrays))
        with pytest.warns(UserWarning):
            zf.writestr("model.json", json.dumps({**meta, "kind": "text"}))
    refused(table_copy, "repeated")


def test_every_kind_writes_only_known_top_level_keys(saved):
    for name, path in saved.items():
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("model.json"))
        keys = set(meta)
        allowed = mf.rules_for(meta["kind"], path).keys
        assert keys <= allowed, (name, keys - allowed)
        datatwin.load(path)


# ---- NaN / inf in float arrays --------------------------------------------------------------
def _float_arrays(path: Path) -> list[str]:
    _, arrays = read_raw(path)
    return sorted(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size)


@pytest.mark.parametrize("kind", ["table", "gaussian", "events", "series"])
def test_nan_or_inf_in_any_float_array_is_refused(saved, tmp_path, kind):
    names = _float_arrays(saved[kind])
    assert names, f"a {kind} twin with no float arrays tests nothing"
    meta, arrays = read_raw(saved[kind])
    bad = tmp_path / "bad.twin"
    for name in names:
        for value in (np.nan, np.inf, -np.inf):
            a = arrays[name].copy()
            a.reshape(-1)[-1] = value
            rewrite(bad, meta, {**arrays, name: a})
            refused(bad, name, "NaN or infinity")


def test_table_alpha_may_be_inf_but_nothing_else(tmp_path):
    path = tmp_path / "bayesnet.twin"
    datatwin.fit(table_frame(), structures="bayesnet", seed=0).save(path)
    meta, arrays = read_raw(path)
    names = [k for k in arrays if k.endswith("_alpha_prior")]
    assert any(arrays[k][0] == np.inf for k in names)  # the legitimate +inf exists
    bad = tmp_path / "bad.twin"
    for value in (np.nan, -np.inf):
        a = arrays[names[0]].copy()
        a[0] = value
        rewrite(bad, meta, {**arrays, names[0]: a})
        refused(bad, names[0], "NaN or infinity")


# ---- reproducible files ---------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["table", "text", "events", "series"])
def test_same_data_and_seed_give_byte_identical_files(saved, tmp_path, kind):
    twin = FITS[kind]()
    assert all("fit_seconds" in row for row in twin.leaderboard)  # kept in memory
    twin.save(tmp_path / "again.twin")
    assert _sha(tmp_path / "again.twin") == _sha(saved[kind])
    with zipfile.ZipFile(saved[kind]) as zf:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        assert b"fit_seconds" not in zf.read("model.json")
        inner = zipfile.ZipFile(io.BytesIO(zf.read("arrays.npz")))
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in inner.infolist())


@pytest.mark.parametrize("kind", ["table", "text", "events", "series"])
def test_loaded_twin_resaves_identically_and_renders_without_timings(saved, tmp_path, kind):
    back = datatwin.load(saved[kind])
    assert not any("fit_seconds" in row for row in back.leaderboard)
    back.save(tmp_path / "re.twin")
    assert _sha(tmp_path / "re.twin") == _sha(saved[kind])
    from rich.console import Console

    out = io.StringIO()
    render(back.leaderboard, back.unit, Console(file=out, width=200))
    assert "fit s" in out.getvalue() and back.structure[:10] in out.getvalue()


def test_arrays_round_trip_exactly_through_the_deterministic_npz(tmp_path):
    arrays = {
        "f": np.array([[1.5, -2.0], [3.25, 0.0]]),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "b": np.array([True, False]),
        "empty": np.zeros((0, 3)),
        "big_endian": np.array([1, 2], dtype=">i4"),
    }
    mf.save_archive(tmp_path / "a.twin", {"kind": "table"}, arrays)
    _, back = mf.load_archive(tmp_path / "a.twin")
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
    back["f"][0, 0] = 9.0  # loaded arrays are writable like np.load's
    assert math.isclose(float(back["f"][0, 0]), 9.0)
