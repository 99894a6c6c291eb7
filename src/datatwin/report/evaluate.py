"""`evaluate`: fidelity and privacy numbers of a twin against real data it did not see."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import progress
from ..errors import InputError
from ..reader import RawTable, TokenColumn, read_table
from . import deps, metrics
from .tables import Frame, parse


def _tokens_table(df: pd.DataFrame, source: str) -> RawTable:
    cols = [str(c) for c in df.columns]
    return RawTable(cols, {c: TokenColumn.of(df[c].to_numpy(object)) for c in cols}, {}, source)


def _read(path, what: str) -> RawTable:
    if isinstance(path, (str, Path)) and not Path(path).exists():
        raise InputError(f"{what} file not found: {path}")
    return read_table(path)


def table_frames(twin, real, train=None, seed: int = 0, n: int | None = None) -> dict[str, Any]:
    """Parse real/train data and draw as many twin rows as real ones (or `n`)."""
    real_raw = _read(real, "--real")
    real_f = parse(real_raw, twin.schema, "--real data")
    train_raw = _read(train, "--train") if train is not None else None
    train_f = parse(train_raw, twin.schema, "--train data") if train_raw is not None else None
    n = real_f.n_rows if n is None else n
    with progress.step(f"sampling {n} twin records"):
        synth_tok = twin.sample_tokens(n, seed=seed)
    synth_f = parse(_tokens_table(synth_tok, "twin samples"), twin.schema, "twin samples")
    return {
        "real_raw": real_raw,
        "train_raw": train_raw,
        "real": real_f,
        "train": train_f,
        "synth": synth_f,
    }


def compare(
    real: Frame,
    synth: Frame,
    train: Frame | None,
    seed: int = 0,
    c2st_rows: int | None = metrics.C2ST_ROWS,
) -> dict[str, Any]:
    """Fidelity (+ privacy when `train` is given) of any synthetic frame; the bench uses it."""
    out, finish = start_compare(real, synth, train, seed, c2st_rows)
    finish()
    return out


def start_compare(
    real: Frame,
    synth: Frame,
    train: Frame | None,
    seed: int = 0,
    c2st_rows: int | None = metrics.C2ST_ROWS,
) -> tuple[dict[str, Any], Callable[[], None]]:
    """Like `compare`, but the classifier test keeps running in a thread until `finish()`.

    Gradient boosting releases the GIL, so the test uses a second core while the caller
    (e.g. the report's plotting) carries on; `finish()` fills in the c2st_* numbers.
    """
    deps.sklearn()
    pool = ThreadPoolExecutor(max_workers=1)
    pending = pool.submit(metrics.c2st, real, synth, seed, max_rows=c2st_rows)
    placeholder = {"auc": None, "auc_std": None, "folds": 0, "rows": [0], "seconds": 0.0}
    with progress.step("fidelity: distances and mutual information"):
        fid = metrics.fidelity(real, synth, seed, c2st_rows, test=placeholder)
    priv: dict[str, Any] = {
        "exact_copy_share": None,
        "holdout_exact_copy_share": None,
        "dcr_median_synthetic": None,
        "dcr_median_holdout": None,
    }
    if train is not None:
        with progress.step("privacy: exact copies, distance to closest training record"):
            priv = metrics.privacy(synth, real, train, seed)
    else:
        priv["note"] = "give --train (the data the twin was fit on) for the privacy figures"

    def finish() -> None:
        try:
            with progress.step("classifier two-sample test"):
                fid.update(metrics.c2st_fields(pending.result()))
        finally:
            pool.shutdown(wait=True)

    return {"fidelity": fid, "privacy": priv}, finish


def evaluate_table(
    twin, real, train=None, seed: int = 0, background: bool = False
) -> tuple[dict[str, Any], dict]:
    """The evaluation dict (JSON-able after `metrics.strip_private`) and the parsed frames.

    background: leave the classifier test running; call frames["finish"]() before reading
    result["fidelity"]["c2st_*"] (it also sets result["seconds"]).
    """
    t0 = time.perf_counter()
    frames = table_frames(twin, real, train, seed)
    out, finish_c2st = start_compare(frames["real"], frames["synth"], frames["train"], seed)
    priv = out["privacy"]
    real_bits = twin.bits(frames["real_raw"])
    priv["holdout_bits"] = real_bits
    if frames["train_raw"] is not None:
        train_bits = twin.bits(frames["train_raw"])
        priv["train_bits"] = train_bits
        priv["bits_gap"] = real_bits - train_bits
    else:
        priv["train_bits"] = priv["bits_gap"] = None
    result = {
        "kind": twin.kind,
        "unit": twin.unit,
        "structure": twin.structure,
        "seed": seed,
        "rows": {
            "real": frames["real"].n_rows,
            "synthetic": frames["synth"].n_rows,
            "train": frames["train"].n_rows if frames["train"] is not None else None,
        },
        **out,
        "seconds": None,
    }

    def finish() -> None:
        finish_c2st()
        result["seconds"] = time.perf_counter() - t0

    frames["finish"] = finish
    if not background:
        finish()
    return result, frames


def json_safe(x: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
