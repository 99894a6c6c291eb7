"""Series benchmark: datatwin's series candidates vs statsmodels AutoReg, same holdout, same cells.

Run with the bench venv (statsmodels is a peer, not a datatwin dependency):

    /work/benchvenv/bin/python bench/series_bench.py

For sunspot_month and elecdemand (../shared/data/series) it prints and writes
(bench/results/series.json, bench/results/series.md):

- holdout bits per time step (all columns of a step) of every datatwin candidate, fit on the
  first 80% and scored on the final 20%, conditioning on the steps before each one;
- statsmodels AutoReg per column with its own AIC order choice (`ar_select_order`, maxlag = the
  largest order datatwin scans), fit on the same 80% and scored on the same holdout steps at the
  same recorded precision (Gaussian mass of each value's cell, tails folded at the same bounds
  as datatwin's, which only helps AutoReg);
- fit seconds for the whole datatwin fit (all candidates, selection and the refit on all data;
  datatwin runs BLAS single-threaded during series fits, see datatwin/series/blas.py);
- simulation fidelity of the selected twin and of the iid twin: 20 simulated paths as long as
  the data, continuing from its end; distance of their autocorrelation (lags 1..50, RMS over
  lags of mean-path ACF minus data ACF) and of their marginal (KS statistic, and Wasserstein-1
  in units of the data's standard deviation), per column.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "series"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))

import datatwin  # noqa: E402
from datatwin.series.io import read_series  # noqa: E402
from datatwin.series.precision import cell_edges, log_gauss_cell  # noqa: E402

DATASETS = {
    "sunspot_month": DATA / "sunspot_month.csv",
    "elecdemand": DATA / "elecdemand.csv",
}
PATHS = 20
ACF_LAGS = 50


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelation of lags 1..nlags (FFT-free, exact)."""
    x = x[np.isfinite(x)]
    x = x - x.mean()
    v = float(x @ x)
    if v == 0:
        return np.zeros(nlags)
    return np.array([float(x[k:] @ x[:-k]) / v for k in range(1, nlags + 1)])


def statsmodels_autoreg(
    values: np.ndarray, n_train: int, twin: Any, maxlag: int
) -> tuple[float, float, list[int]]:
    """Holdout bits per step of per-column AutoReg(AIC order), and its fit seconds."""
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    total = np.zeros(len(values) - n_train)
    secs = 0.0
    orders = []
    for j in range(values.shape[1]):
        y = values[:, j]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel = ar_select_order(y[:n_train], maxlag=maxlag, ic="aic", trend="c")
            lags = list(sel.ar_lags or [])
            res = AutoReg(y[:n_train], lags=lags or 0, trend="c").fit()
        secs += time.perf_counter() - t0
        orders.append(max(lags) if lags else 0)
        params = np.asarray(res.params)
        sigma = float(np.sqrt(res.sigma2))
        rows = np.arange(n_train, len(y))
        mean = np.full(len(rows), params[0])
        for k, lag in enumerate(lags):
            mean += params[1 + k] * y[rows - lag]
        cols = twin.cols
        a, b = cell_edges(y[rows], cols.decimals[j], cols.lower[j], cols.upper[j], "none", 0.0, 1.0)
        total += log_gauss_cell((a - mean) / sigma, (b - mean) / sigma)
    return float(-total.mean() / np.log(2)), secs, orders


def fidelity(twin: Any, values: np.ndarray, names: list[str], seed: int) -> dict[str, Any]:
    """ACF and marginal distances of simulated paths to the data, per column."""
    n = len(values)
    s = twin.sample(n, seed=seed, paths=PATHS)
    out = {}
    for j, c in enumerate(names):
        data = values[:, j]
        data = data[np.isfinite(data)]
        sim = s[c].to_numpy(dtype=float).reshape(PATHS, n)
        a_data = acf(data, ACF_LAGS)
        a_sim = np.mean([acf(p, ACF_LAGS) for p in sim], axis=0)
        pooled = sim[np.isfinite(sim)]
        sd = float(np.std(data)) or 1.0
        out[c] = {
            "acf_rmse": float(np.sqrt(np.mean((a_sim - a_data) ** 2))),
            "ks": float(stats.ks_2samp(pooled, data).statistic),
            "wasserstein_sd": float(stats.wasserstein_distance(pooled, data) / sd),
            "min_sim": float(np.nanmin(sim)),
        }
    return out


def run_dataset(name: str, path: Path, threads_one: bool) -> dict[str, Any]:
    sd = read_series(path)
    values = sd.values
    n = len(values)
    n_hold = int(round(0.2 * n))
    n_train = n - n_hold

    t0 = time.perf_counter()
    twin = datatwin.fit(str(path), kind="series")
    fit_s = time.perf_counter() - t0
    fit_s1 = None
    if threads_one:
        try:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"):
                t0 = time.perf_counter()
                datatwin.fit(str(path), kind="series")
                fit_s1 = time.perf_counter() - t0
        except ImportError:
            fit_s1 = None
    P = int(twin.model.info["max_lag_scanned"])
    sm_bits, sm_secs, sm_orders = statsmodels_autoreg(values, n_train, twin, P)
    iid = datatwin.fit(str(path), kind="series", structures="iid")
    sel_row = next(r for r in twin.leaderboard if r["selected"])
    fid_sel = fidelity(twin, values, sd.columns, seed=1)
    fid_iid = fidelity(iid, values, sd.columns, seed=1)
    return {
        "dataset": name,
        "steps": n,
        "columns": sd.columns,
        "decimals": sd.decimals,
        "holdout_steps": n_hold,
        "max_lag_scanned": P,
        "leaderboard": twin.leaderboard,
        "selected": twin.structure,
        "selected_holdout_bits": sel_row["holdout_bits"],
        "statsmodels": {
            "model": "AutoReg per column, order by ar_select_order(ic='aic')",
            "holdout_bits": sm_bits,
            "orders": dict(zip(sd.columns, sm_orders, strict=True)),
            "fit_seconds": sm_secs,
        },
        "bits_saved_vs_statsmodels": sm_bits - sel_row["holdout_bits"],
        "fit_seconds": fit_s,
        "fit_seconds_1_blas_thread": fit_s1,
        "fidelity": {"selected": fid_sel, "iid": fid_iid},
    }


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Series benchmark",
        "",
        f"`{meta['command']}` on {meta['machine']} (load average at start {meta['load']}), "
        f"datatwin {meta['datatwin']}, statsmodels {meta['statsmodels']}.",
        "",
        "Holdout = final 20% of each series; bits per time step (all columns of a step), each "
        "value scored as the probability of its recorded cell. Lower is better.",
        "",
    ]
    for r in results:
        sm = r["statsmodels"]
        lines += [
            f"## {r['dataset']} ({r['steps']} steps, columns {', '.join(r['columns'])}, "
            f"decimals {r['decimals']})",
            "",
            "| structure | order | transform | params | train bits | holdout bits | fit s |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for e in sorted(r["leaderboard"], key=lambda e: e["holdout_bits"]):
            star = " ★" if e.get("selected") else ""
            lines.append(
                f"| {e['structure']}{star} | {e['order']} | {e['transform']} | {e['params']} | "
                f"{e['train_bits']:.4f} | {e['holdout_bits']:.4f} | {e['fit_seconds']:.2f} |"
            )
        orders = ", ".join(f"{k}: {v}" for k, v in sm["orders"].items())
        lines.append(
            f"| statsmodels AutoReg (AIC; {orders}) | | none | | | "
            f"{sm['holdout_bits']:.4f} | {sm['fit_seconds']:.2f} |"
        )
        one = r["fit_seconds_1_blas_thread"]
        lines += [
            "",
            f"Selected **{r['selected']}**: {r['selected_holdout_bits']:.4f} bits/step vs "
            f"statsmodels {sm['holdout_bits']:.4f} (**{r['bits_saved_vs_statsmodels']:.3f} bits "
            f"per step fewer**). Whole fit (every candidate, selection, refit): "
            f"{r['fit_seconds']:.2f} s"
            + (f" ({one:.2f} s with BLAS limited to 1 thread)" if one else "")
            + ".",
            "",
            f"Simulation fidelity ({PATHS} paths of {r['steps']} steps from the end of the data): "
            "ACF RMS error over lags 1..50, KS statistic and Wasserstein-1 (in data SDs) of the "
            "marginal; lower is better.",
            "",
            "| column | model | ACF error | KS | W1 / sd | min simulated |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for c in r["columns"]:
            for which in ("selected", "iid"):
                f = r["fidelity"][which][c]
                lines.append(
                    f"| {c} | {which} | {f['acf_rmse']:.4f} | {f['ks']:.4f} | "
                    f"{f['wasserstein_sd']:.4f} | {f['min_sim']:g} |"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--threadpoolctl-check",
        action="store_true",
        help="also time a fit under threadpoolctl's 1-thread BLAS limit",
    )
    args = parser.parse_args()
    import statsmodels

    missing = [n for n in args.datasets.split(",") if not DATASETS[n].exists()]
    if missing:
        print(f"shared data not found for {missing} under {DATA}", file=sys.stderr)
        return 2
    meta = {
        "command": "/work/benchvenv/bin/python bench/series_bench.py",
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "datatwin": datatwin.__version__,
        "statsmodels": statsmodels.__version__,
    }
    results = []
    for name in args.datasets.split(","):
        print(f"running {name} ...", file=sys.stderr)
        results.append(run_dataset(name, DATASETS[name], args.threadpoolctl_check))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "series.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1, allow_nan=False)
    )
    md = to_markdown(results, meta)
    (RESULTS / "series.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
