"""Neural sequence models: a recurrent network over symbols (`NeuralModel`) and its linear
mixture with an n-gram chain and its layers (`MixModel`), both `SequenceModel`s.

    neural:   p(x_j | x_<j) = RecurrentNet(x_a(j) .. x_{j-1})          (nn/scoring.py: the
              state restarts every R positions of a block after a warm-up of W symbols;
              with an `Adaptation`, the output layer learns the block as it reads it:
              nn/adapt.py)
    mixture:  q(x_j | x_<j) = w · p_neural(x_j | x_<j) + (1 - w) · p_chain(x_j | x_<j)
              (with `learn`, w_j is learnt per previous symbol as the block is read:
              text/mixer.py)

where p_chain is the chain with its document cache (itself an exact sequential probability).
Both rows sum to one over all ids (BOS = 0 gets 0: the network's outcomes are ids 1..B-1, each
floored at ε / (B-1); UNK, the escape for symbols unseen in training, gets that floor alone),
so the mixture is exact too and is sampled step by step from the same rows. The network is
plain float32 arrays with a numpy forward pass: scoring and sampling never need torch; only
training does (`pip install "datatwin[neural]"`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..blas import single_thread_blas
from ..modelfile import require
from ..nn.adapt import Adaptation, AdaptiveHead, block_reads, score_adapted
from ..nn.ensemble import Ensemble, load_net
from ..nn.recurrent import SymbolNet
from ..nn.scoring import CHUNK, WARM, score_blocks
from .counts import BOS, EOS, UNK, Layout
from .mixer import OnlineWeights, all_positions, learnt_weights
from .steps import Steps

OUT_OFFSET = 1  # outcome index = symbol id - 1 (BOS is never predicted)


def _blocks(lay: Layout) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Each block of a layout as input symbols starting with BOS (prepended when the block
    starts mid-document), the mask of predicted positions, and the shift applied (0 or 1)."""
    starts = np.flatnonzero(lay.offset == 0)
    ends = np.append(starts[1:], len(lay.t))
    seqs, wanted, shifts = [], [], []
    for s, e in zip(starts, ends, strict=True):
        t, p = lay.t[s:e], lay.pred[s:e]
        shift = int(len(t) == 0 or t[0] != BOS)
        if shift:
            t, p = np.concatenate([[BOS], t]), np.concatenate([[False], p])
        seqs.append(t.astype(np.int64))
        wanted.append(p.astype(bool))
        shifts.append(shift)
    return seqs, wanted, shifts


@dataclass
class NeuralModel:
    """A `SequenceModel` computed by a `RecurrentNet` or an `Ensemble` of them (module doc)."""

    base: int
    net: SymbolNet  # a RecurrentNet, or an Ensemble of them
    chunk: int = CHUNK
    warm: int = WARM
    adapt: Adaptation | None = None  # the output layer learns each block as it reads it
    _sampler: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.net.n_out != self.base - 1 or self.net.n_in != self.base:
            raise ValueError("network sizes do not match the alphabet")
        self.net.escape = UNK - OUT_OFFSET  # unseen symbols: the floor alone (module doc)

    @property
    def n_params(self) -> int:
        return self.net.n_params()

    @property
    def nets(self) -> int:
        """How many networks are averaged (1: a single one)."""
        return len(self.net.members) if isinstance(self.net, Ensemble) else 1

    def with_adaptation(self, adapt: Adaptation | None) -> NeuralModel:
        """The same network with another adaptation (None: static)."""
        return NeuralModel(self.base, self.net, self.chunk, self.warm, adapt)

    def prob_layout(self, lay: Layout) -> np.ndarray:
        return self.prob_layouts(lay, [self.adapt])[0]

    def prob_layouts(self, lay: Layout, adapts: list[Adaptation | None]) -> list[np.ndarray]:
        """`prob_layout` for each adaptation of this network (None: static), the network's
        states of the adapted ones computed once."""
        seqs, wanted, _ = _blocks(lay)
        if not seqs:
            return [np.zeros(0) for _ in adapts]
        specs = [a for a in adapts if a is not None]
        adapted = iter(
            score_adapted(self.net, seqs, wanted, OUT_OFFSET, self.chunk, self.warm, specs)
            if specs
            else []
        )
        out = []
        for a in adapts:
            if a is None:
                probs = score_blocks(self.net, seqs, wanted, OUT_OFFSET, self.chunk, self.warm)
            else:
                probs = next(adapted)
            out.append(np.concatenate([p[w] for p, w in zip(probs, wanted, strict=True)]))
        return out

    def prob_of_symbol(self, lay: Layout, symbol: int) -> np.ndarray:
        seqs, wanted, _ = _blocks(lay)
        out = []
        for s, w in zip(seqs, wanted, strict=True):
            for j in np.flatnonzero(w):
                out.append(self.next_distribution(s[:j])[symbol])
        return np.array(out, np.float64)

    def next_distribution(self, context: np.ndarray) -> np.ndarray:
        ctx = [int(x) for x in context]
        out = np.zeros(self.base)
        out[OUT_OFFSET:] = _Stepper(self, ctx[1:] if ctx and ctx[0] == BOS else ctx).dist()
        return out

    def sampler(self) -> NeuralSampler:
        if self._sampler is None:
            self._sampler = NeuralSampler(self)
        return self._sampler

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return self.net.to_arrays(prefix + "nn_")

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.net.settings(), "chunk": self.chunk, "warm": self.warm}
        if self.adapt is not None:
            out["adapt"] = self.adapt.to_json()
        return out

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], base: int, meta: Any, source: str, prefix: str = ""
    ) -> NeuralModel:
        require(isinstance(meta, dict), source, "missing neural settings")
        chunk, warm = meta.get("chunk"), meta.get("warm")
        require(
            isinstance(chunk, int) and isinstance(warm, int) and chunk >= 1 and warm >= 0,
            source,
            "bad neural chunking",
        )
        net = load_net(arrays, prefix + "nn_", meta, source)
        require(
            net.n_in == base and net.n_out == base - 1, source, "network does not fit the alphabet"
        )
        adapt = None
        if meta.get("adapt") is not None:
            try:
                adapt = Adaptation.from_json(meta["adapt"])
            except (ValueError, TypeError) as exc:
                require(False, source, f"bad network adaptation: {exc}")
        return cls(base, net, chunk, warm, adapt)


class _Stepper:
    """One sampled block of the network: its symbols so far, the recurrent state and (with
    an adaptation) the output layer learnt from them."""

    def __init__(self, model: NeuralModel, history: list[int]) -> None:
        self.model = model
        self.seq = [BOS, *history]
        self.head = None if model.adapt is None else AdaptiveHead(model.net, model.adapt)
        if self.head is not None and len(self.seq) > 1:  # learn the history, as scoring does
            seq = np.array(self.seq, np.int64)
            m = model
            for _, h, tgt in block_reads(m.net, seq, len(seq) - 1, m.chunk, m.warm, OUT_OFFSET):
                self.head.read(h, tgt)
        self._restart()

    def _restart(self) -> None:
        m = self.model
        j = len(self.seq)
        c = (j - 1) // m.chunk * m.chunk
        self.state = m.net.zero_state(1)
        h = None
        for x in self.seq[max(0, c - m.warm) :]:
            h = m.net.step(np.array([x]), self.state)
        assert h is not None
        self.h = h

    def dist(self) -> np.ndarray:
        """p(. | block so far) over the outcomes 1..B-1 (index 0 = EOS)."""
        if self.head is not None:
            return self.head.rows(self.h)[0]
        return self.model.net.probs(self.h)[0]

    def push(self, w: int) -> None:
        if self.head is not None:
            self.head.read(self.h, np.array([w - OUT_OFFSET]))
        self.seq.append(w)
        if (len(self.seq) - 1) % self.model.chunk == 0:
            self._restart()  # a new chunk: warm up from zero, as scoring does
        else:
            self.h = self.model.net.step(np.array([w]), self.state)


def _draw(p: np.ndarray, u: float, temperature: float) -> int:
    if temperature != 1.0:
        p = p ** (1.0 / temperature)
        p = p / p.sum()
    cum = np.cumsum(p)
    return int(min(np.searchsorted(cum, u * cum[-1], "right"), len(p) - 1))


class NeuralSampler:
    """Draws from a `NeuralModel`; a state (int) names a stored block-so-far."""

    def __init__(self, model: NeuralModel) -> None:
        self.model = model
        self.base = model.base
        self._states: list[tuple[int, ...]] = [()]
        self.start = 0

    def _state(self, hist: tuple[int, ...]) -> int:
        self._states.append(hist)
        return len(self._states) - 1

    def advance(self, state: int, w: int) -> int:
        return self._state((*self._states[state], int(w)))

    def walk(self, ids: np.ndarray, state: int | None = None) -> int:
        prev = self._states[self.start if state is None else state]
        return self._state((*prev, *(int(x) for x in ids)))

    def state_of(self, context: np.ndarray) -> int:
        ctx = [int(x) for x in context]
        return self._state(tuple(ctx[1:] if ctx and ctx[0] == BOS else ctx))

    def distribution(self, state: int) -> np.ndarray:
        return self.model.next_distribution(np.array([BOS, *self._states[state]], np.int64))

    def draw(
        self, state: int, next_u: Callable[[], float], rng: np.random.Generator
    ) -> tuple[int, int]:
        w = _draw(self.distribution(state), next_u(), 1.0)
        return w, self.advance(state, w)

    def generate(
        self, n: int, rng: np.random.Generator, state: int | None = None, temperature: float = 1.0
    ) -> tuple[list[int], bool]:
        # one row at a time: extra BLAS threads only wait on each other (and on the machine);
        # entered once a sequence, so it must be cheap (threadpoolctl rescans the libraries)
        with single_thread_blas():
            return self._generate(n, rng, state, temperature)

    def _generate(
        self, n: int, rng: np.random.Generator, state: int | None, temperature: float
    ) -> tuple[list[int], bool]:
        step = _Stepper(self.model, list(self._states[self.start if state is None else state]))
        out: list[int] = []
        us = rng.random(n + 1)
        while len(out) < n:
            w = _draw(step.dist(), float(us[len(out)]), temperature) + OUT_OFFSET
            if w == EOS:
                return out, True
            out.append(w)
            step.push(w)
        return out, False


@dataclass
class MixModel:
    """w · neural + (1 - w) · chain (a `LayeredModel`: n-gram with its cache); with `learn`,
    w is learnt per previous symbol as the block is read, from `weight` (text/mixer.py)."""

    neural: NeuralModel
    chain: Any  # LayeredModel (kept untyped: layers.py imports this module's users)
    weight: float
    learn: Adaptation | None = None
    _steps: Steps | None = field(default=None, repr=False, compare=False)

    def chain_steps(self) -> Steps:
        """The chain's rows one symbol at a time (made once per model, as its sampler)."""
        if self._steps is None:
            self._steps = Steps(self.chain)
        return self._steps

    @property
    def base(self) -> int:
        return self.neural.base

    @property
    def n_params(self) -> int:
        return int(self.neural.n_params + self.chain.n_params + 1)

    def prob_layout(self, lay: Layout) -> np.ndarray:
        if self.learn is None:
            w = self.weight
            return w * self.neural.prob_layout(lay) + (1.0 - w) * self.chain.prob_layout(lay)
        full = all_positions(lay)
        p, c = self.neural.prob_layout(full), self.chain.prob_layout(full)
        return self.mixed(full, p, c)[lay.pred[full.pred]]

    def weights(self, full: Layout, p: np.ndarray, c: np.ndarray) -> np.ndarray | float:
        """The network's weight at each predicted position of `full` (`all_positions`), given
        both models' probabilities there (a float when it is fixed)."""
        if self.learn is None:
            return self.weight
        return learnt_weights(full, p, c, self.base, self.weight, self.learn)

    def mixed(self, full: Layout, p: np.ndarray, c: np.ndarray) -> np.ndarray:
        w = self.weights(full, p, c)
        return w * p + (1.0 - w) * c

    def prob_of_symbol(self, lay: Layout, symbol: int) -> np.ndarray:
        w: Any = self.weight
        if self.learn is not None:
            full = all_positions(lay)
            w = self.weights(full, self.neural.prob_layout(full), self.chain.prob_layout(full))
            w = w[lay.pred[full.pred]]
        a = self.neural.prob_of_symbol(lay, symbol)
        return w * a + (1.0 - w) * self.chain.model.prob_of_symbol(lay, symbol)

    def weight_after(self, context: np.ndarray) -> tuple[float, OnlineWeights | None]:
        """The network's weight at the position after `context` (the block so far, BOS first
        at a document start), and the learning weights' state there (None when fixed)."""
        if self.learn is None:
            return self.weight, None
        ctx = np.asarray(context, np.int64)
        state = OnlineWeights(self.base, self.weight, self.learn)
        if len(ctx) > 1:
            n = len(ctx)
            full = Layout(ctx, np.arange(n) > 0, np.arange(n))
            p, c = self.neural.prob_layout(full), self.chain.prob_layout(full)
            state.read(ctx[:-1], p, c)
        return state.weight(int(ctx[-1]) if len(ctx) else BOS), state

    def next_distribution(self, context: np.ndarray) -> np.ndarray:
        w, _ = self.weight_after(context)
        return w * self.neural.next_distribution(context) + (
            1.0 - w
        ) * self.chain.next_distribution(context)

    def sampler(self) -> MixSampler:
        return MixSampler(self)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {**self.neural.to_arrays(prefix), **self.chain.to_arrays(prefix)}


class MixSampler(NeuralSampler):
    """Draws from a `MixModel`: both components' rows at every step, mixed, one draw."""

    def __init__(self, model: MixModel) -> None:
        super().__init__(model.neural)
        self.mix = model

    def distribution(self, state: int) -> np.ndarray:
        return self.mix.next_distribution(np.array([BOS, *self._states[state]], np.int64))

    def _generate(
        self, n: int, rng: np.random.Generator, state: int | None, temperature: float
    ) -> tuple[list[int], bool]:
        hist = list(self._states[self.start if state is None else state])
        step = _Stepper(self.neural_model, hist)
        # the chain's rows with its cache and ends, one symbol at a time (compiled when built)
        chain = self.mix.chain_steps().walk()
        q = next(chain)
        for x in hist:
            q = chain.send(x)
        w, learning = self.mix.weight_after(np.array([BOS, *hist], np.int64))
        prev = hist[-1] if hist else BOS
        out: list[int] = []
        us = rng.random(n + 1)
        while len(out) < n:
            pn = step.dist()
            p = w * pn + (1.0 - w) * q[OUT_OFFSET:]
            x = _draw(p, float(us[len(out)]), temperature) + OUT_OFFSET
            if x == EOS:
                return out, True
            out.append(x)
            step.push(x)
            if learning is not None:  # the weights read what was drawn, as scoring does
                learning.read(np.array([prev]), pn[x - OUT_OFFSET : x], q[x : x + 1])
                w, prev = learning.weight(x), x
            q = chain.send(x)
        return out, False

    @property
    def neural_model(self) -> NeuralModel:
        return self.mix.neural
