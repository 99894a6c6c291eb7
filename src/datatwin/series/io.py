"""Reading series CSVs: the time axis, the numeric columns and their recorded precision.

A series file is a CSV (read by `datatwin.reader`: separator sniffed, .gz, TSV or Parquet too)
or a DataFrame, with an optional time column (dates or numbers, regularly spaced) and
one or more numeric columns. Each column's recorded precision (its number of decimals) is read
from the text of the file, so likelihoods can be computed on the recorded cells (docs/architecture.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..reader import MISSING_MARKERS, read_table

#: column names taken as the time axis when `time` is not given (case-insensitive)
TIME_NAMES = ("time", "date", "datetime", "timestamp", "ds", "period", "year", "t")
#: the fewest steps a series may have
MIN_STEPS = 8


def fixed_step_ns(offset: Any) -> int | None:
    """Nanoseconds of a fixed-length step (hours, minutes, days), None for calendar steps
    (weeks, months). pandas 3 no longer counts a day as a `Tick`; its length still converts."""
    try:
        return int(pd.Timedelta(offset).value)
    except (ValueError, TypeError):
        return None


@dataclass
class TimeAxis:
    """How time runs through a series: none, dates with a pandas frequency, or numbers."""

    column: str | None = None
    kind: str = "none"  # "none" | "datetime" | "numeric"
    freq: str | None = None  # pandas offset alias, datetime only
    step: float = 1.0  # numeric spacing (numeric only)
    decimals: int = 0  # numeric time: decimals to print
    date_only: bool = False  # datetime printed without a clock time
    last: str | None = None  # the last time of the data, as text
    steps_per_day: float | None = None  # datetime only: how many steps make a day
    first: str | None = None  # the first time of the training data (step index 0)
    compact: bool = False  # datetime only: dates written as YYYYMMDD (19580329)

    def to_json(self) -> dict[str, Any]:
        """The axis as JSON-able metadata."""
        return {
            "column": self.column,
            "kind": self.kind,
            "freq": self.freq,
            "step": self.step,
            "decimals": self.decimals,
            "date_only": self.date_only,
            "last": self.last,
            "steps_per_day": self.steps_per_day,
            "first": self.first,
            "compact": self.compact,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TimeAxis:
        """Rebuild an axis written by `to_json`."""
        kwargs: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__ if k in d}
        return cls(**kwargs)

    def index_of(self, when: str) -> int | None:
        """Step index of a time on the training grid (0 = the first training step), if known."""
        if self.first is None or self.kind == "none":
            return None
        try:
            if self.kind == "numeric":
                return int(round((float(when) - float(self.first)) / self.step))
            t, r = pd.Timestamp(when), pd.Timestamp(self.first)
            off = pd.tseries.frequencies.to_offset(self.freq)
            step_ns = fixed_step_ns(off)
            if step_ns:
                return int(round((t - r).value / step_ns))
            months = (t.year - r.year) * 12 + (t.month - r.month)
            name = off.rule_code.upper()  # e.g. "MS", "QE-DEC", "YE-DEC", "W-SUN"
            if name.startswith(("M", "BM", "SM")):
                return months // max(off.n, 1)
            if name.startswith(("Q", "BQ")):
                return months // (3 * max(off.n, 1))
            if name.startswith(("Y", "A", "BY", "BA")):
                return (t.year - r.year) // max(off.n, 1)
        except (ValueError, TypeError, OverflowError):
            return None
        return None

    def following(self, last: str | None, n: int) -> list[str]:
        """Text of the `n` times after `last` (default: the data's last time)."""
        last = self.last if last is None else last
        if self.kind == "none" or last is None:
            return []
        if self.kind == "datetime":
            start = pd.Timestamp(last)
            times = pd.date_range(start=start, periods=n + 1, freq=self.freq)[1:]
            return _datetime_texts(times, self.date_only, self.compact)
        t0 = float(last)
        if self.step > 0:
            k0 = round(t0 / self.step)
            if abs(t0 / self.step - k0) < 1e-6:  # on a grid of multiples of the step
                return [_format_time((k0 + i) * self.step, self.decimals) for i in range(1, n + 1)]
        vals = t0 + self.step * np.arange(1, n + 1)
        return [_format_time(v, self.decimals) for v in vals]


@dataclass
class SeriesData:
    """Numeric columns of a regular series (NaN = missing) with their precision and time."""

    values: np.ndarray  # (n, d) float
    columns: list[str]
    decimals: list[int]
    time: TimeAxis = field(default_factory=TimeAxis)
    times: list[str] | None = None  # text of each step's time, if there is a time column
    filled_gaps: int = 0
    column_order: list[str] = field(default_factory=list)  # original CSV order incl. time


def _datetime_texts(times: pd.DatetimeIndex, date_only: bool, compact: bool) -> list[str]:
    """`times` as "%Y-%m-%d", "%Y-%m-%d %H:%M:%S" or (compact) "%Y%m%d" (numpy's ISO text
    for four-digit years)."""
    plain = times.tz is None and len(times) > 0
    if plain and times.min().year >= 1000 and times.max().year <= 9999:
        iso = np.datetime_as_string(times.values, unit="D" if date_only or compact else "s")
        return np.char.replace(iso, "-" if compact else "T", "" if compact else " ").tolist()
    fmt = "%Y%m%d" if compact else "%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M:%S"
    return [t.strftime(fmt) for t in times]


def _format_time(v: float, decimals: int) -> str:
    """A numeric time without trailing zeros (keeping one decimal): 2013.75, 2014.0."""
    if decimals <= 0:
        return str(int(round(v)))
    text = f"{v:.{decimals}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _snap_step(step: float, decimals: int) -> float:
    """A numeric step made exact when it is 1/k (monthly decimal years) or a round decimal."""
    if step <= 0:
        return step
    k = round(1.0 / step)
    if k >= 1 and abs(1.0 / k - step) <= 1e-7 * step:
        return 1.0 / k
    q = round(step * 10.0**decimals)
    if q >= 1 and abs(q * 10.0 ** (-decimals) - step) <= 1e-7 * step:
        return q * 10.0 ** (-decimals)
    return step


def format_number(v: float, decimals: int) -> str:
    """`v` printed with exactly `decimals` decimals (integers without a point)."""
    if decimals <= 0:
        return str(int(round(v)))
    return f"{v:.{decimals}f}"


def _decimals_of(text: pd.Series) -> int:
    """The recorded precision of a column of numbers written as text.

    Each value's decimals are read from its text ("58.0" has 1); long float-noise renderings
    such as "3.0780282860000003" count as the shortest decimals that give the same number.
    The column's precision is the decimals that 99.5% of its values are written with; the
    rare longer values are scored in the cell containing them, with their digits' own mass
    (`finer.py`).
    """
    s = text.dropna().astype(str).str.strip()
    s = s[~s.str.lower().isin(MISSING)]
    if s.empty:
        return 0
    low = s.str.lower()
    sci = low.str.contains("e", regex=False).to_numpy()
    mant = low.str.partition("e")
    dec = mant[0].str.partition(".")[2].str.len().to_numpy(dtype=np.int64)
    if sci.any():
        exps = pd.to_numeric(mant[2].where(sci, "0"), errors="coerce").fillna(0).to_numpy()
        dec = np.maximum(dec - exps.astype(np.int64), 0)
    long = dec >= 12
    if long.any():
        v = pd.to_numeric(s[long], errors="coerce").to_numpy(dtype=float)
        eff = dec[long].copy()
        for k in range(11, -1, -1):
            ok = np.abs(np.round(v, k) - v) <= 1e-12 * np.maximum(1.0, np.abs(v))
            eff = np.where(ok, k, eff)
        dec = dec.copy()
        dec[long] = eff
    q = int(np.quantile(dec, 0.995, method="higher"))
    return max(0, min(q, 15))


def decimals_from_floats(x: np.ndarray) -> int:
    """Precision of float values (when no text is available): fewest decimals that fit all."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0
    for k in range(0, 13):
        scaled = x * 10.0**k
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return k
    return 12


def _read_text(path: Path) -> pd.DataFrame:
    """A series file (CSV, .gz, TSV, Parquet; separator sniffed) as text columns."""
    raw = read_table(path)
    return pd.DataFrame({c: raw.text(c) for c in raw.columns}, columns=raw.columns, dtype=object)


#: cells read as missing values, compared case-insensitively: the shared markers of every
#: kind, plus a lone dash, which series files have always read as missing
MISSING = frozenset(m.lower() for m in MISSING_MARKERS) | {"-"}


def _numeric(text: pd.Series, name: str, where: str) -> np.ndarray:
    s = text.astype(str).str.strip()
    missing = s.str.lower().isin(MISSING)
    vals = pd.to_numeric(s.where(~missing, None), errors="coerce")
    bad = vals.isna() & ~missing
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{where}: column {name!r} is not numeric ({s.iloc[i]!r} in data row {i + 1}); "
            "series twins model numeric columns: drop it or choose the value columns with `values`"
        )
    out = vals.to_numpy(dtype=float)
    if not np.all(np.isfinite(out[~np.isnan(out)])):
        raise InputError(f"{where}: column {name!r} holds infinite values")
    return out


#: `time=` value for "no time column" (unless a column has that name)
NO_TIME = "none"


def _pick_time(frame: pd.DataFrame, time: str | None, where: str) -> str | None:
    """The time column: `time` if given (NO_TIME: none), else the first with a time name."""
    if time is not None and time.lower() == NO_TIME and time not in frame.columns:
        return None
    if time is not None:
        if time not in frame.columns:
            raise InputError(
                f"{where}: time column {time!r} not found; columns are {', '.join(frame.columns)}"
            )
        return time
    lower = {c.lower().strip(): c for c in frame.columns}
    for name in TIME_NAMES:
        if name in lower:
            return lower[name]
    return None


def _time_axis(text: pd.Series, name: str, where: str, gaps: str) -> tuple[TimeAxis, np.ndarray]:
    """Parse the time column; return the axis and each row's integer step index."""
    s = text.astype(str).str.strip()
    if (s == "").any():
        i = int(np.flatnonzero((s == "").to_numpy())[0])
        raise InputError(f"{where}: time column {name!r} is empty in data row {i + 1}")
    num = pd.to_numeric(s, errors="coerce")
    if num.isna().any():
        return _datetime_axis(s, num, name, where, gaps)
    try:
        return _numeric_axis(s, num.to_numpy(dtype=float), name, where, gaps)
    except InputError:
        if not _yyyymmdd(s):
            raise
    # irregular as numbers, every value a date written as YYYYMMDD (19580329): dates
    axis, steps = _datetime_axis(s, num, name, where, gaps)
    axis.compact = True
    return axis, steps


def _numeric_axis(
    s: pd.Series, t: np.ndarray, name: str, where: str, gaps: str
) -> tuple[TimeAxis, np.ndarray]:
    """A numeric time column (e.g. decimal years): its regular step and each row's index."""
    n = len(s)
    dec = _decimals_of(s)
    if n < 2:
        return TimeAxis(name, "numeric", None, 1.0, dec, False, s.iloc[-1]), np.arange(n)
    d = np.diff(t)
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0])
        raise InputError(
            f"{where}: time column {name!r} is not increasing at data row {i + 2} "
            f"({s.iloc[i]} then {s.iloc[i + 1]}); sort the file by time"
        )
    step = float(np.min(d)) if gaps == "fill" else float(np.median(d))
    tol = max(1e-6 * step, 2.0 * 10.0 ** (-dec))
    k = np.round((t - t[0]) / step)
    if k[-1] > 0:  # refine the step over the whole span (printed times are rounded)
        step = _snap_step(float((t[-1] - t[0]) / k[-1]), dec)
        k = np.round((t - t[0]) / step)
    off = np.abs(t - (t[0] + k * step))
    if np.any(off > tol + 1e-9 * np.abs(t)) or np.any(np.diff(k) <= 0):
        i = int(np.argmax(off))
        raise InputError(
            f"{where}: time column {name!r} is not regularly spaced near data row {i + 1} "
            f"(step {step:g}); resample the series to a regular grid"
        )
    steps = k.astype(np.int64)
    if gaps != "fill" and np.any(np.diff(steps) != 1):
        i = int(np.flatnonzero(np.diff(steps) != 1)[0])
        raise InputError(
            f"{where}: irregular time spacing: a gap of {d[i]:g} after data row {i + 1} "
            f"(usual step {step:g}); pass time_gaps='fill' to model the gap as "
            "missing values, or resample the series"
        )
    if steps[-1] > 0:
        step = float((t[-1] - t[0]) / steps[-1])
    step = _snap_step(step, dec)
    return TimeAxis(name, "numeric", None, step, dec, False, s.iloc[-1]), steps


def _yyyymmdd(s: pd.Series) -> bool:
    """Whether every value is an 8-digit integer that reads as a date (19580329)."""
    eight = bool(s.str.fullmatch(r"\d{8}").all())
    return eight and bool(pd.to_datetime(s, format="%Y%m%d", errors="coerce").notna().all())


def _datetime_axis(
    s: pd.Series, num: pd.Series, name: str, where: str, gaps: str
) -> tuple[TimeAxis, np.ndarray]:
    """A date/time column: its pandas frequency and each row's step index."""
    n = len(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dt = pd.to_datetime(s, errors="raise")
        except (ValueError, TypeError, OverflowError):
            bad = s[num.isna()].iloc[0]
            raise InputError(
                f"{where}: time column {name!r} holds neither numbers nor dates (e.g. {bad!r}); "
                "name the time column with `time`"
            ) from None
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_localize(None)
    idx = pd.DatetimeIndex(dt)
    date_only = bool((s.str.len() <= 10).all())
    if n < 3:  # too few steps to infer a frequency: a continuation or a history
        freq = None
        if n == 2:
            freq = pd.tseries.frequencies.to_offset(dt.iloc[1] - dt.iloc[0]).freqstr
        return TimeAxis(name, "datetime", freq, 1.0, 0, date_only, s.iloc[-1]), np.arange(n)
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        raise InputError(f"{where}: time column {name!r} is not strictly increasing; sort the file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(idx)
    freq = getattr(freq, "freqstr", freq)
    steps = np.arange(n)
    if freq is None:
        d = np.diff(idx.as_unit("ns").asi8)  # asi8 is in the index's own unit
        base = int(np.min(d))
        if gaps == "fill" and base > 0 and np.all(d % base == 0):
            freq = pd.tseries.frequencies.to_offset(pd.Timedelta(base, unit="ns")).freqstr
            steps = np.concatenate([[0], np.cumsum(d // base)])
        else:
            med = int(np.median(d))
            i = int(np.flatnonzero(d != med)[0]) if np.any(d != med) else 0
            raise InputError(
                f"{where}: irregular time spacing in {name!r} after data row {i + 1} "
                f"({s.iloc[i]} then {s.iloc[i + 1]}); pass time_gaps='fill' to model the "
                "missing steps as missing values, or resample the series to a regular grid"
            )
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        per_day = float(pd.Timedelta(days=1) / pd.Timedelta(offset))
    except (ValueError, TypeError):
        per_day = None
    axis = TimeAxis(name, "datetime", offset.freqstr, 1.0, 0, date_only, s.iloc[-1], per_day)
    return axis, steps


def read_series(
    data: str | Path | pd.DataFrame,
    time: str | None = None,
    values: list[str] | None = None,
    gaps: str = "error",
    min_steps: int = MIN_STEPS,
) -> SeriesData:
    """Read a series from a CSV path or a DataFrame, validating everything (InputError)."""
    if isinstance(data, pd.DataFrame):
        where = "data"
        frame = data
        from_text = False
    else:
        path = Path(data)
        where = str(path)
        frame = _read_text(path)
        from_text = True
    if frame.shape[1] == 0 or len(frame) == 0:
        raise InputError(f"{where} is empty; a series needs a header and at least {MIN_STEPS} rows")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    tcol = _pick_time(frame, time, where)
    cols = [c for c in frame.columns if c != tcol] if values is None else list(values)
    for c in cols:
        if c not in frame.columns:
            raise InputError(
                f"{where}: column {c!r} not found; columns are {', '.join(frame.columns)}"
            )
        if c == tcol:
            raise InputError(f"{where}: column {c!r} is the time column; it cannot be a value")
    if not cols:
        raise InputError(f"{where}: no value columns besides the time column {tcol!r}")
    n = len(frame)
    mats = []
    decs = []
    for c in cols:
        col = frame[c]
        if pd.api.types.is_bool_dtype(col) or (
            not from_text and pd.api.types.is_numeric_dtype(col)
        ):
            x = col.to_numpy(dtype=float)
            mats.append(x)
            decs.append(decimals_from_floats(x))
            continue
        text = col.astype(object).where(col.notna(), "").astype(str)
        mats.append(_numeric(text, c, where))
        decs.append(_decimals_of(text))
    vals = np.column_stack(mats) if mats else np.empty((n, 0))
    if n < min_steps:
        raise InputError(f"{where}: too short: {n} steps; a series needs at least {min_steps}")
    axis = TimeAxis()
    times = None
    filled = 0
    if tcol is not None:
        tt = frame[tcol]
        if pd.api.types.is_datetime64_any_dtype(tt):
            tt = tt.dt.strftime("%Y-%m-%d %H:%M:%S")
        try:
            axis, steps = _time_axis(tt.astype(str), tcol, where, gaps)
        except InputError as err:
            if time is not None:
                raise
            raise InputError(  # a guess (by its name): say how to name the right column
                f"{err} (the time column was guessed from its name; name another with --time "
                "COL, or --time none for consecutive steps; time= in Python)"
            ) from None
        times_in = tt.astype(str).str.strip().tolist()
        axis.first = times_in[0]
        if steps[-1] + 1 != n:
            full = np.full((int(steps[-1]) + 1, vals.shape[1]), np.nan)
            full[steps] = vals
            filled = int(steps[-1] + 1 - n)
            vals = full
            first = times_in[0]
            axis_first = TimeAxis(**{**axis.to_json(), "last": first})
            times = [first, *axis_first.following(first, int(steps[-1]))]
        else:
            times = times_in
    if np.all(np.isnan(vals), axis=0).any():
        c = cols[int(np.flatnonzero(np.all(np.isnan(vals), axis=0))[0])]
        raise InputError(f"{where}: column {c!r} has no values")
    return SeriesData(vals, cols, decs, axis, times, filled, list(frame.columns))


def seasonal_period(axis: TimeAxis) -> tuple[int | None, int | None]:
    """(period, long period) in steps suggested by the time spacing, e.g. 48 and 336 half-hourly."""
    if axis.kind == "datetime" and axis.freq:
        per_day = axis.steps_per_day
        if per_day and per_day > 1 and abs(per_day - round(per_day)) < 1e-9:
            p = int(round(per_day))
            return p, 7 * p
        f = axis.freq.upper()
        if f.startswith(("D", "B")) and per_day and abs(per_day - 1) < 1e-9:
            return 7, None
        if f.startswith(("W",)):
            return 52, None
        if f.startswith(("M", "ME", "MS", "BM", "BMS")):
            return 12, None
        if f.startswith(("Q", "BQ")):
            return 4, None
        return None, None
    if axis.kind == "numeric":
        st = axis.step
        for per in (12, 4, 52):
            if st > 0 and math.isclose(st * per, 1.0, rel_tol=1e-4):
                return per, None
    return None, None


def end_axis(sd: SeriesData, n_total: int) -> TimeAxis:
    """The time axis with `last` moved to the end of train (+ holdout file) data."""
    axis = TimeAxis(**sd.time.to_json())
    if axis.kind != "none" and sd.times:
        extra = n_total - len(sd.values)
        if extra > 0:
            axis.last = axis.following(sd.times[-1], extra)[-1]
        else:
            axis.last = sd.times[-1]
    return axis


def check_continues(axis: TimeAxis, hd: SeriesData, what: str) -> None:
    """A one-line error unless `hd` starts where the series on `axis` continues."""
    if axis.kind == "none" or not hd.times:
        return
    exp = axis.following(None, 1)[0]
    ok = (
        pd.Timestamp(hd.times[0]) == pd.Timestamp(exp)
        if axis.kind == "datetime"
        else abs(float(hd.times[0]) - float(exp)) <= max(1e-6 * axis.step, 1e-9)
    )
    if not ok:
        raise InputError(
            f"the {what} file starts at {hd.times[0]} but should continue the series at {exp}"
        )
