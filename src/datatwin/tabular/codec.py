"""Column codecs: each value <-> (discrete state, exact probability of the value within it).

Every modelled column becomes a discrete variable for the structure (the Bayesian network)
plus a within-state model, so a value's probability is P(state | parents) · P(value | state):
- token atoms: literal tokens (categories, missing markers, junk tokens in numeric columns);
- value atoms: frequent exact numbers (e.g. the zeros of capital-gain);
- interval states: numeric bins on the recorded-precision grid, with a finer histogram inside
  each bin (a value common within its bin gets a fine bin of its own) and a uniform
  distribution over the grid points of a fine bin;
- rare: the tail of a very high-cardinality column, spelled by a character model;
- escape: anything never seen in training (its mass comes from smoothing), so every valid
  input has a finite probability. Escape states are not sampled unless novel=True.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..modelfile import require_integer
from ..reader import TokenColumn, ValueCounts
from .schema import MAX_GRID, ColumnSpec, parse_numbers
from .spelling import SpellingModel

TOKEN, VALUE, INTERVAL, RARE, ESCAPE = 0, 1, 2, 3, 4
_SMALL_DISTINCT = 32  # numeric columns with at most this many values: every value an atom
_MAX_VALUE_ATOMS = 20
_FINE_PSEUDO = 0.5
#: a value holding a fine bin's share of its coarse bin's rows gets a fine bin of its own
SPIKES = True
#: privacy rule: a category of a high-cardinality column seen in fewer rows is never stored
MIN_COUNT = 5
#: a categorical column is high-cardinality above max(this, sqrt(rows)) distinct values
HIGH_CARDINALITY = 50


def high_cardinality(n_distinct: int, n_rows: int) -> bool:
    """An open vocabulary (names, codes, SSNs) rather than a closed list of categories:
    more than max(50, sqrt(rows)) distinct values."""
    return n_distinct > max(HIGH_CARDINALITY, math.sqrt(n_rows))


def withheld(counts: np.ndarray, n_rows: int, min_count: int) -> np.ndarray:
    """Which categories (with these row counts) the privacy rule keeps out of a model: in a
    high-cardinality column, those seen in fewer than `min_count` rows."""
    if min_count <= 1 or not high_cardinality(len(counts), n_rows):
        return np.zeros(len(counts), bool)
    return np.asarray(counts) < min_count


def withheld_summary(spec: ColumnSpec, vc: ValueCounts, min_count: int) -> tuple[int, int]:
    """(values, rows) of a categorical column that the privacy rule withholds."""
    if spec.type not in ("categorical", "boolean"):
        return 0, 0
    vals, counts = sorted_counts(vc)
    mask = withheld(counts, vc.n_rows, min_count) & ~np.isin(vals, list(spec.missing))
    return int(mask.sum()), int(counts[mask].sum())


class Decoded:
    """Sampled column: numeric/ string values, a missing mask, literal tokens where needed.

    A categorical column whose every value is a token of its codec may keep its values
    unbuilt: `values` is then `lookup[states]`, built on first use. Blocks of a sample are
    joined by their states (`join`), so the object array is built once, not once a block.
    """

    __slots__ = ("_values", "missing", "tokens", "states", "lookup")

    def __init__(
        self,
        values: np.ndarray | None,  # float64 grid values (numeric), object str (others)
        missing: np.ndarray,  # bool
        tokens: np.ndarray | None = None,  # object: literal token of token-atom rows
        states: np.ndarray | None = None,  # the sampled states (categorical columns)
        lookup: np.ndarray | None = None,  # object: each state's value, when values is None
    ) -> None:
        if values is None and (lookup is None or states is None):
            raise ValueError("a Decoded without values needs states and their lookup")
        self._values, self.missing, self.tokens = values, missing, tokens
        self.states, self.lookup = states, lookup

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            assert self.lookup is not None and self.states is not None
            self._values = self.lookup[self.states]
        return self._values

    @classmethod
    def join(cls, parts: list[Decoded]) -> Decoded:
        """One column's blocks as one decoded column, in order."""
        tokens = None
        if any(c.tokens is not None for c in parts):
            tokens = np.concatenate(
                [c.tokens if c.tokens is not None else np.full(len(c.missing), None) for c in parts]
            )
        missing = np.concatenate([c.missing for c in parts])
        states = None
        if all(c.states is not None for c in parts):
            states = np.concatenate([c.states for c in parts if c.states is not None])
        lookup = parts[0].lookup
        if states is not None and all(c._values is None and c.lookup is lookup for c in parts):
            return cls(None, missing, tokens, states, lookup)
        return cls(np.concatenate([c.values for c in parts]), missing, tokens, states)


def _grid_scale(spec: ColumnSpec) -> float:
    return 10.0**spec.decimals if spec.type == "float" else 1.0


#: seconds per grid step of a datetime column's recorded precision (`ColumnSpec.datetime_unit`)
DATETIME_SECONDS = {"D": 86400, "h": 3600, "min": 60, "s": 1}


def datetime_step(spec: ColumnSpec) -> int:
    return DATETIME_SECONDS.get(spec.datetime_unit, 1)


def to_grid(spec: ColumnSpec, cells: TokenColumn | np.ndarray) -> np.ndarray:
    """Grid index (int64 as float, NaN where not a number/date) of each cell."""
    col = TokenColumn.of(cells)
    return col.per_cell(grid_of_texts(spec, col.uniques))


def grid_of_texts(spec: ColumnSpec, texts: np.ndarray) -> np.ndarray:
    """`to_grid` of distinct texts: each is parsed once."""
    if spec.type == "datetime":
        text = pd.Series(texts, dtype=object).str.strip()
        t = pd.to_datetime(text, format=spec.datetime_format or None, errors="coerce")
        retry = t.isna() & text.notna() & (text != "")
        if retry.any():  # the same instant written another way (e.g. ISO 8601 from a frame)
            t[retry] = pd.to_datetime(text[retry], format="ISO8601", errors="coerce")
        unit = datetime_step(spec)
        secs = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(float)
        return np.floor(secs / unit + 1e-9) if unit > 1 else np.round(secs)
    vals, _ = parse_numbers(texts)
    with np.errstate(over="ignore", invalid="ignore"):
        x = vals * _grid_scale(spec)
        g = np.round(x)
        if not spec.rounded:  # finer than recorded (10.23 at one decimal): a token, not 10.2
            g[np.abs(x - g) > np.maximum(1e-9, np.abs(g) * _GRID_ULPS)] = np.nan
    g[~(np.abs(g) < MAX_GRID)] = np.nan  # beyond exact steps: scored as a token, not a number
    return g


#: the float error of value · 10^decimals, relative: beyond it a number is off the grid (from
#: about 10^15 grid steps on, a number finer than the grid can no longer be told apart)
_GRID_ULPS = 4e-16


def grid_to_values(spec: ColumnSpec, g: np.ndarray) -> np.ndarray:
    if spec.type == "float":
        return np.round(g / _grid_scale(spec), spec.decimals)
    return g.astype(float)


class ColumnCodec:
    """Maps one column's tokens to states and back; parameters are plain arrays."""

    def __init__(
        self,
        spec: ColumnSpec,
        tokens: list[str],
        token_missing: np.ndarray,
        value_atoms: np.ndarray,
        coarse_edges: np.ndarray,
        fine_edges: np.ndarray,
        fine_logp: np.ndarray,
        fine_coarse: np.ndarray,
        has_rare: bool,
        spelling: SpellingModel,
        escape_pseudo: float,
        grid_lo: float,
        grid_hi: float,
        bounded: bool = False,
    ):
        self.spec = spec
        self.tokens = list(tokens)
        self.token_missing = np.asarray(token_missing, dtype=bool)
        self.value_atoms = np.asarray(value_atoms, dtype=float)
        self.coarse_edges = np.asarray(coarse_edges, dtype=float)
        self.fine_edges = np.asarray(fine_edges, dtype=float)
        self.fine_logp = np.asarray(fine_logp, dtype=float)  # log P(fine bin | coarse bin)
        self.fine_coarse = np.asarray(fine_coarse, dtype=np.int64)
        self.has_rare = bool(has_rare)
        self.spelling = spelling
        self.escape_pseudo = float(escape_pseudo)
        self.grid_lo, self.grid_hi = float(grid_lo), float(grid_hi)
        #: fit from a bounded summary (`bounded.py`): too many distinct values to count
        self.bounded = bool(bounded)
        self._token_index = {t: i for i, t in enumerate(self.tokens)}
        self._token_array = np.array(self.tokens + [""], dtype=object)[:-1]
        kinds = [TOKEN] * len(self.tokens) + [VALUE] * len(self.value_atoms)
        kinds += [INTERVAL] * max(len(self.coarse_edges) - 1, 0)
        kinds += [RARE] * self.has_rare + [ESCAPE]
        self.state_kind = np.array(kinds, dtype=np.int8)
        self.n_states = len(kinds)
        self.off_value = len(self.tokens)
        self.off_interval = self.off_value + len(self.value_atoms)
        self.escape_state = self.n_states - 1
        self._prepare_fine()

    @property
    def numeric(self) -> bool:
        return self.spec.type in ("integer", "float", "datetime")

    # ---- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        spec: ColumnSpec,
        cells: TokenColumn | ValueCounts | np.ndarray,
        bins: int = 10,
        max_categories: int = 2000,
        min_count: int = MIN_COUNT,
    ) -> ColumnCodec:
        """Fit a codec on a column's distinct texts and their counts (`ValueCounts`, which
        merge exactly over chunks; a `TokenColumn` or an array of texts is counted first).
        A category of a high-cardinality column seen in fewer than `min_count` rows is not
        stored: it is spelled by the character model (`withheld`)."""
        vc = cells if isinstance(cells, ValueCounts) else TokenColumn.of(cells).value_counts()
        missing_set = set(spec.missing)
        if spec.type in ("integer", "float", "datetime"):
            return cls._fit_numeric(spec, vc, bins, missing_set)
        return cls._fit_categorical(spec, vc, max_categories, min_count, missing_set)

    @classmethod
    def _fit_numeric(
        cls, spec: ColumnSpec, vc: ValueCounts, bins: int, missing_set: set[str]
    ) -> ColumnCodec:
        """Tokens (missing markers, junk), frequent exact values as atoms, quantile bins."""
        g = grid_of_texts(spec, vc.values)
        is_tok = np.isnan(g) | np.array([v in missing_set for v in vc.values], bool).reshape(-1)
        tok_vals, tok_counts = sorted_counts(ValueCounts(vc.values[is_tok], vc.counts[is_tok]))
        order = np.argsort(-tok_counts, kind="stable")
        tokens = [str(t) for t in tok_vals[order]]
        uniq, inverse = np.unique(g[~is_tok], return_inverse=True)
        cnt = np.bincount(inverse, weights=vc.counts[~is_tok], minlength=len(uniq))
        cnt = cnt.astype(np.int64)
        if len(uniq) <= _SMALL_DISTINCT:
            atoms, keep = uniq, np.zeros(len(uniq), bool)
        else:
            thresh = max(10, 0.01 * int(cnt.sum()))
            freq = np.argsort(-cnt, kind="stable")[:_MAX_VALUE_ATOMS]
            freq = freq[cnt[freq] >= thresh]
            atoms = np.sort(uniq[freq])
            keep = ~np.isin(uniq, atoms)
        coarse, fine, fine_logp, fine_coarse = bin_edges(uniq[keep], cnt[keep], bins, atoms=atoms)
        lo = float(uniq.min()) if len(uniq) else 0.0
        hi = float(uniq.max()) if len(uniq) else 0.0
        spelling = SpellingModel.fit(tokens or ["?"])
        return cls(
            spec,
            tokens,
            np.isin(tokens, list(missing_set)),
            atoms,
            coarse,
            fine,
            fine_logp,
            fine_coarse,
            False,
            spelling,
            1.0,
            lo,
            hi,
        )

    @classmethod
    def _fit_categorical(
        cls,
        spec: ColumnSpec,
        vc: ValueCounts,
        max_categories: int,
        min_count: int,
        missing_set: set[str],
    ) -> ColumnCodec:
        """Every distinct token an atom, but the withheld rare values and the capped tail."""
        n = vc.n_rows
        # categorical / boolean: every distinct token an atom, except the rare values of a
        # high-cardinality column (`withheld`: privacy) and the tail beyond max_categories
        vals, counts = sorted_counts(vc)
        order = np.argsort(-counts, kind="stable")
        vals, counts = vals[order], counts[order]
        is_marker = np.isin(vals, list(missing_set))
        spelled = withheld(counts, n, min_count) & ~is_marker
        if len(vals) > max_categories:  # bounded memory: the tail beyond the cap is spelled
            kept = np.cumsum(~spelled) <= min(max_categories, int((counts >= 2).sum()))
            spelled |= ~kept & ~is_marker
        has_rare = bool(spelled.any())
        if has_rare:
            rare_vals, rare_counts = vals[spelled], counts[spelled]
            vals, counts = vals[~spelled], counts[~spelled]
            spelling = SpellingModel.fit([str(v) for v in rare_vals], rare_counts)
        else:
            spelling = SpellingModel.fit([str(v) for v in vals] or ["?"], counts)
        n1 = int((counts == 1).sum())
        escape_pseudo = 0.0 if has_rare else max(float(n1), 0.5)
        tokens = [str(v) for v in vals]
        return cls(
            spec,
            tokens,
            np.isin(tokens, list(missing_set)),
            np.empty(0),
            np.empty(0),
            np.empty(0),
            np.empty(0),
            np.empty(0, np.int64),
            has_rare,
            spelling,
            escape_pseudo,
            0.0,
            0.0,
        )

    def prior_counts(self) -> np.ndarray:
        """Pseudo-counts added to the state counts for the column's marginal (escape only)."""
        p = np.zeros(self.n_states)
        p[self.escape_state] = self.escape_pseudo if not self.has_rare else 0.0
        if self.has_rare:
            p[self.escape_state] = 0.0
        return p

    def _prepare_fine(self) -> None:
        n_coarse = max(len(self.coarse_edges) - 1, 0)
        self._fine_width = np.empty(0)
        if n_coarse == 0:
            return
        fe = self.fine_edges
        lo, hi = fe[:-1], fe[1:]
        atoms = self.value_atoms
        inside = (
            np.searchsorted(atoms, hi, "left") - np.searchsorted(atoms, lo, "left")
            if len(atoms)
            else np.zeros(len(lo))
        )
        self._fine_width = (hi - lo) - inside
        if np.any(self._fine_width < 1):  # fit or file alike: no bin without a grid point
            raise ValueError(f"column {self.spec.name!r}: a fine bin holds no grid point")
        self._fine_logw = self.fine_logp - np.log(self._fine_width)
        p = np.exp(self.fine_logp)
        cdf = np.zeros(len(p))
        for c in range(n_coarse):
            m = self.fine_coarse == c
            cdf[m] = np.cumsum(p[m]) / p[m].sum()
        self._fine_cdf_global = self.fine_coarse + cdf  # increasing, block c spans (c, c+1]
        self._fine_cdf_global[np.r_[self.fine_coarse[1:] != self.fine_coarse[:-1], True]] = (
            self.fine_coarse[np.r_[self.fine_coarse[1:] != self.fine_coarse[:-1], True]] + 1.0
        )

    def threshold_ranks(self) -> np.ndarray | None:
        """The order of a numeric column's states for threshold splits (values first, by
        value: atoms, and bins by their midpoints; then tokens, rare and escape), or None
        for a categorical column."""
        if not self.numeric:
            return None
        key = np.full(self.n_states, np.inf)
        va = self.value_atoms
        key[self.off_value : self.off_value + len(va)] = va
        ce = self.coarse_edges
        if len(ce) > 1:
            key[self.off_interval : self.off_interval + len(ce) - 1] = (ce[:-1] + ce[1:]) / 2
        order = np.lexsort((np.arange(self.n_states), key))
        ranks = np.empty(self.n_states, dtype=np.int64)
        ranks[order] = np.arange(self.n_states)
        return ranks

    # ---- encoding -----------------------------------------------------------------------
    def encode(self, cells: TokenColumn | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States (int64) and log P(value | state) (nats) for each cell, computed once per
        distinct text."""
        col = TokenColumn.of(cells)
        states, within = self.encode_texts(col.uniques)
        return col.per_cell(states), col.per_cell(within)

    def encode_texts(self, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`encode` of an object array of distinct texts."""
        n = len(col)
        states = np.full(n, self.escape_state, dtype=np.int64)
        within = np.zeros(n)
        tok_idx = self._lookup_tokens(col)
        is_tok = tok_idx >= 0
        states[is_tok] = tok_idx[is_tok]
        rest = ~is_tok
        if self.numeric:
            g = np.full(n, np.nan)
            if rest.any():
                g[rest] = grid_of_texts(self.spec, col[rest])
            num = rest & ~np.isnan(g)
            if len(self.value_atoms):
                ai = np.searchsorted(self.value_atoms, g[num])
                ai_c = np.minimum(ai, len(self.value_atoms) - 1)
                hit = self.value_atoms[ai_c] == g[num]
                idx = np.flatnonzero(num)[hit]
                states[idx] = self.off_value + ai_c[hit]
                num[idx] = False
            if len(self.coarse_edges) > 1:
                ce = self.coarse_edges
                inr = num & (g >= ce[0]) & (g < ce[-1])
                gi = g[inr]
                states[inr] = self.off_interval + np.searchsorted(ce, gi, "right") - 1
                j = np.searchsorted(self.fine_edges, gi, "right") - 1
                within[inr] = self._fine_logw[j]
                num &= ~inr
            esc_num = num
            within[esc_num] = math.log(0.5) + self._escape_numeric_logp(g[esc_num])
            esc_tok = rest & np.isnan(g)
            if esc_tok.any():
                within[esc_tok] = math.log(0.5) + self._spell(col[esc_tok])
        elif rest.any():
            # the rare tail of a high-cardinality column has its own (sampled) state
            states[rest] = self.escape_state - 1 if self.has_rare else self.escape_state
            within[rest] = self._spell(col[rest])
        return states, within

    def _lookup_tokens(self, col: np.ndarray) -> np.ndarray:
        """Index of each token among the codec's token atoms, -1 where it is not one."""
        if not self.tokens:
            return np.full(len(col), -1, dtype=np.int64)
        lookup = np.array(
            [self._token_index.get(u, -1) if isinstance(u, str) else -1 for u in col],
            dtype=np.int64,
        ).reshape(-1)
        if "" not in self._token_index and self.token_missing.any():
            # an empty cell (a DataFrame's NaN) is missing: the column's usual missing marker
            lookup[[i for i, u in enumerate(col) if u == "" or u is None]] = int(
                np.flatnonzero(self.token_missing)[0]
            )
        return lookup

    def _spell(self, toks: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(toks.astype(str), return_inverse=True)
        lp = self.spelling.log_prob_many([str(u) for u in uniq])
        return lp[inv]

    def _escape_numeric_logp(self, g: np.ndarray) -> np.ndarray:
        """Escape mass for a number never seen: ½ uniform over the seen range, ¼ per tail."""
        lo, hi = self.grid_lo, self.grid_hi
        width = hi - lo + 1.0
        m = max(width / 4.0, 2.0)  # geometric tail, mean a quarter of the range
        out = np.empty(len(g))
        inside = (g >= lo) & (g <= hi)
        out[inside] = math.log(0.5 / width)
        d = np.where(g < lo, lo - g, g - hi)[~inside]
        # log(1 - q) and log(q) for q = 1 - 1/m, stable however wide the range
        out[~inside] = math.log(0.25) - math.log(m) + (d - 1) * math.log1p(-1.0 / m)
        return out

    # ---- decoding -----------------------------------------------------------------------
    def decode(self, states: np.ndarray, rng: np.random.Generator) -> Decoded:
        """Sample values for the given states (within-state draws use `rng`)."""
        n = len(states)
        kind = self.state_kind[states]
        missing = np.zeros(n, bool)
        tok_rows = kind == TOKEN
        tokens = None
        if self.numeric:
            values = np.full(n, np.nan)
            if tok_rows.any():
                tokens = np.full(n, None, dtype=object)
                tokens[tok_rows] = np.array(self.tokens, dtype=object)[states[tok_rows]]
                missing[tok_rows] = self.token_missing[states[tok_rows]]
            vr = kind == VALUE
            values[vr] = self.value_atoms[states[vr] - self.off_value]
            ir = kind == INTERVAL
            if ir.any():
                values[ir] = self._sample_interval(states[ir] - self.off_interval, rng)
            er = kind == ESCAPE
            if er.any():
                values[er] = self._sample_escape_numeric(int(er.sum()), rng)
            return Decoded(grid_to_values(self.spec, values), missing, tokens)
        spelled = ~tok_rows
        if len(self.tokens):
            st = np.minimum(states, len(self.tokens) - 1)
            missing = tok_rows & self.token_missing[st]
            if not spelled.any():  # every value is a token: built once the blocks are joined
                return Decoded(None, missing, None, states, self._token_array)
            values = self._token_array[st]
        else:
            values = np.empty(n, dtype=object)
        if spelled.any():
            values[spelled] = self.spelling.sample(int(spelled.sum()), rng)
        return Decoded(values, missing, None, states)

    def _sample_interval(self, coarse: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(len(coarse))
        j = np.searchsorted(self._fine_cdf_global, coarse + u, "right")
        j = np.minimum(j, len(self._fine_width) - 1)
        lo = self.fine_edges[j]
        k = np.floor(rng.random(len(coarse)) * self._fine_width[j])
        g = lo + k
        if len(self.value_atoms):  # skip atom grid points: the k-th non-atom point of the bin
            before = np.searchsorted(self.value_atoms, lo, "left")
            for _ in range(len(self.value_atoms) + 1):
                shift = np.searchsorted(self.value_atoms, g, "right") - before
                g_new = lo + k + shift
                if np.array_equal(g_new, g):
                    break
                g = g_new
        return g

    def _sample_escape_numeric(self, n: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.grid_lo, self.grid_hi
        width = hi - lo + 1.0
        m = max(width / 4.0, 2.0)
        part = rng.random(n)
        d = rng.geometric(1.0 / m, size=n).astype(float)
        inside = lo + np.floor(rng.random(n) * width)
        return np.where(part < 0.5, inside, np.where(part < 0.75, lo - d, hi + d))

    # ---- persistence --------------------------------------------------------------------
    def to_archive(self, prefix: str) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {
            "spec": self.spec.to_dict(),
            "tokens": self.tokens,
            "has_rare": self.has_rare,
            "escape_pseudo": self.escape_pseudo,
            "grid_lo": self.grid_lo,
            "grid_hi": self.grid_hi,
        }
        if self.bounded:  # written only when true: other model files stay as they were
            meta["bounded"] = True
        arrays = {
            f"{prefix}token_missing": self.token_missing.astype(np.int8),
            f"{prefix}value_atoms": self.value_atoms,
            f"{prefix}coarse_edges": self.coarse_edges,
            f"{prefix}fine_edges": self.fine_edges,
            f"{prefix}fine_logp": self.fine_logp,
            f"{prefix}fine_coarse": self.fine_coarse,
            **self.spelling.to_arrays(f"{prefix}spell_"),
        }
        return meta, arrays

    @classmethod
    def from_archive(cls, meta: dict, arrays: dict[str, np.ndarray], prefix: str) -> ColumnCodec:
        spec = ColumnSpec.from_dict(meta["spec"])
        require_integer(
            arrays, [f"{prefix}token_missing", f"{prefix}fine_coarse"], f"column {spec.name!r}"
        )
        tokens = [str(t) for t in meta["tokens"]]
        tm = arrays[f"{prefix}token_missing"].astype(bool)
        ce, fe = arrays[f"{prefix}coarse_edges"], arrays[f"{prefix}fine_edges"]
        fl, fc = arrays[f"{prefix}fine_logp"], arrays[f"{prefix}fine_coarse"]
        va = arrays[f"{prefix}value_atoms"]
        if len(tm) != len(tokens) or len(set(tokens)) != len(tokens):
            raise ValueError(f"column {spec.name!r}: token table is inconsistent")
        if np.any(np.diff(va) <= 0) or np.any(np.diff(ce) <= 0) or np.any(np.diff(fe) <= 0):
            raise ValueError(f"column {spec.name!r}: bin edges are not increasing")
        if len(ce) > 1:
            if (
                fe.shape != (len(fl) + 1,)
                or fc.shape != fl.shape
                or fe[0] != ce[0]
                or fe[-1] != ce[-1]
            ):
                raise ValueError(f"column {spec.name!r}: fine bins do not tile the coarse bins")
            if not np.all(np.isfinite(fl)) or fc.min() < 0 or fc.max() != len(ce) - 2:
                raise ValueError(f"column {spec.name!r}: fine-bin probabilities are invalid")
            sums = np.bincount(fc, weights=np.exp(fl), minlength=len(ce) - 1)
            if not np.allclose(sums, 1.0, atol=1e-6):
                raise ValueError(f"column {spec.name!r}: fine-bin probabilities do not sum to one")
        spelling = SpellingModel.from_arrays(arrays, f"{prefix}spell_")
        codec = cls(
            spec,
            tokens,
            tm,
            va,
            ce,
            fe,
            fl,
            fc,
            bool(meta["has_rare"]),
            spelling,
            float(meta["escape_pseudo"]),
            float(meta["grid_lo"]),
            float(meta["grid_hi"]),
            bool(meta.get("bounded", False)),
        )
        return codec


def sorted_counts(vc: ValueCounts) -> tuple[np.ndarray, np.ndarray]:
    """Distinct texts (sorted, as str) and their counts."""
    names = np.array([str(u) for u in vc.values], dtype=object)
    order = np.argsort(names.astype(str), kind="stable")
    return names[order].astype(str), vc.counts[order]


def bin_edges(
    values: np.ndarray,
    counts: np.ndarray,
    bins: int,
    end: float | None = None,
    atoms: np.ndarray | None = None,
):
    """Coarse quantile bins over the non-atom grid values (distinct, sorted, with their
    counts), and a finer histogram in each. Quantiles are exact order statistics of the
    counted values (`_quantiles`), so the bins are those of the values written out.

    A value holding at least a fine bin's share of its coarse bin's rows (a spike: a common
    amount, a round number) gets a fine bin of its own, [v, v + 1), so the within-state
    term gives it its frequency instead of spreading it over its neighbours.

    The last bin ends at `end` (default: past the largest value). A bounded summary passes
    the left edges of its micro bins as `values`, each with the rows of its bin, and the
    largest value + 1 as `end`: every bin is then a union of micro bins, with exact counts
    (no spikes: a micro bin's rows need not be at its left edge). `atoms` (sorted) are the
    grid points coded as values: a fine bin holding only atoms is merged into the one before.
    """
    atoms = np.zeros(0) if atoms is None else atoms
    if len(values) == 0:
        return np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.int64)
    below = np.concatenate(([0], np.cumsum(counts)))  # below[i]: values smaller than values[i]
    qs = _quantiles(values, below, np.linspace(0, 1, bins + 1)[1:-1])
    last = values[-1] + 1 if end is None else end
    coarse = np.unique(np.concatenate(([values[0]], qs, [last])))
    # coarse bin c covers [coarse[c], coarse[c+1]); every bin starts at a data value so it holds one
    at = np.searchsorted(values, coarse).tolist()
    fine_edges, fine_logp, fine_coarse = [], [], []
    for c in range(len(coarse) - 1):
        a, b, lo, hi = at[c], at[c + 1], coarse[c], coarse[c + 1]
        vals, sub = values[a:b], below[a : b + 1] - below[a]
        n = int(sub[-1])
        k = min(max(round(math.sqrt(n) / 2), 1), 32)
        inner = _quantiles(vals, sub, _INNER_QS[k]) if k > 1 else np.empty(0)
        if SPIKES and end is None and k > 1:  # a fine bin's share of rows: a bin of its own
            heavy = vals[np.diff(sub) * k >= n]
            inner = np.concatenate((inner, heavy, heavy + 1))
        edges = np.unique(np.concatenate(([lo], inner)))
        edges = edges[(edges >= lo) & (edges < hi)]
        if len(atoms):  # every fine bin holds a grid point that is not an atom
            full = np.append(edges, hi)
            held = np.diff(np.searchsorted(atoms, full, "left"))
            edges = edges[(np.diff(full) > held) | (edges == lo)]
        cnt = np.diff(sub[np.searchsorted(vals, np.append(edges, hi), "left")]).astype(float)
        p = (cnt + _FINE_PSEUDO) / (cnt.sum() + _FINE_PSEUDO * len(cnt))
        fine_edges.append(edges)
        fine_logp.append(np.log(p))
        fine_coarse.append(np.full(len(edges), c))
    fe = np.append(np.concatenate(fine_edges), coarse[-1])
    return coarse, fe, np.concatenate(fine_logp), np.concatenate(fine_coarse).astype(np.int64)


#: the inner quantile levels of k fine bins, by k
_INNER_QS = [np.linspace(0, 1, k + 1)[1:-1] for k in range(33)]


def _quantiles(values: np.ndarray, below: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """`np.quantile(x, qs, method="inverted_cdf")` of the n = below[-1] values x that are
    `values` (sorted, distinct) each repeated below[i+1] - below[i] times: order statistic
    ⌈n·q⌉ (1-based; the first for q = 0), read off the counts without writing x out."""
    index = int(below[-1]) * np.asarray(qs, dtype=float) - 1  # as numpy computes it
    rank = np.floor(index)
    rank = np.maximum(np.where(index - rank == 0, rank, rank + 1), 0)
    return values[np.searchsorted(below[1:], rank, "right")]
