"""The one fit pipeline of text and events twins, on core `Candidate` / `Board` / `select`.

A kind turns its data into a `SplitData` (train and holdout blocks of symbol ids, the units
bits are reported in, how to refit on all the data); the pipeline then

1. counts the training blocks once and scores every chain the `Plan` names on train and
   holdout, orders 0..M and both smoothers from that one pass (`family.NgramFamily`),
   yielding each as a core Candidate in bits per unit,

       bits = -(sum_i log2 q(x_i | x_<i) + extra) / units;

2. (events) adds length-aware ends on the best chain (or on the chains named with `+len`),
   one Candidate per weight w;
3. keeps the candidate with the fewest holdout bits and refits its chain on all the data
   (offsets of `+len` included), unless the holdout is a file of its own;
4. adds the compressor baselines (computed in a background thread meanwhile) as rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import progress
from ..core.candidates import Board, Candidate, select
from .baselines import start_baselines
from .cache import CacheSpec
from .counts import Segment, Tables, layout
from .family import NgramFamily
from .length import Ends, LengthHazard
from .model import NgramModel
from .smoothing import SMOOTHERS
from .structures import Chain, Plan, chain_structure


@dataclass
class Refit:
    """All the data counted at the selected order, with its vocabulary."""

    tables: Tables
    segments: list[Segment]
    vocab: Any


@dataclass
class SplitData:
    """What a kind hands the pipeline: its data as blocks of symbol ids, split.

    `holdout_extra_bits`: bits added to the holdout total (e.g. spelling out unseen words);
    `cache_holdout`: the holdout with each document's whole history (for the cache);
    `baseline_bytes`: train and holdout as bytes for the compressors;
    `refit`: all the data counted at an order (None: keep the split's model);
    `what`: what progress messages call the data ("text"; "" for no messages)."""

    train: list[Segment]
    holdout: list[Segment]
    base: int
    train_units: int
    holdout_units: int
    holdout_extra_bits: float = 0.0
    cache_holdout: list[Segment] | None = None
    baseline_bytes: Callable[[], tuple[bytes, bytes]] | None = None
    refit: Callable[[int], Refit] | None = None
    what: str = ""


@dataclass
class Chosen:
    """The selected chain fitted for keeps: model, layers, the vocabulary of a refit."""

    model: Any  # NgramModel, or (neural structures) NeuralModel / MixModel
    cache: CacheSpec | None
    hazard: LengthHazard | None
    vocab: Any = None

    @property
    def refitted(self) -> bool:
        return self.vocab is not None


@dataclass
class Fitted:
    chosen: Chosen
    leaderboard: list[dict[str, Any]]
    seconds: float


class ChainSearch:
    """The core `Search` of text and events: one count pass, then +len, then the refit."""

    def __init__(self, split: SplitData, plan: Plan, refit: bool, neural: Any = None) -> None:
        self.split, self.plan, self.use_refit = split, plan, refit
        self.neural = neural  # NeuralCandidates or None
        self.tables: Tables | None = None

    def _step(self, message: str):
        return progress.step(message) if self.split.what else nullcontext()

    @property
    def holdout_units(self) -> int:
        """Held-out characters or events (the selection notes when too few decide)."""
        return int(self.split.holdout_units)

    def _per_unit(self, train_total: float, hold_total: float) -> tuple[float, float]:
        return (
            train_total / max(self.split.train_units, 1),
            hold_total / max(self.split.holdout_units, 1),
        )

    def candidates(self, board: Board[Any]) -> Iterator[Candidate[Any]]:
        split, plan = self.split, self.plan
        use_cache = any(c[2] for c in plan.chains)
        with self._step(f"counting n-grams up to order {plan.max_order} and scoring the holdout"):
            family = NgramFamily(
                split.train,
                split.holdout,
                split.base,
                plan.max_order,
                cache=CacheSpec() if use_cache else None,
                cache_holdout=split.cache_holdout if use_cache and split.cache_holdout else None,
            )
            self.tables = family.tables
            smoothers = tuple(s for s in SMOOTHERS if any(c[1] == s for c in plan.chains))
            orders = sorted({c[0] for c in plan.chains})
            for r in family.scores(smoothers, orders, split.holdout_extra_bits):
                if (r["order"], r["smoother"], r["cache"]) in plan.chains:
                    tb, hb = self._per_unit(r["train_total_bits"], r["holdout_total_bits"])
                    structure = chain_structure(r["order"], r["smoother"], r["cache"])
                    yield Candidate(
                        structure, tb, hb, r["fit_seconds"], columns={"order": r["order"]}
                    )
        for chain, weights in plan.lengths:
            if chain is None:  # on the best chain so far, unless it has a cache
                if not board.contenders():
                    continue
                best = board.best().structure
                if best.param("cache"):
                    continue
                chain = (best.param("order"), best.param("smoother"), False)
            if split.holdout:
                yield from self._lengths(board, chain, weights)
        if self.neural is not None:
            yield from self.neural.candidates(board, split, self.tables)

    def _lengths(
        self, board: Board[Any], chain: Chain, weights: tuple[float, ...]
    ) -> Iterator[Candidate[Any]]:
        """The chain with length-aware ends at each weight (offsets fit on the train split)."""
        assert self.tables is not None
        order, smoother, _ = chain
        t1 = time.perf_counter()
        split_model = NgramModel.from_tables(self.tables, order, smoother)
        lays = {"train": layout(self.split.train), "hold": layout(self.split.holdout)}
        probs = {k: split_model.prob_layout(v) for k, v in lays.items()}
        ends = {k: Ends.of(split_model, v) for k, v in lays.items()}
        offsets = LengthHazard.fit(ends["train"])
        secs = time.perf_counter() - t1
        for w in weights:
            structure = chain_structure(order, smoother, False, w)
            if board.find(structure.label) is not None:
                continue
            hz = offsets.with_weight(w)
            totals = [-np.sum(np.log2(hz.adjust(probs[k], ends[k]))) for k in ("train", "hold")]
            tb, hb = self._per_unit(totals[0], totals[1] + self.split.holdout_extra_bits)
            yield Candidate(structure, tb, hb, secs, hz, columns={"order": order, "weight": w})

    def refit(self, best: Candidate[Any]) -> Chosen:
        """The winner's chain: refit on all the data (its +len offsets too), or as it is."""
        if best.structure.name in ("neural", "mix"):  # kept as trained on the split
            return Chosen(best.model, None, None)
        order, smoother = best.structure.param("order"), best.structure.param("smoother")
        cache = CacheSpec() if best.structure.param("cache") else None
        hazard: LengthHazard | None = best.model
        if self.split.refit is None or not self.use_refit:
            assert self.tables is not None
            tables, self.tables = self.tables, None  # (the model takes what it keeps)
            return Chosen(NgramModel.taking_tables(tables, order, smoother), cache, hazard)
        self.tables = None  # the split's tables and blocks are not needed any more: free them
        self.split.train, self.split.holdout, self.split.cache_holdout = [], [], None
        what = self.split.what or "data"
        with self._step(f"refitting {best.structure.label} on all the {what}"):
            again = self.split.refit(order)
        model = NgramModel.taking_tables(again.tables, order, smoother)
        if hazard is not None:  # offsets from the refit chain on all the data
            hazard = LengthHazard.fit(Ends.of(model, layout(again.segments)), hazard.weight)
        return Chosen(model, cache, hazard, again.vocab)


def fit_chain(
    split: SplitData, plan: Plan, *, refit: bool, baselines: bool, neural: Any = None
) -> Fitted:
    """Run the pipeline above: the chosen chain, the leaderboard and the seconds it took
    (from the first count to the last row)."""
    fut = None
    if baselines and split.baseline_bytes is not None:
        train_bytes, hold_bytes = split.baseline_bytes()
        fut = start_baselines(train_bytes, hold_bytes, split.train_units, split.holdout_units)
        del train_bytes, hold_bytes  # (the compressors keep at most BASELINE_BYTES of each)
    t0 = time.perf_counter()
    sel = select(ChainSearch(split, plan, refit, neural), fut.result if fut is not None else None)
    return Fitted(sel.model, sel.leaderboard, time.perf_counter() - t0)
