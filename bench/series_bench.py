"""Series benchmark: datatwin's series candidates vs statsmodels AutoReg, same holdout, same cells.

Run with the bench venv (statsmodels is a peer, not a datatwin dependency):

    .benchvenv/bin/python bench/series_bench.py

For sunspot_month and elecdemand (../shared/data/series) it prints and writes
(bench/results/series.json, bench/results/series.md):

- holdout bits per time step (all columns of a step) of every datatwin candidate, fit on the
  first 80% and scored on the final 20%, conditioning on the steps before each one;
- state-space peers (SARIMAX, ETS, UnobservedComponents) per column, the best of a stated
  small search by AIC; for sub-daily series fit on the last PEER_WEEKS (8) weeks of the
  training part (bounded time), their parameters then filtering the whole series;
- statsmodels AutoReg per column with its own AIC order choice (`ar_select_order`, maxlag = the
  largest order datatwin scans), fit on the same 80% and scored on the same holdout steps at the
  same recorded precision (Gaussian mass of each value's cell, tails folded at the same bounds
  as datatwin's, which only helps AutoReg);
- fit seconds for the whole datatwin fit (all candidates, selection and the refit on all data;
  datatwin runs BLAS single-threaded during series fits, see datatwin/blas.py);
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
from datatwin.series.finer import adjust as finer_adjust  # noqa: E402
from datatwin.series.finer import snap  # noqa: E402
from datatwin.series.io import read_series  # noqa: E402
from datatwin.series.precision import cell_edges, forward, log_gauss_cell  # noqa: E402

DATASETS = {
    "sunspot_month": DATA / "sunspot_month.csv",
    "elecdemand": DATA / "elecdemand.csv",
    "elec_hourly_gaps": None,  # assembled from elecdemand by `hourly_with_gaps`
}
PATHS = 20
ACF_LAGS = 50
SEASON = {"sunspot_month": 12, "elecdemand": 48, "elec_hourly_gaps": 24}
#: state-space peers (SARIMAX, ETS, UnobservedComponents) of sub-daily series are fit on the
#: last this many weeks of the training part (their Kalman filters over 14k steps with 48
#: seasonal states took > 50 minutes); the fitted parameters then filter the whole series, so
#: they are scored on the same holdout steps with the whole history. AutoReg uses all of it.
PEER_WEEKS = 8


def peer_window(name: str) -> int | None:
    """Training steps the state-space peers of a series are fit on (None: all)."""
    s = SEASON[name]
    return PEER_WEEKS * 7 * s if s in (24, 48) else None


def hourly_with_gaps(out: Path) -> Path:
    """elecdemand on the hour, with missing steps punched out deterministically.

    Each hour's Demand is the mean of its two half-hours (3 decimals), Temperature the mean
    (1 decimal), WorkDay the hour's value; then rows are dropped: every hour whose index i has
    i * 7919 % 101 == 0 (single missing hours, ~1 %), and 6-hour blocks starting at every
    611th hour (short outages). Two seasons: the day (24 steps) and the week (168)."""
    import pandas as pd

    d = pd.read_csv(DATA / "elecdemand.csv", parse_dates=["time"])
    h = d.groupby(d.time.dt.floor("h")).agg(
        Demand=("Demand", "mean"), WorkDay=("WorkDay", "first"), Temperature=("Temperature", "mean")
    )
    h["Demand"] = h["Demand"].round(3)
    h["Temperature"] = h["Temperature"].round(1)
    i = np.arange(len(h))
    drop = (i * 7919) % 101 == 0
    for s0 in range(300, len(h), 611):
        drop[s0 : s0 + 6] = True
    h = h[~drop].reset_index()
    h["time"] = h["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    h.to_csv(out, index=False, float_format="%.10g")
    return out


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelation of lags 1..nlags of a series with gaps (NaN pairs skipped)."""
    x = x - np.nanmean(x)
    v = float(np.nansum(x * x))
    if v == 0:
        return np.zeros(nlags)
    n = np.sum(np.isfinite(x))
    return np.array(
        [
            float(np.nansum(x[k:] * x[:-k])) / v * n / max(np.sum(np.isfinite(x[k:] * x[:-k])), 1)
            for k in range(1, nlags + 1)
        ]
    )


# ---- peers: one-step predictive Gaussians on the same holdout steps, same cells ---------------
def _cells_bits(y, mean, var, twin, j, transform, rate):
    """Nats of each holdout step of column j: log P(cell) under N(mean, var) in the transformed
    space (tails folded at datatwin's bounds), with datatwin's missing rate for missing values
    and its term for values with more decimals than the grid (series/finer.py)."""
    cols = twin.cols
    dec = cols.decimals[j]
    fine, found = finer_adjust(y, dec, cols.finer[j])
    y = snap(y, found, dec)
    a, b = cell_edges(y, dec, cols.lower[j], cols.upper[j], transform, 0.0, 1.0)
    sd = np.sqrt(np.maximum(var, 1e-12))
    ok = np.isfinite(y)
    lp = np.where(ok, log_gauss_cell((a - mean) / sd, (b - mean) / sd) + fine, 0.0)
    if rate > 0:
        lp = np.where(ok, lp + np.log1p(-rate), np.log(rate))
    return lp


def _fourier(steps, per_day):
    cols = []
    for P, K in ((per_day, 6), (7 * per_day, 3)):
        for k in range(1, K + 1):
            w = 2 * np.pi * k * steps / P
            cols += [np.cos(w), np.sin(w)]
    return np.column_stack(cols)


def statsmodels_peers(name, values, n_train, twin, cal_bits):
    """Every peer's holdout nats per step (sum over columns) and fit seconds."""
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    s = SEASON[name]
    n = len(values)
    rows = np.arange(n_train, n)
    tr = twin.transforms
    cal = [twin.cols.names.index(c) for c in twin.params.get("exog") or []]
    names = twin.cols.names
    # calendar regressors (known future inputs for every peer): daily/weekly Fourier terms and
    # the calendar columns for sub-daily data, none for monthly sunspots
    steps = np.arange(n, dtype=float)
    exog = None
    if s in (24, 48):
        exog = np.column_stack([_fourier(steps, s)] + [pd_fill(values[:, j]) for j in cal])
        exog = np.nan_to_num(exog, nan=0.0)
    out: dict[str, Any] = {}

    def add(peer, j, mean, var, secs, label):
        y = forward(values[rows, j], tr[j])
        lp = _cells_bits(values[rows, j], mean, var, twin, j, tr[j], twin.missing_rate[j])
        del y
        e = out.setdefault(peer, {"nats": np.zeros(len(rows)), "secs": 0.0, "orders": {}})
        e["nats"] -= lp
        e["secs"] += secs
        e["orders"][names[j]] = label

    for j in range(len(names)):
        if j in cal:
            continue
        y = forward(values[:, j], tr[j])
        yt = y[:n_train]
        ex, ext = (exog, exog[:n_train]) if exog is not None else (None, None)
        # AutoReg, AIC order (exogenous calendar regressors as for the others)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yf = pd_fill(yt)
            sel = ar_select_order(
                yf, maxlag=int(twin.model.info["max_lag_scanned"]), ic="aic", trend="c", exog=ext
            )
            lags = list(sel.ar_lags or [])
            res = AutoReg(yf, lags=lags or 0, trend="c", exog=ext).fit()
        secs = time.perf_counter() - t0
        yfull = pd_fill(y)
        params = np.asarray(res.params)
        mean = np.full(len(rows), params[0])
        for k, lag in enumerate(lags):
            mean += params[1 + k] * yfull[rows - lag]
        if ex is not None:
            mean += ex[rows] @ params[1 + len(lags) :]
        add("AutoReg", j, mean, np.full(len(rows), res.sigma2), secs, max(lags) if lags else 0)
        # state-space peers: fit on the training part, filter the whole series with the fitted
        # parameters, one-step predictive mean and variance at each holdout step
        specs = []
        seas = (1, 0, 0, s) if s == 12 else (0, 0, 0, 0)
        pqs = (
            ((1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1))
            if s == 12
            else ((1, 0), (2, 0), (2, 1))
        )
        for p, q in pqs:
            for so in {(1, 0, 0, 12), (0, 0, 0, 0)} if s == 12 else {seas}:
                specs.append(
                    (
                        "SARIMAX",
                        f"({p},0,{q})x{so}" + (" +calendar" if ex is not None else ""),
                        lambda e, p=p, q=q, so=so: SARIMAX(
                            e[0], exog=e[1], order=(p, 0, q), seasonal_order=so, trend="c"
                        ),
                    )
                )
        for damped in (False, True) if s == 12 else (False,):
            specs.append(
                (
                    "ETS",
                    f"A,{'Ad' if damped else 'N'},A{s}",
                    lambda e, damped=damped: ExponentialSmoothing(
                        e[0],
                        trend=damped,
                        damped_trend=damped,
                        seasonal=s,
                        initialization_method="concentrated",
                    ),
                )
            )
        uc_seas = [{"period": s, "harmonics": 4}]
        if s in (24, 48):
            uc_seas.append({"period": 7 * s, "harmonics": 3})
        specs.append(
            (
                "UnobservedComponents",
                "local level + trig seasons + AR(2)",
                lambda e, uc_seas=uc_seas: UnobservedComponents(
                    e[0],
                    level="llevel",
                    freq_seasonal=uc_seas,
                    autoregressive=2,
                    exog=e[1][:, -len(cal) :] if cal else None,
                ),
            )
        )
        best: dict[str, tuple] = {}
        for peer, label, make in specs:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = make(_recent((yt, ext), peer_window(name))).fit(disp=False, maxiter=100)
            except Exception as err:  # noqa: BLE001 - a peer that fails is reported
                print(f"  {peer} {label}: {err}", file=sys.stderr)
                continue
            secs = time.perf_counter() - t0
            b = best.get(peer)
            tot = (b[3] if b else 0.0) + secs
            if b is None or res.aic < b[0]:
                best[peer] = (res.aic, label, make, tot, res.params)
            else:
                best[peer] = (*b[:3], tot, b[4])
        for peer, (_, label, make, secs, params) in best.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = make((y, ex)).filter(params)
                pr = full.get_prediction(start=n_train, end=n - 1)
            w = peer_window(name)
            label = label + (f" [fit on the last {w} training steps]" if w else "")
            add(peer, j, np.asarray(pr.predicted_mean), np.asarray(pr.var_pred_mean), secs, label)
    for e in out.values():
        e["nats"] = e["nats"] + cal_bits * np.log(2)
        e["holdout_bits"] = float(e.pop("nats").mean() / np.log(2))
    return out


def _recent(e, window):
    """The last `window` training steps (series and exogenous regressors), or all."""
    if window is None:
        return e
    return (e[0][-window:], None if e[1] is None else e[1][-window:])


def pd_fill(y):
    """Missing values carried forward (AutoReg needs a complete series)."""
    import pandas as pd

    return pd.Series(y).ffill().bfill().to_numpy()


def profiles(sim_times, real_times, real, sims, per_day):
    """Mean by hour of day / by weekday, real vs simulated (max relative error)."""
    import pandas as pd

    out = {}
    rt = pd.DatetimeIndex(pd.to_datetime(real_times))
    st = pd.DatetimeIndex(pd.to_datetime(sim_times))
    for key, fr, fs in (("hour", rt.hour, st.hour), ("weekday", rt.day_of_week, st.day_of_week)):
        r = pd.Series(real).groupby(np.asarray(fr)).mean()
        m = pd.Series(sims.mean(axis=0)).groupby(np.asarray(fs)).mean()
        out[key] = (r, m)
    return out


def fidelity(twin, sd, seed, per_day):
    """Marginal, ACF, profile and cross-correlation distances of simulated paths to the data."""
    values, names = sd.values, sd.columns
    n = len(values)
    s = twin.sample(n, seed=seed, paths=PATHS)
    out: dict[str, Any] = {"columns": {}}
    sims = {}
    times = s["time"].to_numpy()[:n] if "time" in s else None
    for j, c in enumerate(names):
        data = values[:, j]
        sim = s[c].to_numpy(dtype=float).reshape(PATHS, n)
        sims[c] = sim
        a_data = acf(data, ACF_LAGS)
        a_sim = np.mean([acf(p, ACF_LAGS) for p in sim], axis=0)
        pooled = sim[np.isfinite(sim)]
        ok = data[np.isfinite(data)]
        sdv = float(np.std(ok)) or 1.0
        f = {
            "acf_rmse": float(np.sqrt(np.mean((a_sim - a_data) ** 2))),
            "ks": float(stats.ks_2samp(pooled, ok).statistic),
            "wasserstein_sd": float(stats.wasserstein_distance(pooled, ok) / sdv),
            "min_sim": float(np.nanmin(sim)),
            "max_sim": float(np.nanmax(sim)),
            "sd_ratio": float(np.nanstd(sim) / sdv),
        }
        if times is not None and per_day:
            pr = profiles(times, sd.times, data, sim, per_day)
            if per_day > 1:
                r, m = pr["hour"]
                f["hour_profile_max_rel"] = float(np.max(np.abs(m - r) / np.abs(r).clip(1e-9)))
            r, m = pr["weekday"]
            f["weekday_profile_max_abs"] = float(np.max(np.abs(m - r)))
            if set(np.unique(ok)) <= {0.0, 1.0}:
                f["share_by_weekday_real"] = [round(float(v), 4) for v in r]
                f["share_by_weekday_sim"] = [round(float(v), 4) for v in m]
        out["columns"][c] = f
    if len(names) > 1:
        real_c = np.ma.corrcoef(np.ma.masked_invalid(values.T)).filled(np.nan)
        # simulated paths have missing values too (drawn at the data's rate): masked as the data
        sim_c = np.mean(
            [
                np.ma.corrcoef(
                    np.ma.masked_invalid(np.column_stack([sims[c][k] for c in names]).T)
                ).filled(np.nan)
                for k in range(PATHS)
            ],
            axis=0,
        )
        out["cross_corr_max_abs"] = float(np.nanmax(np.abs(real_c - sim_c)))
    return out


def run_dataset(name: str, path: Path) -> dict[str, Any]:
    gaps = "fill" if name == "elec_hourly_gaps" else "error"
    sd = read_series(path, gaps=gaps)
    values = sd.values
    n = len(values)
    n_hold = int(round(0.2 * n))
    n_train = n - n_hold
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    twin = datatwin.fit(str(path), kind="series", time_gaps=gaps)
    fit_s = time.perf_counter() - t0
    train_twin = datatwin.fit(
        str(path),
        kind="series",
        time_gaps=gaps,
        structures=twin.structure,
        refit=False,
        max_lag=twin.params["max_lag"],
    )
    # the calendar columns' bits under datatwin's calendar model, given to every peer
    from datatwin.series.ar import prepare

    m = train_twin.model
    prep = prepare(
        values, train_twin.cols, train_twin.transforms, train_twin.center, train_twin.scale
    )
    rows = np.arange(n_train, n)
    per_col = []
    for j, (o, lp) in enumerate(m.cell_log_probs(prep, rows, rows)):
        full = np.zeros(len(rows))
        full[o] = prep.cell_logp(rows[o], j, lp)
        r = train_twin.missing_rate[j]
        if r > 0:
            full = np.where(o, full + np.log1p(-r), np.log(r))
        per_col.append(-full / np.log(2))
    cal_cols = [train_twin.cols.names.index(c) for c in train_twin.params.get("exog") or []]
    cal_bits = sum(per_col[j] for j in cal_cols) if cal_cols else np.zeros(len(rows))
    sel_row = next(r for r in twin.leaderboard if r["selected"])
    t0 = time.perf_counter()
    peers = statsmodels_peers(name, values, n_train, train_twin, cal_bits)
    peer_s = time.perf_counter() - t0
    iid = datatwin.fit(str(path), kind="series", structures="iid", time_gaps=gaps)
    per_day = twin.time.steps_per_day if twin.time.kind == "datetime" else None
    per_day = int(round(per_day)) if per_day else None
    fid_sel = fidelity(twin, sd, 1, per_day)
    fid_iid = fidelity(iid, sd, 1, per_day)
    # simulation speed: 1000 paths x 1000 steps
    t0 = time.perf_counter()
    twin.sample(1000, seed=2, paths=1000)
    sim_rate = 1e6 / (time.perf_counter() - t0)
    return {
        "dataset": name,
        "steps": n,
        "columns": sd.columns,
        "decimals": sd.decimals,
        "missing_steps": sd.filled_gaps,
        "holdout_steps": n_hold,
        "leaderboard": twin.leaderboard,
        "selected": twin.structure,
        "params": twin.params,
        "selected_holdout_bits": sel_row["holdout_bits"],
        "selected_bits_by_column": {c: float(per_col[j].mean()) for j, c in enumerate(sd.columns)},
        "peers": peers,
        "peer_seconds": peer_s,
        "fit_seconds": fit_s,
        "load_at_fit": [round(x, 2) for x in load0],
        "sim_steps_per_second": sim_rate,
        "fidelity": {"selected": fid_sel, "iid": fid_iid},
    }


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Series benchmark",
        "",
        f"`{meta['command']}` on {meta['machine']} (load average at start {meta['load']}), "
        f"datatwin {meta['datatwin']}, statsmodels {meta['statsmodels']}.",
        "",
        "Holdout = final 20% of each series, the same steps for every model; bits per time step "
        "(all columns of a step), each value scored as the probability of its recorded cell. "
        "Peers are fit per column on the first 80 % under datatwin's per-column transform "
        f"(state-space peers of sub-daily series on its last {PEER_WEEKS} weeks, their "
        "parameters then filtering the whole series; SARIMAX orders (p,0,q) searched over "
        "(1,0), (2,0), (2,1) for sub-daily series, (1..3, 0..1) with and without a seasonal "
        "AR(1) for monthly), "
        "scored from their one-step predictive Gaussians (tails folded at datatwin's bounds); "
        "calendar columns are known regressors for them and cost them datatwin's calendar "
        "bits; missing values cost them datatwin's missing rate, values with more decimals than "
        "the column's precision datatwin's finer-value term. Lower is better.",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['dataset']} ({r['steps']} steps, {r['missing_steps']} missing steps, columns "
            f"{', '.join(r['columns'])}, decimals {r['decimals']})",
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
        lines += [
            "",
            "| peer (statsmodels) | orders (AIC) | holdout bits | twin ahead by | fit s |",
            "|---|---|---:|---:|---:|",
        ]
        for peer, e in r["peers"].items():
            orders = "; ".join(f"{k}: {v}" for k, v in e["orders"].items())
            lines.append(
                f"| {peer} | {orders} | {e['holdout_bits']:.4f} | "
                f"{e['holdout_bits'] - r['selected_holdout_bits']:+.3f} | {e['secs']:.1f} |"
            )
        lines += [
            "",
            f"Selected **{r['selected']}** ({r['selected_holdout_bits']:.4f} bits/step). Whole "
            f"fit (every candidate, selection, refit): {r['fit_seconds']:.2f} s at load "
            f"{r['load_at_fit']}; simulation {r['sim_steps_per_second'] / 1e6:.2f} M steps/s "
            "(1000 paths × 1000 steps).",
            "",
            f"Simulation fidelity ({PATHS} paths as long as the data, from its end): ACF RMS error "
            "over lags 1..50, KS and Wasserstein-1 (data SDs) of the marginal, SD ratio, the "
            "largest relative error of the mean by hour of day, the largest error of the mean by "
            "weekday.",
            "",
            "| column | model | ACF err | KS | W1/sd | sd ratio | hour profile | weekday profile "
            "| min..max sim |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in r["columns"]:
            for which in ("selected", "iid"):
                f = r["fidelity"][which]["columns"][c]
                hp = f.get("hour_profile_max_rel")
                wp = f.get("weekday_profile_max_abs")
                lines.append(
                    f"| {c} | {which} | {f['acf_rmse']:.4f} | {f['ks']:.4f} | "
                    f"{f['wasserstein_sd']:.4f} | {f['sd_ratio']:.3f} | "
                    f"{'' if hp is None else f'{100 * hp:.1f} %'} | "
                    f"{'' if wp is None else f'{wp:.4f}'} | {f['min_sim']:g}..{f['max_sim']:g} |"
                )
        for which in ("selected", "iid"):
            fw = r["fidelity"][which]
            if "cross_corr_max_abs" in fw:
                lines.append(
                    f"\nCross-correlation (lag 0) largest error, {which}: "
                    f"{fw['cross_corr_max_abs']:.4f}"
                )
            for c, f in fw["columns"].items():
                if "share_by_weekday_sim" in f and which == "selected":
                    lines.append(
                        f"\n{c} share by weekday (Mon..Sun): data "
                        f"{f['share_by_weekday_real']}, simulated "
                        f"{f['share_by_weekday_sim']}"
                    )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    import tempfile

    import statsmodels

    tmp = Path(tempfile.mkdtemp(prefix="series_bench_"))
    DATASETS["elec_hourly_gaps"] = hourly_with_gaps(tmp / "elec_hourly_gaps.csv")
    meta = {
        "command": ".benchvenv/bin/python bench/series_bench.py",
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "datatwin": datatwin.__version__,
        "statsmodels": statsmodels.__version__,
    }
    results = []
    for name in args.datasets.split(","):
        print(f"running {name} ...", file=sys.stderr)
        results.append(run_dataset(name, DATASETS[name]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.datasets != ",".join(DATASETS) and (RESULTS / "series.json").exists():
        # a partial run keeps the other datasets of the last run (each with its own load)
        old = json.loads((RESULTS / "series.json").read_text())["results"]
        done = {r["dataset"] for r in results}
        keep = [r for r in old if r["dataset"] not in done and r["dataset"] in DATASETS]
        results = sorted(keep + results, key=lambda r: list(DATASETS).index(r["dataset"]))
    (RESULTS / "series.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1, allow_nan=False)
    )
    md = to_markdown(results, meta)
    (RESULTS / "series.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
