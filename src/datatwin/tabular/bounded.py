"""Specs, codecs and identifier generators of columns summarised by a sketch (too many
distinct values to count each: `sketch.py`, `tally.py`). The fallback is stated: each such
column's spec carries a note (printed at fit time, saved in the model) and its codec is
marked `bounded` in the model file.

The model stays an exact probability of the values as recorded, as for every column:
P(value) = P(state) · P(value | state), where
- numeric: the states are the token texts, the atoms (grid values in at least 1 % of the
  numeric rows, chosen among the heavy candidates by exact count) and quantile bins whose
  edges are left edges of micro bins (split at the grid values of the hashed sample).
  P(fine bin | bin) = (n_fine + ½) / (n_bin + ½ · fine bins) from exact counts, and
  P(value | fine bin) = 1 / (grid points of the fine bin that are not atoms): each sums to
  one over its support, so the product does over every grid value of the bins;
- categorical: the missing markers and the values in at least 1 in `HEAVY_ONE_IN` rows (exact
  counts, at least `min_count`, at most `max_categories` of them) are their own states; every
  other value is the rare state, spelled by a character model fit on the hashed sample of
  distinct values (a normalised distribution over all strings), so an unseen value has a
  finite probability too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..reader import MISSING_MARKERS, ValueCounts
from .codec import ColumnCodec, bin_edges, sorted_counts
from .ids import IdGenerator
from .schema import _DATE_FORMATS, TYPES, ColumnSpec, _check_grid, set_date_format
from .sketch import DATE_START, Bounds, ColumnSketch
from .spelling import SpellingModel
from .tally import Tally, TallyPlan, grids_of

_MAX_JUNK_SHARE = 0.05
_MAX_JUNK_DISTINCT = 20
_ATOMS = 20  # the exact codec's `_MAX_VALUE_ATOMS`
_ID_NOTE = "identifier (unique per row): regenerated in samples, not in the likelihood"


def note(spec: ColumnSpec, sketch: ColumnSketch) -> str:
    """The statement of the fallback for a column's spec."""
    k, one_in = len(sketch.sample.texts), Bounds.current().heavy_one_in
    head = f"too many distinct values to count each: bounded summary ({k:,} sampled by hash"
    if spec.type in ("integer", "float", "datetime"):
        return f"{head}; bins from them, every count exact)"
    if spec.type == "id":
        return f"{head}; an identifier as every sampled value occurs once)"
    return f"{head}; values in fewer than 1 in {one_in:,} rows are spelled)"


# ---- the spec -----------------------------------------------------------------------------
def infer(name: str, sketch: ColumnSketch, dtype: str, override: dict[str, Any]) -> ColumnSpec:
    """`schema.infer_column` from a sketch: the same rules on the facts it keeps, except an
    identifier (every value distinct) is recognised by every sampled value occurring once."""
    facts = sketch.facts
    missing = override.get("missing")
    if missing is None:
        present = set(facts.markers.values)
        missing = [m for m in MISSING_MARKERS if m in present]
    spec = ColumnSpec(name=name, type="categorical", missing=list(missing), dtype=dtype)
    forced = override.get("type")
    if forced is not None and forced not in TYPES:
        raise InputError(f"column {name!r}: unknown type {forced!r}; use one of {', '.join(TYPES)}")
    spec.type = forced or _guess_type(sketch, set(missing), dtype)
    if spec.type in ("integer", "float"):
        _numeric_spec(spec, sketch, forced, override)
    elif spec.type == "datetime":
        set_date_format(spec, _date_format(sketch), override)
    has_missing = any(m in set(facts.markers.values) for m in missing)
    if (
        not forced
        and spec.type in ("categorical", "integer")
        and bool(np.all(sketch.sample.counts == 1))
        and not has_missing
    ):
        spec.type = "id"
    for key in ("decimals", "datetime_format", "datetime_unit"):
        if key in override:
            setattr(spec, key, override[key])
    stated = note(spec, sketch)
    spec.note = override.get("note", f"{_ID_NOTE}; {stated}" if spec.type == "id" else stated)
    return spec


def _guess_type(sketch: ColumnSketch, missing: set[str], dtype: str) -> str:
    """`schema._guess_type` on the facts (a sketched column has far more than two values)."""
    if dtype.startswith("bool"):
        return "boolean"
    if dtype.startswith("datetime"):
        return "datetime"
    facts = sketch.facts
    non = facts.nonnumeric
    if facts.any_numeric and non is not None:
        bad = ~np.isin(non.values, list(missing))
        rows = sketch.n_rows - int(non.counts[~bad].sum())
        if (
            int(bad.sum()) <= _MAX_JUNK_DISTINCT
            and int(non.counts[bad].sum()) <= _MAX_JUNK_SHARE * rows
            and not facts.padded
        ):
            return "integer" if facts.all_int else "float"
    first = next((t for t in facts.first if t not in missing), "")
    if (non is None or len(non.values)) and DATE_START.match(first) and _date_format(sketch):
        return "datetime"
    return "categorical"


def _date_format(sketch: ColumnSketch) -> tuple[str, str] | None:
    for fmt, (parses, timed) in zip(_DATE_FORMATS, sketch.facts.dates, strict=True):
        if parses:
            if not timed and "%H" not in fmt:
                return fmt, "D"
            return fmt, ("s" if "%S" in fmt else "min")
    return None


def _numeric_spec(
    spec: ColumnSpec, sketch: ColumnSketch, forced: str | None, override: dict[str, Any]
) -> None:
    facts = sketch.facts
    if spec.type == "integer" and not facts.all_int:
        spec.type = "float"
    if not facts.any_numeric:
        raise InputError(f"column {spec.name!r} was declared {spec.type} but holds no numbers")
    if spec.type == "float":
        spec.decimals = int(override.get("decimals", facts.decimals))
    _check_grid(spec, facts.maxabs, forced, override)


# ---- codecs -------------------------------------------------------------------------------
def fit_codec(
    plan: TallyPlan,
    tally: Tally,
    sketch: ColumnSketch,
    bins: int,
    max_categories: int,
    min_count: int,
) -> ColumnCodec:
    """The codec of a sketched column (see the module docstring)."""
    if plan.spec.type in ("integer", "float", "datetime"):
        return _numeric(plan, tally, bins)
    return _categorical(plan, tally, sketch, max_categories, min_count)


def _numeric(plan: TallyPlan, tally: Tally, bins: int) -> ColumnCodec:
    spec = plan.spec
    assert tally.tokens is not None
    tok_vals, tok_counts = sorted_counts(tally.tokens)
    tokens = [str(t) for t in tok_vals[np.argsort(-tok_counts, kind="stable")]]
    # atoms: heavy candidates by exact count (>= the heavy threshold), as the exact codec
    heavy = plan.candidates[tally.counts >= plan.threshold]
    cand = np.isin(plan.cand_grid, grids_of(spec, heavy))
    grid, cnt = plan.cand_grid[cand], tally.grid_counts[cand]
    numeric_rows = int(tally.micro.sum())
    thresh = max(10, 0.01 * numeric_rows)
    freq = np.argsort(-cnt, kind="stable")[:_ATOMS]
    atoms = np.sort(grid[freq[cnt[freq] >= thresh]])
    micro = tally.micro.copy()
    atom_counts = cnt[np.isin(grid, atoms)]
    np.subtract.at(micro, np.searchsorted(plan.edges, atoms, "right"), atom_counts)
    left = np.r_[tally.lo, plan.edges] if numeric_rows else np.empty(0)
    live = micro > 0
    coarse, fine, fine_logp, fine_coarse = bin_edges(
        left[live], micro[live], bins, end=tally.hi + 1
    )
    return ColumnCodec(
        spec,
        tokens,
        np.isin(tokens, list(spec.missing)),
        atoms,
        coarse,
        fine,
        fine_logp,
        fine_coarse,
        False,
        SpellingModel.fit(tokens or ["?"]),
        1.0,
        tally.lo if numeric_rows else 0.0,
        tally.hi if numeric_rows else 0.0,
        bounded=True,
    )


def _categorical(
    plan: TallyPlan, tally: Tally, sketch: ColumnSketch, max_categories: int, min_count: int
) -> ColumnCodec:
    spec = plan.spec
    markers = sketch.facts.markers
    is_marker = np.isin(markers.values, list(spec.missing))
    heavy = (tally.counts >= max(plan.threshold, min_count, 2)) & ~np.isin(
        plan.candidates, list(spec.missing)
    )
    vals, counts = sorted_counts(
        ValueCounts(
            np.r_[plan.candidates[heavy], markers.values[is_marker]].astype(object),
            np.r_[tally.counts[heavy], markers.counts[is_marker]].astype(np.int64),
        )
    )
    order = np.argsort(-counts, kind="stable")
    vals, counts = vals[order], counts[order]
    marker = np.isin(vals, list(spec.missing))
    keep = marker | (np.cumsum(~marker) <= max_categories)
    tokens = [str(v) for v in vals[keep]]
    rare = ~np.isin(sketch.sample.texts, tokens) & ~np.isin(sketch.sample.texts, spec.missing)
    spelled = [str(t) for t in sketch.sample.texts[rare]]
    spelling = SpellingModel.fit(spelled or ["?"], sketch.sample.counts[rare] if spelled else None)
    return ColumnCodec(
        spec,
        tokens,
        np.isin(tokens, list(spec.missing)),
        np.empty(0),
        np.empty(0),
        np.empty(0),
        np.empty(0),
        np.empty(0, np.int64),
        True,
        spelling,
        0.0,
        0.0,
        0.0,
        bounded=True,
    )


def id_generator(plan: TallyPlan, tally: Tally, sketch: ColumnSketch) -> IdGenerator:
    """New identifiers past every training one: integers past the largest (an exact max),
    strings past the largest of the sample's most common template (`IdGenerator.build`)."""
    if sketch.facts.int_like and sketch.facts.max_int is not None:
        return IdGenerator("integer", start=sketch.facts.max_int + 1)
    return IdGenerator.build(plan.template, tally.id_rows, list(tally.id_chars), tally.id_largest)
