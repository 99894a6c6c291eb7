"""Fidelity and privacy numbers for tables, the same protocol for any generator.

Fidelity: per-column total-variation (TV) distance on a shared grid and, for numeric
columns, the two-sample Kolmogorov-Smirnov statistic; pairwise mutual information (bits) of
real and synthetic rows; a classifier two-sample test (C2ST: 5-fold cross-validated ROC AUC
of gradient boosting telling real rows from synthetic ones; 0.5 = indistinguishable).

Privacy: the share of synthetic rows that copy a training row exactly, against the share of
real held-out rows that do (what chance alone gives), and the distance to the closest
training record (DCR, Gower: rank-scaled |difference| for numbers, mismatch for categories,
averaged over columns) of synthetic vs held-out rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ..series.drift import ks_w1
from . import deps
from .tables import Frame, codes

TV_BINS = 20
MI_BINS = 12
C2ST_FOLDS = 5
MAX_CATEGORIES = 254  # HistGradientBoosting's native categorical limit is 255 codes
DCR_ROWS = 500
C2ST_ROWS = 5000  # per side by default; the AUC's standard error is then about 0.005


# ---- per-column distances ----------------------------------------------------------------
def tv_distance(a: np.ndarray, b: np.ndarray, k: int) -> float:
    pa = np.bincount(a, minlength=k) / max(len(a), 1)
    pb = np.bincount(b, minlength=k) / max(len(b), 1)
    return float(0.5 * np.abs(pa - pb).sum())


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return None
    return ks_w1(a, b)[0]


def column_distances(real: Frame, synth: Frame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r, s in zip(real.columns, synth.columns, strict=True):
        cr, cs = codes(r, [s], TV_BINS)
        k = int(max(cr.max(initial=0), cs.max(initial=0))) + 1
        if not r.numeric:  # TV over every category, not just the top ones
            both = pd.concat([pd.Series(r.cat, dtype=object), pd.Series(s.cat, dtype=object)])
            full, _ = pd.factorize(both.fillna("\x00missing"))
            cr, cs = full[: len(r)], full[len(r) :]
            k = int(full.max(initial=0)) + 1
        entry: dict[str, Any] = {
            "type": "numeric" if r.numeric else "categorical",
            "tv": tv_distance(cr, cs, k),
            "missing_real": float(r.missing.mean()),
            "missing_twin": float(s.missing.mean()),
        }
        if r.numeric:
            entry["ks"] = ks_statistic(r.num, s.num)
        out[r.name] = entry
    return out


# ---- mutual information ------------------------------------------------------------------
def mi_matrix(frame: Frame, grid: list[np.ndarray]) -> np.ndarray:
    """Pairwise mutual information (bits) of the columns, given their codes `grid`."""
    p = len(grid)
    out = np.zeros((p, p))
    n = len(grid[0]) if p else 0
    ks = [int(g.max(initial=0)) + 1 for g in grid]
    for i in range(p):
        for j in range(i + 1, p):
            joint = np.bincount(grid[i] * ks[j] + grid[j], minlength=ks[i] * ks[j])
            pij = joint.reshape(ks[i], ks[j]) / n
            pi, pj = pij.sum(1, keepdims=True), pij.sum(0, keepdims=True)
            nz = pij > 0
            out[i, j] = out[j, i] = float(np.sum(pij[nz] * np.log2(pij[nz] / (pi @ pj)[nz])))
    return out


def mutual_information(real: Frame, synth: Frame) -> tuple[np.ndarray, np.ndarray]:
    """MI matrices (bits) of real and synthetic rows on the real data's grid."""
    gr, gs = [], []
    for r, s in zip(real.columns, synth.columns, strict=True):
        a, b = codes(r, [s], MI_BINS)
        gr.append(a)
        gs.append(b)
    return mi_matrix(real, gr), mi_matrix(synth, gs)


# ---- classifier two-sample test ------------------------------------------------------------
def features(frames: list[Frame]) -> tuple[np.ndarray, list[bool]]:
    """One numeric matrix for several frames: numbers as they are, categories as shared codes."""
    cols, is_cat = [], []
    for j in range(len(frames[0].columns)):
        parts = [f.columns[j] for f in frames]
        if parts[0].numeric:
            cols.append(np.concatenate([c.num for c in parts]))
            is_cat.append(False)
            continue
        both = pd.Series(np.concatenate([c.cat for c in parts]), dtype=object)
        top = both.value_counts().index[:MAX_CATEGORIES]
        lookup = {v: i for i, v in enumerate(top)}
        code = both.map(lookup).to_numpy(float, copy=True)
        code[np.isnan(code) & both.notna().to_numpy(bool)] = len(top)  # rare: one "other"
        cols.append(code)  # missing stays NaN, which the classifier treats as its own value
        is_cat.append(True)
    return np.column_stack(cols), is_cat


def c2st(
    real: Frame,
    synth: Frame,
    seed: int = 0,
    folds: int = C2ST_FOLDS,
    max_rows: int | None = C2ST_ROWS,
) -> dict[str, Any]:
    """Cross-validated ROC AUC of HistGradientBoosting telling real from synthetic rows.

    Uses at most `max_rows` random rows of each side (None: all of them).
    """
    deps.sklearn()
    rng = np.random.default_rng([seed, 13])
    if max_rows is not None:
        if real.n_rows > max_rows:
            real = real.take(np.sort(rng.choice(real.n_rows, max_rows, replace=False)))
        if synth.n_rows > max_rows:
            synth = synth.take(np.sort(rng.choice(synth.n_rows, max_rows, replace=False)))
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    x, is_cat = features([real, synth])
    y = np.r_[np.zeros(real.n_rows), np.ones(synth.n_rows)]
    clf = HistGradientBoostingClassifier(
        categorical_features=np.array(is_cat, bool) if any(is_cat) else None,
        random_state=seed,
    )
    n_folds = int(min(folds, real.n_rows, synth.n_rows))
    if n_folds < 2:
        return {"auc": None, "auc_std": None, "folds": 0, "seconds": 0.0}
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # one thread: OpenMP spinning on busy cores is far slower
        scores = cross_val_score(clf, x, y, cv=cv, scoring="roc_auc")
    return {
        "auc": float(np.mean(scores)),
        "auc_std": float(np.std(scores)),
        "folds": n_folds,
        "rows": [real.n_rows, synth.n_rows],
        "seconds": time.perf_counter() - t0,
    }


# ---- privacy -------------------------------------------------------------------------------
def row_keys(frame: Frame) -> np.ndarray:
    """One 64-bit hash per row of every parsed value (exact-match key)."""
    if not frame.columns:
        return np.zeros(frame.n_rows, dtype=np.uint64)
    df = pd.DataFrame(
        {
            f"c{i}": (c.num if c.numeric else pd.Series(c.cat, dtype=object).fillna("\x00"))
            for i, c in enumerate(frame.columns)
        }
    )
    return pd.util.hash_pandas_object(df, index=False).to_numpy(np.uint64)


def exact_copy_share(rows: Frame, train: Frame) -> float:
    """Share of `rows` that equal some training row in every modelled column."""
    if not rows.n_rows:
        return 0.0
    return float(np.mean(np.isin(row_keys(rows), row_keys(train))))


class Gower:
    """Distances to the closest training row (rank-scaled numbers, category mismatches)."""

    def __init__(self, train: Frame):
        self.train = train
        # per training column: its sorted non-missing numbers, or its category -> code map
        self.sorted: list[np.ndarray | None] = [
            np.sort(c.num[~np.isnan(c.num)]) if c.numeric else None for c in train.columns
        ]
        self.lookup: list[dict[Any, int] | None] = []
        for c in train.columns:
            if c.numeric:
                self.lookup.append(None)
            else:
                s = pd.Series(c.cat, dtype=object)
                self.lookup.append({v: i for i, v in enumerate(s.dropna().unique())})
        self.train_enc = self._encode(train)

    def _encode(self, frame: Frame) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for c, srt, lk in zip(frame.columns, self.sorted, self.lookup, strict=True):
            if c.numeric and srt is not None:
                if len(srt) == 0:
                    u = np.zeros(len(c))
                else:
                    lo = np.searchsorted(srt, c.num, side="left")
                    hi = np.searchsorted(srt, c.num, side="right")
                    u = (lo + hi) / (2.0 * len(srt))  # mid-rank in the training data
                u[np.isnan(c.num)] = -10.0  # missing: distance 0 to missing, >= 1 to any value
                out.append(u.astype(np.float32))
            elif not c.numeric and lk is not None:
                s = pd.Series(c.cat, dtype=object)
                k = s.map(lk).fillna(-2).to_numpy(np.int32, copy=True)  # unseen: never matches
                k[pd.isna(s).to_numpy(bool)] = -1  # missing matches missing
                out.append(k)
            else:
                kind = "numeric" if c.numeric else "categorical"
                raise TypeError(f"column {c.name!r} is {kind} here but not in the training rows")
        return out

    def closest(self, frame: Frame, chunk: int | None = None) -> np.ndarray:
        enc = self._encode(frame)
        if chunk is None:  # about 80 MB of distances at a time
            chunk = max(8, int(2e7 // max(self.train.n_rows, 1)))
        p = len(enc)
        best = np.full(frame.n_rows, np.inf)
        for lo in range(0, frame.n_rows, chunk):
            hi = min(lo + chunk, frame.n_rows)
            d = np.zeros((hi - lo, self.train.n_rows), dtype=np.float32)
            for q, t, c in zip(enc, self.train_enc, frame.columns, strict=True):
                a = q[lo:hi, None]
                if c.numeric:
                    diff = np.abs(a - t[None, :])
                    d += np.minimum(diff, 1.0, out=diff)
                else:
                    d += a != t[None, :]
            best[lo:hi] = d.min(axis=1) / max(p, 1)
        return best


def dcr(synth: Frame, real: Frame, train: Frame, seed: int = 0, rows: int = DCR_ROWS):
    """DCR arrays of up to `rows` synthetic and `rows` held-out rows."""
    rng = np.random.default_rng([seed, 11])
    g = Gower(train)

    def pick(f: Frame) -> Frame:
        if f.n_rows <= rows:
            return f
        return f.take(np.sort(rng.choice(f.n_rows, rows, replace=False)))

    return g.closest(pick(synth)), g.closest(pick(real))


def privacy(synth: Frame, real: Frame, train: Frame, seed: int = 0) -> dict[str, Any]:
    ds, dr = dcr(synth, real, train, seed)
    return {
        "exact_copy_share": exact_copy_share(synth, train),
        "holdout_exact_copy_share": exact_copy_share(real, train),
        "dcr_median_synthetic": float(np.median(ds)),
        "dcr_median_holdout": float(np.median(dr)),
        "dcr_p05_synthetic": float(np.quantile(ds, 0.05)),
        "dcr_p05_holdout": float(np.quantile(dr, 0.05)),
        "dcr_rows": int(len(ds)),
    }


def fidelity(
    real: Frame,
    synth: Frame,
    seed: int = 0,
    c2st_rows: int | None = C2ST_ROWS,
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every fidelity number; `test`: a C2ST result computed elsewhere (else computed here)."""
    cols = column_distances(real, synth)
    mi_r, mi_s = mutual_information(real, synth)
    iu = np.triu_indices(len(real.columns), 1)
    diff = np.abs(mi_r - mi_s)[iu]
    if test is None:
        test = c2st(real, synth, seed, max_rows=c2st_rows)
    ks = [c["ks"] for c in cols.values() if c.get("ks") is not None]
    tv = [c["tv"] for c in cols.values()]
    names = real.names
    pairs: list[dict[str, Any]] = [
        {
            "columns": [names[i], names[j]],
            "mi_real": float(mi_r[i, j]),
            "mi_twin": float(mi_s[i, j]),
        }
        for i, j in zip(*iu, strict=True)
    ]
    pairs.sort(key=lambda e: -abs(e["mi_real"] - e["mi_twin"]))
    return {
        **c2st_fields(test),
        "tv_mean": float(np.mean(tv)) if tv else None,
        "tv_max": float(np.max(tv)) if tv else None,
        "ks_mean": float(np.mean(ks)) if ks else None,
        "ks_max": float(np.max(ks)) if ks else None,
        "mi_diff_mean": float(np.mean(diff)) if len(diff) else 0.0,
        "mi_diff_max": float(np.max(diff)) if len(diff) else 0.0,
        "columns": cols,
        "mi_pairs": pairs[:10],
        "_mi": (mi_r, mi_s),
    }


def c2st_fields(test: dict[str, Any]) -> dict[str, Any]:
    return {
        "c2st_auc": test["auc"],
        "c2st_auc_std": test["auc_std"],
        "c2st_folds": test["folds"],
        "c2st_rows_per_side": min(test.get("rows", [0])),
        "c2st_seconds": test["seconds"],
    }


def strip_private(d: dict[str, Any]) -> dict[str, Any]:
    """Drop keys starting with '_' (arrays kept for plotting) so the dict is JSON-able."""
    return {
        k: strip_private(v) if isinstance(v, dict) else v
        for k, v in d.items()
        if not k.startswith("_")
    }
