"""Series values with more decimals than their column's grid: scored exactly, coded, restored."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import datatwin
from datatwin.coding.api import compress_report
from datatwin.series.finer import _rank, adjust, find_finer, point, text_of


def test_each_cells_points_are_ranked_one_to_one():
    for d in (1, 2, 3):
        for k in (-12, -1, 0, 1, 7):
            start = k * 10**d - 5 * 10 ** (d - 1)
            pts = [f for f in range(start, start + 10**d) if f % 10]
            assert len(pts) == 9 * 10 ** (d - 1)
            assert [_rank(f, k, d) for f in pts] == list(range(len(pts)))
            assert [point(k, d, i) for i in range(len(pts))] == pts


def test_a_cells_points_share_its_mass():
    """On a one-decimal grid: the cell's own value gets 1 - φ, and all values with one or two
    more decimals in the cell get φ (1/2 + 1/4), cells being half-open [k - ½, k + ½)."""
    phi = 0.03
    for k in (-4, 0, 183):
        fine = np.arange(k * 100 - 50, k * 100 + 50) / 1000.0  # 3 decimals, cell k of 0.1
        adj, fin = adjust(fine, 1, phi)
        assert set(fin.cell.tolist()) == {k}
        assert len(fin.where) == 99  # all but the grid value itself
        assert float(np.exp(adj).sum()) == pytest.approx(1 - phi + phi * 0.75, rel=1e-12)


def test_float_noise_is_on_the_grid_and_digits_round_trip():
    x = np.array([18.200000000000003, 16.7333333333333, 18.25, -0.05, -0.04, 3.0, np.nan])
    fin = find_finer(x, 1)
    assert fin.where.tolist() == [1, 2, 3, 4]
    assert fin.extra.tolist() == [12, 1, 1, 1]
    assert fin.cell.tolist() == [167, 183, 0, 0]  # 18.25 opens cell 183: [18.25, 18.35)
    parts = zip(fin.cell.tolist(), fin.extra.tolist(), fin.index.tolist(), strict=True)
    texts = [text_of(k, d, i, 1) for k, d, i in parts]
    assert texts == ["16.7333333333333", "18.25", "-0.05", "-0.04"]
    # a float's shortest repr (0.3333333333333333) sets the digits; past MAX_EXTRA, rounded
    assert find_finer(np.array([1.0 / 3.0]), 0).extra.tolist() == [16]
    (k,) = find_finer(np.array([1.0 / 3.0]), 0).cell
    assert k == 0
    tiny = find_finer(np.array([1.23e-30]), 0)
    assert tiny.extra.tolist() == [] and len(tiny.where) == 0  # rounds to 0 at MAX_EXTRA


def _lines(n: int, finer_every: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + rng.normal()
    out = ["t,y"]
    for t in range(n):
        v = f"{x[t] * 3 + 20:.1f}"
        if finer_every and t % finer_every == 3:
            v = f"{x[t] * 3 + 20:.{2 + t % 5}f}".rstrip("0")
        out.append(f"{t},{v}")
    return out


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> datatwin.Twin:
    path = tmp_path_factory.mktemp("finer") / "train.csv"
    path.write_text("\n".join(_lines(600, 300)) + "\n")
    return datatwin.fit(path, kind="series", seed=0, structures="ar(1)")


def test_the_finer_mass_is_learned_and_a_finer_value_pays_for_its_digits(twin, tmp_path: Path):
    assert twin.cols.decimals == [1]
    assert twin.cols.finer[0] == pytest.approx((2 + 0.5) / (600 + 1))
    base = "\n".join(_lines(700, 0)[:601]) + "\n"
    on = tmp_path / "on.csv"
    on.write_text(base + "600,20.4\n")
    off = tmp_path / "off.csv"
    off.write_text(base + "600,20.437\n")  # two more decimals, in the cell of 20.4
    lp_on = twin.log_prob(on)[-1]
    lp_off = twin.log_prob(off)[-1]
    phi = twin.cols.finer[0]
    expected = math.log(phi / (1 - phi)) + math.log(0.25) - math.log(90)
    assert lp_off - lp_on == pytest.approx(expected, abs=1e-9)


def test_finer_values_compress_at_the_twins_bits_and_round_trip(twin, tmp_path: Path):
    lines = _lines(900, 7, seed=1)
    raw = ("\n".join([lines[0], *lines[601:]]) + "\n").encode()
    path = tmp_path / "h.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(twin.log_prob(path))) / math.log(2)
    blob, report = compress_report(twin, raw)
    assert twin.decompress(blob) == raw
    finer = [c for c in (line.split(",")[1] for line in lines[601:]) if len(c.split(".")[1]) > 1]
    assert report["finer_values"] == len(finer) > 30
    assert report["exceptions"] == 0  # each finer value is restored from its coded digits
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] * 8 <= predicted * 1.005 + 64


def test_a_model_file_without_the_finer_mass_loads_with_half_the_escape(twin, tmp_path: Path):
    from datatwin.errors import ModelFileError
    from datatwin.modelfile import load_archive, save_archive

    twin.save(tmp_path / "m.twin")
    meta, arrays = load_archive(tmp_path / "m.twin")
    assert meta["finer"] == twin.cols.finer
    old = {k: v for k, v in meta.items() if k != "finer"}
    save_archive(tmp_path / "old.twin", old, arrays)
    loaded = datatwin.load(tmp_path / "old.twin")
    assert loaded.cols.finer == [0.5 * e for e in twin.cols.escape]
    save_archive(tmp_path / "bad.twin", {**meta, "finer": [1.5]}, arrays)
    with pytest.raises(ModelFileError, match="finer"):
        datatwin.load(tmp_path / "bad.twin")
