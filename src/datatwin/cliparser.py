"""The command line's grammar: the sub-commands, each kind's options and which kinds an
option is for (an option given for another kind is refused, not ignored)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from . import __version__
from .base import Twin
from .core.registry import StructureRegistry
from .errors import InputError
from .kinds import _KINDS, twin_class


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _seed(text: str) -> int:
    """A random seed: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: give a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid seed {value}: give a number >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="datatwin",
        description=(
            "Digital twins of datasets: fit generative models by maximum likelihood, choose the "
            "structure by holdout bits, sample new data."
        ),
    )
    parser.add_argument("--version", action="version", version=f"datatwin {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    fit = sub.add_parser(
        "fit", help="fit candidate structures, print the leaderboard, save the best"
    )
    fit.add_argument("data", metavar="DATA", help="CSV, .csv.gz, Parquet, .txt or folder")
    fit.add_argument(
        "-o",
        "--output",
        metavar="MODEL",
        help="model file (default: DATA's stem + .twin; `-`: stdout, the leaderboard to stderr)",
    )
    fit.add_argument("--kind", choices=list(_KINDS), help="data kind (default: inferred)")
    fit.add_argument(
        "--structures",
        metavar="A,B,..",
        help="candidate structures to compare: names or leaderboard labels, comma-separated "
        f"({_structure_names()}; `datatwin structures` explains each)",
    )
    fit.add_argument(
        "--holdout",
        metavar="FRACTION|FILE",
        default=None,
        help="holdout fraction (default 0.2) or a file of held-out data",
    )
    fit.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    fit.add_argument(
        "--no-refit",
        action="store_true",
        help="keep the winner fit on the training split instead of refitting on all data",
    )
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_neural_options(fit)
    _add_reading_options(fit)

    score = sub.add_parser("score", help="bits of DATA under a saved twin")
    score.add_argument("model", metavar="MODEL")
    score.add_argument("data", metavar="DATA")
    score.add_argument("--json", action="store_true", help="print one JSON object")
    score.add_argument("--encoding", default="utf-8", help="text encoding of DATA (default utf-8)")
    score.add_argument("--sep", metavar="C", help="field separator of a CSV (default: sniffed)")
    score.add_argument("--no-header", action="store_true", help="the CSV has no header line")

    sample = sub.add_parser("sample", help="draw new data from a saved twin")
    sample.add_argument("model", metavar="MODEL")
    sample.add_argument(
        "-n", type=int, default=None, help="how many units (records, characters, events, steps)"
    )
    sample.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    sample.add_argument(
        "-o", "--output", metavar="OUT", help="output file (default and `-`: stdout)"
    )

    _add_coding_commands(sub)

    _add_demo_and_structures(sub)
    _add_evaluation_commands(sub)
    _add_kind_options(fit, sample)
    return parser


def _add_reading_options(fit: argparse.ArgumentParser) -> None:
    """How DATA (and --holdout) are read, the same for every kind that reads a CSV."""
    g = fit.add_argument_group("reading CSV files (tables, series, events)")
    kinds = ("table", "series", "events")
    Twin.cli_option(
        g, "--encoding", kinds=kinds, default="utf-8", help="text encoding (default utf-8)"
    )
    Twin.cli_option(g, "--sep", kinds=kinds, metavar="C", help="field separator (default: sniffed)")
    Twin.cli_option(
        g, "--no-header", kinds=kinds, action="store_true", help="the CSV has no header line"
    )


def _add_neural_options(fit: argparse.ArgumentParser) -> None:
    """Training options of the neural candidates (text, events and tables)."""
    neural = fit.add_argument_group("neural structures (text, events, table; torch extra)")
    Twin.cli_option(
        neural,
        "--time-budget",
        kinds=("text", "events", "table"),
        type=float,
        metavar="S",
        help="seconds of training per neural candidate (defaults: text 300, events 2700 for "
        "its 3 networks, table 90; training stops earlier when the validation split stops "
        "improving); the steps it buys are kept in the label",
    )
    Twin.cli_option(
        neural,
        "--device",
        kinds=("text", "events", "table"),
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where neural candidates train (default auto: a GPU when torch sees one)",
    )


def _add_coding_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`compress` and `decompress`: the twin's bits as a file."""
    comp = sub.add_parser(
        "compress", help="lossless compression of DATA with a twin's exact probabilities"
    )
    comp.add_argument("model", metavar="MODEL")
    comp.add_argument("data", metavar="DATA")
    comp.add_argument(
        "-o", "--output", metavar="OUT", help="compressed file (default: DATA + .dtz; `-`: stdout)"
    )
    comp.add_argument(
        "--self-contained",
        action="store_true",
        help="embed the model, so decompressing needs no model file",
    )
    comp.add_argument("--json", action="store_true", help="print the sizes as one JSON object")
    decomp = sub.add_parser("decompress", help="the original bytes of a compressed file")
    decomp.add_argument(
        "paths",
        nargs="+",
        metavar="[MODEL] IN",
        help="the model it was compressed with (not needed when it is embedded), then the file",
    )
    decomp.add_argument(
        "-o", "--output", metavar="DATA", help="output (default: IN without .dtz; `-`: stdout)"
    )


def _add_demo_and_structures(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`structures` (what each kind can fit) and `demo` (the bundled end-to-end run)."""
    structures = sub.add_parser("structures", help="the structures each kind can fit")
    structures.add_argument("--kind", choices=list(_KINDS), help="only this kind")
    structures.add_argument("--json", action="store_true", help="print one JSON object")

    demo = sub.add_parser("demo", help="end-to-end run on the bundled Adult census sample")
    demo.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default="datatwin-demo",
        help="folder for the demo's model and sample (default: datatwin-demo)",
    )
    demo.add_argument("--seed", type=_seed, default=0)
    demo.add_argument("--json", action="store_true")


def _add_evaluation_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`evaluate` and `report`: a twin against real data it did not see."""
    for name, text in (
        ("evaluate", "fidelity and privacy numbers of a twin against real data it did not see"),
        ("report", "self-contained HTML report: real vs twin, pictures and numbers"),
    ):
        ev = sub.add_parser(name, help=text)
        ev.add_argument("model", metavar="MODEL")
        ev.add_argument(
            "--real", required=True, metavar="DATA", help="real data the twin did not see"
        )
        ev.add_argument("--train", metavar="TRAIN", help="the data the twin was fit on (privacy)")
        ev.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        ev.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "report":
            ev.add_argument(
                "-o", "--output", metavar="HTML", help="default: MODEL's stem + .report.html"
            )


def registries() -> dict[str, StructureRegistry[Any]]:
    """Each importable kind's structure registry."""
    out = {}
    for kind in _KINDS:
        try:
            reg = twin_class(kind).structure_registry
        except InputError:
            continue
        if reg is not None:
            out[kind] = reg
    return out


def _structure_names() -> str:
    return "; ".join(f"{k}: {', '.join(r.names())}" for k, r in registries().items())


def _add_kind_options(fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
    """Each kind's own options; an option records the kinds it is for (`action.kinds`)."""
    done: set[type[Twin]] = set()
    for kind in _KINDS:
        try:
            cls = twin_class(kind)
        except InputError:
            continue
        owner: type[Twin] = next(
            c for c in cls.__mro__ if issubclass(c, Twin) and "cli_add_options" in c.__dict__
        )
        if owner in done:
            continue
        done.add(owner)
        before = {id(a) for p in (fit, sample) for a in p._actions}
        owner.cli_add_options(fit, sample)
        for p in (fit, sample):
            for a in p._actions:
                if id(a) not in before and not hasattr(a, "kinds"):
                    setattr(a, "kinds", (kind,))  # noqa: B010


def refuse_foreign_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, kind: str
) -> None:
    """An option given on the command line that is not for `kind` is a usage error (exit 2)
    naming the options this kind takes, rather than being silently ignored."""
    foreign, own = [], []
    for a in parser._actions:
        kinds = getattr(a, "kinds", None)
        if kinds is None or not a.option_strings:
            continue
        flag = max(a.option_strings, key=len)
        if kind in kinds:
            own.append(flag)
        elif getattr(args, a.dest, a.default) != a.default:
            foreign.append(f"{flag} (for {'/'.join(kinds)})")
    if foreign:
        takes = ", ".join(own) if own else "no options of its own"
        raise InputError(
            f"{', '.join(foreign)}: not an option for {kind} data; a {kind} "
            f"{parser.prog.split()[-1]} takes {takes}"
        )
