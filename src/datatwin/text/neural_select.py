"""Neural candidates of text and events twins: the network alone and mixed with a chain.

Labels (handed back to `fit`, they train the same network for the same number of steps; a
run with a fixed `steps=N` is retrained bit for bit, but one planned from the time budget is
not: its learning-rate schedule was planned for the budget's steps before any early or
in-time stop, and its first steps ran before the plan existed):

    neural[steps=N]                      the network alone, N optimiser steps
    <chain>+neural[w=W,steps=N]          w·network + (1-w)·chain (with the chain's cache)

Shorthands: ``neural`` (the network, its steps from the time budget) and ``mix`` (the network
and its mixtures at each weight of `MIX_WEIGHTS` with the best chain on the board). Neural
candidates are opt-in (training takes minutes) and are not refit on all the data: the network
trained on the training split is kept (its chain in a mixture too).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import progress
from ..core.candidates import Board, Candidate, Structure
from ..errors import InputError
from ..nn.backend import EXTRA, torch_or_none
from ..nn.scoring import WARM
from ..nn.train import TrainConfig, train_recurrent
from .cache import CacheSpec
from .counts import BOS, EOS, Segment, Tables, layout
from .layers import LayeredModel
from .length import Ends, LengthHazard
from .model import NgramModel
from .neural import NeuralModel
from .structures import EVENTS_STRUCTURES, TEXT_STRUCTURES, parse_label

MIX_WEIGHTS = (0.15, 0.3, 0.45, 0.6, 0.75)
DEFAULT_BUDGET = {"text": 300.0, "events": 900.0}
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
    },
}
_LABEL = re.compile(r"^(?:(?P<chain>.+)\+)?neural(?:\[(?P<args>[^\]]*)\])?$")


@dataclass
class NeuralPlan:
    """What neural candidates a fit scores."""

    alone: bool = False
    mix: bool = False
    steps: int | None = None
    weights: tuple[float, ...] = MIX_WEIGHTS
    chain: str | None = None  # a named chain for the mixture (else the best on the board)

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
        if m.group("chain"):  # that mixture alone: its chain is fit, not a contender
            plan.mix, plan.chain = True, m.group("chain")
            if "w" in args:
                plan.weights = (float(args["w"]),)
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
            elif key == "w" and 0.0 < float(val) < 1.0:
                out["w"] = float(val)
            else:
                raise ValueError
        except ValueError:
            raise InputError(
                f"bad neural structure {name!r}: use neural, neural[steps=N] or "
                "<chain>+neural[w=W,steps=N] with 0 < W < 1"
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


def neural_label(steps: int, chain: str | None = None, weight: float | None = None) -> str:
    if chain is None:
        return f"neural[steps={steps}]"
    return f"{chain}+neural[w={weight:g},steps={steps}]"


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
            net, rep = train_recurrent(
                _train_blocks(split.train), split.base, split.base - 1, 1, cfg
            )
            model = NeuralModel(split.base, net)
            secs = time.perf_counter() - t0
        hold = layout(split.cache_holdout or split.holdout)
        probe = layout(_probe(split.train, np.random.default_rng(self.seed)))
        with progress.step("scoring the network on the holdout"):
            p_hold, p_train = model.prob_layout(hold), model.prob_layout(probe)
        extra = split.holdout_extra_bits
        cols = {
            "steps": rep.steps,
            "epochs": rep.epochs,
            "params": model.n_params,
            "budget_s": self.budget,
            "stopped": rep.stopped,
        }
        label = neural_label(rep.steps)
        tb, hb = _bits(p_train, probe), (-np.log2(p_hold).sum() + extra) / split.holdout_units
        if self.plan.alone:
            st = Structure.of("neural", label, steps=rep.steps)
            yield Candidate(st, tb, hb, secs, model, columns=dict(cols))
        if not self.plan.mix or tables is None:
            return
        chain = self._chain(board)
        if chain is None:
            return
        order, smoother, cached, clabel = chain
        base = NgramModel.from_tables(tables, order, smoother)
        hazard = None
        w_len = _len_weight(clabel, self.kind)
        if w_len is not None:  # length-aware ends, offsets fit on the training split
            hazard = LengthHazard.fit(Ends.of(base, layout(split.train)), w_len)
        layered = LayeredModel(base, CacheSpec() if cached else None, hazard)
        q_hold, q_train = layered.prob_layout(hold), layered.prob_layout(probe)
        for w in self.plan.weights:
            mix_label = neural_label(rep.steps, clabel, w)
            if board.find(mix_label) is not None:
                continue
            st = Structure.of("mix", mix_label, steps=rep.steps, chain=clabel, weight=w)
            mh, mt = w * p_hold + (1 - w) * q_hold, w * p_train + (1 - w) * q_train
            hb = (-np.log2(mh).sum() + extra) / split.holdout_units
            yield Candidate(
                st, _bits(mt, probe), hb, secs, (model, layered, w), columns={**cols, "weight": w}
            )

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


def _bits(p: np.ndarray, lay: Any) -> float:
    """Bits per predicted symbol of a probe (train bits of neural rows are per symbol)."""
    return float(-np.log2(p).sum() / max(len(p), 1))


def neural_info(leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
    """The selected neural row's training figures for the twin's info (empty otherwise)."""
    for row in leaderboard:
        if row.get("selected") and "steps" in row:
            keys = ("steps", "epochs", "budget_s", "stopped", "fit_seconds")
            return {f"neural_{k}": row[k] for k in keys if k in row}
    return {}
