"""Neural candidates of text and events twins: the network alone and mixed with a chain.

Labels (handed back to `fit`, they train the same network for the same number of steps; a
run with a fixed `steps=N` is retrained bit for bit, but one planned from the time budget is
not: its learning-rate schedule was planned for the budget's steps before any early or
in-time stop, and its first steps ran before the plan existed):

    neural[steps=N]                      the network alone, N optimiser steps
    neural[steps=N,nets=K]               K networks of N steps each (other seeds), their
                                         logits averaged (nn/ensemble.py)
    neural[steps=N,adapt=R]              ... its output layer learning each document as it
                                         reads it, at rate R (nn/adapt.py)
    <chain>+neural[w=W,steps=N]          w·network + (1-w)·chain (with the chain's cache)
    <chain>+neural[w=W,steps=N,adapt=R]  the same with the adapting network
    <chain>+neural[w=W,...,learn=E]      the network's weight learnt per previous symbol as
                                         each document is read, from W, at rate E
                                         (text/mixer.py)

Shorthands: ``neural`` (the kind's `MEMBERS` networks, their steps from the time budget,
static and at each rate of the kind's `ADAPT_RATES`) and ``mix`` (those and their mixtures
with the best chain on the board: at each weight of `MIX_WEIGHTS`, and with weights learnt
at the kind's `LEARN_RATES`). Rows that learn while they read are scored on the holdout's
blocks with at most max_order symbols of history (the whole document before a holdout tail
would cost a network pass over it); a twin reads each document it scores from its start.
Neural candidates are opt-in (training takes minutes) and are not refit on all the data: the
network trained on the training split is kept (its chain in a mixture too).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import progress
from ..core.candidates import Board, Candidate, Structure
from ..errors import InputError
from ..nn.adapt import Adaptation
from ..nn.backend import EXTRA, torch_or_none
from ..nn.ensemble import MAX_MEMBERS
from ..nn.scoring import WARM
from ..nn.train import TrainConfig, train_members
from .cache import CacheSpec
from .counts import BOS, EOS, Layout, Segment, Tables, layout
from .layers import LayeredModel
from .length import Ends, LengthHazard
from .mixer import all_positions
from .model import NgramModel
from .neural import MixModel, NeuralModel
from .structures import EVENTS_STRUCTURES, TEXT_STRUCTURES, parse_label

MIX_WEIGHTS = (0.15, 0.3, 0.45, 0.6, 0.75)
DEFAULT_BUDGET = {"text": 300.0, "events": 2700.0}  # events: 3 networks of up to 900 s
#: output-layer learning rates tried beside the static network (Shakespeare, a GRU-512 after
#: 700 steps: alone 2.206 static, 2.053 at 0.05, 2.060 at 0.1; mixed with the chain 1.900,
#: 1.863, 1.855, 1.855 at 0.15). Events: a sequence rarely fills a segment, so none.
ADAPT_RATES: dict[str, tuple[float, ...]] = {"text": (0.05, 0.15), "events": ()}
#: mixtures whose weights learn per previous symbol (None: the fixed weights); Shakespeare,
#: with the network adapting at 0.15: 1.8530 at the best fixed weight (0.35), 1.8354 learnt
#: at rate 3 (1.8381 at 1, 1.8388 at 0.3), from any start. Events: sequences are too short.
LEARN_RATES: dict[str, tuple[float | None, ...]] = {"text": (None, 3.0), "events": (None,)}
LEARN_START = 0.3
LEARN_SEGMENT = 64
#: the network per kind (sizes chosen by measurement, see bench/neural_explore.py; events:
#: on cmudict, 6,000 steps of an LSTM-512 score 3.690 bits a phone alone and 3.587 mixed
#: with the chain, a GRU-256's 3.808 and 3.618, an LSTM-256's 3.784 and 3.612)
NET: dict[str, dict[str, Any]] = {
    "text": {"cell": "gru", "hidden": 512, "embed": 64, "window": 128, "batch": 64, "threads": 2},
    "events": {
        "cell": "lstm",
        "hidden": 512,
        "embed": 64,
        "window": 64,
        "batch": 128,
        "threads": 2,
        "average": 0.999,
    },
}
#: networks per kind, averaged (nn/ensemble.py; events: on cmudict, 5,000 steps of LSTM-512s
#: score 3.110 / 3.114 / 3.107 bits a target alone, 3.066 as a pair, 3.050 as three)
MEMBERS = {"text": 1, "events": 3}
_LABEL = re.compile(r"^(?:(?P<chain>.+)\+)?neural(?:\[(?P<args>[^\]]*)\])?$")


@dataclass
class NeuralPlan:
    """What neural candidates a fit scores."""

    alone: bool = False
    mix: bool = False
    steps: int | None = None
    weights: tuple[float, ...] = MIX_WEIGHTS
    chain: str | None = None  # a named chain for the mixture (else the best on the board)
    #: adaptation rates (None: static) named by labels; None: static and the kind's rates
    rates: tuple[float | None, ...] | None = None
    #: the mixture weights' learning rates (None: fixed) named by labels; None: the kind's
    learns: tuple[float | None, ...] | None = None
    nets: int | None = None  # networks in the ensemble (None: the kind's `MEMBERS`)

    def adaptations(self, kind: str) -> list[Adaptation | None]:
        rates = (None, *ADAPT_RATES[kind]) if self.rates is None else self.rates
        return [None if r is None else Adaptation(r) for r in rates]

    @property
    def any(self) -> bool:
        return self.alone or self.mix


def split_structures(structures: Any) -> tuple[Any, NeuralPlan]:
    """(the chain structures, the neural plan) of a `structures` argument."""
    if structures is None:
        return None, NeuralPlan()
    names = _split_names(structures) if isinstance(structures, str) else list(structures)
    rest: list[str] = []
    plan = NeuralPlan()
    for raw in names:
        name = str(raw).strip()
        if name == "mix":
            plan.alone = plan.mix = True
            continue
        m = _LABEL.match(name)
        if not m:
            rest.append(name)
            continue
        args = _args(m.group("args") or "", name)
        plan.steps = args.get("steps", plan.steps)  # type: ignore[assignment]
        if "steps" in args or "nets" in args:  # a label names its networks (none: one)
            plan.nets = int(args.get("nets", 1))
        if "steps" in args or "adapt" in args:  # a label: its adaptation (none: static)
            rate = args.get("adapt")
            plan.rates = (*(plan.rates or ()), None if rate is None else float(rate))
        if m.group("chain"):  # that mixture alone: its chain is fit, not a contender
            plan.mix, plan.chain = True, m.group("chain")
            if "w" in args:
                plan.weights = (float(args["w"]),)
            if "steps" in args or "learn" in args:
                learn = args.get("learn")
                plan.learns = (*(plan.learns or ()), None if learn is None else float(learn))
        else:
            plan.alone = True
    if plan.mix and plan.chain is None and not rest:
        return None, plan  # every chain: the mixture takes the best
    return rest, plan


def _split_names(text: str) -> list[str]:
    """Comma-separated names, commas inside [...] kept (`neural[w=0.5,steps=9]`)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def _args(text: str, name: str) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for item in filter(None, text.split(",")):
        key, _, val = item.partition("=")
        try:
            if key == "steps" and int(val) >= 1:
                out["steps"] = int(val)
            elif key == "nets" and 1 <= int(val) <= MAX_MEMBERS:
                out["nets"] = int(val)
            elif key == "w" and 0.0 < float(val) < 1.0:
                out["w"] = float(val)
            elif key in ("adapt", "learn") and 0.0 < float(val) < 100.0:
                out[key] = float(val)
            else:
                raise ValueError
        except ValueError:
            raise InputError(
                f"bad neural structure {name!r}: use neural, neural[steps=N], "
                "neural[steps=N,nets=K,adapt=R] or <chain>+neural[w=W,steps=N,learn=E] with "
                f"0 < W < 1, 1 <= K <= {MAX_MEMBERS}, R > 0, E > 0"
            ) from None
    return out


def chain_parts(label: str, kind: str) -> tuple[int, str, bool]:
    """(order, smoother, cached) of a chain label (InputError when it is not one)."""
    reg = TEXT_STRUCTURES if kind == "text" else EVENTS_STRUCTURES
    try:
        p = parse_label(label, reg)
    except ValueError:
        p = {}
    if "order" not in p or p.get("len_weight", 0.0) is None:
        raise InputError(f"cannot mix a network with {label!r}: name a chain like markov5+kn+cache")
    return int(p["order"]), str(p["smoother"]), bool(p.get("cache", False))  # type: ignore[arg-type]


def _len_weight(label: str, kind: str) -> float | None:
    if kind != "events":
        return None
    w = parse_label(label, EVENTS_STRUCTURES).get("len_weight")
    return None if w is None else float(w)


def neural_label(
    steps: int,
    chain: str | None = None,
    weight: float | None = None,
    adapt: Adaptation | None = None,
    learn: Adaptation | None = None,
    nets: int = 1,
) -> str:
    tail = "" if nets == 1 else f",nets={nets}"
    tail += "" if adapt is None else f",adapt={adapt.rate:g}"
    tail += "" if learn is None else f",learn={learn.rate:g}"
    if chain is None:
        return f"neural[steps={steps}{tail}]"
    return f"{chain}+neural[w={weight:g},steps={steps}{tail}]"


def _train_blocks(segments: list[Segment]) -> list[np.ndarray]:
    return [
        np.concatenate([[BOS] if s.begin else [], s.tokens, [EOS] if s.end else []]).astype(
            np.int64
        )
        for s in segments
    ]


def _probe(segments: list[Segment], rng: np.random.Generator) -> list[Segment]:
    """Training positions to report train bits on: up to 40 windows of 1,024 symbols (after
    a warm-up of W) of long segments, or up to 2,000 whole short segments."""
    long = [s for s in segments if len(s.tokens) > 4 * (1024 + WARM)]
    if not long:
        pick = rng.permutation(len(segments))[:2000]
        return [segments[i] for i in sorted(pick)]
    out = []
    per = max(1, 40 // len(long))
    for s in long[:40]:
        for k in range(per):
            a = (len(s.tokens) - 1024 - WARM) * (k + 1) // (per + 1)
            out.append(Segment(s.tokens[a : a + WARM + 1024], False, False, WARM))
    return out


@dataclass
class _View:
    """One scored layout (the holdout or the training probe) as its rows need it: `lay` as the
    static rows score it, and `full`, every position of `learning`'s blocks, which rows that
    learn while reading read (the holdout with at most max_order symbols of history, not the
    whole document before it as the chain's cache reads it), with `keep`: the positions of
    `full` that `lay` predicts. Probabilities are kept per network version and place."""

    lay: Layout
    full: Layout
    keep: np.ndarray
    net: dict[tuple[Adaptation | None, str], np.ndarray] = field(default_factory=dict)
    chain: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, lay: Layout, learning: Layout | None = None) -> _View:
        learning = lay if learning is None else learning
        full = all_positions(learning)
        return cls(lay, full, learning.pred[full.pred])

    @property
    def same(self) -> bool:
        """Whether `full` is `lay` (no history before the predicted positions)."""
        f, lay = self.full, self.lay
        return len(f.t) == len(lay.t) and bool(np.array_equal(f.pred, lay.pred))

    def score_network(
        self, model: NeuralModel, adapts: list[Adaptation | None], learnt: bool
    ) -> None:
        """The static network where the static rows read, the adapting ones (and, for rows
        whose weights learn, the static one too) on `full`, states computed once."""
        if None in adapts:
            self.net[None, "lay"] = model.prob_layout(self.lay)
        on_full = [a for a in adapts if a is not None or (learnt and not self.same)]
        for a, p in zip(on_full, model.prob_layouts(self.full, on_full), strict=True):
            self.net[a, "full"] = p
        if None in adapts and self.same:
            self.net[None, "full"] = self.net[None, "lay"]

    def score_chain(self, chain: LayeredModel, learnt: bool) -> None:
        self.chain["lay"] = chain.prob_layout(self.lay)
        if learnt:
            self.chain["full"] = self.chain["lay"] if self.same else chain.prob_layout(self.full)

    def alone(self, adapt: Adaptation | None) -> np.ndarray:
        """The network's probabilities of the predicted symbols."""
        return self.net[None, "lay"] if adapt is None else self.net[adapt, "full"][self.keep]

    def mixed(self, mix: MixModel) -> np.ndarray:
        """The mixture's probabilities of the predicted symbols (fixed weights: the network
        as `alone` with the chain where `lay` puts it; learnt: both on `full`)."""
        if mix.learn is None:
            w = mix.weight
            return w * self.alone(mix.neural.adapt) + (1 - w) * self.chain["lay"]
        p = self.net[mix.neural.adapt, "full"]
        return mix.mixed(self.full, p, self.chain["full"])[self.keep]


def _rate(model: NeuralModel) -> float | None:
    return None if model.adapt is None else model.adapt.rate


class NeuralCandidates:
    """Trains the network once and yields its rows (and the mixtures') to a `ChainSearch`."""

    def __init__(self, kind: str, plan: NeuralPlan, budget: float | None, device: str, seed: int):
        self.kind, self.plan, self.device, self.seed = kind, plan, device, seed
        self.budget = DEFAULT_BUDGET[kind] if budget is None else float(budget)
        if not self.budget > 0:
            raise InputError(f"time_budget must be a positive number of seconds, got {budget}")

    def candidates(
        self, board: Board[Any], split: Any, tables: Tables | None
    ) -> Iterator[Candidate[Any]]:
        if torch_or_none() is None:
            progress.note(f"neural candidates skipped: torch is not installed ({EXTRA})")
            return
        cfg = TrainConfig(
            **NET[self.kind],
            steps=self.plan.steps,
            time_budget=self.budget,
            device=self.device,
            seed=self.seed,
        )
        with progress.step(f"training the {self.kind} network ({self.budget:g} s budget)"):
            t0 = time.perf_counter()
            nets = self.plan.nets or MEMBERS[self.kind]
            net, rep = train_members(
                _train_blocks(split.train), split.base, split.base - 1, 1, cfg, nets
            )
            model = NeuralModel(split.base, net)
            secs = time.perf_counter() - t0
        views = {
            "hold": _View.of(layout(split.cache_holdout or split.holdout), layout(split.holdout)),
            "probe": _View.of(layout(_probe(split.train, np.random.default_rng(self.seed)))),
        }
        versions = [model.with_adaptation(a) for a in self.plan.adaptations(self.kind)]
        mixes = self._mixtures() if self.plan.mix and tables is not None else []
        learnt = any(e is not None for _, e in mixes)
        with progress.step("scoring the network on the holdout"):
            for v in views.values():
                v.score_network(model, [m.adapt for m in versions], learnt)
        cols = {
            "steps": rep.steps,
            "epochs": rep.epochs,
            "params": model.n_params,
            "budget_s": self.budget,
            "stopped": rep.stopped,
            "nets": nets,
        }
        hold, probe = views["hold"], views["probe"]
        if self.plan.alone:
            for m in versions:
                label = neural_label(rep.steps, adapt=m.adapt, nets=nets)
                st = Structure.of("neural", label, steps=rep.steps, adapt=_rate(m), nets=nets)
                hb = self._holdout_bits(hold.alone(m.adapt), split)
                tb = _bits(probe.alone(m.adapt))
                yield Candidate(st, tb, hb, secs, m, columns=dict(cols))
        chain = self._chain(board) if mixes else None
        if chain is None:
            return
        layered, clabel = self._layered(chain, tables, split)  # type: ignore[arg-type]
        for v in views.values():
            v.score_chain(layered, learnt)
        for m in versions:
            for w, e in mixes:
                mix = MixModel(m, layered, w, None if e is None else Adaptation(e, LEARN_SEGMENT))
                mix_label = neural_label(rep.steps, clabel, w, m.adapt, mix.learn, nets)
                if board.find(mix_label) is not None:
                    continue
                st = Structure.of(
                    "mix", mix_label, steps=rep.steps, chain=clabel, weight=w, adapt=_rate(m),
                    learn=e, nets=nets,
                )  # fmt: skip
                hb = self._holdout_bits(hold.mixed(mix), split)
                yield Candidate(
                    st, _bits(probe.mixed(mix)), hb, secs, mix, columns={**cols, "weight": w}
                )

    def _mixtures(self) -> list[tuple[float, float | None]]:
        """(weight, learning rate of the weights or None) of each mixture row."""
        learns = self.plan.learns if self.plan.learns is not None else LEARN_RATES[self.kind]
        out: list[tuple[float, float | None]] = []
        for e in learns:
            if e is None:
                out += [(w, None) for w in self.plan.weights]
            else:
                start = self.plan.weights[0] if len(self.plan.weights) == 1 else LEARN_START
                out.append((start, e))
        return out

    @staticmethod
    def _holdout_bits(p: np.ndarray, split: Any) -> float:
        return float((-np.log2(p).sum() + split.holdout_extra_bits) / split.holdout_units)

    def _layered(
        self, chain: tuple[int, str, bool, str], tables: Tables, split: Any
    ) -> tuple[LayeredModel, str]:
        """The chain to mix with, with its cache and (events) length-aware ends."""
        order, smoother, cached, clabel = chain
        base = NgramModel.from_tables(tables, order, smoother)
        hazard = None
        w_len = _len_weight(clabel, self.kind)
        if w_len is not None:  # length-aware ends, offsets fit on the training split
            hazard = LengthHazard.fit(Ends.of(base, layout(split.train)), w_len)
        return LayeredModel(base, CacheSpec() if cached else None, hazard), clabel

    def _chain(self, board: Board[Any]) -> tuple[int, str, bool, str] | None:
        """The chain to mix with: the one named, else the best (plain or cached) on the board."""
        if self.plan.chain is not None:
            order, smoother, cached = chain_parts(self.plan.chain, self.kind)
            return order, smoother, cached, self.plan.chain
        best = None
        for c in board.contenders():
            if c.structure.name not in ("unigram", "markov"):
                continue
            if best is None or c.holdout_bits < best.holdout_bits:
                best = c
        if best is None:
            return None
        s = best.structure
        return int(s.param("order")), str(s.param("smoother")), bool(s.param("cache")), s.label


def _bits(p: np.ndarray) -> float:
    """Bits per predicted symbol of a probe (train bits of neural rows are per symbol)."""
    return float(-np.log2(p).sum() / max(len(p), 1))


def neural_info(leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
    """The selected neural row's training figures for the twin's info (empty otherwise)."""
    for row in leaderboard:
        if row.get("selected") and "steps" in row:
            keys = ("steps", "epochs", "budget_s", "stopped", "fit_seconds")
            return {f"neural_{k}": row[k] for k in keys if k in row}
    return {}
