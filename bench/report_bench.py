"""Report benchmark: fidelity and privacy of datatwin vs SDV on Adult, same protocol for all.

One command (in the bench venv, which holds the peers; SDV is not a datatwin dependency):

    .benchvenv/bin/python bench/report_bench.py                  # datatwin + SDV peers
    .benchvenv/bin/python bench/report_bench.py --no-peers       # datatwin only
    .benchvenv/bin/python bench/report_bench.py --ctgan-epochs 50

Every generator is fit on adult_train.csv (wall clock of the whole fit, for datatwin the
`datatwin fit` command in a new process with its structure search and holdout selection)
and draws as many rows as adult_test.csv. All rows -- real, training and synthetic -- are
written as CSV and parsed by the same code with datatwin's schema of adult_train.csv, then:
classifier two-sample test (5-fold CV ROC AUC of sklearn HistGradientBoostingClassifier,
real test rows vs all synthetic rows, categoricals as shared codes), exact-copy share of
training rows vs the holdout baseline, median distance to closest training record (Gower),
mean column TV / KS distances and mean |MI difference|. For datatwin also the
`datatwin report` command: wall clock and file size. Writes bench/results/report.json / .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DATATWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
ADULT = SHARED / "tables" / "adult"
DATATWIN = [sys.executable, "-m", "datatwin.cli"]


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + sys) seconds of a command in a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def evaluate_csv(synth_csv: Path, schema, real, train, seed: int) -> dict:
    from datatwin.report.evaluate import compare
    from datatwin.report.metrics import strip_private
    from datatwin.report.tables import parse

    synth = parse(synth_csv, schema, str(synth_csv))
    return strip_private(compare(real, synth, train, seed=seed, c2st_rows=None))


def datatwin_run(work: Path, n: int, seed: int) -> dict:
    model = work / "adult.twin"
    fit_s, fit_cpu = run([*DATATWIN, "-q", "fit", str(ADULT / "adult_train.csv"), "-o", str(model)])
    t0 = time.perf_counter()
    sample = work / "datatwin.csv"
    subprocess.run(
        [*DATATWIN, "sample", str(model), "-n", str(n), "--seed", str(seed), "-o", str(sample)],
        check=True,
    )
    sample_s = time.perf_counter() - t0
    report = work / "adult.report.html"
    report_s, report_cpu = run(
        [
            *DATATWIN,
            "-q",
            "report",
            str(model),
            "--real",
            str(ADULT / "adult_test.csv"),
            "--train",
            str(ADULT / "adult_train.csv"),
            "-o",
            str(report),
            "--seed",
            str(seed),
        ]
    )
    import datatwin

    twin = datatwin.load(model)
    return {
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu,
        "sample_seconds": sample_s,
        "sample": sample,
        "structure": twin.structure,
        "edges": len(twin.edges),
        "report_seconds": report_s,
        "report_cpu_seconds": report_cpu,
        "report_mb": report.stat().st_size / 1e6,
    }


def sdv_run(kind: str, work: Path, n: int, seed: int, epochs: int) -> dict:
    import warnings

    import numpy as np
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

    warnings.filterwarnings("ignore", category=UserWarning)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        pass
    df = pd.read_csv(ADULT / "adult_train.csv")
    t0 = time.perf_counter()
    c0 = time.process_time()
    meta = Metadata.detect_from_dataframes({"adult": df})
    if kind == "GaussianCopula":
        synth = GaussianCopulaSynthesizer(meta)
    else:
        synth = CTGANSynthesizer(meta, epochs=epochs, verbose=False)
    synth.fit({"adult": df})  # SDV 2: data is a {table name: frame} dict
    fit_s = time.perf_counter() - t0
    fit_cpu = time.process_time() - c0
    t0 = time.perf_counter()
    out = synth.sample(num_rows=n)
    if isinstance(out, dict):
        out = out["adult"]
    sample_s = time.perf_counter() - t0
    path = work / f"{kind}.csv"
    out.to_csv(path, index=False)
    return {
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu,
        "sample_seconds": sample_s,
        "sample": path,
    }


def fmt_row(name: str, r: dict) -> str:
    f, p = r["fidelity"], r["privacy"]
    rep = "–"
    if "report_seconds" in r:
        rep = (
            f"{r['report_seconds']:.1f} s ({r['report_cpu_seconds']:.1f} s CPU), "
            f"{r['report_mb']:.2f} MB"
        )
    return (
        f"| {name} | {f['c2st_auc']:.3f} ± {f['c2st_auc_std']:.3f} | "
        f"{r['fit_seconds']:.1f} ({r['fit_cpu_seconds']:.1f}) | "
        f"{p['exact_copy_share']:.4%} vs {p['holdout_exact_copy_share']:.4%} | "
        f"{p['dcr_median_synthetic']:.4f} vs {p['dcr_median_holdout']:.4f} | "
        f"{f['tv_mean']:.4f} | {f['ks_mean']:.4f} | {f['mi_diff_mean']:.4f} | {rep} |"
    )


HEADER = (
    "| generator | C2ST ROC AUC (5-fold, ± sd) | fit s (CPU s) | exact copies of train rows: "
    "synthetic vs holdout | median DCR: synthetic vs holdout | mean TV | mean KS | "
    "mean abs ΔMI (bits) | report (render, size) |\n|---|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--no-peers", action="store_true", help="datatwin only")
    ap.add_argument("--ctgan-epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "report"))
    args = ap.parse_args()

    from datatwin.reader import read_table
    from datatwin.report.tables import parse
    from datatwin.tabular.schema import infer_schema

    train_raw = read_table(ADULT / "adult_train.csv")
    schema = infer_schema(train_raw)
    real = parse(ADULT / "adult_test.csv", schema, "adult_test")
    train = parse(train_raw, schema, "adult_train")
    n = real.n_rows
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = [("datatwin", lambda: datatwin_run(work, n, args.seed))]
        if not args.no_peers:
            runs += [
                (
                    "SDV GaussianCopula",
                    lambda: sdv_run("GaussianCopula", work, n, args.seed, args.ctgan_epochs),
                ),
                (
                    f"SDV CTGAN ({args.ctgan_epochs} epochs)",
                    lambda: sdv_run("CTGAN", work, n, args.seed, args.ctgan_epochs),
                ),
            ]
        for name, fn in runs:
            print(f"== {name}", file=sys.stderr, flush=True)
            r = fn()
            r.update(evaluate_csv(r.pop("sample"), schema, real, train, args.seed))
            results[name] = r
            print(fmt_row(name, r), file=sys.stderr, flush=True)
    doc = {
        "command": "python bench/report_bench.py"
        + ("" if args.no_peers else f" --ctgan-epochs {args.ctgan_epochs}"),
        "data": {"train": "adult_train.csv (32,561 rows)", "real": "adult_test.csv (16,281 rows)"},
        "protocol": (
            "each generator fit on adult_train, samples as many rows as adult_test; "
            "all rows parsed with datatwin's schema of adult_train; C2ST = 5-fold stratified "
            "CV ROC AUC of HistGradientBoostingClassifier (categoricals as shared codes) "
            "telling adult_test rows from synthetic rows"
        ),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    Path(args.out + ".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    table = "\n".join([HEADER, *(fmt_row(k, v) for k, v in results.items())])
    md = (
        f"# Report benchmark: Adult\n\nCommand: `{doc['command']}` "
        f"({os.cpu_count()} CPUs).\n\n{doc['protocol']}.\n\n{table}\n"
    )
    Path(args.out + ".md").write_text(md)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
