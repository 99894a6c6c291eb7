"""Lossless series compression: step by step under the twin's one-step predictive."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("constriction")

import datatwin  # noqa: E402
from datatwin.coding import CompressedFileError  # noqa: E402
from datatwin.coding.api import compress_report, decompress  # noqa: E402


def _coded(twin, lines: list[str], tmp_path: Path) -> tuple[bytes, dict, float]:
    """The held-out `lines` as a file: its bytes, the compression report (after checking
    the round trip is exact) and the twin's own bits for it."""
    raw = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "h.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(twin.log_prob(path))) / math.log(2)
    blob, report = compress_report(twin, raw)
    assert twin.decompress(blob) == raw
    return raw, report, predicted


def _series(n: int, seed: int, missing: bool = True) -> list[str]:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.8 * x[t - 1] + rng.normal()
    count = rng.poisson(3.0, n)
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range("2020-01-01", periods=n, freq="D")]
    lines = ["time,level,count"]
    for t in range(n):
        level = f"{x[t] + 10:.2f}"
        if missing and t % 37 == 5:
            level = ""
        lines.append(f"{days[t]},{level},{count[t]}")
    return lines


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> datatwin.Twin:
    path = tmp_path_factory.mktemp("series") / "train.csv"
    lines = _series(400, 0)
    path.write_text("\n".join(lines[:321]) + "\n")
    return datatwin.fit(path, kind="series", seed=0, structures="ar(2)")


def _holdout(tail: str = "\n") -> bytes:
    lines = _series(400, 0)
    return ("\n".join([lines[0]] + lines[321:]) + tail).encode()


def test_round_trip_and_payload(twin: datatwin.Twin, tmp_path: Path) -> None:
    raw = _holdout()
    path = tmp_path / "h.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(twin.log_prob(path))) / math.log(2) / 8
    blob, report = compress_report(twin, raw)
    assert twin.decompress(blob) == raw
    assert report["sizes"]["payload"] <= predicted * 1.005 + 8
    assert report["model_bits"] / 8 == pytest.approx(predicted, rel=1e-3)


@pytest.mark.parametrize(
    "edit",
    ["crlf", "no final newline", "outside support", "odd number", "bom"],
)
def test_awkward_series_round_trip(twin: datatwin.Twin, edit: str) -> None:
    raw = _holdout()
    if edit == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    elif edit == "no final newline":
        raw = raw.rstrip(b"\n")
    elif edit == "outside support":
        raw = raw.replace(b",3\n", b",-4\n", 2)  # counts are >= 0 in training
    elif edit == "odd number":
        raw = raw.replace(b"10.", b"1e1+", 1).replace(b",2\n", b",2.0\n", 1)
    elif edit == "bom":
        raw = b"\xef\xbb\xbf" + raw
    try:
        blob = twin.compress(raw)
    except datatwin.InputError:
        pytest.skip("the twin refuses this variant")
    assert twin.decompress(blob) == raw
    assert decompress(twin.compress(raw, embed_model=True)) == raw


def test_damage_is_a_one_line_error(twin: datatwin.Twin) -> None:
    blob = twin.compress(_holdout())
    for cut in (10, len(blob) - 2):
        with pytest.raises(CompressedFileError):
            decompress(blob[:cut], twin)
    bad = bytearray(blob)
    bad[-10] ^= 4
    with pytest.raises(CompressedFileError):
        decompress(bytes(bad), twin)


def _calendar_series(n: int) -> list[str]:
    rng = np.random.default_rng(3)
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    work = np.where(np.asarray(days.day_of_week) < 5, 3, 1)  # 3 on work days
    work[::53] = 1  # a few holidays
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + 2.0 * work[t] + rng.normal()
    rows = [f"{d:%Y-%m-%d},{w},{v + 20:.2f}" for d, w, v in zip(days, work, x, strict=True)]
    return ["time,work,load", *rows]


def test_calendar_columns_are_coded_as_the_twin_scores_them(tmp_path: Path) -> None:
    """An `exog` twin draws its work-day column from the calendar: the coder uses that model
    (values by weekday and persistence, the N(0, 1) cells apart), so the model bits equal
    log_prob; a value inside the support but not in the calendar's set, and one outside the
    support, round trip."""
    lines = _calendar_series(900)
    train = tmp_path / "train.csv"
    train.write_text("\n".join(lines[:701]) + "\n")
    twin = datatwin.fit(train, kind="series", seed=0, structures="ar(2)+exog")
    assert twin.model.calendar is not None
    raw, report, predicted = _coded(twin, [lines[0]] + lines[701:], tmp_path)
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] <= predicted / 8 * 1.005 + 8
    rows = raw.decode().split("\n")
    for i, value in ((5, "2"), (9, "9")):  # not in {1, 3}: inside, then beyond the support
        t, _, load = rows[i].split(",")
        rows[i] = f"{t},{value},{load}"
    odd = "\n".join(rows).encode()
    assert twin.decompress(twin.compress(odd)) == odd


@pytest.mark.parametrize("structure", ["ar(1)+hetero", "ar(2)+regime", "ar(2)+regime+hetero"])
def test_volatility_and_regime_twins_are_coded_at_their_own_bits(tmp_path: Path, structure):
    """`hetero` scales and `regime` means are the model's own (series_moments.py: all steps at
    once when encoding, step by step when decoding): the coded bits are the twin's log_prob."""
    rng = np.random.default_rng(3)
    n, x, vol = 1200, np.zeros(1200), np.ones(1200)
    for t in range(1, n):
        vol[t] = 0.3 + 0.6 * vol[t - 1] * (abs(x[t - 1]) > 1) + 0.2 * (t % 50 > 40)
        x[t] = 0.6 * x[t - 1] + vol[t] * rng.standard_t(5)
    lines = ["value", *(f"{v:.3f}" for v in x)]
    train = tmp_path / "train.csv"
    train.write_text("\n".join(lines[:1001]) + "\n")
    twin = datatwin.fit(train, kind="series", seed=0, structures=structure, max_lag=4)
    assert structure.split("+")[1] in twin.structure
    _, report, predicted = _coded(twin, [lines[0]] + lines[1001:], tmp_path)
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-6)


def test_moments_are_the_same_in_both_directions(tmp_path: Path) -> None:
    """The encoder's all-at-once means and scales equal, bit for bit, the decoder's step-by-step
    ones (Stepper fed the same values), and the model's `means_and_scales` to rounding, for a
    two-column twin with a chain, a regime and a volatility scale."""
    from datatwin.coding.series_moments import Stepper, encode_moments
    from datatwin.coding.series_steps import make_plan
    from datatwin.series.ar import forward_fill

    rng = np.random.default_rng(5)
    n, x, y = 900, np.zeros(900), np.zeros(900)
    for t in range(1, n):
        scale = 0.4 + 0.8 * (abs(x[t - 1]) > 1.5)
        x[t] = 0.7 * x[t - 1] + scale * rng.normal()
        y[t] = 0.5 * y[t - 1] + 0.6 * x[t] + (0.3 if x[t - 1] > x[t - 2] else -0.2) * rng.normal()
    lines = ["a,b", *(f"{u + 5:.2f},{v + 5:.2f}" for u, v in zip(x, y, strict=True))]
    train = tmp_path / "train.csv"
    train.write_text("\n".join(lines[:701]) + "\n")
    twin = datatwin.fit(train, kind="series", seed=0, structures="ar(2)+regime+hetero", max_lag=3)
    model = twin.model
    assert model.regime is not None and model.hetero is not None
    k = 200
    plan = make_plan(twin, k, 700)
    Zd = np.column_stack(
        [
            plan.cols[j].z_of(np.round((np.c_[x, y][700:, j] + 5) / 0.01).astype(np.int64))
            for j in range(2)
        ]
    )
    Z = forward_fill(np.vstack([plan.Zh, Zd]))
    M, S = encode_moments(plan.moments, Z)
    st = Stepper(plan.moments, plan.Zh, k)
    Md, Sd = np.zeros((k, 2)), np.zeros((k, 2))
    for t in range(k):
        st.begin()
        for j in plan.order:
            Md[t, j], Sd[t, j] = st.moment(j)
            st.mean[j] = Md[t, j]
            st.push(j, float(Z[plan.m + t, j]))
        st.end()
    np.testing.assert_array_equal(M, Md)
    np.testing.assert_array_equal(S, Sd)
    rows = plan.m + np.arange(k)
    Mm, Sm = model.means_and_scales(Z, rows, rows - plan.m + 700)
    assert Sm is not None and not np.allclose(Sm, 1.0)
    np.testing.assert_allclose(M, Mm, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, Sm, rtol=1e-12)


def test_cells_are_rendered_alike_one_by_one_and_together() -> None:
    """`_render_many` (numpy's string functions) writes every cell as `_render` does, for every
    number of decimals and style, negative values, zero and the largest cells."""
    from datatwin.coding.series import _render, _render_many
    from datatwin.coding.values import FIXED, TRIM_ALL, TRIM_ONE

    rng = np.random.default_rng(0)
    k = np.concatenate(
        [rng.integers(-(10**12), 10**12, 3000), np.arange(-1100, 1100), [2**62 - 1, -(2**62 - 1)]]
    )
    for dec in range(-2, 19):
        for style in (FIXED, TRIM_ONE, TRIM_ALL):
            assert _render_many(k, dec, style) == [_render(int(v), dec, style) for v in k]
