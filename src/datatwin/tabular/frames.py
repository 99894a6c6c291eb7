"""Sampled columns as DataFrames: with the training data's dtypes (`typed_frame`) or as the
exact text tokens a CSV of the data would hold (`token_frame`), and typed frames back to
tokens (`tokens_from_frame`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .codec import ColumnCodec, Decoded, datetime_step
from .ids import IdGenerator
from .schema import ColumnSpec

#: a cell a spreadsheet would run as a formula: = + - @ (or tab / carriage return) first
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(values: np.ndarray) -> np.ndarray:
    """Which cells (text) a spreadsheet would read as a formula (`=HYPERLINK(...)`,
    `@SUM(...)`, `+cmd`, `-2+3`): a leading = + - @, tab or CR, not a plain number and not
    the sign alone."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    hit = np.array([_formula(u) for u in uniq], dtype=bool)
    return hit[codes] if len(uniq) else np.zeros(len(values), bool)


def _formula(v: object) -> bool:
    if not isinstance(v, str) or len(v) < 2 or not v.startswith(_FORMULA_START):
        return False
    try:
        float(v.replace("_", "x"))  # a number, not a formula (no digit separators)
    except ValueError:
        return True
    return False


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with each text cell that looks like a formula prefixed by `'`, which
    spreadsheets show as text instead of running it (numbers and other cells unchanged)."""
    out = {}
    for name in df.columns:
        col = df[name]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
            vals = col.to_numpy(dtype=object, copy=True)
            hit = looks_like_formula(vals)
            if hit.any():
                vals[hit] = np.array(["'" + str(v) for v in vals[hit]], dtype=object)
                col = pd.Series(vals, index=col.index, dtype=col.dtype, name=name)
        out[name] = col
    return pd.DataFrame(out, index=df.index)


def formula_header(names: list[str]) -> list[str]:
    """Column names for a written header, those that look like formulas prefixed by `'`."""
    hit = looks_like_formula(np.array(names, dtype=object))
    return ["'" + n if h else n for n, h in zip(names, hit, strict=True)]


def typed_frame(
    schema: list[ColumnSpec],
    codecs: list[ColumnCodec],
    ids: dict[str, IdGenerator],
    decoded: list[Decoded],
    n: int,
    rng: np.random.Generator,
    offset: int = 0,
) -> pd.DataFrame:
    """The sampled columns (modelled ones `decoded`, identifiers drawn with `rng`, numbered
    from `offset`) with the dtypes the training data had, in the schema's column order."""
    by_name = {c.spec.name: (c, d) for c, d in zip(codecs, decoded, strict=True)}
    out = {}
    for spec in schema:
        if spec.type == "id":
            toks = ids[spec.name].sample(n, rng, offset)
            if ids[spec.name].fits_int64(n, offset) and (
                spec.dtype == "csv" or spec.dtype.startswith(("int", "uint"))
            ):  # integer identifiers keep an integer dtype
                dtype = np.int64 if spec.dtype == "csv" else spec.dtype
                out[spec.name] = pd.Series(toks.astype(np.int64).astype(dtype))
                continue
            out[spec.name] = typed_column(spec, Decoded(toks, np.zeros(n, bool), None))
        else:
            codec, d = by_name[spec.name]
            out[spec.name] = typed_column(spec, d, codec.tokens)
    return pd.DataFrame(out)


def token_frame(
    schema: list[ColumnSpec],
    codecs: list[ColumnCodec],
    ids: dict[str, IdGenerator],
    decoded: list[Decoded],
    n: int,
    rng: np.random.Generator,
    offset: int = 0,
) -> pd.DataFrame:
    """The sampled columns as the text tokens a CSV of the data would hold (identifiers
    numbered from `offset`)."""
    by_name = {c.spec.name: (c, d) for c, d in zip(codecs, decoded, strict=True)}
    out = {}
    for spec in schema:
        if spec.type == "id":
            out[spec.name] = ids[spec.name].sample(n, rng, offset)
        else:
            codec, d = by_name[spec.name]
            out[spec.name] = format_tokens(spec, d, codec)
    return pd.DataFrame(out, dtype=object)


def tokens_from_frame(schema: list[ColumnSpec], df: pd.DataFrame) -> pd.DataFrame:
    """A typed frame (as `typed_frame` makes) written back as CSV tokens."""
    out = {}
    for spec in schema:
        col = df[spec.name]
        if spec.type == "float":
            fmt = f"{{:.{spec.decimals}f}}"
            toks = col.map(lambda v, fmt=fmt: "" if pd.isna(v) else fmt.format(v))
        elif spec.type == "integer":
            toks = col.map(lambda v: "" if pd.isna(v) else str(int(v)))
        elif spec.type == "datetime":
            toks = col.dt.strftime(spec.datetime_format or "%Y-%m-%d").fillna("")
        else:
            toks = col.map(
                lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            )
        out[spec.name] = toks.astype(object)
    return pd.DataFrame(out, dtype=object)


def format_tokens(spec: ColumnSpec, d: Decoded, codec: ColumnCodec) -> np.ndarray:
    """One sampled column as CSV tokens at the column's recorded precision."""
    if not codec.numeric:
        return d.values
    vals = d.values
    ok = ~np.isnan(vals)
    out = np.empty(len(vals), dtype=object)
    if spec.type == "float":
        out[ok] = np.char.mod(f"%.{spec.decimals}f", vals[ok]).astype(object)
    elif spec.type == "integer":
        out[ok] = vals[ok].astype(np.int64).astype(str).astype(object)
    else:
        secs = vals[ok].astype(np.int64) * datetime_step(spec)
        ts = pd.to_datetime(secs, unit="s")
        out[ok] = ts.strftime(spec.datetime_format or "%Y-%m-%d").to_numpy(object)
    if d.tokens is not None:
        has = np.array([t is not None for t in d.tokens])
        out[has] = d.tokens[has]
    return out


def typed_column(spec: ColumnSpec, d: Decoded, token_list: list[str] | None = None) -> pd.Series:
    """A sampled column with the dtype the training data had."""
    values, missing = d.values, d.missing
    if spec.type in ("integer", "float"):
        vals = values.astype(float)
        if (
            spec.type == "integer"
            and not np.isnan(vals).any()
            and (spec.dtype == "csv" or spec.dtype.startswith(("int", "uint")))
        ):
            return pd.Series(vals.astype(np.int64 if spec.dtype == "csv" else spec.dtype))
        if spec.dtype.startswith("Int"):
            return pd.Series(vals).astype(spec.dtype)
        if spec.dtype.startswith("float"):
            return pd.Series(vals.astype(spec.dtype))
        return pd.Series(vals)
    if spec.type == "datetime":
        secs = values.astype(float) * datetime_step(spec)
        out = pd.Series(pd.to_datetime(secs, unit="s", errors="coerce"))
        if not spec.dtype.startswith("datetime64"):
            return out
        dtype = pd.api.types.pandas_dtype(spec.dtype)
        tz = getattr(dtype, "tz", None)
        if tz is not None:  # values are the recorded wall-clock times of that zone
            out = out.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        return out.astype(dtype)
    any_missing = bool(missing.any())
    if spec.type == "boolean" and not any_missing and d.states is not None and token_list:
        lookup = np.array([t.strip().lower() == "true" for t in token_list] + [False])
        return pd.Series(lookup[np.minimum(d.states, len(token_list))])
    vals = values
    if spec.type == "boolean":  # True/False objects, None where missing
        vals = np.array([str(v).strip().lower() == "true" for v in values], dtype=object)
    if any_missing:
        vals = vals.copy()
        vals[missing] = None
    s = pd.Series(vals, dtype=object, copy=False)
    if spec.dtype in ("category", "str", "string"):  # the frame's own string dtypes
        return s.astype(spec.dtype)
    return s
