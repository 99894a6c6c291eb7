"""The `datatwin` command: fit, score, sample, demo (docs/architecture.md).

Results go to stdout, progress and notes to stderr. Errors are one line on stderr with exit
code 2 for bad usage or bad input and 1 for anything else. Output paths are checked before any
work (never the same file as an input, never a folder, in a writable folder) and written
atomically, or through when they are devices or FIFOs (`datatwin.outputs`), so nothing
half-written is ever left behind, on SIGTERM too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import progress
from .base import check_count
from .cliparser import build_parser, refuse_foreign_options, registries
from .core.holdout import refuse_training_file_as_holdout
from .errors import DataTwinError, InputError
from .kinds import infer_kind, twin_class
from .leaderboard import render
from .outputs import STDOUT, check_folder_output, check_outputs, write_file
from .reader import ReadOptions, reading


def _default_model_path(data: Path) -> Path:
    name = data.name
    for suffix in (".gz", ".bz2", ".xz", ".zip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return Path(stem + ".twin")


def _read_options(args: argparse.Namespace) -> ReadOptions:
    return ReadOptions(
        encoding=getattr(args, "encoding", None) or "utf-8",
        sep=getattr(args, "sep", None),
        header=not getattr(args, "no_header", False),
    )


def cmd_structures(args: argparse.Namespace) -> int:
    """List each kind's registered structures with one line of help; defaults marked."""
    regs = {k: r for k, r in registries().items() if args.kind in (None, k)}
    if args.json:
        doc = {
            k: [{"name": e.name, "help": e.help, "default": e.default} for e in r.entries()]
            for k, r in regs.items()
        }
        print(json.dumps(doc))
        return 0
    for kind, reg in regs.items():
        print(f"{kind}:")
        for e in reg.entries():
            print(f"  {e.name:<14} {e.help}{'' if e.default else '  (on request)'}")
    return 0


def _emit_fit(twin: Any, args: argparse.Namespace, model_path: Path | str) -> None:
    to_stdout = str(model_path) == STDOUT  # the model went there: results to stderr
    out = sys.stderr if to_stdout else sys.stdout
    shown = "<stdout>" if to_stdout else str(model_path)
    if args.json:
        print(json.dumps({**twin.summary(), "model": shown}, allow_nan=False), file=out)
    else:
        from rich.console import Console

        render(twin.leaderboard, twin.unit, Console(file=out))
        print(f"selected: {twin.structure}  ->  {shown}", file=out)


def _holdout_file(holdout: str | None) -> str | None:
    """--holdout when it names a file rather than a fraction."""
    if holdout is None:
        return None
    try:
        float(holdout)
    except ValueError:
        return holdout
    return None


def _check_fit_outputs(args: argparse.Namespace, model_path: Path | str) -> None:
    """Before fitting: every file `fit` writes can be written and destroys no input."""
    check_outputs(
        {
            ("-o" if args.output else "model file"): model_path,
            "--write-schema": getattr(args, "write_schema", None),
            "--arpa": getattr(args, "arpa", None),
        },
        {
            "DATA": args.data,
            "--holdout": _holdout_file(args.holdout),
            "--schema": getattr(args, "schema", None),
            "--dag": getattr(args, "dag", None),
        },
        stdout_ok=("-o",),
    )


def cmd_fit(args: argparse.Namespace) -> int:
    data = Path(args.data)
    distributed = getattr(args, "engine", "memory") == "dask"
    pattern = distributed and any(ch in args.data for ch in "*?[")
    if not data.exists() and not pattern:
        raise InputError(f"data file not found: {data}")
    kind = args.kind or ("table" if distributed else infer_kind(data))
    cls = twin_class(kind)
    refuse_foreign_options(_subparser(args.command), args, kind)
    refuse_training_file_as_holdout(data, args.holdout)
    model_path: Path | str = args.output or _default_model_path(data.parent if pattern else data)
    if model_path != STDOUT:
        model_path = Path(model_path)
    _check_fit_outputs(args, model_path)
    with reading(_read_options(args)):
        twin = cls.cli_fit(data, args)
    with progress.step(f"saving the twin to {'stdout' if model_path == STDOUT else model_path}"):
        twin.save(model_path, stdout_ok=True)
    _emit_fit(twin, args, model_path)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from . import load

    twin = load(args.model)
    data = Path(args.data)
    if not data.exists():
        raise InputError(f"data file not found: {data}")
    with reading(_read_options(args)):
        result = twin.score(twin.cli_read(data, args))
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        print(
            f"{result['count']} {result['unit']}s: {result['total_bits']:.1f} bits in all, "
            f"{result['bits_per_unit']:.4f} bits per {result['unit']}"
        )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from . import load

    output = args.output or STDOUT
    check_outputs(
        {"-o": output},
        {
            "MODEL": args.model,
            "--history": getattr(args, "history", None),
            "--novelty": getattr(args, "novelty", None),
        },
        stdout_ok=("-o",),
    )
    twin = load(args.model)
    refuse_foreign_options(_subparser(args.command), args, twin.kind)
    check_count(args.n, "-n")
    write = twin.cli_sample_writer(args)  # options checked here, before any output
    write_file(output, write, stdout_ok=True, streaming=True)
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from . import load
    from .coding.api import compress_report

    data = Path(args.data)
    if not data.is_file():
        raise InputError(f"data file not found: {data}")
    output = args.output or f"{data}.dtz"
    check_outputs({"-o": output}, {"MODEL": args.model, "DATA": data}, stdout_ok=("-o",))
    twin = load(args.model)
    blob, report = compress_report(
        twin, data.read_bytes(), embed_model=args.self_contained, model=_model_file(args.model)
    )
    write_file(output, lambda fh: fh.write(blob), stdout_ok=True)
    sizes = report["sizes"]
    if args.json:
        print(
            json.dumps(_jsonable(report), allow_nan=False),
            file=sys.stderr if output == STDOUT else sys.stdout,
        )
    else:
        progress.note(
            f"{report['input']:,} bytes -> {sizes['total']:,} bytes "
            f"(payload {sizes['payload']:,}, the twin's own bits {report['model_bits'] / 8:,.0f} "
            f"bytes; side {sizes['layout']:,}, header {sizes['header']}, model {sizes['model']:,})"
        )
    return 0


def _model_file(model: str) -> bytes | None:
    """The model file's bytes, whose sha256 is the model's fingerprint (so the twin is not
    written out again just to fingerprint it); None when MODEL is not a file."""
    path = Path(model)
    return path.read_bytes() if path.is_file() else None


def _jsonable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in report.items()}


def cmd_decompress(args: argparse.Namespace) -> int:
    from . import load
    from .coding.api import decompress

    if len(args.paths) > 2:
        raise InputError("decompress takes [MODEL] IN: at most two files")
    model_path = args.paths[0] if len(args.paths) == 2 else None
    source = Path(args.paths[-1])
    if not source.is_file():
        raise InputError(f"compressed file not found: {source}")
    output = args.output
    if output is None:
        if source.suffix != ".dtz":
            raise InputError("give the output with -o (the input does not end in .dtz)")
        output = str(source.with_suffix(""))
    check_outputs({"-o": output}, {"MODEL": model_path, "IN": source}, stdout_ok=("-o",))
    twin = load(model_path) if model_path else None
    mb = _model_file(model_path) if model_path else None
    out = decompress(source.read_bytes(), twin, model=mb)  # checked (size, sha256) first
    write_file(output, lambda fh: fh.write(out), stdout_ok=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from importlib.resources import files

    import pandas as pd
    from rich.console import Console

    from .tabular.twin import TableTwin

    out = Path(args.output)
    check_folder_output(out, "-o")
    out.mkdir(parents=True, exist_ok=True)
    names = ("adult.csv.gz", "adult.twin", "adult_twin_sample.csv")
    check_outputs({f"-o {out}: {name}": out / name for name in names}, {})
    source = files("datatwin") / "data" / "adult.csv.gz"
    with source.open("rb") as fh:
        raw = fh.read()
    data_path = out / "adult.csv.gz"
    write_file(data_path, lambda f: f.write(raw))
    progress.note(f"fitting a twin of the bundled UCI Adult census sample ({data_path})")
    fit_args = argparse.Namespace(
        **{
            **vars(args),
            "data": str(data_path),
            "structures": None,
            "holdout": None,
            "no_refit": False,
        }
    )
    twin = TableTwin.cli_fit(data_path, fit_args)
    model_path = out / "adult.twin"
    twin.save(model_path)
    samples = twin.sample(1000, seed=args.seed)
    sample_path = out / "adult_twin_sample.csv"
    write_file(sample_path, lambda fh: twin.cli_write(samples, fh, args))
    if args.json:
        print(
            json.dumps(
                {**twin.summary(), "model": str(model_path), "sample": str(sample_path)},
                allow_nan=False,
            )
        )
        return 0
    console = Console()
    render(twin.leaderboard, twin.unit, console)
    print(f"selected structure: {twin.structure}; model saved to {model_path}")
    print(f"1000 synthetic records written to {sample_path}; the first five:")
    with pd.option_context("display.width", 250, "display.max_columns", 50):
        print(samples.head(5).to_string(index=False))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .report.commands import run_evaluate

    return run_evaluate(args)


def cmd_report(args: argparse.Namespace) -> int:
    from .report.commands import default_output, run_report

    check_outputs(
        {("-o" if args.output else "report"): args.output or default_output(args.model)},
        {"MODEL": args.model, "--real": args.real, "--train": args.train},
    )
    return run_report(args)


_PARSER: argparse.ArgumentParser | None = None


def _subparser(command: str) -> argparse.ArgumentParser:
    """The parser of a sub-command (its actions carry the kinds each option is for)."""
    assert _PARSER is not None
    sub = next(a for a in _PARSER._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so temporary files are removed on the way out."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the command runs, SIGTERM raises `Terminated` (then the old handler is back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    global _PARSER
    parser = _PARSER = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    progress.enable_cli(args.quiet)
    handler = {
        "fit": cmd_fit,
        "score": cmd_score,
        "sample": cmd_sample,
        "demo": cmd_demo,
        "structures": cmd_structures,
        "compress": cmd_compress,
        "decompress": cmd_decompress,
        "evaluate": cmd_evaluate,
        "report": cmd_report,
    }[args.command]
    try:
        with _sigterm_raises():
            return handler(args)
    except Terminated:
        print("datatwin: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except DataTwinError as exc:
        print(f"datatwin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("datatwin: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("datatwin: error: out of memory; try fewer rows or columns", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line unless debugging
        if os.environ.get("DATATWIN_DEBUG"):
            raise
        print(
            f"datatwin: internal error: {type(exc).__name__}: {exc} "
            "(set DATATWIN_DEBUG=1 for a traceback and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
