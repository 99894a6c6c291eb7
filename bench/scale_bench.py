"""Fit time and peak memory of `datatwin fit` against rows, for three kinds of table.

    python bench/scale_bench.py                      # 10k, 100k, 1M rows (about 10 minutes)
    python bench/scale_bench.py --rows 10000,100000 --kinds alarm --out scale-results

Tables:
- alarm-like: rows sampled from a twin of `bn/alarm/train_100000.csv.gz` (37 categorical columns);
- adult-like: rows sampled from a twin of `tables/adult/adult_train.csv` (mixed types);
- flights-like: a generator of our own (`flights`): dates, HHMM clock times, delays that are
  differences of clock times, a 4,000-value categorical (tail numbers) and a few others.

Every fit runs in its own child process (`fit` sub-command); its peak resident memory comes
from `os.wait4` (the child's own `ru_maxrss`), its stage times from the child itself. Each fit
time is also given as a multiple of pyarrow reading the same file, right after, in its own
child (so pyarrow's memory pool is not in the fit's peak). The growth
exponent b of time ≈ a·rowsᵇ is a least-squares line in log-log. Results: JSON and markdown
(and a log-log PNG when matplotlib is installed) in `--out` (default bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[0].parent / "shared" / "data"
SOURCES = {
    "alarm": DATA / "bn" / "alarm" / "train_100000.csv.gz",
    "adult": DATA / "tables" / "adult" / "adult_train.csv",
}
KINDS = ("alarm", "adult", "flights")


# ---- data generators ----------------------------------------------------------------------
def flights(n: int, seed: int = 0) -> Any:
    """A flights-like table: date, carrier, tail number (4,000 values), origin, destination,
    scheduled/actual departure and arrival as HHMM clock times, delays as their differences
    (minutes), distance, cancelled flag."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    day = rng.integers(0, 365, n)
    date = (np.datetime64("2023-01-01") + day.astype("timedelta64[D]")).astype(str)
    carriers = np.array(["AA", "DL", "UA", "WN", "B6", "AS", "NK", "F9", "HA", "G4"])
    carrier = rng.choice(
        len(carriers), n, p=np.r_[0.2, 0.18, 0.16, 0.2, 0.06, 0.06, 0.05, 0.04, 0.02, 0.03]
    )
    pop = 1.0 / (np.arange(4000) + 10.0) ** 0.9  # tail numbers: a long-tailed popularity
    tail = np.array([f"N{100 + i}{carriers[i % 10]}" for i in range(4000)])[
        rng.choice(4000, n, p=pop / pop.sum())
    ]
    airports = np.array([f"A{i:02d}" for i in range(60)])
    w = 1.0 / np.arange(1, 61) ** 0.8
    origin = rng.choice(60, n, p=w / w.sum())
    dest = (origin + 1 + rng.choice(59, n, p=w[:59] / w[:59].sum())) % 60
    distance = 150 + (np.abs(origin - dest) * 37 + (origin * dest) % 211) * 3
    sched_dep = np.clip(rng.normal(13 * 60, 4 * 60, n), 5 * 60, 23 * 60 + 30).astype(int) // 5 * 5
    dep_delay = np.round(rng.gamma(0.6, 25, n) - 6 + (carrier == 3) * 4).astype(int)
    dep_min = sched_dep + dep_delay
    block = (distance / 8 + 25).astype(int) // 5 * 5
    arr_delay = dep_delay + np.round(rng.normal(-3, 9, n)).astype(int)
    sched_arr = sched_dep + block
    arr_min = sched_arr + arr_delay
    cancelled = rng.random(n) < 0.015 + 0.002 * (carrier == 7)

    def hhmm(m: np.ndarray) -> np.ndarray:
        m = np.mod(m, 24 * 60)
        return (m // 60) * 100 + m % 60

    frame = pd.DataFrame(
        {
            "date": date,
            "carrier": carriers[carrier],
            "tail": tail,
            "origin": airports[origin],
            "dest": airports[dest],
            "sched_dep": hhmm(sched_dep),
            "dep_time": hhmm(dep_min),
            "dep_delay": dep_delay,
            "sched_arr": hhmm(sched_arr),
            "arr_time": hhmm(arr_min),
            "arr_delay": arr_delay,
            "distance": distance,
            "cancelled": cancelled.astype(int),
        }
    )
    for c in ("dep_time", "dep_delay", "arr_time", "arr_delay"):
        frame[c] = frame[c].astype("Int64").mask(cancelled)
    return frame


def make_table(kind: str, n: int, path: Path, cache: Path) -> Path:
    """Write `n` rows of a `kind` table to `path` (CSV) in a child process (so that this
    process stays small: a child forked from it starts with its memory high-water mark)."""
    if not path.exists():
        cmd = [sys.executable, __file__, "make", kind, str(n), str(path), str(cache)]
        subprocess.run(cmd, check=True)
    return path


def child_make(kind: str, n: int, path: Path, cache: Path) -> None:
    """`make_table`'s work: flights from the generator (in blocks of a million rows, seeds
    0, 1, ... past the first), the others sampled from a cached twin of their source, streamed
    to the file by `datatwin sample`."""
    if kind == "flights":
        block = 1_000_000
        for i, start in enumerate(range(0, n, block)):
            part = flights(min(block, n - start), seed=i)
            part.to_csv(path, index=False, mode="a" if i else "w", header=not i)
        return
    import datatwin

    model = cache / f"{kind}_source.twin"
    if not model.exists():
        datatwin.fit(SOURCES[kind], seed=0).save(model)
    from datatwin.cli import main as cli

    if cli(["-q", "sample", str(model), "-n", str(n), "-o", str(path), "--seed", "0"]) != 0:
        raise SystemExit(f"sampling {path} failed")


# ---- one fit in a child process -----------------------------------------------------------
def child_pyarrow(path: str) -> dict[str, Any]:
    """Seconds for pyarrow to read `path` (its own process, so its memory pool does not count
    in the fit's peak)."""
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    pacsv.read_csv(path)
    return {"pyarrow_read_s": time.perf_counter() - t0}


def child_fit(path: str) -> dict[str, Any]:
    """Stage times of `datatwin.fit` (read + fit)."""
    import datatwin
    from datatwin import progress
    from datatwin.reader import read_table

    t1 = time.perf_counter()
    raw = read_table(path)
    t2 = time.perf_counter()
    with progress.recording() as steps:
        twin = datatwin.fit(raw, seed=0)
    t3 = time.perf_counter()
    best = min(twin.leaderboard, key=lambda r: r["holdout_bits"])
    return {
        "read_s": t2 - t1,
        "fit_s": t3 - t2,
        "total_s": t3 - t1,
        **stage_times(steps, t3 - t2),
        "selected": twin.structure,
        "holdout_bits": best["holdout_bits"],
        "candidates": [
            {k: r[k] for k in ("structure", "holdout_bits", "fit_seconds")}
            for r in twin.leaderboard
        ],
    }


#: fit stages by the start of their `progress.step` messages
STAGES = {
    "split_s": ("holding out",),
    "schema_s": ("inferring",),
    "search_s": ("fitting",),
    "refit_s": ("counting", "refitting"),
}


def stage_times(steps: list[tuple[str, float]], fit_s: float) -> dict[str, float]:
    """Seconds per fit stage (`STAGES`) from the recorded steps; `other_s` is the rest of the
    fit (encoding for scoring, leaderboard)."""
    out = {
        key: sum(s for msg, s in steps if msg.startswith(prefixes))
        for key, prefixes in STAGES.items()
    }
    out["other_s"] = max(0.0, fit_s - sum(out.values()))
    return out


def to_parquet_parts(csv: Path, folder: Path, parts: int) -> Path:
    """The CSV as a folder of `parts` Parquet files of text columns (the cells as written)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if folder.exists():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with open(csv, "rb") as fh:
        names = fh.readline().decode().strip().split(",")
        rows = sum(1 for _ in fh)
    per = -(-rows // parts)
    conv = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
    batches, held, k = [], 0, 0
    with pacsv.open_csv(csv, convert_options=conv) as reader:
        for batch in reader:
            batches.append(batch)
            held += batch.num_rows
            while held >= per:
                table = pa.Table.from_batches(batches)
                pq.write_table(table.slice(0, per), tmp / f"part-{k:04d}.parquet")
                rest = table.slice(per)
                batches, held, k = rest.to_batches(), rest.num_rows, k + 1
    if held:
        pq.write_table(pa.Table.from_batches(batches), tmp / f"part-{k:04d}.parquet")
    tmp.rename(folder)
    return folder


def child_dask_fit(folder: str) -> dict[str, Any]:
    """`datatwin.fit` of a Parquet folder through Dask (a LocalCluster of 2 worker
    processes); the client's own peak RSS (workers are other processes)."""
    import resource

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import datatwin

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        frame = dd.read_parquet(folder)
        t0 = time.perf_counter()
        twin = datatwin.fit(frame, seed=0)
        secs = time.perf_counter() - t0
    best = min(twin.leaderboard, key=lambda r: r["holdout_bits"])
    return {
        "partitions": frame.npartitions,
        "fit_s": secs,
        "client_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "selected": twin.structure,
        "holdout_bits": best["holdout_bits"],
    }


CHILDREN = {"fit": child_fit, "dask": child_dask_fit, "pyarrow": child_pyarrow}


def run_child(path: Path, mode: str = "fit") -> dict[str, Any]:
    """`child_fit` (or `child_dask_fit`) in a fresh interpreter; adds its peak RSS (MB) and
    the load average."""
    load = os.getloadavg()
    proc = subprocess.Popen(
        [sys.executable, __file__, mode, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"fit of {path} failed ({proc.returncode})")
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_mb"] = usage.ru_maxrss / 1024.0  # KiB on Linux
    res["loadavg_before"] = load
    if "total_s" in res:  # pyarrow reading the same file, right after, in its own process
        res["pyarrow_read_s"] = run_child(path, "pyarrow")["pyarrow_read_s"]
        res["fit_over_pyarrow"] = res["total_s"] / max(res["pyarrow_read_s"], 1e-9)
    return res


def exponent(rows: list[int], secs: list[float]) -> float | None:
    """b in secs ≈ a·rowsᵇ (least squares in log-log), None with fewer than two points or a
    stage that took no time (no refit, say)."""
    if len(rows) < 2 or min(secs) <= 0:
        return None
    return float(np.polyfit(np.log(rows), np.log(secs), 1)[0])


def report(results: dict[str, list[dict[str, Any]]], out: Path) -> None:
    lines = [
        "# datatwin fit: time and peak memory against rows",
        "",
        f"Machine: {os.cpu_count()} cores, shared; load average recorded per run. "
        "`x pyarrow` = read + fit time over pyarrow reading the same file.",
        "",
        "| table | rows | read s | split s | search s | refit s | other s | fit s | total s | "
        "x pyarrow | peak MB | load | selected | holdout bits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for kind, runs in results.items():
        for r in runs:
            stages = " | ".join(
                f"{r[k]:.2f}" if k in r else "–" for k in ("split_s", "search_s", "refit_s")
            )
            other = f"{r['other_s'] + r.get('schema_s', 0.0):.2f}" if "other_s" in r else "–"
            lines.append(
                f"| {kind} | {r['rows']:,} | {r['read_s']:.2f} | {stages} | {other} | "
                f"{r['fit_s']:.2f} | {r['total_s']:.2f} | {r['fit_over_pyarrow']:.0f} | "
                f"{r['peak_mb']:.0f} | {r['loadavg_before'][0]:.2f} | {r['selected']} | "
                f"{r['holdout_bits']:.3f} |"
            )
    lines += [
        "",
        "`other` = schema inference, encoding and scoring outside the candidates' fits. "
        "Growth exponents b of time ≈ a·rowsᵇ per stage and of peak memory:",
        "",
    ]
    for kind, runs in results.items():
        rows = [r["rows"] for r in runs]
        parts = []
        for key in ("read_s", "search_s", "refit_s", "total_s", "peak_mb"):
            b = exponent(rows, [r[key] for r in runs]) if all(key in r for r in runs) else None
            if b is not None:
                parts.append(f"{key.rsplit('_', 1)[0]} b = {b:.2f}")
        lines.append(f"- {kind}: " + ", ".join(parts))
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    (out / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for kind, runs in results.items():
        rows = [r["rows"] for r in runs]
        ax[0].loglog(rows, [r["total_s"] for r in runs], "o-", label=kind)
        ax[1].loglog(rows, [r["peak_mb"] for r in runs], "o-", label=kind)
    ax[0].set(xlabel="rows", ylabel="read + fit seconds", title="time")
    ax[1].set(xlabel="rows", ylabel="peak RSS (MB)", title="memory")
    for a in ax:
        a.legend()
        a.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=100)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "make":
        child_make(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return
    if len(sys.argv) == 3 and sys.argv[1] in CHILDREN:
        child = CHILDREN[sys.argv[1]]
        print(json.dumps(child(sys.argv[2])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10000,100000,1000000", help="comma-separated row counts")
    ap.add_argument("--kinds", default=",".join(KINDS), help="alarm, adult, flights")
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for the results")
    ap.add_argument(
        "--data",
        default=os.path.join(tempfile.gettempdir(), "datatwin-scale"),
        help="folder for generated tables (default: the system's temporary folder)",
    )
    ap.add_argument("--keep", action="store_true", help="keep other kinds' earlier results")
    ap.add_argument(
        "--dask",
        metavar="ROWS",
        type=int,
        help="instead: fit an alarm-like table of ROWS rows as Parquet in >= 20 partitions "
        "through Dask (LocalCluster, 2 worker processes); the client's peak memory",
    )
    args = ap.parse_args()
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    if args.dask:
        dask_run(args.dask, data, out)
        return
    results: dict[str, list[dict[str, Any]]] = {}
    if args.keep and (out / "scale.json").exists():  # other kinds from an earlier run
        results = json.loads((out / "scale.json").read_text())
    for kind in args.kinds.split(","):
        results[kind] = []
        for n in sorted(int(r) for r in args.rows.split(",")):
            path = make_table(kind, n, data / f"{kind}_{n}.csv", data)
            res = {"rows": n, **run_child(path)}
            print(
                f"{kind} {n:>9,} rows: {res['total_s']:.1f} s, {res['peak_mb']:.0f} MB, "
                f"{res['fit_over_pyarrow']:.0f}x pyarrow, load {res['loadavg_before'][0]:.2f}",
                file=sys.stderr,
            )
            results[kind].append(res)
            report(results, out)


def dask_run(n: int, data: Path, out: Path) -> None:
    csv = make_table("alarm", n, data / f"alarm_{n}.csv", data)
    parts = max(20, n // 500_000)
    folder = to_parquet_parts(csv, data / f"alarm_{n}_parquet{parts}", parts)
    res = {"rows": n, **run_child(folder, "dask")}
    print(
        f"dask alarm {n:,} rows, {res['partitions']} partitions: {res['fit_s']:.1f} s, client "
        f"{res['client_peak_mb']:.0f} MB, load {res['loadavg_before'][0]:.2f}, "
        f"{res['selected']} {res['holdout_bits']:.4f} bits",
        file=sys.stderr,
    )
    (out / "scale_dask.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
