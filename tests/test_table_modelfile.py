"""Save/load round-trips exactly; damaged, tampered, future or pickled files are rejected
with ModelFileError (never unpickled)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin import ModelFileError
from datatwin.modelfile import FORMAT_VERSION
from datatwin.tabular.twin import TableTwin


def frame(n: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < 0.8, np.where(a == "x", "p", "q"), "r")
    num = np.round(rng.normal(np.where(b == "p", 10, 20), 3), 1)
    num_tok = np.array([f"{v:.1f}" for v in num], dtype=object)
    num_tok[rng.random(n) < 0.05] = "?"
    ids = np.array([f"C{100000 + i}" for i in rng.permutation(n)], dtype=object)
    return pd.DataFrame(
        {
            "id": ids,
            "a": a,
            "b": b,
            "num": num_tok,
            "when": pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[TableTwin, pd.DataFrame]:
    df = frame()
    return datatwin.fit(df, seed=0), df


@pytest.fixture()
def saved(fitted, tmp_path) -> Path:
    twin, _ = fitted
    path = tmp_path / "m.twin"
    twin.save(path)
    return path


def test_round_trip_is_exact(fitted, saved):
    twin, df = fitted
    loaded = datatwin.load(saved)
    assert isinstance(loaded, TableTwin)
    assert loaded.structure == twin.structure
    assert loaded.edges == twin.edges
    assert loaded.leaderboard == [
        {k: v for k, v in r.items() if k != "fit_seconds"} for r in twin.leaderboard
    ]
    probe = pd.concat(
        [
            df.head(300),
            pd.DataFrame(
                [
                    {
                        "id": "zz",
                        "a": "new",
                        "b": "p",
                        "num": "junk",
                        "when": pd.Timestamp("1999-05-05"),
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    assert np.array_equal(loaded.log_prob(probe), twin.log_prob(probe))
    for kw in ({}, {"novel": True}):
        assert loaded.sample(1_500, seed=5, **kw).equals(twin.sample(1_500, seed=5, **kw))
        assert loaded.sample_tokens(500, seed=6, **kw).equals(twin.sample_tokens(500, seed=6, **kw))
    # saving the loaded twin again gives the same model
    again = saved.parent / "again.twin"
    loaded.save(again)
    assert np.array_equal(datatwin.load(again).log_prob(probe), twin.log_prob(probe))


def test_save_is_atomic_and_leaves_no_temporary_files(fitted, tmp_path):
    twin, _ = fitted
    twin.save(tmp_path / "m.twin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.twin"]


def test_model_file_holds_no_pickle_and_no_training_ids(fitted, saved):
    _, df = fitted
    with zipfile.ZipFile(saved) as zf:
        assert sorted(zf.namelist()) == ["arrays.npz", "model.json"]
        text = zf.read("model.json").decode("utf-8")
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            for name in npz.files:
                assert npz[name].dtype != object
    assert not any(i in text for i in df["id"].head(50))


# ---- helpers to damage a file ------------------------------------------------------------
def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("model.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def _write(path: Path, meta: dict, arrays: dict, allow_pickle: bool = False) -> None:
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=allow_pickle, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())


def _rejected(path: Path, *words: str) -> str:
    with pytest.raises(ModelFileError) as info:
        datatwin.load(path)
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_file(tmp_path):
    _rejected(tmp_path / "nope.twin", "not found")


def test_truncated_file(saved):
    data = saved.read_bytes()
    for keep in (0, 10, len(data) // 2, len(data) - 30):
        saved.write_bytes(data[:keep])
        _rejected(saved)


def test_not_a_zip(saved):
    saved.write_text("age,income\n1,2\n")
    _rejected(saved)


@pytest.mark.parametrize("where", [0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
def test_flipped_bytes(saved, where):
    data = bytearray(saved.read_bytes())
    i = int(where * len(data))
    for j in range(i, min(i + 4, len(data))):
        data[j] ^= 0xFF
    saved.write_bytes(bytes(data))
    _rejected(saved)


def test_future_format_version(saved):
    meta, arrays = _read(saved)
    assert meta["format_version"] == 1  # the oldest format that holds a table twin
    meta["format_version"] = FORMAT_VERSION + 1
    _write(saved, meta, arrays)
    _rejected(saved, "newer", "upgrade")


def test_wrong_format_tag(saved):
    meta, arrays = _read(saved)
    meta["format"] = "something-else"
    _write(saved, meta, arrays)
    _rejected(saved)


def test_untampered_rewrite_still_loads(fitted, saved):
    """The damage helpers themselves produce a loadable file when nothing is changed."""
    twin, df = fitted
    meta, arrays = _read(saved)
    _write(saved, meta, arrays)
    assert np.array_equal(datatwin.load(saved).log_prob(df.head(50)), twin.log_prob(df.head(50)))


def _cpt_prefix(meta, arrays, with_parents: bool) -> str:
    for i in range(len(meta["codecs"])):
        if (len(arrays[f"n{i}_parents"]) > 0) == with_parents:
            return f"n{i}_"
    raise AssertionError("no such node")


def test_marginal_not_summing_to_one(saved):
    meta, arrays = _read(saved)
    p = _cpt_prefix(meta, arrays, with_parents=False)
    ap = arrays[f"{p}alpha_prior"].copy()
    ap[1] *= 1.5
    arrays[f"{p}alpha_prior"] = ap
    _write(saved, meta, arrays)
    _rejected(saved)


def test_negative_probability(saved):
    meta, arrays = _read(saved)
    p = _cpt_prefix(meta, arrays, with_parents=False)
    ap = arrays[f"{p}alpha_prior"].copy()
    ap[1], ap[2] = ap[1] + ap[2] + 0.1, -0.1
    arrays[f"{p}alpha_prior"] = ap
    _write(saved, meta, arrays)
    _rejected(saved)


def test_fine_bin_probabilities_not_summing_to_one(saved):
    meta, arrays = _read(saved)
    names = [k for k in arrays if k.endswith("_fine_logp") and len(arrays[k])]
    assert names, "the fixture should have a binned numeric column"
    arrays[names[0]] = arrays[names[0]] + 0.3
    _write(saved, meta, arrays)
    _rejected(saved)


def test_counts_inconsistent(saved):
    meta, arrays = _read(saved)
    p = _cpt_prefix(meta, arrays, with_parents=True)
    arrays[f"{p}fam_n"] = arrays[f"{p}fam_n"] + 1
    _write(saved, meta, arrays)
    _rejected(saved)


def test_cycle_in_parents(fitted, saved):
    twin, _ = fitted
    meta, arrays = _read(saved)
    assert twin.net.edges, "the fixture should have learned at least one edge"
    parent, child = twin.net.edges[0]
    # add the reverse edge child -> parent: a two-node cycle
    old = arrays[f"n{parent}_parents"]
    arrays[f"n{parent}_parents"] = np.array(sorted(set(old.tolist()) | {child}), dtype=np.int64)
    _write(saved, meta, arrays)
    _rejected(saved)


def test_self_parent_and_out_of_range_parent(saved):
    meta, arrays = _read(saved)
    for bad in (0, 99):
        m, a = dict(meta), dict(arrays)
        a["n0_parents"] = np.array([bad], dtype=np.int64)
        _write(saved, m, a)
        _rejected(saved)


def test_state_count_mismatch(saved):
    meta, arrays = _read(saved)
    arrays["cards"] = arrays["cards"] + 1
    _write(saved, meta, arrays)
    _rejected(saved)


def test_tampered_json_fields(saved):
    meta, arrays = _read(saved)
    cases = []
    m = json.loads(json.dumps(meta))
    m["codecs"][0]["tokens"] = m["codecs"][0]["tokens"] + ["extra"]
    cases.append(m)
    m = json.loads(json.dumps(meta))
    m["schema"][1]["type"] = "quaternion"
    cases.append(m)
    m = json.loads(json.dumps(meta))
    del m["codecs"]
    cases.append(m)
    m = json.loads(json.dumps(meta))
    m["kind"] = "hologram"
    cases.append(m)
    m = json.loads(json.dumps(meta))
    m["codecs"] = m["codecs"][:-1]
    cases.append(m)
    m = json.loads(json.dumps(meta))
    m["ids"] = {}
    cases.append(m)
    for m in cases:
        _write(saved, m, arrays)
        _rejected(saved)


def test_missing_array(saved):
    meta, arrays = _read(saved)
    del arrays["n0_alpha_prior"]
    _write(saved, meta, arrays)
    _rejected(saved)


def test_pickled_object_array_is_never_unpickled(saved, tmp_path):
    meta, arrays = _read(saved)
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (Path.touch, (marker,))

    arrays = dict(arrays)
    arrays["n0_alpha_prior"] = np.array([Boom()], dtype=object)
    _write(saved, meta, arrays, allow_pickle=True)
    _rejected(saved)
    assert not marker.exists()


def test_model_json_not_json(saved):
    meta, arrays = _read(saved)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(saved, "w") as zf:
        zf.writestr("model.json", b"{not json\xff")
        zf.writestr("arrays.npz", buf.getvalue())
    _rejected(saved)


def test_written_files_get_the_usual_permissions(tmp_path):
    """Model files are written via a temporary file, but end with umask-based permissions."""
    import os

    from datatwin.modelfile import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "x.bin", lambda fh: fh.write(b"1"))
    finally:
        os.umask(old)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o644
