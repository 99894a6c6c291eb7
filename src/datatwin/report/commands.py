"""What `datatwin evaluate` and `datatwin report` do (the CLI only parses and delegates)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..modelfile import atomic_write_bytes
from . import deps, metrics
from .evaluate import evaluate_table, json_safe


def _check_kind(twin) -> None:
    if twin.kind != "table":
        raise InputError(
            f"evaluate/report support table twins so far; this twin is of kind {twin.kind!r}"
        )


def evaluate(twin, real, train=None, seed: int = 0) -> dict[str, Any]:
    """Fidelity and privacy of `twin` against `real` (unseen) and `train` (fit) data."""
    deps.sklearn()
    _check_kind(twin)
    result, _ = evaluate_table(twin, real, train, seed)
    return json_safe(metrics.strip_private(result))


def render_report(twin, real, train=None, seed: int = 0, source: str = "") -> tuple[str, dict]:
    """The report page (HTML text) and the evaluation behind it."""
    deps.pyplot()
    deps.sklearn()
    _check_kind(twin)
    from .html import table_report

    result, frames = evaluate_table(twin, real, train, seed, background=True)
    text = table_report(twin, result, frames, source or str(real))
    return text, json_safe(metrics.strip_private(result))


def write_report(twin, real, output, train=None, seed: int = 0, source: str = "") -> dict:
    """Write the report to `output` atomically; returns the evaluation."""
    text, result = render_report(twin, real, train, seed, source)
    data = text.encode("utf-8")
    atomic_write_bytes(output, lambda fh: fh.write(data))
    return result


def _load(args: argparse.Namespace):
    from .. import load

    if not Path(args.model).exists():
        raise InputError(f"model file not found: {args.model}")
    if not Path(args.real).exists():
        raise InputError(f"--real file not found: {args.real}")
    if args.train is not None and not Path(args.train).exists():
        raise InputError(f"--train file not found: {args.train}")
    return load(args.model)


def run_evaluate(args: argparse.Namespace) -> int:
    deps.sklearn()
    twin = _load(args)
    result = evaluate(twin, args.real, args.train, args.seed)
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0
    fid, priv = result["fidelity"], result["privacy"]

    def f(x, spec=".3f"):
        return "-" if x is None else format(x, spec)

    print(f"fidelity ({result['rows']['real']} real vs {result['rows']['synthetic']} twin records)")
    print(f"  classifier two-sample test ROC AUC  {f(fid['c2st_auc'])}  (0.5 = indistinguishable)")
    print(f"  column TV distance   mean {f(fid['tv_mean'])}  max {f(fid['tv_max'])}")
    print(f"  column KS statistic  mean {f(fid['ks_mean'])}  max {f(fid['ks_max'])}")
    print(
        f"  |MI real - MI twin|  mean {f(fid['mi_diff_mean'], '.4f')}  max {f(fid['mi_diff_max'], '.4f')} bits"
    )
    print("privacy")
    if priv.get("exact_copy_share") is None:
        print(f"  {priv.get('note', 'no training data given')}")
    else:
        print(
            f"  exact copies of training rows  {priv['exact_copy_share']:.4%}"
            f"  (holdout rows by chance {priv['holdout_exact_copy_share']:.4%})"
        )
        print(
            f"  median distance to closest training row  twin {f(priv['dcr_median_synthetic'], '.4f')}"
            f"  holdout {f(priv['dcr_median_holdout'], '.4f')}"
        )
        print(
            f"  bits per {result['unit']}: train {f(priv['train_bits'])}  holdout "
            f"{f(priv['holdout_bits'])}  gap {f(priv['bits_gap'])}"
        )
    return 0


def default_output(model: str) -> Path:
    p = Path(model)
    return p.with_name(p.stem + ".report.html")


def run_report(args: argparse.Namespace) -> int:
    deps.pyplot()
    deps.sklearn()
    twin = _load(args)
    out = Path(args.output) if args.output else default_output(args.model)
    result = write_report(twin, args.real, out, args.train, args.seed, source=str(args.real))
    if getattr(args, "json", False):
        print(json.dumps({"report": str(out), **result}, allow_nan=False))
    else:
        print(f"report written to {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0
