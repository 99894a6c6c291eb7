"""Evaluation of text, event-sequence and time-series twins (same JSON shape as tables).

text: character n-gram total-variation distances, a classifier two-sample test on passages
(character 1-3-gram frequencies), and privacy as the share of the twin's 32-character windows
found verbatim in the training text against the share of held-out windows found there.
events: sequence-length and event distributions, a classifier test on per-sequence features,
and the share of sampled sequences that copy a training sequence (vs held-out sequences).
series: per-column KS of values, autocorrelations of real vs simulated paths, and a classifier
test on windows of consecutive steps; privacy figures do not apply to one series.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..series.drift import acf
from . import deps
from .metrics import C2ST_FOLDS, ks_statistic

TEXT_CHARS = 200_000
PASSAGE = 200
WINDOW = 32
MAX_LAG = 40


def _result(
    twin, seed: int, n_real: int, n_synth: int, unit: str, fid: dict, priv: dict, t0: float
) -> dict[str, Any]:
    """The evaluation result shared by text and events."""
    return {
        "kind": twin.kind,
        "unit": twin.unit,
        "structure": twin.structure,
        "seed": seed,
        "rows": {"real": n_real, "synthetic": n_synth, "unit": unit},
        "fidelity": fid,
        "privacy": priv,
        "seconds": time.perf_counter() - t0,
    }


def _auc(x_real: np.ndarray, x_twin: np.ndarray, seed: int) -> dict[str, Any]:
    """5-fold CV ROC AUC of gradient boosting on feature rows (real = 0, twin = 1)."""
    deps.sklearn()
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    n = min(len(x_real), len(x_twin))
    folds = min(C2ST_FOLDS, n)
    if folds < 2:
        return {"c2st_auc": None, "c2st_auc_std": None, "c2st_folds": 0}
    x = np.vstack([x_real, x_twin])
    y = np.r_[np.zeros(len(x_real)), np.ones(len(x_twin))]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(1):
        s = cross_val_score(
            HistGradientBoostingClassifier(random_state=seed), x, y, cv=cv, scoring="roc_auc"
        )
    return {
        "c2st_auc": float(np.mean(s)),
        "c2st_auc_std": float(np.std(s)),
        "c2st_folds": folds,
        "c2st_rows_per_side": n,
        "c2st_seconds": time.perf_counter() - t0,
    }


def _tv_counts(a: Counter, b: Counter) -> float:
    na, nb = max(sum(a.values()), 1), max(sum(b.values()), 1)
    keys = set(a) | set(b)
    return float(0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in keys))


def _ngrams(s: str, n: int) -> Counter:
    return Counter(s[i : i + n] for i in range(len(s) - n + 1))


def _exists(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file not found: {p}")
    return p


# ---- text -----------------------------------------------------------------------------------
def _read_text(path, limit: int | None) -> str:
    p = _exists(path, "--real" if limit else "--train")
    if p.is_dir():
        parts = [f.read_text(encoding="utf-8", errors="replace") for f in sorted(p.rglob("*.txt"))]
        text = "\n".join(parts)
    else:
        text = p.read_text(encoding="utf-8", errors="replace")
    if not text:
        raise InputError(f"{p} holds no text")
    return text[:limit] if limit else text


def _window_hashes(text: str, k: int = WINDOW) -> np.ndarray:
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) < k:
        return np.zeros(0, np.uint64)
    h = np.zeros(len(codes) - k + 1, np.uint64)
    base = np.uint64(1_000_003)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * base + codes[j : len(codes) - k + 1 + j]
    return h


def _passage_features(passages: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(
        analyzer="char", ngram_range=(1, 3), n_features=128, alternate_sign=False, norm="l1"
    )
    return vec.transform(passages).toarray()


def text_sample(twin, n: int, seed: int) -> str:
    """`n` characters from the twin (documents joined by newlines until there are enough)."""
    out, total, k = [], 0, 0
    while total < n and k < 10_000:
        s = twin.sample(n - total, seed=seed * 10_007 + k)
        s = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        out.append(s)
        total += len(s) + 1
        k += 1
    return "\n".join(out)[:n]


def evaluate_text(twin, real, train=None, seed: int = 0) -> tuple[dict[str, Any], dict]:
    t0 = time.perf_counter()
    real_text = _read_text(real, TEXT_CHARS)
    twin_text = text_sample(twin, len(real_text), seed)
    fid: dict[str, Any] = {
        f"char{n}gram_tv": _tv_counts(_ngrams(real_text, n), _ngrams(twin_text, n))
        for n in (1, 2, 3)
    }
    words_r, words_t = Counter(real_text.split()), Counter(twin_text.split())
    fid["word_tv"] = _tv_counts(words_r, words_t)

    def cut(s: str) -> list[str]:
        return [s[i : i + PASSAGE] for i in range(0, len(s) - PASSAGE + 1, PASSAGE)]

    pr, pt = cut(real_text), cut(twin_text)
    fid.update(_auc(_passage_features(pr), _passage_features(pt), seed))
    priv: dict[str, Any] = {"exact_copy_share": None, "holdout_exact_copy_share": None}
    real_bits = twin.bits(real_text)
    priv["holdout_bits"] = real_bits
    if train is not None:
        train_text = _read_text(train, None)
        known = np.unique(_window_hashes(train_text))
        priv["exact_copy_share"] = float(np.mean(np.isin(_window_hashes(twin_text), known)))
        priv["holdout_exact_copy_share"] = float(np.mean(np.isin(_window_hashes(real_text), known)))
        priv["window_chars"] = WINDOW
        priv["train_bits"] = twin.bits(train_text[: len(real_text)])
        priv["bits_gap"] = real_bits - priv["train_bits"]
    else:
        priv["note"] = "give --train (the text the twin was fit on) for the privacy figures"
        priv["train_bits"] = priv["bits_gap"] = None
    result = _result(twin, seed, len(real_text), len(twin_text), "characters", fid, priv, t0)
    return result, {"real_text": real_text, "twin_text": twin_text, "words": (words_r, words_t)}


# ---- events ---------------------------------------------------------------------------------
def _sequences(twin, path) -> list[tuple[str, ...]]:
    cols = twin.columns
    df, c = twin.read_table(
        _exists(path, "data") if not isinstance(path, pd.DataFrame) else path,
        cols["sequence_id"],
        cols["order_by"],
        cols["event"],
    )
    ev, starts, lengths = twin.sequences(df, c)
    return [tuple(ev[a : a + n]) for a, n in zip(starts, lengths, strict=True)]


def _seq_features(seqs: list[tuple[str, ...]], vocab: list[str]) -> np.ndarray:
    idx = {e: i for i, e in enumerate(vocab)}
    k = len(vocab)
    x = np.zeros((len(seqs), 2 * k + 3))
    for r, s in enumerate(seqs):
        x[r, 0] = len(s)
        x[r, 1] = idx.get(s[0], k) if s else -1
        x[r, 2] = idx.get(s[-1], k) if s else -1
        for e in s:
            j = idx.get(e)
            if j is not None:
                x[r, 3 + j] += 1
        for a, b in zip(s, s[1:], strict=False):  # which events follow the top ones
            j = idx.get(a)
            if j is not None and b in idx:
                x[r, 3 + k + j] += idx[b] / k
    return x


def evaluate_events(twin, real, train=None, seed: int = 0) -> tuple[dict[str, Any], dict]:
    if real is not None and not Path(real).exists():
        raise InputError(f"--real file not found: {real}")
    t0 = time.perf_counter()
    real_seqs = _sequences(twin, real)
    rng = np.random.default_rng([seed, 5])
    if len(real_seqs) > 20_000:
        real_seqs = [real_seqs[i] for i in np.sort(rng.choice(len(real_seqs), 20_000, False))]
    twin_seqs = [tuple(s) for s in twin.sample_sequences(len(real_seqs), seed)]
    lr = np.array([len(s) for s in real_seqs], float)
    lt = np.array([len(s) for s in twin_seqs], float)
    ev_r = Counter(e for s in real_seqs for e in s)
    ev_t = Counter(e for s in twin_seqs for e in s)
    bi_r = Counter(p for s in real_seqs for p in zip(s, s[1:], strict=False))
    bi_t = Counter(p for s in twin_seqs for p in zip(s, s[1:], strict=False))
    fid: dict[str, Any] = {
        "length_tv": _tv_counts(Counter(lr.tolist()), Counter(lt.tolist())),
        "length_ks": ks_statistic(lr, lt),
        "length_mean_real": float(lr.mean()),
        "length_mean_twin": float(lt.mean()),
        "event_tv": _tv_counts(ev_r, ev_t),
        "bigram_tv": _tv_counts(bi_r, bi_t),
    }
    vocab = [e for e, _ in ev_r.most_common(30)]
    fid.update(_auc(_seq_features(real_seqs, vocab), _seq_features(twin_seqs, vocab), seed))
    priv: dict[str, Any] = {"exact_copy_share": None, "holdout_exact_copy_share": None}
    real_bits = twin.bits(real)
    priv["holdout_bits"] = real_bits
    if train is not None:
        known = set(_sequences(twin, train))
        priv["exact_copy_share"] = float(np.mean([s in known for s in twin_seqs]))
        priv["holdout_exact_copy_share"] = float(np.mean([s in known for s in real_seqs]))
        priv["train_bits"] = twin.bits(train)
        priv["bits_gap"] = real_bits - priv["train_bits"]
    else:
        priv["note"] = "give --train (the sequences the twin was fit on) for the privacy figures"
        priv["train_bits"] = priv["bits_gap"] = None
    result = _result(twin, seed, len(real_seqs), len(twin_seqs), "sequences", fid, priv, t0)
    ctx = {"real_seqs": real_seqs, "twin_seqs": twin_seqs, "events": (ev_r, ev_t)}
    return result, ctx


# ---- series ---------------------------------------------------------------------------------
_QS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _quantiles(real: np.ndarray, sims: np.ndarray) -> dict[str, list[float]]:
    """Marginal quantiles of the real series and of all simulated steps."""
    return {
        "q": list(_QS),
        "real": [float(v) for v in np.nanquantile(real, _QS)],
        "twin": [float(v) for v in np.nanquantile(sims.reshape(-1), _QS)],
    }


def _profiles(times, sim, name: str, real: np.ndarray, twin) -> dict[str, Any]:
    """Mean by hour of day and by weekday, real vs simulated (dated series only)."""
    if not times or twin.time.kind != "datetime" or "time" not in sim:
        return {}
    rt = pd.DatetimeIndex(pd.to_datetime(pd.Series(times), errors="coerce"))
    st = pd.DatetimeIndex(pd.to_datetime(sim["time"], errors="coerce"))
    x = sim[name].to_numpy(float)
    out: dict[str, Any] = {}
    keys = [("weekday", rt.day_of_week, st.day_of_week)]
    if (twin.time.steps_per_day or 1) > 1:
        keys.insert(0, ("hour", rt.hour, st.hour))
    for key, fr, fs in keys:
        r = pd.Series(real).groupby(np.asarray(fr)).mean()
        m = pd.Series(x).groupby(np.asarray(fs)).mean()
        out[f"profile_{key}"] = {
            "key": [int(k) for k in r.index],
            "real": [float(v) for v in r],
            "twin": [float(m.get(k, np.nan)) for k in r.index],
        }
    return out


def evaluate_series(twin, real, train=None, seed: int = 0, paths: int = 20):
    p = _exists(real, "--real")
    t0 = time.perf_counter()
    sd = twin._read(p)
    vals = sd.values
    n = len(vals)
    sim = twin.sample(n, seed=seed, paths=paths)
    names = list(sd.columns)
    per_col: dict[str, Any] = {}
    lag = min(MAX_LAG, max(n // 4, 1))
    sims = {c: sim[c].to_numpy(float).reshape(paths, n) for c in names}
    for j, c in enumerate(names):
        r = vals[:, j]
        a_r = acf(r, lag)
        a_s = np.nanmean([acf(s, lag) for s in sims[c]], axis=0)
        per_col[c] = {
            "ks": ks_statistic(r, sims[c].reshape(-1)),
            "acf_rmse": float(np.sqrt(np.nanmean((a_r[1:] - a_s[1:]) ** 2))),
            "_acf": (a_r, a_s),
            "quantiles": _quantiles(r, sims[c]),
            **_profiles(sd.times, sim, c, r, twin),
        }
    w = max(4, min(24, n // 20))
    rng = np.random.default_rng([seed, 3])

    def windows(m: np.ndarray, count: int) -> np.ndarray:  # m: (steps, d)
        if len(m) < w:
            return np.zeros((0, w * m.shape[1]))
        starts = rng.integers(0, len(m) - w + 1, count)
        return np.stack([m[s : s + w].reshape(-1) for s in starts])

    count = min(2000, max(n - w + 1, 1))
    xr = windows(vals, count)
    xs = np.vstack(
        [
            windows(np.column_stack([sims[c][k] for c in names]), count // paths + 1)
            for k in range(paths)
        ]
    )
    fid: dict[str, Any] = {
        "columns": per_col,
        "ks_mean": float(np.mean([v["ks"] for v in per_col.values() if v["ks"] is not None])),
        "acf_rmse_mean": float(np.mean([v["acf_rmse"] for v in per_col.values()])),
        "window_steps": w,
    }
    fid.update(_auc(xr, xs[: len(xr)], seed))
    priv = {
        "exact_copy_share": None,
        "holdout_exact_copy_share": None,
        "note": "privacy figures are not defined for a single time series",
    }
    result = {
        "kind": twin.kind,
        "unit": twin.unit,
        "structure": twin.structure,
        "seed": seed,
        "rows": {"real": n, "synthetic": n * paths, "unit": "steps", "paths": paths},
        "fidelity": fid,
        "privacy": priv,
        "seconds": time.perf_counter() - t0,
    }
    return result, {"real": vals, "sims": sims, "names": names, "times": sd.times}
