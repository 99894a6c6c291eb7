"""Tabular benchmark: datatwin vs pgmpy on networks with known truth, plus Adult.

One command runs the suite and prints the tables (and writes bench/results/tabular.json/.md):

    .benchvenv/bin/python bench/tabular_bench.py            # full suite, with pgmpy
    .benchvenv/bin/python bench/tabular_bench.py --no-peers # datatwin only

For every ../shared/data/bn/<net>/train_<n>.csv.gz (and gbn/ecoli70): the whole
`datatwin fit` command (every candidate + selection + refit, wall clock, new process), its
holdout bits per record on holdout.csv.gz minus the limit in truth.json, the structural
Hamming distance (SHD) of the selected DAG to the true DAG, and the floor (pandas.read_csv
of the same file). pgmpy (HillClimbSearch + BDeu, BayesianEstimator BDeu) runs on the same
files in the same run. Sampling speed through the Python API on alarm. Adult: holdout bits
of every structure on adult_test.csv and sample fidelity (missing rates, capital-gain == 0).
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.metrics import shd  # noqa: E402

SHARED = Path(os.environ.get("DATATWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATATWIN = [sys.executable, "-m", "datatwin.cli"]


def _fit_cli(train: Path, model: Path, extra: list[str] | None = None) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [*DATATWIN, "-q", "fit", str(train), "-o", str(model), "--json", *(extra or [])],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout), time.perf_counter() - t0


def _score_cli(model: Path, data: Path) -> dict:
    out = subprocess.run(
        [*DATATWIN, "score", str(model), str(data), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _fit_api(train: Path) -> float:
    """The same fit (every candidate, selection, refit) through the Python API, in-process."""
    import datatwin
    from datatwin import progress

    progress.enable_cli(quiet=True)
    t0 = time.perf_counter()
    datatwin.fit(train, seed=0)
    return time.perf_counter() - t0


def _floor(path: Path) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        pd.read_csv(path)
        best = min(best, time.perf_counter() - t0)
    return best


def _pgmpy(train: Path, holdout: Path, timeout: float) -> dict | None:
    code = (
        "import json,sys; from bench.peers.pgmpy_bn import run_pgmpy; "
        "print(json.dumps(run_pgmpy(sys.argv[1], sys.argv[2])))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, str(train), str(holdout)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    if out.returncode != 0:
        return {"status": "error", "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def bn_suite(peers: bool, timeout: float, tmp: Path) -> list[dict]:
    rows = []
    for folder in [SHARED / "bn" / n for n in ("asia", "alarm", "insurance")] + [
        SHARED / "gbn" / "ecoli70"
    ]:
        if not folder.exists():
            continue
        truth = json.loads((folder / "truth.json").read_text())
        limit = truth["limit_bits_per_record_on_holdout"]
        holdout = folder / "holdout.csv.gz"
        for train in sorted(
            folder.glob("train_*.csv.gz"), key=lambda p: int(p.stem.split("_")[1].split(".")[0])
        ):
            n = int(train.name.split("_")[1].split(".")[0])
            model = tmp / f"{folder.name}_{n}.twin"
            summary, secs = _fit_cli(train, model)
            bits = _score_cli(model, holdout)["bits_per_unit"]
            row = {
                "dataset": folder.name,
                "n_train": n,
                "limit": limit,
                "datatwin_bits": bits,
                "datatwin_excess": bits - limit,
                "datatwin_fit_s": secs,
                "selected": summary["selected"],
                "datatwin_shd": shd(summary["edges"], truth["true_edges"]),
                "datatwin_edges": len(summary["edges"]),
                "true_edges": len(truth["true_edges"]),
                "read_floor_s": _floor(train),
            }
            row["fit_over_floor"] = secs / row["read_floor_s"]
            row["datatwin_api_fit_s"] = _fit_api(train)
            if peers and folder.parent.name == "bn":
                p = _pgmpy(train, holdout, timeout)
                row["pgmpy_status"] = p.get("status", "ok")
                if "holdout_bits" in p:
                    row.update(
                        pgmpy_bits=p["holdout_bits"],
                        pgmpy_excess=p["holdout_bits"] - limit,
                        pgmpy_fit_s=p["fit_seconds"],
                        pgmpy_structure_s=p.get("fit_seconds_structure"),
                        pgmpy_shd=shd(p["edges"], truth["true_edges"]),
                        pgmpy_sample_per_s=p.get("sample_records_per_second"),
                        pgmpy_unseen_rows=p.get("n_unseen_rows"),
                    )
                    row["fit_time_ratio"] = p["fit_seconds"] / row["datatwin_api_fit_s"]
            rows.append(row)
            print(_fmt_row(row), file=sys.stderr, flush=True)
    return rows


def score_suite() -> list[dict]:
    """Holdout excess of `bayesnet` under each structure score (how the default was chosen)."""
    from datatwin.tabular import TableTwin

    rows = []
    for net, n in (("alarm", 1000), ("alarm", 10000), ("insurance", 1000), ("insurance", 10000)):
        folder = SHARED / "bn" / net
        if not folder.exists():
            continue
        limit = json.loads((folder / "truth.json").read_text())["limit_bits_per_record_on_holdout"]
        row = {"dataset": net, "n_train": n}
        for score in ("bde", "bdeu", "bic"):
            twin = TableTwin.fit(folder / f"train_{n}.csv.gz", structure="bayesnet", score=score)
            row[score] = twin.bits(folder / "holdout.csv.gz") - limit
        rows.append(row)
    return rows


def sampling_speed(tmp: Path) -> dict:
    import datatwin

    model = tmp / "alarm_10000.twin"
    if not model.exists():
        return {}
    twin = datatwin.load(model)
    twin.sample(1000, seed=0)
    best = float("inf")
    n = 500_000
    for seed in range(3):
        t0 = time.perf_counter()
        twin.sample(n, seed=seed)
        best = min(best, time.perf_counter() - t0)
    return {"dataset": "alarm (10k fit)", "records": n, "seconds": best, "records_per_s": n / best}


def adult_suite(tmp: Path) -> dict:
    train = SHARED / "tables" / "adult" / "adult_train.csv"
    test = SHARED / "tables" / "adult" / "adult_test.csv"
    if not train.exists():
        return {}
    import datatwin

    model = tmp / "adult.twin"
    summary, secs = _fit_cli(train, model, ["--holdout", str(test)])
    twin = datatwin.load(model)
    real = pd.read_csv(train, dtype=str, keep_default_na=False)
    fake = twin.sample_tokens(len(real), seed=1)
    fidelity = {}
    for col in ("workclass", "occupation", "native-country"):
        fidelity[f"missing {col}"] = (
            float((real[col] == "").mean()),
            float((fake[col] == "").mean()),
        )
    fidelity["capital-gain == 0"] = (
        float((real["capital-gain"] == "0").mean()),
        float((fake["capital-gain"] == "0").mean()),
    )
    fidelity["capital-loss == 0"] = (
        float((real["capital-loss"] == "0").mean()),
        float((fake["capital-loss"] == "0").mean()),
    )
    return {
        "fit_seconds": secs,
        "selected": summary["selected"],
        "leaderboard": summary["leaderboard"],
        "fidelity": fidelity,
    }


def _fmt_row(r: dict) -> str:
    s = (
        f"{r['dataset']:>9} {r['n_train']:>7} | datatwin {r['datatwin_bits']:.4f} "
        f"(+{r['datatwin_excess']:.4f}) {r['datatwin_fit_s']:.2f}s SHD {r['datatwin_shd']}"
    )
    if "pgmpy_bits" in r:
        s += (
            f" | pgmpy {r['pgmpy_bits']:.4f} (+{r['pgmpy_excess']:.4f}) {r['pgmpy_fit_s']:.2f}s "
            f"SHD {r['pgmpy_shd']}"
        )
    return s


def markdown(rows: list[dict], speed: dict, adult: dict, scores: list[dict]) -> str:
    out = [
        "| network | train rows | limit (bits) | datatwin excess | pgmpy excess | datatwin SHD | "
        "pgmpy SHD | datatwin fit s (CLI) | datatwin fit s (API) | pgmpy fit s | "
        "pgmpy/datatwin (API) time | read floor s | CLI fit / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def f(x, p=3):
        return "–" if x is None else (f"{x:.{p}f}" if isinstance(x, float) else str(x))

    for r in rows:
        out.append(
            f"| {r['dataset']} | {r['n_train']:,} | {r['limit']:.3f} | "
            f"+{r['datatwin_excess']:.4f} | "
            + (f"+{r['pgmpy_excess']:.4f}" if "pgmpy_excess" in r else r.get("pgmpy_status", "–"))
            + f" | {r['datatwin_shd']} | {f(r.get('pgmpy_shd'))} | {r['datatwin_fit_s']:.2f} | "
            f"{r['datatwin_api_fit_s']:.2f} | {f(r.get('pgmpy_fit_s'), 2)} | {f(r.get('fit_time_ratio'), 1)}× | "
            f"{r['read_floor_s']:.3f} | {r['fit_over_floor']:.0f}× |"
        )
    if speed:
        pg = next(
            (
                r.get("pgmpy_sample_per_s")
                for r in rows
                if r["dataset"] == "alarm" and r["n_train"] == 10000
            ),
            None,
        )
        out += [
            "",
            f"Sampling (Python API, {speed['dataset']}): datatwin "
            f"{speed['records_per_s']:,.0f} records/s"
            + (
                f"; pgmpy forward_sample {pg:,.0f} records/s ({speed['records_per_s'] / pg:.0f}×)"
                if pg
                else ""
            ),
        ]
    if scores:
        out += [
            "",
            "Structure score for `bayesnet` (holdout excess over the limit, bits/record; "
            "`bde` is the default):",
            "",
            "| network | train rows | bde | bdeu | bic |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in scores:
            out.append(
                f"| {r['dataset']} | {r['n_train']:,} | +{r['bde']:.4f} | "
                f"+{r['bdeu']:.4f} | +{r['bic']:.4f} |"
            )
    if adult:
        out += [
            "",
            f"Adult (fit on adult_train.csv, holdout = adult_test.csv; selected "
            f"`{adult['selected']}`, fit {adult['fit_seconds']:.1f} s):",
            "",
            "| structure | train bits/record | adult_test bits/record | fit s |",
            "|---|---:|---:|---:|",
        ]
        for e in sorted(adult["leaderboard"], key=lambda e: e["holdout_bits"]):
            star = " ★" if e.get("selected") else ""
            out.append(
                f"| {e['structure']}{star} | {e['train_bits']:.3f} | {e['holdout_bits']:.3f} | "
                f"{e['fit_seconds']:.2f} |"
            )
        out += [
            "",
            "| sample fidelity (32,561 sampled vs real training rows) | real | twin |",
            "|---|---:|---:|",
        ]
        for k, (a, b) in adult["fidelity"].items():
            out.append(f"| {k} | {100 * a:.2f}% | {100 * b:.2f}% |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-peers", action="store_true", help="skip pgmpy")
    ap.add_argument("--timeout", type=float, default=900, help="seconds allowed per pgmpy fit")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "tabular"))
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"shared data not found at {SHARED}; set DATATWIN_SHARED_DATA")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = bn_suite(not args.no_peers, args.timeout, tmp)
        speed = sampling_speed(tmp)
        adult = adult_suite(tmp)
    scores = score_suite()
    md = markdown(rows, speed, adult, scores)
    print(md)
    meta = {
        "machine": f"{os.cpu_count()} cores",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    Path(args.output + ".json").write_text(
        json.dumps(
            {"meta": meta, "networks": rows, "sampling": speed, "adult": adult, "scores": scores},
            indent=1,
        )
    )
    Path(args.output + ".md").write_text(md + "\n")


if __name__ == "__main__":
    main()
