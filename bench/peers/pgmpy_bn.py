"""pgmpy as a peer: hill-climb + BDeu structure search, BDeu parameters, exact holdout bits.

This module only *calls* pgmpy (installed in the separate bench venv, see
``bench/requirements.txt``); it copies none of its code. It calls pgmpy the way a typical user
would, with default settings:

* structure: ``HillClimbSearch(train).estimate(scoring_method="bdeu", show_progress=False)``
  (BDeu structure score with pgmpy's default equivalent sample size, 10; tabu length 100;
  epsilon 1e-4; start from the empty graph);
* parameters: ``BayesianEstimator(model, train).get_parameters(prior_type="BDeu")``
  (pgmpy's default equivalent sample size for parameters, 5);
* sampling: ``BayesianModelSampling(model).forward_sample(size=100_000, show_progress=False)``.

In pgmpy 1.1.2 ``pgmpy.estimators.HillClimbSearch`` and ``BayesianEstimator`` emit a
FutureWarning (moved to ``pgmpy.causal_discovery`` / ``pgmpy.parameter_estimator`` for 1.3);
they are still the documented, widely used entry points, so they are what we time.

Holdout scoring is our own vectorised numpy code over the fitted CPD arrays, not pgmpy's:
bits of a row = -sum_i log2 P(x_i | parents(x_i)), averaged over holdout rows.

Unseen states. pgmpy's CPDs only know the states seen in the training data; a holdout value
outside them has no probability under the pgmpy model (pgmpy itself would raise). So that the
benchmark never crashes and never hides the issue, each CPD factor that involves an unseen
state -- the child's value unseen, or any parent's value unseen (no CPD column exists) -- is
replaced by the uniform fallback 1 / (K + 1), where K is the number of training states of the
child (K seen states plus one "other" escape). The count of holdout rows that needed any
fallback is reported as ``n_unseen_rows`` and the fallback is described in ``unseen_fallback``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_SIZE = 100_000
UNSEEN_FALLBACK = (
    "a CPD factor whose child or parent value was not seen in training gets 1/(K+1), "
    "K = number of training states of the child (pgmpy itself has no probability for it)"
)


def read_categorical_csv(path: str) -> pd.DataFrame:
    """Read a CSV with every column as categorical strings (no NA conversion)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _learn_structure(train: pd.DataFrame, max_indegree: int | None):
    from pgmpy.estimators import HillClimbSearch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        search = HillClimbSearch(train)
    kwargs: dict[str, Any] = {"scoring_method": "bdeu", "show_progress": False}
    if max_indegree is not None:
        kwargs["max_indegree"] = max_indegree
    return search.estimate(**kwargs)


def _fit_parameters(dag, train: pd.DataFrame):
    from pgmpy.estimators import BayesianEstimator
    from pgmpy.models import DiscreteBayesianNetwork

    model = DiscreteBayesianNetwork(dag.edges())
    model.add_nodes_from(dag.nodes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        estimator = BayesianEstimator(model, train)
    cpds = estimator.get_parameters(prior_type="BDeu")
    model.add_cpds(*cpds)
    return model


def holdout_log2_probs(model, holdout: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log2 P(row) under the fitted model, and a mask of rows that needed a fallback.

    Vectorised over rows: for each node, map the child's and parents' strings to state indices
    (``-1`` when unseen), then gather ``log2 cpd.values[child, parent_1, ..., parent_k]``.
    """
    n = len(holdout)
    total = np.zeros(n, dtype=np.float64)
    unseen_any = np.zeros(n, dtype=bool)
    missing_cols = set(model.nodes()) - set(holdout.columns)
    if missing_cols:
        raise ValueError(f"holdout lacks columns {sorted(missing_cols)}")
    codes_cache: dict[str, np.ndarray] = {}

    def codes(var: str, states: list[str]) -> np.ndarray:
        key = var
        if key not in codes_cache:
            cat = pd.Categorical(holdout[var].astype(str).to_numpy(), categories=list(states))
            codes_cache[key] = np.asarray(cat.codes, dtype=np.int64)
        return codes_cache[key]

    for node in model.nodes():
        cpd = model.get_cpds(node)
        variables = list(cpd.variables)
        log_table = np.log2(np.asarray(cpd.values, dtype=np.float64))
        idx = [codes(v, cpd.state_names[v]) for v in variables]
        bad = np.zeros(n, dtype=bool)
        for arr in idx:
            bad |= arr < 0
        safe = [np.where(arr < 0, 0, arr) for arr in idx]
        contrib = log_table[tuple(safe)]
        k = int(cpd.cardinality[0])
        contrib = np.where(bad, -np.log2(k + 1.0), contrib)
        total += contrib
        unseen_any |= bad
    return total, unseen_any


def run_pgmpy(train_csv: str, holdout_csv: str, max_indegree: int | None = None) -> dict:
    """Fit pgmpy on ``train_csv``, score ``holdout_csv`` exactly, and time sampling.

    Returns a dict with ``fit_seconds_structure``, ``fit_seconds_params``, ``fit_seconds``
    (their sum), ``holdout_bits`` (mean -log2 P per holdout record), ``edges`` (learned DAG),
    ``sample_seconds_per_100k``, ``sample_records_per_second``, ``n_unseen_rows`` and a few
    descriptive fields.
    """
    import pgmpy
    from pgmpy.sampling import BayesianModelSampling

    train = read_categorical_csv(train_csv)
    holdout = read_categorical_csv(holdout_csv)

    # Wall time (perf_counter) is the reported figure; process CPU time is kept beside it
    # because it is far less disturbed by other load on a shared machine (pgmpy's search,
    # estimation and sampling here are single-threaded).
    c0, t0 = time.process_time(), time.perf_counter()
    dag = _learn_structure(train, max_indegree)
    c1, t1 = time.process_time(), time.perf_counter()
    model = _fit_parameters(dag, train)
    c2, t2 = time.process_time(), time.perf_counter()

    log2p, unseen = holdout_log2_probs(model, holdout)
    holdout_bits = float(-log2p.mean())
    if not np.isfinite(holdout_bits):
        raise RuntimeError("non-finite holdout bits: a CPD has a zero probability")

    sampler = BayesianModelSampling(model)
    c3, t3 = time.process_time(), time.perf_counter()
    sample = sampler.forward_sample(size=SAMPLE_SIZE, show_progress=False, seed=0)
    c4, t4 = time.process_time(), time.perf_counter()
    if len(sample) != SAMPLE_SIZE:
        raise RuntimeError(f"pgmpy returned {len(sample)} samples, asked {SAMPLE_SIZE}")
    sample_seconds = (t4 - t3) * (100_000 / SAMPLE_SIZE)

    edges = sorted([str(u), str(v)] for u, v in model.edges())
    return {
        "peer": "pgmpy",
        "pgmpy_version": pgmpy.__version__,
        "pandas_version": pd.__version__,
        "numpy_version": np.__version__,
        "method": "HillClimbSearch(scoring_method='bdeu') + BayesianEstimator(prior_type='BDeu')",
        "max_indegree": max_indegree,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "fit_seconds_structure": t1 - t0,
        "fit_seconds_params": t2 - t1,
        "fit_seconds": t2 - t0,
        "cpu_seconds_structure": c1 - c0,
        "cpu_seconds_params": c2 - c1,
        "cpu_seconds_sample_100k": (c4 - c3) * (100_000 / SAMPLE_SIZE),
        "holdout_bits": holdout_bits,
        "edges": edges,
        "n_edges": len(edges),
        "sample_seconds_per_100k": sample_seconds,
        "sample_records_per_second": SAMPLE_SIZE / (t4 - t3),
        "n_unseen_rows": int(unseen.sum()),
        "unseen_fallback": UNSEEN_FALLBACK,
    }
