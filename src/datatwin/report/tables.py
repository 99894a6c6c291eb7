"""Tables as comparable values: every modelled column parsed once, the same way for all sides.

Real, training and synthetic rows all pass through `read_table` and the twin's schema, so a
number is a float (NaN when missing), a date is a day (or second) count and a category is
its stripped text (None when missing), whichever generator produced the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..reader import RawTable, read_table
from ..tabular.schema import ColumnSpec

NUMERIC = ("integer", "float", "datetime")
MISSING = "(missing)"
OTHER = "(other)"


@dataclass
class Column:
    """One column's parsed values: floats (NaN = missing) when `numeric`, else objects (None =
    missing). Read them through `num` or `cat`, which check the column's kind."""

    name: str
    numeric: bool
    values: np.ndarray

    @property
    def num(self) -> np.ndarray:
        """The float values of a numeric column."""
        if not self.numeric:
            raise TypeError(f"column {self.name!r} is categorical; it has no numeric values")
        return self.values

    @property
    def cat(self) -> np.ndarray:
        """The object values (None = missing) of a categorical column."""
        if self.numeric:
            raise TypeError(f"column {self.name!r} is numeric; it has no categorical values")
        return self.values

    @property
    def missing(self) -> np.ndarray:
        if self.numeric:
            return np.isnan(self.num)
        return pd.isna(pd.Series(self.cat, dtype=object)).to_numpy(bool)

    def take(self, idx: np.ndarray) -> Column:
        return Column(self.name, self.numeric, self.values[idx])

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Frame:
    """Parsed columns of one table (modelled columns only, in schema order)."""

    columns: list[Column]
    n_rows: int
    tokens: pd.DataFrame  # the raw tokens, for showing rows

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def take(self, idx: np.ndarray) -> Frame:
        cols = [c.take(idx) for c in self.columns]
        return Frame(cols, len(idx), self.tokens.iloc[idx].reset_index(drop=True))


def modelled_specs(schema: list[ColumnSpec]) -> list[ColumnSpec]:
    return [s for s in schema if s.type != "id"]


def _parse(spec: ColumnSpec, tokens: np.ndarray) -> Column:
    s = pd.Series(tokens, dtype=object).astype(str).str.strip()
    missing = s.isin(set(spec.missing) | {""}).to_numpy(bool)
    if spec.type in ("integer", "float"):
        vals = pd.to_numeric(s, errors="coerce").to_numpy(float, copy=True)
        vals[missing | ~np.isfinite(vals)] = np.nan
        return Column(spec.name, True, vals)
    if spec.type == "datetime":
        ts = pd.to_datetime(s, format=spec.datetime_format or None, errors="coerce")
        step = 86400 if spec.datetime_unit == "D" else 1
        secs = ts.astype("int64").to_numpy(float) / 1e9
        vals = np.where(ts.isna().to_numpy(bool) | missing, np.nan, secs / step)
        return Column(spec.name, True, vals)
    vals = s.to_numpy(object).copy()
    vals[missing] = None
    return Column(spec.name, False, vals)


def parse(data, schema: list[ColumnSpec], what: str) -> Frame:
    """Read `data` (path, DataFrame, RawTable) and parse the schema's modelled columns."""
    raw = data if isinstance(data, RawTable) else read_table(data)
    specs = modelled_specs(schema)
    missing = [s.name for s in specs if s.name not in raw.cells]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(
            f"{what} ({raw.source}) lacks columns the twin models: {shown}; "
            "give data with the training table's columns"
        )
    if raw.n_rows == 0:
        raise InputError(f"{what} ({raw.source}) has no rows")
    cols = [_parse(s, raw.text(s.name)) for s in specs]
    tokens = pd.DataFrame({s.name: raw.text(s.name) for s in specs}, dtype=object)
    return Frame(cols, raw.n_rows, tokens)


# ---- shared discretisation --------------------------------------------------------------
def bin_edges(real: np.ndarray, bins: int) -> np.ndarray | None:
    """Quantile edges of the real values (None when the column has <= `bins` distinct values)."""
    vals = real[~np.isnan(real)]
    if len(vals) == 0:
        return np.array([0.0])
    uniq = np.unique(vals)
    if len(uniq) <= bins:
        return None
    edges = np.unique(np.quantile(vals, np.linspace(0, 1, bins + 1)[1:-1]))
    return edges


def codes(real: Column, others: list[Column], bins: int = 20) -> list[np.ndarray]:
    """Integer codes of `real` and each of `others` on a grid learned from `real`.

    Numeric: quantile bins (or distinct values when few); categorical: the `bins` most
    frequent real categories, then one code for anything else; missing always has its own
    code. Returns [real_codes, *other_codes], all in 0..K-1 with the same K.
    """
    cols = [real, *others]
    if real.numeric:
        edges = bin_edges(real.num, bins)
        if edges is None:
            uniq = np.unique(real.num[~np.isnan(real.num)])
            out = []
            for c in cols:
                idx = np.searchsorted(uniq, c.num)
                hit = (idx < len(uniq)) & (uniq[np.minimum(idx, len(uniq) - 1)] == c.num)
                k = np.where(hit, idx, len(uniq))  # unseen values: one "other" code
                k = np.where(np.isnan(c.num), len(uniq) + 1, k)
                out.append(k.astype(np.int64))
            return out
        out = []
        for c in cols:
            k = np.searchsorted(edges, c.num, side="right")
            k = np.where(np.isnan(c.num), len(edges) + 1, k)
            out.append(k.astype(np.int64))
        return out
    labels = categories(real, bins)
    lookup = {v: i for i, v in enumerate(labels)}
    n = len(labels)
    out = []
    for c in cols:
        s = pd.Series(c.cat, dtype=object)
        k = s.map(lookup).fillna(n).to_numpy(np.int64, copy=True)
        k[pd.isna(s).to_numpy(bool)] = n + 1
        out.append(k)
    return out


def categories(real: Column, top: int) -> list[str]:
    s = pd.Series(real.cat, dtype=object).dropna()
    return list(s.value_counts(sort=True).index[:top])
