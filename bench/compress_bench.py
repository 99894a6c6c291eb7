"""Compression benchmark: a twin as a lossless compressor next to gzip, bzip2, xz, zstd, PPMd.

One command, one run (writes bench/results/compress.json and compress.md; a run with --only
writes compress_only.{json,md} instead, so the full table is never replaced by a part):

    PYTHONPATH=src .venv/bin/python bench/compress_bench.py [--only adult,alarm]

For each file: the twin is fit on the training part (models cached in bench/results/
compress_models/, keyed by dataset; `--refit` fits again), the held-out bytes are compressed
with the model shared out of band and self-contained, decompressed and compared byte for byte
(sha256). Reported: sizes next to gzip -9, bzip2 -9, xz -9e, zstd -19 and PPMd (pyppmd from
the bench venv, the best of orders 6/16/32), the twin's own predicted size (−Σ log2 P / 8
from `twin.log_prob`), the payload's gap to it, compress/decompress MB/s and the same as a
ratio to xz -9e timed in this run, the load average, and MB/s of this process's CPU time
(on a shared machine the wall clock also counts the time other processes hold the cores).
Every timing is the best of up to 3 runs in this process (as many as fit in ~5 s; the first
run of a file also pays one-time costs such as imports, reported as `first_*_seconds`).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import json
import lzma
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import datatwin  # noqa: E402
from datatwin.coding.api import compress_report, decompress  # noqa: E402

SHARED = Path(os.environ.get("DATATWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "bench" / "results"
MODELS = OUT / "compress_models"
BENCH_PY = Path(os.environ.get("DATATWIN_BENCH_PY", ROOT / ".benchvenv" / "bin" / "python"))


# ---------------------------------------------------------------------------------- data


def _lines(raw: bytes) -> list[bytes]:
    return raw.splitlines(keepends=True)


def _split_lines(lines: list[bytes], frac: float, seed: int) -> tuple[list[bytes], list[bytes]]:
    """A seeded random split of lines (kept in file order on both sides)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(lines), dtype=bool)
    test[rng.permutation(len(lines))[: round(frac * len(lines))]] = True
    train = [ln for ln, t in zip(lines, test, strict=True) if not t]
    return train, [ln for ln, t in zip(lines, test, strict=True) if t]


def _last(raw: bytes, frac: float = 0.2) -> tuple[bytes, bytes]:
    """First 80 % and last 20 % of a CSV's data lines, each with the header line."""
    lines = _lines(raw)
    head, body = lines[0], lines[1:]
    cut = len(body) - round(frac * len(body))
    return head + b"".join(body[:cut]), head + b"".join(body[cut:])


def datasets() -> dict[str, Callable[[Path], tuple[Path, bytes, dict[str, Any]]]]:
    """name -> build(tmp) giving (training file, held-out bytes, fit options)."""

    def adult(tmp: Path):
        d = SHARED / "tables" / "adult"
        return d / "adult_train.csv", (d / "adult_test.csv").read_bytes(), {}

    def alarm(tmp: Path):
        d = SHARED / "bn" / "alarm"
        return d / "train_100000.csv.gz", gzip.decompress((d / "holdout.csv.gz").read_bytes()), {}

    def census(tmp: Path):
        raw = gzip.decompress(
            (SHARED / "tables" / "census" / "census_income_train.csv.gz").read_bytes()
        )
        train, test = _split_lines(_lines(raw), 0.2, 0)
        path = tmp / "census_train.csv"
        path.write_bytes(b"".join(train))
        return path, b"".join(test), {"header": False}

    def shakespeare(tmp: Path):
        d = SHARED / "text" / "shakespeare"
        return d / "train.txt", (d / "holdout.txt").read_bytes(), {"kind": "text"}

    def cmudict(tmp: Path):
        raw = gzip.decompress(
            (SHARED / "events" / "cmudict" / "pronunciations.csv.gz").read_bytes()
        )
        lines = _lines(raw)
        head, body = lines[0], lines[1:]
        words = [ln.split(b",", 1)[0] for ln in body]
        uniq = sorted(set(words))
        rng = np.random.default_rng(0)
        held = set(
            np.asarray(uniq, dtype=object)[rng.permutation(len(uniq))[: round(0.2 * len(uniq))]]
        )
        train = [ln for ln, w in zip(body, words, strict=True) if w not in held]
        test = [ln for ln, w in zip(body, words, strict=True) if w in held]
        path = tmp / "cmudict_train.csv"
        path.write_bytes(head + b"".join(train))
        options = {"kind": "events", "sequence_id": "word", "order_by": "position"}
        return path, head + b"".join(test), {**options, "event": "phone"}

    def series(name: str):
        def build(tmp: Path):
            train, test = _last((SHARED / "series" / f"{name}.csv").read_bytes())
            path = tmp / f"{name}_train.csv"
            path.write_bytes(train)
            return path, test, {"kind": "series"}

        return build

    return {
        "adult_test.csv": adult,
        "alarm holdout": alarm,
        "census 20%": census,
        "shakespeare holdout": shakespeare,
        "cmudict 20% words": cmudict,
        "sunspot last 20%": series("sunspot_month"),
        "elecdemand last 20%": series("elecdemand"),
    }


def _model(name: str, train: Path, options: dict[str, Any], refit: bool) -> Any:
    """(twin, fit seconds, model file bytes): the file's bytes fingerprint the model, as the
    CLI does with MODEL."""
    MODELS.mkdir(parents=True, exist_ok=True)
    path = MODELS / (name.replace(" ", "_").replace("%", "pc") + ".twin")
    if path.exists() and not refit:
        return datatwin.load(path), 0.0, path.read_bytes()
    t0 = time.perf_counter()
    if options.get("header") is False:
        from datatwin.reader import read_table

        twin = datatwin.fit(read_table(train, header=False), seed=0)
    else:
        twin = datatwin.fit(train, seed=0, **options)
    fit_s = time.perf_counter() - t0
    twin.save(path)
    return datatwin.load(path), fit_s, path.read_bytes()


# ---------------------------------------------------------------------------------- baselines


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """fn's result and its best wall and CPU seconds over up to 3 runs (fewer past ~5 s)."""
    best, best_cpu, spent, out = math.inf, math.inf, 0.0, None
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        took = time.perf_counter() - t0
        best, spent = min(best, took), spent + took
        best_cpu = min(best_cpu, time.process_time() - c0)
        if spent > 5.0:
            break
    return out, best, best_cpu


def _once(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _zstd(raw: bytes) -> int | None:
    try:
        import zstandard

        return len(zstandard.ZstdCompressor(level=19).compress(raw))
    except ImportError:
        pass
    if shutil.which("zstd"):
        out = subprocess.run(
            ["zstd", "-19", "-c", "-q"], input=raw, capture_output=True, check=True
        )
        return len(out.stdout)
    return None


_PPMD = """
import sys, pyppmd
raw = sys.stdin.buffer.read()
best = min(len(pyppmd.compress(raw, max_order=o, mem_size=m)) for o, m in ((6, 16 << 20), (16, 192 << 20), (32, 192 << 20)))
print(best)
"""


def _ppmd(raw: bytes) -> int | None:
    try:
        import pyppmd  # noqa: F401

        cmd = [sys.executable, "-c", _PPMD]
    except ImportError:
        if not BENCH_PY.exists():
            return None
        cmd = [str(BENCH_PY), "-c", _PPMD]
    out = subprocess.run(cmd, input=raw, capture_output=True)
    return int(out.stdout) if out.returncode == 0 else None


def baselines(raw: bytes) -> dict[str, Any]:
    xz, t_xz, _ = _timed(lambda: lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
    _, t_unxz, _ = _timed(lambda: lzma.decompress(xz))
    return {
        "gzip -9": len(gzip.compress(raw, 9, mtime=0)),
        "bzip2 -9": len(bz2.compress(raw, 9)),
        "xz -9e": len(xz),
        "zstd -19": _zstd(raw),
        "PPMd": _ppmd(raw),
        "xz_seconds": t_xz,
        "unxz_seconds": t_unxz,
    }


# ---------------------------------------------------------------------------------- one file


def predicted_bits(twin: Any, raw: bytes, tmp: Path, suffix: str, options: dict[str, Any]) -> float:
    path = tmp / f"heldout{suffix}"
    path.write_bytes(raw)
    data: Any = path
    if options.get("header") is False:
        from datatwin.reader import read_table

        data = read_table(path, header=False)
    return float(-np.sum(twin.log_prob(data)) / math.log(2))


def run_one(name: str, build: Callable, refit: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        train, raw, options = build(tmp)
        twin, fit_s, mb = _model(name, train, options, refit)
        suffix = ".txt" if twin.kind == "text" else ".csv"
        row: dict[str, Any] = {"file": name, "kind": twin.kind, "structure": twin.structure}
        row["bytes"] = len(raw)
        row["fit_seconds"] = fit_s
        row.update(baselines(raw))
        row["predicted"] = predicted_bits(twin, raw, tmp, suffix, options) / 8
        (blob, report), first_c = _once(lambda: compress_report(twin, raw, model=mb))
        out, first_d = _once(lambda: decompress(blob, twin, model=mb))
        _, t_c, cpu_c = _timed(lambda: compress_report(twin, raw, model=mb))
        _, t_d, cpu_d = _timed(lambda: decompress(blob, twin, model=mb))
        self_blob, _ = compress_report(twin, raw, embed_model=True, model=mb)
        same = hashlib.sha256(out).digest() == hashlib.sha256(raw).digest()
        same_self = decompress(self_blob) == raw
        row.update(
            shared=len(blob),
            self_contained=len(self_blob),
            payload=report["sizes"]["payload"],
            header=report["sizes"]["header"],
            side=report["sizes"]["layout"],
            model_bits=report["model_bits"] / 8,
            round_trip=bool(same and same_self),
            compress_MBps=len(raw) / t_c / 1e6,
            decompress_MBps=len(raw) / t_d / 1e6,
            compress_cpu_MBps=len(raw) / max(cpu_c, 1e-9) / 1e6,
            decompress_cpu_MBps=len(raw) / max(cpu_d, 1e-9) / 1e6,
            first_compress_seconds=first_c,
            first_decompress_seconds=first_d,
            compress_vs_xz=row["xz_seconds"] / t_c,
            decompress_vs_xz=row["unxz_seconds"] / t_d,
            report={k: v for k, v in report.items() if k != "sizes"},
        )
        row["gap_pct"] = 100.0 * (row["payload"] - row["predicted"]) / row["predicted"]
        return row


def render(rows: list[dict[str, Any]], load: tuple[float, float, float]) -> str:
    cols = ["gzip -9", "bzip2 -9", "xz -9e", "zstd -19", "PPMd"]
    out = io.StringIO()
    out.write(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; sizes in bytes\n\n")
    out.write(
        "| file | bytes | " + " | ".join(cols) + " | predicted | twin shared | payload gap | "
        "self-contained | vs PPMd | round trip | comp MB/s (×xz) | decomp MB/s (×xz) | "
        "comp / decomp MB/s of CPU time |\n"
    )
    out.write("|" + "---|" * (len(cols) + 11) + "\n")
    for r in rows:
        if "error" in r:
            out.write(f"| {r['file']} | error: {r['error']} |\n")
            continue
        base = " | ".join("n/a" if r[c] is None else f"{r[c]:,}" for c in cols)
        vs = f"{r['shared'] / r['PPMd']:.3f}" if r.get("PPMd") else "n/a"
        out.write(
            f"| {r['file']} | {r['bytes']:,} | {base} | {r['predicted']:,.0f} | {r['shared']:,} | "
            f"{r['gap_pct']:+.3f}% | {r['self_contained']:,} | {vs} | "
            f"{'ok' if r['round_trip'] else 'FAIL'} | {r['compress_MBps']:.2f} "
            f"({r['compress_vs_xz']:.2f}) | {r['decompress_MBps']:.2f} ({r['decompress_vs_xz']:.2f}) | "
            f"{r['compress_cpu_MBps']:.2f} / {r['decompress_cpu_MBps']:.2f} |\n"
        )
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated substrings of file names to run")
    ap.add_argument("--refit", action="store_true", help="fit the twins again")
    args = ap.parse_args()
    rows = []
    for name, build in datasets().items():
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        try:
            row = run_one(name, build, args.refit)
        except Exception as exc:  # report and go on: one line per failed file
            row = {"file": name, "error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "report"}), file=sys.stderr)
    load = os.getloadavg()
    text = render(rows, load)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    stem = "compress" if not args.only else "compress_only"  # a partial run keeps the full table
    (OUT / f"{stem}.json").write_text(json.dumps({"load": load, "rows": rows}, indent=1))
    (OUT / f"{stem}.md").write_text(text)


if __name__ == "__main__":
    main()
