"""Run the pgmpy peer alone on the Bayesian-network datasets and record its figures.

Usage (from the repo root, with the bench venv that has pgmpy)::

    .benchvenv/bin/python bench/run_pgmpy_only.py [--datasets asia,alarm] [--sizes 1000]
        [--timeout 900] [--output bench/results/pgmpy.json]

For every dataset in ``<shared>/bn/{asia,alarm,insurance}`` and every ``train_<n>.csv.gz``
present, fits pgmpy (hill climb + BDeu) on the training file, scores ``holdout.csv.gz``, and
compares with ``truth.json`` (``limit_bits_per_record_on_holdout``, ``true_edges``).
``<shared>`` is ``../shared/data`` relative to the repo root, or ``$DATATWIN_SHARED_DATA``.

Each fit runs in its own subprocess with a wall-clock limit (``--timeout`` seconds for the
whole job: structure, parameters, scoring and sampling); a job over the limit is recorded
with ``"status": "timeout"`` and the run moves on. Results are written after every job.

pgmpy's hill climb is not deterministic across processes: ties between equally scored moves
are broken in Python set-iteration order, which depends on string hashing. Each job therefore
runs with ``PYTHONHASHSEED`` fixed (``--hash-seed``, default 0) so the figures reproduce.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("asia", "alarm", "insurance")
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "pgmpy.json"


def shared_data_dir() -> Path:
    env = os.environ.get("DATATWIN_SHARED_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def train_files(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("train_*.csv.gz"):
        match = re.fullmatch(r"train_(\d+)\.csv\.gz", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _child_main(train_csv: str, holdout_csv: str, max_indegree: int | None) -> None:
    """Entry point of the per-job subprocess: print one JSON result on stdout."""
    sys.path.insert(0, str(REPO_ROOT))
    from bench.peers.pgmpy_bn import run_pgmpy

    result = run_pgmpy(train_csv, holdout_csv, max_indegree=max_indegree)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_job(
    train: Path, holdout: Path, timeout: float, max_indegree: int | None, hash_seed: str
) -> dict:
    env = dict(os.environ)
    if hash_seed != "inherit":
        env["PYTHONHASHSEED"] = hash_seed
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(train), str(holdout)]
    if max_indegree is not None:
        cmd += ["--max-indegree", str(max_indegree)]
    start = time.perf_counter()
    # A new session so that a timeout can end the job together with any workers it spawned.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "timeout_seconds": timeout}
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = err.strip().splitlines()[-1:] if err.strip() else ["(no stderr)"]
        return {"status": "error", "returncode": proc.returncode, "error": tail[0]}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1])
    result["status"] = "ok"
    result["job_wall_seconds"] = wall
    return result


def _versions() -> dict:
    meta = {"python": platform.python_version(), "machine": platform.machine()}
    meta["cpu_count"] = os.cpu_count()
    for name in ("pgmpy", "pandas", "numpy", "networkx", "scipy"):
        try:
            module = __import__(name)
            meta[name] = getattr(module, "__version__", "?")
        except ImportError:
            meta[name] = None
    return meta


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    headers = [
        "dataset",
        "n_train",
        "holdout bits",
        "limit",
        "excess",
        "SHD",
        "edges",
        "struct s",
        "params s",
        "fit s",
        "struct cpu s",
        "sample rec/s",
        "unseen rows",
        "status",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r["dataset"],
                str(r["n_train"]),
                _fmt(r.get("holdout_bits"), ".4f"),
                _fmt(r.get("limit_bits"), ".4f"),
                _fmt(r.get("excess_bits"), "+.4f"),
                _fmt(r.get("shd"), "d"),
                _fmt(r.get("n_edges"), "d"),
                _fmt(r.get("fit_seconds_structure"), ".2f"),
                _fmt(r.get("fit_seconds_params"), ".2f"),
                _fmt(r.get("fit_seconds"), ".2f"),
                _fmt(r.get("cpu_seconds_structure"), ".2f"),
                _fmt(r.get("sample_records_per_second"), ",.0f"),
                _fmt(r.get("n_unseen_rows"), "d"),
                r["status"],
            ]
        )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
        print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        for b in body:
            print("  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)))
        return
    table = Table(title="pgmpy: hill climb + BDeu (mean bits per holdout record)")
    for h in headers:
        table.add_column(h, justify="left" if h in ("dataset", "status") else "right")
    for b in body:
        table.add_row(*b)
    Console(width=200).print(table)


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sizes", default="", help="comma-separated train sizes (default: all)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    parser.add_argument("--max-indegree", type=int, default=None)
    parser.add_argument(
        "--hash-seed",
        default="0",
        help="PYTHONHASHSEED for each job ('inherit' keeps the environment's): pgmpy's hill "
        "climb breaks score ties in set-iteration order, so its result depends on it",
    )
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--child", nargs=2, metavar=("TRAIN", "HOLDOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        _child_main(args.child[0], args.child[1], args.max_indegree)
        return 0

    sys.path.insert(0, str(REPO_ROOT))
    from bench.metrics import shd

    data_dir = shared_data_dir()
    sizes = {int(s) for s in args.sizes.split(",") if s.strip()}
    output = Path(args.output)
    meta = {
        "peer": "pgmpy",
        "shared_data": str(data_dir),
        "timeout_seconds_per_job": args.timeout,
        "max_indegree": args.max_indegree,
        "pythonhashseed": args.hash_seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **_versions(),
    }
    rows: list[dict] = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        folder = data_dir / "bn" / name
        truth_path = folder / "truth.json"
        if not truth_path.exists():
            print(f"skip {name}: no {truth_path}", file=sys.stderr)
            continue
        truth = json.loads(truth_path.read_text())
        limit = float(truth["limit_bits_per_record_on_holdout"])
        for n_train, train in train_files(folder):
            if sizes and n_train not in sizes:
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {name} n_train={n_train} ...", flush=True)
            holdout = folder / "holdout.csv.gz"
            result = run_job(train, holdout, args.timeout, args.max_indegree, args.hash_seed)
            row = {"dataset": name, "n_train": n_train, "limit_bits": limit}
            row["limit_stderr"] = truth.get("limit_stderr")
            # Timings are only meaningful on an otherwise idle machine: keep the load with them.
            row["loadavg_1min_at_start"] = os.getloadavg()[0]
            row.update(result)
            if result["status"] == "ok":
                row["excess_bits"] = result["holdout_bits"] - limit
                row["shd"] = shd(result["edges"], truth["true_edges"])
                row["n_true_edges"] = len(truth["true_edges"])
            brief = {
                k: v for k, v in row.items() if k not in ("edges", "unseen_fallback", "method")
            }
            print(f"    -> {json.dumps(brief)}", flush=True)
            rows.append(row)
            meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            write_json(output, {"meta": meta, "results": rows})
    print_table(rows)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
