"""Text at scale: peak memory and fit time of text twins, Shakespeare and a 100 MB corpus.

    python bench/text_scale_bench.py                  # both cases (the corpus is built if missing)
    python bench/text_scale_bench.py --cases shakespeare --corpus-mb 20
    -> bench/results/text_scale.md, bench/results/text_scale.json

Cases (each fit runs in its own child process, `fit` sub-command; its peak resident memory is
the child's own `ru_maxrss` from `os.wait4`, its time the child's wall clock around the fit):
- shakespeare: `train.txt` fit with `holdout.txt` as holdout (orders 0..8, both smoothers, with
  and without the document cache, compressor baselines), as `bench/leaderboards.py` fits it;
- corpus: a folder of documents of about `--corpus-mb` MB (default 100) built once in the
  system temp folder (never in the repository): Shakespeare's train and holdout texts, then
  documents sampled from twins fit on Shakespeare (orders 3..8, Kneser-Ney, no cache), about
  1 MB each, until the size is reached. It is fit as a user would, `datatwin.fit(folder,
  kind="text", max_order=8)`: whole documents held out, the winner refit on every document;
- corpus8: the same with `structures="markov8+kn+cache"`, so the refit counts all 100 MB to
  order 8 (the selection may prefer a lower order, whose refit is cheaper).
The load average (`os.getloadavg`) is recorded before and after every fit: the machine is
shared, and times are only comparable at similar loads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[0].parent / "shared" / "data"
SHAKESPEARE = DATA / "text" / "shakespeare"
OUT = HERE / "results"
SAMPLE_ORDERS = (3, 4, 5, 6, 7, 8)
DOC_BYTES = 1_000_000


# ---- the corpus -------------------------------------------------------------------------
def corpus_dir(mb: int) -> Path:
    return Path(tempfile.gettempdir()) / "datatwin_text_scale" / f"corpus_{mb}mb"


def _sample_doc(twin: Any, seed: int) -> str:
    """About DOC_BYTES characters from `twin` (samples stop at a document end: concatenated)."""
    parts: list[str] = []
    size, s = 0, seed
    while size < DOC_BYTES:
        text = str(twin.sample(DOC_BYTES - size, seed=s))
        parts.append(text if text.endswith("\n") else text + "\n")
        size += len(parts[-1])
        s += 1_000_003
    return "".join(parts)


def build_corpus(mb: int) -> Path:
    """The corpus folder (built if missing; a `complete.json` marks a finished build)."""
    import datatwin

    folder = corpus_dir(mb)
    done = folder / "complete.json"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    target = mb * 1_000_000
    total = 0
    for name in ("train.txt", "holdout.txt"):
        raw = (SHAKESPEARE / name).read_bytes()
        (folder / f"shakespeare_{name}").write_bytes(raw)
        total += len(raw)
    twins = {}
    for k in SAMPLE_ORDERS:
        print(f"[corpus] fitting markov{k}+kn on Shakespeare", file=sys.stderr, flush=True)
        twins[k] = datatwin.fit(
            str(SHAKESPEARE / "train.txt"),
            kind="text",
            structures=f"markov{k}+kn",
            max_order=k,
            holdout=SHAKESPEARE / "holdout.txt",
            baselines=False,
        )
    i = 0
    while total < target:
        k = SAMPLE_ORDERS[i % len(SAMPLE_ORDERS)]
        text = _sample_doc(twins[k], seed=i)
        path = folder / f"sample_{i:04d}_markov{k}.txt"
        tmp = path.with_suffix(".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.rename(path)
        total += path.stat().st_size
        i += 1
        if i % 10 == 0:
            print(f"[corpus] {total / 1e6:.0f} of {mb} MB", file=sys.stderr, flush=True)
    done.write_text(json.dumps({"bytes": total, "documents": i + 2}))
    return folder


# ---- one fit in a child process -----------------------------------------------------------
def child_fit(case: str, path: str, max_order: int) -> dict[str, Any]:
    """Runs in the child: one fit, its wall time, leaderboard rows and stages (each long step
    with its seconds and the peak memory reached by its end)."""
    import datatwin

    stages = _trace_stages()
    t0 = time.perf_counter()
    if case == "shakespeare":
        twin = datatwin.fit(
            str(SHAKESPEARE / "train.txt"), kind="text", holdout=SHAKESPEARE / "holdout.txt"
        )
    elif case == "corpus":
        twin = datatwin.fit(path, kind="text", max_order=max_order)
    else:  # corpus8: the highest order forced, so the refit counts all the text to it
        top = f"markov{max_order}+kn+cache"
        twin = datatwin.fit(path, kind="text", max_order=max_order, structures=top)
    seconds = time.perf_counter() - t0
    rows = [
        {k: e[k] for k in ("structure", "train_bits", "holdout_bits", "fit_seconds") if k in e}
        for e in twin.leaderboard
    ]
    return {
        "selected": twin.structure,
        "seconds": seconds,
        "rows": rows,
        "stages": stages,
    }


def _trace_stages() -> list[dict[str, Any]]:
    """Record every `progress.step` (counting, refitting, ...) as it ends, also on stderr."""
    import resource
    from contextlib import contextmanager

    from datatwin import progress

    stages: list[dict[str, Any]] = []
    plain = progress.step

    @contextmanager
    def traced(message: str):
        t0 = time.perf_counter()
        with plain(message):
            yield
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stages.append({"stage": message, "seconds": time.perf_counter() - t0, "peak_mb": peak})
        print(
            f"[stage] {message}: {stages[-1]['seconds']:.1f} s, peak {peak:.0f} MB", file=sys.stderr
        )

    progress.step = traced  # type: ignore[assignment]
    return stages


def run_child(case: str, path: str, max_order: int) -> dict[str, Any]:
    """Fit in a child process; its peak RSS from os.wait4, load averages around it."""
    load_before = os.getloadavg()
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [sys.executable, __file__, "fit", case, path, str(max_order), str(out)]
    proc = subprocess.Popen(cmd, env=os.environ.copy())
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{case}: the child fit failed (status {status})")
    res = json.loads(out.read_text())
    out.unlink()
    res.update(
        case=case,
        peak_mb=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        load_before=load_before,
        load_after=os.getloadavg(),
    )
    return res


def _corpus_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix == ".txt")


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | input MB | selected | holdout bits/char | fit s | CPU s | peak MiB | "
        "bytes/char | load avg before → after | when |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        best = next(x for x in r["rows"] if x["structure"] == r["selected"])
        mb = r["input_bytes"] / 1e6
        lb, la = r["load_before"], r["load_after"]
        lines.append(
            f"| {r['label']} | {mb:.1f} | {r['selected']} | {best['holdout_bits']:.6f} | "
            f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_mb']:.0f} | "
            f"{r['peak_mb'] * 2**20 / r['input_bytes']:.1f} | "
            f"{lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} → {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} | "
            f"{r.get('when', '')} |"
        )
    return "\n".join(lines)


def stages_markdown(results: list[dict[str, Any]]) -> str:
    """Each fit's long steps: seconds and the peak memory reached by the step's end."""
    lines = ["| case | step | s | peak MiB by its end |", "|---|---|---|---|"]
    for r in results:
        for st in r.get("stages", []):
            lines.append(
                f"| {r['label']} | {st['stage']} | {st['seconds']:.1f} | {st['peak_mb']:.0f} |"
            )
    return "\n".join(lines)


def write_results(out: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge `new` into out/text_scale.json by label (other labels' earlier runs are kept,
    each with its own time and load) and rewrite text_scale.md; the merged list."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "text_scale.json"
    old = json.loads(path.read_text())["results"] if path.exists() else []
    labels = {r["label"] for r in new}
    results = [r for r in old if r.get("label") not in labels] + new
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    (out / "text_scale.md").write_text(
        "# Text at scale: peak memory and fit time\n\n"
        "`python bench/text_scale_bench.py` (see its docstring). Each fit in its own child "
        "process (peak RSS from `os.wait4`); load average (1, 5, 15 minutes) before and after "
        "each fit on this shared 2-core machine.\n\n"
        + markdown(results)
        + "\n\n## Stages\n\n"
        + stages_markdown(results)
        + "\n"
    )
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "fit":
        case, path, order, out = sys.argv[2:6]
        Path(out).write_text(json.dumps(child_fit(case, path, int(order))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cases",
        default="shakespeare,corpus,corpus8",
        help="shakespeare, corpus (selected by holdout), corpus8 (top order forced)",
    )
    ap.add_argument("--corpus-mb", type=int, default=100, help="corpus size in MB (default 100)")
    ap.add_argument("--max-order", type=int, default=8, help="corpus: highest order (default 8)")
    ap.add_argument("--build-only", action="store_true", help="build the corpus and stop")
    ap.add_argument("--label", default="", help="appended to each case's name in the results")
    ap.add_argument("--out", default=str(OUT), help="folder for text_scale.{md,json}")
    args = ap.parse_args()
    cases = args.cases.split(",")
    if not SHAKESPEARE.is_dir():
        print(f"text_scale_bench: {SHAKESPEARE} not found", file=sys.stderr)
        return 2
    folder = build_corpus(args.corpus_mb) if {"corpus", "corpus8"} & set(cases) else None
    if args.build_only:
        return 0
    results = []
    for case in cases:
        on_corpus = case.startswith("corpus") and folder is not None
        path = str(folder) if on_corpus else str(SHAKESPEARE / "train.txt")
        print(f"[text_scale] {case} ...", file=sys.stderr, flush=True)
        res = run_child(case, path, args.max_order)
        res["input_bytes"] = (
            _corpus_size(folder)
            if on_corpus and folder
            else (SHAKESPEARE / "train.txt").stat().st_size
        )
        name = {
            "corpus": f"corpus {args.corpus_mb} MB",
            "corpus8": f"corpus {args.corpus_mb} MB, markov{args.max_order}+kn+cache forced",
        }.get(case, case)
        res["label"] = f"{name} {args.label}".strip()
        res["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results.append(res)
        print(markdown(results[-1:]), flush=True)
    write_results(Path(args.out), results)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
