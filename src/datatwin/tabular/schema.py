"""Column types, missing-value markers and recorded precision, inferred from text tokens.

A schema is a list of `ColumnSpec`; users can override any field per column (Python dict or
a JSON file that `datatwin fit --write-schema` writes out for editing).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..reader import MISSING_MARKERS, RawTable, TokenColumn, ValueCounts

if TYPE_CHECKING:
    from .rows import RowSource

TYPES = ("categorical", "boolean", "integer", "float", "datetime", "id")
DEFAULT_MISSING = MISSING_MARKERS
_BOOL = {"true", "false"}
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
)
_INT_RE = r"^[+-]?\d+$"
_MAX_JUNK_SHARE = 0.05
_MAX_JUNK_DISTINCT = 20
#: numbers are modelled on grid steps (value · 10^decimals) held in float64: integers
#: exactly below 2^53, and any grid within int64 (2^63) stays finite in every computation
MAX_GRID = 2.0**63
_MAX_EXACT_INT = 2.0**53
#: most decimals a float column may record (10^decimals stays a finite float)
MAX_DECIMALS = 300


@dataclass
class ColumnSpec:
    """How one column is read, modelled and written back."""

    name: str
    type: str
    missing: list[str] = field(default_factory=list)  # tokens that mean "missing" here
    decimals: int = 0  # recorded precision of float columns
    datetime_format: str = ""  # strftime format of datetime columns
    datetime_unit: str = "D"  # grid step of datetime columns: D, h, min or s
    dtype: str = "csv"  # pandas dtype of the input, for samples ("csv": infer like read_csv)
    note: str = ""
    #: a schema's own `decimals`: numbers are rounded to them. Otherwise (decimals as the
    #: data recorded them) a finer number is not on the grid and is scored as a token.
    rounded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSpec:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        spec = cls(**known)
        if spec.type not in TYPES:
            raise InputError(
                f"column {spec.name!r}: unknown type {spec.type!r}; use one of {TYPES}"
            )
        if not isinstance(spec.rounded, bool):
            raise InputError(f"column {spec.name!r}: rounded must be true or false")
        dec = spec.decimals
        if isinstance(dec, bool) or not isinstance(dec, int) or not 0 <= dec <= MAX_DECIMALS:
            raise InputError(
                f"column {spec.name!r}: decimals must be a whole number from 0 to "
                f"{MAX_DECIMALS}, got {dec!r}"
            )
        return spec


#: `parse_numbers`' results by texts while `parsed_once()` runs
_PARSED: ContextVar[dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] | None] = ContextVar(
    "parsed", default=None
)


@contextmanager
def parsed_once() -> Iterator[None]:
    """Inside the block `parse_numbers` parses the same texts once (a fit trying several
    bins parses a column's texts for each): the same results, kept until the block ends."""
    token = _PARSED.set({})
    try:
        yield
    finally:
        _PARSED.reset(token)


def parse_numbers(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float value (NaN where a text is not a finite number) of each text, and whether it is
    a plain integer. Meant for distinct texts (`TokenColumn.uniques`): each is parsed once
    (and once for the whole block of `parsed_once`)."""
    memo = _PARSED.get()
    if memo is None or len(texts) <= _FEW_DISTINCT:
        return _parse_numbers(texts)
    key = tuple(texts)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = _parse_numbers(texts)
    return hit[0].copy(), hit[1].copy()


def _parse_numbers(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(texts) <= _FEW_DISTINCT:  # wide tables: many short columns, no pandas overhead
        parsed = [_parse_one(str(u)) for u in texts]
        vals = np.array([v for v, _ in parsed], dtype=float).reshape(-1)
        is_int = np.array([i for _, i in parsed], dtype=bool).reshape(-1)
        return vals, is_int
    s = pd.Series(np.asarray(texts, dtype=object), dtype=object).astype(str).str.strip()
    vals = pd.to_numeric(s, errors="coerce").to_numpy(float, copy=True)
    is_int = s.str.match(_INT_RE).fillna(False).to_numpy(bool)
    vals[~np.isfinite(vals)] = np.nan
    return vals, is_int


_FEW_DISTINCT = 64
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_INT = re.compile(_INT_RE, re.ASCII)


def _parse_one(token: str) -> tuple[float, bool]:
    """`parse_numbers` of one text: (value or NaN, is a plain integer)."""
    t = token.strip()
    if not _NUMBER.match(t):
        return math.nan, bool(re.match(_INT_RE, t))
    v = float(t)
    return (v if math.isfinite(v) else math.nan), bool(_INT.match(t))


def recorded_decimals(tokens: np.ndarray) -> int:
    """Decimals recorded in numeric tokens (scientific notation counted exactly)."""
    s = pd.Series(pd.unique(np.asarray(tokens, dtype=object)), dtype=object)
    s = s.astype(str).str.strip().str.lower()
    m = s.str.extract(r"^[+-]?\d*(?:\.(\d*))?(?:e([+-]?\d+))?$")
    frac = m[0].fillna("").str.len().to_numpy(int)
    exp = pd.to_numeric(m[1], errors="coerce").fillna(0).to_numpy(int)
    dec = frac - exp
    return int(max(0, dec.max())) if len(dec) else 0


def _try_datetime(values: np.ndarray) -> tuple[str, str] | None:
    sample = values[: min(len(values), 2000)]
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(pd.Series(sample, dtype=object), format=fmt, errors="coerce")
        if parsed.notna().all():
            full = pd.to_datetime(pd.Series(values, dtype=object), format=fmt, errors="coerce")
            if full.notna().all():
                has_time = (
                    (full.dt.hour != 0).any()
                    or (full.dt.minute != 0).any()
                    or (full.dt.second != 0).any()
                )
                if not has_time and "%H" not in fmt:
                    return fmt, "D"
                return fmt, ("s" if "%S" in fmt else "min")  # the precision the format records
    return None


def infer_column(
    name: str,
    cells: TokenColumn | ValueCounts | np.ndarray,
    dtype: str = "csv",
    override: dict[str, Any] | None = None,
) -> ColumnSpec:
    """Infer one column's spec from its distinct texts and their counts (`ValueCounts`, the
    column's sufficient statistic); `override` fields win over inference."""
    vc = cells if isinstance(cells, ValueCounts) else TokenColumn.of(cells).value_counts()
    override = dict(override or {})
    missing = override.get("missing")
    if missing is None:
        present = set(vc.values)
        missing = [m for m in DEFAULT_MISSING if m in present]
    missing_set = set(missing)
    is_missing = np.array([u in missing_set for u in vc.values], dtype=bool).reshape(-1)
    uniq, counts = vc.values[~is_missing], vc.counts[~is_missing]
    spec = ColumnSpec(name=name, type="categorical", missing=list(missing), dtype=dtype)
    forced = override.get("type")
    if forced is not None and forced not in TYPES:
        raise InputError(f"column {name!r}: unknown type {forced!r}; use one of {', '.join(TYPES)}")
    if len(uniq) == 0:
        spec.note = "all values missing: modelled as a constant missing column"
        if forced:
            spec.type = forced
    else:
        spec.type = forced or _guess_type(uniq, counts, dtype)
        if spec.type in ("integer", "float"):
            _numeric_spec(spec, uniq, counts, forced, override)
        elif spec.type == "datetime":
            set_date_format(spec, _try_datetime(uniq.astype(str)), override)
        elif spec.type == "id":
            spec.note = "identifier (unique per row): regenerated in samples, not in the likelihood"
        rows = vc.n_rows
        if (
            not forced
            and spec.type in ("categorical", "integer")
            and len(uniq) == rows
            and rows >= (20 if spec.type == "categorical" else 50)
            and not is_missing.any()
        ):
            spec.type = "id"
            spec.note = "identifier (unique per row): regenerated in samples, not in the likelihood"
    for key in ("decimals", "datetime_format", "datetime_unit", "note"):
        if key in override:
            setattr(spec, key, override[key])
    return spec


def _numeric_spec(
    spec: ColumnSpec,
    uniq: np.ndarray,
    counts: np.ndarray,
    forced: str | None,
    override: dict[str, Any],
) -> None:
    """Settle an integer or float column (given its distinct non-missing texts and counts):
    float if any number is not a plain integer, its recorded decimals, a note on junk."""
    vals, is_int = parse_numbers(uniq)
    ok = ~np.isnan(vals)
    if spec.type == "integer" and not (is_int | ~ok).all():
        spec.type = "float"
    if not ok.any():
        raise InputError(f"column {spec.name!r} was declared {spec.type} but holds no numbers")
    if spec.type == "float":
        spec.decimals = int(override.get("decimals", recorded_decimals(uniq[ok])))
        spec.rounded = "decimals" in override
    if not ok.all() and not forced:
        spec.note = f"{int(counts[~ok].sum())} non-numeric tokens kept as their own values"
    _check_grid(spec, float(np.nanmax(np.abs(vals))), forced, override)


def grid_fits(maxabs: float, decimals: int, limit: float = MAX_GRID) -> bool:
    """Whether numbers up to `maxabs` recorded to `decimals` stay within `limit` grid steps."""
    if decimals > MAX_DECIMALS:
        return False
    return maxabs == 0 or math.log10(maxabs) + decimals < math.log10(limit)


def set_date_format(
    spec: ColumnSpec, found: tuple[str, str] | None, override: dict[str, Any]
) -> None:
    """The date format found for a datetime column (`found`: format and unit), or the one the
    schema gives; neither is one line naming the column and the fix."""
    if found is None and "datetime_format" not in override:
        raise InputError(
            f"column {spec.name!r}: cannot parse as dates; give datetime_format "
            "in the schema or make it categorical"
        )
    if found:
        spec.datetime_format, spec.datetime_unit = found


def _check_grid(
    spec: ColumnSpec, maxabs: float, forced: str | None, override: dict[str, Any]
) -> None:
    """A numeric column whose values cannot all be exact grid steps (1e308 next to 1e-320,
    integers beyond 2^53) keeps its exact tokens as categories; if the schema asked for the
    numeric type or the decimals, that is a one-line error naming the fix."""
    decimals = int(override.get("decimals", spec.decimals)) if spec.type == "float" else 0
    if grid_fits(maxabs, decimals, MAX_GRID if spec.type == "float" else _MAX_EXACT_INT):
        return
    if forced or (spec.type == "float" and "decimals" in override):
        raise InputError(
            f"column {spec.name!r}: {spec.type} values up to {maxabs:g} recorded to {decimals} "
            f"decimals exceed the numeric grid (2^63 steps, 2^53 for integers, at most "
            f"{MAX_DECIMALS} decimals); give fewer decimals in the schema or the type categorical"
        )
    spec.type, spec.decimals = "categorical", 0  # beyond exact float arithmetic: keep the digits
    spec.note = (
        f"numbers too large or too precise to model exactly (up to {maxabs:g}, "
        f"{decimals} decimals): kept as exact tokens"
    )


def _guess_type(uniq: np.ndarray, counts: np.ndarray, dtype: str) -> str:
    """The type of a column from its distinct non-missing texts (in order of first
    appearance) and how many cells hold each."""
    if dtype.startswith("bool"):
        return "boolean"
    if dtype.startswith("datetime"):
        return "datetime"
    low = {str(u).strip().lower() for u in uniq[:3]}
    if len(uniq) <= 2 and low <= _BOOL and {str(u).strip().lower() for u in uniq} <= _BOOL:
        return "boolean"
    vals, is_int = parse_numbers(uniq)
    ok = ~np.isnan(vals)
    n_bad = int((~ok).sum())
    if ok.any() and n_bad <= _MAX_JUNK_DISTINCT:
        rows, bad_rows = int(counts.sum()), int(counts[~ok].sum())
        padded = pd.Series(uniq[ok], dtype=object).astype(str).str.match(r"^\s*[+-]?0\d")
        if bad_rows <= _MAX_JUNK_SHARE * rows and not padded.any():
            return "integer" if is_int[ok].all() else "float"  # (zero-padded: codes, not counts)
    if (
        n_bad
        and re.match(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", str(uniq[0]))
        and _try_datetime(uniq.astype(str)) is not None
    ):
        return "datetime"
    return "categorical"


def infer_schema(
    raw: RawTable | RowSource, overrides: dict[str, dict[str, Any]] | None = None
) -> list[ColumnSpec]:
    """One spec per column of `raw` (from its value counts), applying user `overrides`
    ({column: {field: value}})."""
    overrides = overrides or {}
    for name, ov in overrides.items():
        _check_override(name, ov)
    unknown = set(overrides) - set(raw.columns)
    if unknown:
        raise InputError(f"schema names columns not in the data: {sorted(unknown)}")
    from . import bounded  # the sketched columns' rules build on this module's
    from .summary import column_summary

    specs = []
    for c in raw.columns:
        summary = column_summary(raw, c)
        dtype, override = raw.dtypes.get(c, "csv"), overrides.get(c)
        if isinstance(summary, ValueCounts):
            specs.append(infer_column(c, summary, dtype, override))
        else:  # too many distinct values to count each: a bounded summary (stated)
            specs.append(bounded.infer(c, summary, dtype, dict(override or {})))
    return specs


def load_schema_overrides(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a schema JSON ({"columns": [{"name":..., "type":..., ...}]} or {name: {...}})."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"schema file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"schema file {path} is not valid JSON ({exc})") from None
    cols = doc.get("columns", doc) if isinstance(doc, dict) else doc
    if isinstance(cols, list):
        if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in cols):
            raise InputError(
                f'schema file {path}: every column entry needs a "name" (a JSON object)'
            )
        return {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in cols}
    if isinstance(cols, dict) and all(isinstance(v, dict) for v in cols.values()):
        return cols
    raise InputError(f"schema file {path}: expected a list of columns")


def _check_override(name: str, ov: Any) -> None:
    """Reject override fields of the wrong type with a one-line error."""
    if not isinstance(ov, dict):
        raise InputError(f"schema for column {name!r} must be an object of fields")
    missing = ov.get("missing")
    if missing is not None and not (
        isinstance(missing, list) and all(isinstance(m, str) for m in missing)
    ):
        raise InputError(f"schema for column {name!r}: missing must be a list of strings")
    dec = ov.get("decimals")
    if dec is not None and not (isinstance(dec, int) and not isinstance(dec, bool) and dec >= 0):
        raise InputError(f"schema for column {name!r}: decimals must be a whole number >= 0")
    for key in ("type", "datetime_format", "note"):
        if key in ov and not isinstance(ov[key], str):
            raise InputError(f"schema for column {name!r}: {key} must be a string")
    if ov.get("datetime_unit", "D") not in ("D", "h", "min", "s"):
        raise InputError(f"schema for column {name!r}: datetime_unit must be D, h, min or s")


def schema_json(specs: list[ColumnSpec]) -> str:
    """The schema as editable JSON text."""
    return json.dumps({"columns": [s.to_dict() for s in specs]}, indent=2, ensure_ascii=False)
