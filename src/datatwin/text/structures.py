"""Structure names of text and events twins: one registry of name parts, one parser, one label.

A structure is a chain of order k with a smoother, optionally a document cache or (events)
length-aware ends, spelled as its parts joined by '+':

    label = ("unigram" | "markov<k>") "+" smoother ["+cache"] ["+len" ["[w=<W>]"]]

e.g. ``markov8+kn+cache`` or ``markov6+kn+len[w=1.5]``. Every part is registered in
`TEXT_STRUCTURES` / `EVENTS_STRUCTURES` (core `StructureRegistry`) with one line of help; its
builder turns the part into parameters (order, smoother, cache, len_weight), so a label and
`Structure.params` go both ways. A single part alone is a shorthand for every matching chain
(``kn``, ``wb``, ``cache``, ``markov5``, ``unigram``; ``len``: every chain, with length-aware
ends tried on the best one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..core.candidates import Param, Structure
from ..core.registry import StructureRegistry
from ..errors import InputError
from .length import WEIGHTS
from .smoothing import SMOOTHER_HELP, SMOOTHERS

DEFAULT_MAX_ORDER = 8
MAX_ORDER_LIMIT = 32

PartBuilder = Callable[[str], dict[str, Param]]


def _order_part(part: str) -> dict[str, Param]:
    if part == "unigram":
        return {"order": 0}
    digits = part[len("markov") :]
    if not digits.isdigit() or int(digits) < 1:
        raise ValueError(part)
    return {"order": int(digits)}


def _len_part(part: str) -> dict[str, Param]:
    if part == "len":
        return {"len_weight": None}
    m = re.fullmatch(r"len\[w=([^\]]*)\]", part)
    if not m:
        raise ValueError(part)
    w = float(m.group(1))
    if not 0.0 <= w <= 10.0:
        raise ValueError(part)
    return {"len_weight": w}


def _registry(kind: str, with_len: bool) -> StructureRegistry[PartBuilder]:
    reg: StructureRegistry[PartBuilder] = StructureRegistry(kind)
    reg.add("unigram", "order 0: symbol frequencies alone (unigram+kn, unigram+wb)", _order_part)
    reg.add("markov", "markov<k>: a chain of order k = 1..max_order (markov5+kn)", _order_part)
    for s in SMOOTHERS:
        reg.add(s, SMOOTHER_HELP[s], lambda part: {"smoother": part})
    reg.add("cache", "+cache: the document so far layered on the chain", lambda _: {"cache": True})
    if with_len:
        reg.add(
            "len",
            "+len or +len[w=W]: length-aware sequence ends (alone: on the best chain)",
            _len_part,
        )
    return reg


TEXT_STRUCTURES = _registry("text", with_len=False)
EVENTS_STRUCTURES = _registry("events", with_len=True)


def chain_label(order: int, smoother: str, cache: bool = False, len_weight: float | None = None):
    """The leaderboard label: 'unigram+kn', 'markov5+wb+cache', 'markov6+kn+len[w=1.5]'."""
    label = f"{'unigram' if order == 0 else f'markov{order}'}+{smoother}"
    if cache:
        label += "+cache"
    if len_weight is not None:
        label += f"+len[w={len_weight:g}]"
    return label


def chain_structure(
    order: int, smoother: str, cache: bool = False, len_weight: float | None = None
) -> Structure:
    """A chain as a core Structure, its label as above."""
    return Structure.of(
        "unigram" if order == 0 else "markov",
        chain_label(order, smoother, cache, len_weight),
        order=order,
        smoother=smoother,
        cache=cache,
        len_weight=len_weight,
    )


def _part_name(part: str) -> str:
    m = re.match(r"[a-z]+", part)
    return m.group(0) if m else part


def parse_label(label: str, registry: StructureRegistry[PartBuilder]) -> dict[str, Param]:
    """The parameters of a full label, every part through its registered builder; ValueError
    when a part is unknown or out of place (order, smoother, then cache or len)."""
    out: dict[str, Param] = {}
    keys: list[str] = []
    for part in label.split("+"):
        name = _part_name(part)
        if name not in registry:
            raise ValueError(label)
        params = registry.get(name).builder(part)
        keys += list(params)
        out.update(params)
    if keys not in (["order", "smoother"], ["order", "smoother", "cache"], _LEN_KEYS):
        raise ValueError(label)  # (the cache and length-aware ends do not combine)
    if out.get("cache") and out["order"] == 0:
        raise ValueError(label)
    return out


_LEN_KEYS = ["order", "smoother", "len_weight"]


Chain = tuple[int, str, bool]  # (order, smoother, cached)


@dataclass
class Plan:
    """The candidates a fit scores: chains that contend, and +len requests on chains."""

    chains: list[Chain]
    max_order: int
    #: (chain, weights) pairs; chain None: the best plain chain on the board
    lengths: list[tuple[Chain | None, tuple[float, ...]]] = field(default_factory=list)


def check_max_order(max_order: object) -> int:
    if isinstance(max_order, bool) or not isinstance(max_order, int):
        raise InputError(f"max_order must be an integer from 0 to 32, got {max_order!r}")
    if not 0 <= max_order <= MAX_ORDER_LIMIT:
        raise InputError(f"max_order must be an integer from 0 to 32, got {max_order}")
    return max_order


def plan(
    structures: str | Iterable[str] | None,
    max_order: int,
    cache: bool,
    registry: StructureRegistry[PartBuilder],
) -> Plan:
    """The candidates named by `structures` (None: every chain of order 0..max_order with each
    smoother, cached ones when `cache`, and for events length-aware ends on the best)."""
    check_max_order(max_order)
    every: list[Chain] = [(k, s, False) for s in SMOOTHERS for k in range(max_order + 1)]
    if cache:
        every += [(k, s, True) for s in SMOOTHERS for k in range(1, max_order + 1)]
    with_len = "len" in registry
    if structures is None:
        return Plan(every, max_order, [(None, WEIGHTS)] if with_len else [])
    names = structures.split(",") if isinstance(structures, str) else list(structures)
    chains: list[Chain] = []
    lengths: list[tuple[Chain | None, tuple[float, ...]]] = []
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        if name == "len" and with_len:
            lengths.append((None, WEIGHTS))
            picked = every
        elif name in SMOOTHERS:
            picked = [c for c in every if c[1] == name]
        elif name == "cache":
            picked = [c for c in every if c[2]]
        elif "+" in name:
            picked, request = _named(name, registry)
            if request is not None:
                lengths.append(request)
        else:
            picked = [c for c in every if chain_label(c[0], c[1]).split("+")[0] == name]
        if not picked and not (lengths and lengths[-1][0] is not None and "+len" in name):
            hint = " (events also: markov6+kn+len, len)" if with_len else ""
            raise InputError(
                f"unknown structure {name!r}; use e.g. unigram+kn, markov5+kn, markov3+wb, "
                f"markov7+kn+cache, kn, wb or cache{hint}; parts: {registry.help_text()}"
            )
        chains.extend(c for c in picked if c not in chains)
    if not chains and not lengths:
        raise InputError(f"structures: give one or more of {', '.join(registry.names())}")
    top = max([c[0] for c in chains] + [c[0] for c, _ in lengths if c is not None])
    return Plan(chains, top, lengths)


def _named(
    name: str, registry: StructureRegistry[PartBuilder]
) -> tuple[list[Chain], tuple[Chain, tuple[float, ...]] | None]:
    """One full label: the chains it makes contend, and its +len request if any
    (`+len`: the chain and its length-aware ends at every weight; `+len[w=W]`: exactly that
    candidate, the plain chain only its base)."""
    try:
        p = parse_label(name, registry)
    except ValueError:
        return [], None
    chain: Chain = (_int(p["order"]), str(p["smoother"]), bool(p.get("cache", False)))
    if "len_weight" not in p:
        return [chain], None
    w = p["len_weight"]
    if w is None:
        return [chain], (chain, WEIGHTS)
    return [], (chain, (float(w),))


def _int(v: Param) -> int:
    assert isinstance(v, int)
    return v
