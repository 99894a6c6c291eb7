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


def _sequence_kind(twin):
    from . import sequences

    return {
        "text": sequences.evaluate_text,
        "events": sequences.evaluate_events,
        "series": sequences.evaluate_series,
    }.get(twin.kind)


def evaluate(twin, real, train=None, seed: int = 0) -> dict[str, Any]:
    """Fidelity and privacy of `twin` against `real` (unseen) and `train` (fit) data."""
    deps.sklearn()
    if twin.kind == "table":
        result, _ = evaluate_table(twin, real, train, seed)
    else:
        fn = _sequence_kind(twin)
        if fn is None:
            raise InputError(f"evaluate does not support twins of kind {twin.kind!r} yet")
        result, _ = fn(twin, real, train, seed)
    return json_safe(metrics.strip_private(result))


def render_report(twin, real, train=None, seed: int = 0, source: str = "") -> tuple[str, dict]:
    """The report page (HTML text) and the evaluation behind it."""
    deps.pyplot()
    deps.sklearn()
    from . import html

    source = source or str(real)
    if twin.kind == "table":
        result, frames = evaluate_table(twin, real, train, seed, background=True)
        text = html.table_report(twin, result, frames, source)
    else:
        fn = _sequence_kind(twin)
        if fn is None:
            raise InputError(f"report does not support twins of kind {twin.kind!r} yet")
        result, ctx = fn(twin, real, train, seed)
        draw = {"text": html.text_report, "events": html.events_report}.get(
            twin.kind, html.series_report
        )
        text = draw(twin, result, ctx, source)
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
    if twin.kind != "table":
        _print_generic(result)
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


def _print_generic(result: dict[str, Any]) -> None:
    for part in ("fidelity", "privacy"):
        print(part)
        for k, v in result[part].items():
            if isinstance(v, dict):
                continue
            print(f"  {k:28s} {v:.4f}" if isinstance(v, float) else f"  {k:28s} {v}")


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
