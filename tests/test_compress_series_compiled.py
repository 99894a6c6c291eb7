"""The compiled series decoder and the portable elementary functions it shares with the encoder.

`_series.c` decodes a series file step by step with the same float operations as the Python
loop (series_steps.py) and fixedmath.py's exp, log and normal CDF: both must give the same
cells from the same file, for every feature of a series twin.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("constriction")

import datatwin  # noqa: E402
from datatwin.coding import fixedmath, series_compiled, series_steps  # noqa: E402

needs_compiled = pytest.mark.skipif(
    not series_compiled.available(1), reason="the optional extension was not built"
)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.int64)


SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, np.nan, 5e-324, 1e-300, 1e300, 700.0,
            709.0, 709.5, -745.0, -746.0, -800.0, 38.9, -38.9, 39.0, -39.0, 37.5, 2.0**-30]  # fmt: skip


def _points(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([
        SPECIALS, rng.normal(0, 3, 20_000), rng.uniform(-45, 45, 20_000),
        rng.uniform(-750, 712, 5_000), np.exp(rng.uniform(-700, 700, 5_000)),
        1 + rng.normal(0, 1e-9, 2_000), np.arange(-40, 41) + 0.0,
    ])  # fmt: skip


@needs_compiled
@pytest.mark.parametrize("name", ["exp", "log", "ndtr", "lower_tail"])
def test_compiled_and_numpy_functions_give_the_same_bits(name: str) -> None:
    x = _points(1)
    if name == "lower_tail":
        x = np.abs(x)
    fast = getattr(fixedmath, name)(x)
    slow = getattr(fixedmath, f"{name}_numpy")(x)
    np.testing.assert_array_equal(_bits(fast), _bits(slow))


def test_the_portable_functions_are_accurate() -> None:
    """A few units in the last place for exp and log; the normal CDF and its lower tail to
    1e-14 within 5 sds and 1e-12 relative out to 37 sds (scipy as reference); the special
    values of the libraries."""
    from scipy.special import ndtr

    rng = np.random.default_rng(2)
    x = rng.uniform(-700, 700, 50_000)
    assert np.max(np.abs(fixedmath.exp_numpy(x) / np.exp(x) - 1)) < 1e-15
    y = np.exp(rng.uniform(-700, 700, 50_000))
    assert np.max(np.abs(fixedmath.log_numpy(y) - np.log(y)) / np.abs(np.log(y))) < 1e-15
    t = rng.uniform(0, 37, 50_000)
    assert np.max(np.abs(fixedmath.lower_tail(t) / ndtr(-t) - 1)) < 1e-12
    u = rng.normal(0, 2, 50_000)
    assert np.max(np.abs(fixedmath.ndtr_numpy(u) - ndtr(u))) < 1e-15
    close = np.abs(u) < 5
    assert (
        np.max(np.abs(fixedmath.lower_tail(np.abs(u[close])) / ndtr(-np.abs(u[close])) - 1)) < 1e-14
    )
    specials = [-np.inf, np.inf, np.nan, 0.0, -40.0, 40.0]
    np.testing.assert_allclose(
        fixedmath.ndtr_numpy(specials), [0, 1, np.nan, 0.5, 0, 1], rtol=3e-16
    )
    np.testing.assert_array_equal(
        fixedmath.exp_numpy([-np.inf, 0, np.nan, 800]), [0, 1, np.nan, np.inf]
    )
    np.testing.assert_array_equal(
        fixedmath.log_numpy([0, -1, 1, np.inf]), [-np.inf, np.nan, 0, np.inf]
    )


def test_the_normal_cdf_is_monotone_across_its_pieces() -> None:
    """Cell masses are CDF differences: the lower tail must not rise anywhere, pieces' joins
    included (a rise would be a negative mass)."""
    joins = [k + np.array([-1e-12, 0.0, 1e-12]) for k in range(1, 39)]
    t = np.sort(np.concatenate([np.linspace(0, 39, 400_001), *joins]))
    tail = fixedmath.lower_tail(t)
    assert np.all(np.diff(tail) <= 0)


# ---------------------------------------------------------------------------------- decoding


def _write(tmp: Path, name: str, lines: list[str]) -> Path:
    path = tmp / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _mixed(n: int) -> list[str]:
    """A level with missing values and a count (bounded below at 0)."""
    rng = np.random.default_rng(0)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.8 * x[t - 1] + rng.normal()
    count = rng.poisson(3.0, n)
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    rows = [
        f"{d:%Y-%m-%d},{'' if t % 37 == 5 else f'{x[t] + 10:.2f}'},{count[t]}"
        for t, d in enumerate(days)
    ]
    return ["time,level,count", *rows]


def _calendar(n: int) -> list[str]:
    rng = np.random.default_rng(3)
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    work = np.where(np.asarray(days.day_of_week) < 5, 3, 1)
    work[::53] = 1
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + 2.0 * work[t] + rng.normal()
    return [
        "time,work,load",
        *(f"{d:%Y-%m-%d},{w},{v + 20:.2f}" for d, w, v in zip(days, work, x, strict=True)),
    ]


def _volatile(n: int) -> list[str]:
    rng = np.random.default_rng(5)
    x, y = np.zeros(n), np.zeros(n)
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + (0.4 + 0.8 * (abs(x[t - 1]) > 1.5)) * rng.normal()
        y[t] = 0.5 * y[t - 1] + 0.6 * x[t] + 0.3 * rng.normal()
    return ["a,b", *(f"{u + 5:.2f},{v + 5:.3f}" for u, v in zip(x, y, strict=True))]


def _positive(n: int) -> list[str]:
    """A positive, skewed level with many decimals (a log or sqrt twin, a mixture)."""
    rng = np.random.default_rng(7)
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.9 * x[t - 1] + rng.standard_t(4) * 0.2
    return ["v", *(f"{np.exp(u) * 3:.6f}" for u in x)]


CASES = {
    "missing+bounded": (_mixed, "ar(2)", 321),
    "calendar": (_calendar, "ar(2)+exog", 701),
    "regime+hetero": (_volatile, "ar(2)+regime+hetero", 701),
    "log+mix": (_positive, "log:ar(3)+mix", 701),
    "sqrt": (_positive, "sqrt:ar(2)", 701),
}


def _odd(lines: list[str], case: str) -> list[str]:
    """The held-out lines with rare values: outside the support, far beyond the window, a
    calendar value not in its set."""
    out = list(lines)
    cells = [r.split(",") for r in out[1:]]
    if case == "missing+bounded":
        cells[3][2], cells[6][1], cells[8][1] = "-4", "9999.99", "-9999.99"
    elif case == "calendar":
        cells[4][1], cells[8][1] = "2", "9"
    elif case == "regime+hetero":
        cells[2][0], cells[5][1] = "500.00", "-77.125"
    else:
        cells[3][0], cells[7][0] = "123456.000001", "0.000001"
    return out[:1] + [",".join(c) for c in cells]


@pytest.fixture(scope="module", params=sorted(CASES))
def coded(request, tmp_path_factory) -> tuple[datatwin.Twin, bytes]:
    make, structure, cut = CASES[request.param]
    lines = make(cut + 120)
    tmp = tmp_path_factory.mktemp("series")
    twin = datatwin.fit(_write(tmp, "train.csv", lines[:cut]), kind="series", seed=0,
                        structures=structure, max_lag=3)  # fmt: skip
    raw = ("\n".join(_odd([lines[0]] + lines[cut:], request.param)) + "\n").encode()
    return twin, raw


@needs_compiled
def test_compiled_and_python_decoders_give_the_same_file(coded, monkeypatch) -> None:
    """The same compressed file decodes to the input with the compiled loop and with the
    Python one, and the compiled loop is the one used by default."""
    twin, raw = coded
    blob = twin.compress(raw)
    calls = []
    real = series_compiled.decode_compiled
    monkeypatch.setattr(series_compiled, "decode_compiled", lambda *a: calls.append(1) or real(*a))
    assert twin.decompress(blob) == raw
    assert calls == [1]
    monkeypatch.setattr(series_steps, "COMPILED", False)
    assert twin.decompress(blob) == raw
    assert calls == [1]


class _Recording:
    """A range decoder that keeps a copy of every row it decodes under: handed with a family,
    or the row a model in `built` (id -> (model, row)) was made from."""

    def __init__(self, coder, rows: list[np.ndarray], built: dict) -> None:
        self.coder, self.rows, self.built = coder, rows, built

    def decode(self, *args):
        if isinstance(args[-1], np.ndarray):
            self.rows.append(np.array(args[-1], dtype=np.float64, copy=True).ravel())
        else:
            self.rows.append(self.built[id(args[0])][1])
        return self.coder.decode(*args)


def _rows_decoded(twin, blob: bytes, monkeypatch, compiled: bool) -> list[np.ndarray]:
    """Every row handed to the range decoder, in order: with a family (the Python loop, the
    rare symbols), or as the compiled loop's `Categorical(row, perfect=False)`."""
    from datatwin.coding import series
    from datatwin.coding.coder import Decoder

    rows: list[np.ndarray] = []
    built: dict = {}  # the models kept alive, so that no id is reused
    model = series_compiled._Categorical

    class Recorded(Decoder):
        def __post_init__(self) -> None:
            super().__post_init__()
            self._coder = _Recording(self._coder, rows, built)

    def recorded_model(row: np.ndarray, lazy, perfect):
        assert lazy is None and perfect is False
        m = model(row, lazy, perfect)
        built[id(m)] = (m, np.array(row, dtype=np.float64, copy=True).ravel())
        return m

    monkeypatch.setattr(series, "Decoder", Recorded)
    monkeypatch.setattr(series_compiled, "_Categorical", recorded_model)
    monkeypatch.setattr(series_steps, "COMPILED", compiled)
    twin.decompress(blob)
    return rows


@needs_compiled
def test_compiled_and_python_decoders_hand_the_coder_the_same_rows(coded, monkeypatch) -> None:
    """Bit for bit: every row (flags, levels, calendar rows, the rare symbols' rows) that the
    compiled loop hands the range decoder equals the Python loop's (a round trip alone would
    not see a difference below the coder's 24-bit quantisation)."""
    twin, raw = coded
    blob = twin.compress(raw)
    fast = _rows_decoded(twin, blob, monkeypatch, compiled=True)
    slow = _rows_decoded(twin, blob, monkeypatch, compiled=False)
    assert len(fast) == len(slow) > len(raw.splitlines())
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b))


@needs_compiled
def test_compiled_and_numpy_level_rows_are_the_same(coded, monkeypatch) -> None:
    """The encoder's rows (`cells.level0` / `level` for many values at once) are the same bits
    from `_series.level_rows` (in blocks on threads) and from numpy: every column of the
    twin, means from the centre to far tails (rows that underflow fall back to uniform),
    scales from tiny to wide, windows and narrower deeper ranges."""
    from datatwin.coding import cells

    twin, _ = coded
    monkeypatch.setenv("DATATWIN_WORKERS", "3")  # the compiled rows in 3 blocks on threads
    monkeypatch.setattr(cells, "_WORK_PER_THREAD", 200)
    rng = np.random.default_rng(11)
    n = 900
    mean = np.concatenate([rng.normal(0, 2, n - 4), [60.0, -60.0, 1e6, np.nan]])
    s = np.concatenate([rng.uniform(1e-3, 3, n - 4), [1.0, 1.0, 1.0, 1.0]])
    for j in range(len(twin.cols.names)):
        col = cells.ColumnCode.of(twin, j)
        klo, khi = col.window(mean, s)
        lo = klo + rng.integers(0, 1 << 20, n) % (khi - klo + 1)
        hi = lo + rng.integers(1, 200, n)
        far = mean + np.where(np.arange(n) % 7 == 0, 1e4, 0.0) * s  # deeper ranges far out
        for fn, e, m in (
            (cells.level0, cells.split_edges(klo, khi), mean),
            (cells.level, cells.split_edges(lo, hi), far),
        ):
            monkeypatch.setattr(cells, "COMPILED", True)
            fast = fn(col, e, m, s)
            monkeypatch.setattr(cells, "COMPILED", False)
            slow = fn(col, e, m, s)
            np.testing.assert_array_equal(_bits(fast), _bits(slow))
            assert np.all(fast.sum(axis=1) > 0)


@needs_compiled
def test_compiled_and_numpy_term_sums_are_the_same(coded, monkeypatch) -> None:
    """The encoder's means (`series_moments._pull`, regime additions included) are the same
    bits from `_series.pull_terms` and from numpy, on the held-out rows and on random ones."""
    from datatwin.coding import series_moments

    twin, _ = coded
    plan = series_steps.make_plan(twin, 300, twin.next_step)
    rng = np.random.default_rng(5)
    Z = np.vstack([plan.Zh, rng.normal(0, 3, (300, len(plan.cols)))])
    mo = plan.moments
    for C, terms in ((mo.C, mo.terms), (mo.Cr, mo.rterms)):
        if C is None or terms is None:
            continue
        monkeypatch.setattr(series_moments, "COMPILED", True)
        fast = series_moments._pull(C, terms, Z, mo.h0)
        monkeypatch.setattr(series_moments, "COMPILED", False)
        slow = series_moments._pull(C, terms, Z, mo.h0)
        assert sum(map(len, terms)) > 0
        np.testing.assert_array_equal(_bits(fast), _bits(slow))


@needs_compiled
@pytest.mark.parametrize(
    "damage",
    ["run too long", "runs overlap", "offsets not consecutive", "offset beyond the rows",
     "runs not from 0", "empty run", "flags"],
)  # fmt: skip
def test_the_compiled_loop_rejects_a_damaged_plan(damage: str, tmp_path: Path) -> None:
    """Every index the loop reads is checked first: a damaged plan is a ValueError, never a
    read outside an array."""
    import dataclasses

    from datatwin.coding.fixedmath import compiled

    train = _write(tmp_path, "train.csv", _mixed(200))
    twin = datatwin.fit(train, kind="series", seed=0, structures="ar(3)")
    cp = series_compiled.compiled_plan(series_steps.make_plan(twin, 10, twin.next_step), 10)
    first = cp.run_start[cp.run_at[0]]
    offs, run_len, run_at, run_start = (
        x.copy() for x in (cp.offs, cp.run_len, cp.run_at, cp.run_start)
    )
    flags: tuple = (None,) * (2 * cp.d)
    if damage == "run too long":
        run_len[-1] += 1
    elif damage == "runs overlap":
        run_start[1] -= 1
    elif damage == "offsets not consecutive":
        offs[first + 1] += 1
    elif damage == "offset beyond the rows":
        offs[first] = (cp.max_lag + 1) * cp.stride
    elif damage == "runs not from 0":
        run_at[0] = 1
    elif damage == "empty run":
        run_len[0] = 0
    else:
        flags = flags[:-1]
    bad = dataclasses.replace(cp, offs=offs, run_len=run_len, run_at=run_at, run_start=run_start)
    with pytest.raises(ValueError, match="series plan|flag model"):
        compiled.decode_steps(bad, None, None, flags, np.zeros(series_compiled.ROW), None)


@needs_compiled
def test_an_error_in_a_block_of_rows_reaches_the_caller(monkeypatch) -> None:
    """The rows' blocks run on threads; an error in any block is raised by the call."""
    from datatwin.coding import cells

    class Broken:  # a column layout of the wrong sizes: level_rows refuses it
        layout = (np.zeros(3), np.zeros(3, np.int64), np.zeros(3))

    monkeypatch.setenv("DATATWIN_WORKERS", "4")
    n = 4 * cells._WORK_PER_THREAD
    with pytest.raises(ValueError, match="wrong size"):
        cells._compiled_rows(Broken(), np.zeros((n, cells.W + 1), np.int64), np.zeros(n),
                             np.ones(n), False)  # fmt: skip


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI checks that the build compiled it")
def test_the_compiled_series_decoder_is_built_in_ci() -> None:
    assert series_compiled.available(1)
