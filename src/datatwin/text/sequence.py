"""What text and event twins share: the layered model, holdout parsing, seeds, structure
labels and parameters, the ARPA export."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress
from ..base import Twin
from ..core.seeding import SeedLike, seed_sequence
from ..errors import InputError
from ..modelfile import require
from ..nn.adapt import Adaptation
from .cache import CacheSpec
from .counts import Segment
from .layers import LayeredModel
from .length import LengthHazard
from .model import NgramModel
from .neural import MixModel, NeuralModel
from .neural_select import neural_label
from .structures import DEFAULT_MAX_ORDER, chain_label

__all__ = ["DEFAULT_HOLDOUT", "DEFAULT_MAX_ORDER", "WHOLE_DOC_MIN", "SequenceTwin", "rng_of"]

DEFAULT_HOLDOUT = 0.2
#: with at least this many documents, whole documents are held out instead of tails
WHOLE_DOC_MIN = 10


def rng_of(seed: SeedLike) -> np.random.Generator:
    """The generator of `seed` (int, None or a numpy Generator); an int gives the same draws as
    `np.random.default_rng(seed)`."""
    return np.random.default_rng(seed_sequence(seed))


def parse_holdout(holdout: Any) -> float | Path | None:
    """A fraction in (0, 1), a path to held-out data, or None (the default fraction)."""
    if holdout is None:
        return None
    if isinstance(holdout, int | float):
        frac = float(holdout)
    elif isinstance(holdout, Path):
        return holdout
    else:
        try:
            frac = float(holdout)
        except ValueError:
            path = Path(holdout)
            if not path.exists():
                raise InputError(f"holdout file not found: {path}") from None
            return path
    if not 0.0 < frac < 1.0:
        raise InputError(f"holdout fraction must be between 0 and 1, got {holdout}")
    return frac


def check_temperature(temperature: float) -> None:
    if not (temperature > 0 and math.isfinite(temperature)):
        raise InputError(f"temperature must be a positive number, got {temperature}")


class SequenceTwin(Twin):
    """What text and event twins share: a `LayeredModel` (n-gram chain, optional cache or
    length-aware ends), labels, parameters, sampling and persistence of the layers."""

    chain: LayeredModel
    info: dict[str, Any]

    def _init_chain(self, model: NgramModel, cache: CacheSpec | None) -> None:
        self.chain = LayeredModel(model, cache)

    # the chain's parts, by name (tests, benches and the ARPA export use them)
    @property
    def model(self) -> NgramModel:
        """The n-gram chain (of a mixture: its chain); InputError for a network alone."""
        m: Any = self.chain.model
        if isinstance(m, NgramModel):
            return m
        if isinstance(m, MixModel):
            return m.chain.model
        raise InputError("this twin is a neural network; it has no n-gram chain")

    @property
    def neural(self) -> NeuralModel | MixModel | None:
        """The network (alone or mixed with a chain), or None for a chain twin."""
        m = self.chain.model
        return m if isinstance(m, NeuralModel | MixModel) else None

    @property
    def cache(self) -> CacheSpec | None:
        return self.chain.cache

    @cache.setter
    def cache(self, spec: CacheSpec | None) -> None:
        self.chain.cache = spec

    @property
    def hazard(self) -> LengthHazard | None:
        return self.chain.hazard

    def set_hazard(self, hazard: LengthHazard | None) -> None:
        """Use length-aware sequence ends (None: the chain's own)."""
        self.chain.hazard = hazard
        self.chain._end_cache.clear()

    @property
    def structure(self) -> str:  # type: ignore[override]
        """The leaderboard label: 'markov8+kn+cache', 'markov6+kn+len[w=1.5]',
        'neural[steps=900]', 'markov8+kn+cache+neural[w=0.6,steps=900]'."""
        nn = self.neural
        if nn is not None:
            steps = int(self.info.get("neural_steps", 0))
            if isinstance(nn, MixModel):
                c = nn.chain
                hz = c.hazard
                chain = chain_label(
                    c.model.order, c.model.smoother, c.cache is not None, hz and hz.weight
                )
                net = nn.neural
                return neural_label(steps, chain, nn.weight, net.adapt, nn.learn, net.nets)
            return neural_label(steps, adapt=nn.adapt, nets=nn.nets)
        p = self.params
        return chain_label(p["order"], p["smoother"], p["cache"], p["len_weight"])

    @property
    def params(self) -> dict[str, Any]:
        """The structure's parameters: order, smoother, cache, len_weight (None: plain ends);
        for neural twins the steps, the network's settings and the mixture weight."""
        nn = self.neural
        if nn is not None:
            net = nn if isinstance(nn, NeuralModel) else nn.neural
            out = {"steps": int(self.info.get("neural_steps", 0)), **net.meta()}
            out["hidden"] = net.net.hidden
            if isinstance(nn, MixModel):
                out.update(weight=nn.weight, order=nn.chain.model.order)
                out.update(learn=None if nn.learn is None else nn.learn.to_json())
                out.update(smoother=nn.chain.model.smoother, cache=nn.chain.cache is not None)
            return out
        hz = self.chain.hazard
        return {
            "order": self.model.order,
            "smoother": self.model.smoother,
            "cache": self.chain.cache is not None,
            "len_weight": None if hz is None else hz.weight,
        }

    def sampler(self) -> Any:
        """The sampler of the twin's model (an n-gram chain's compiled state machine)."""
        return self.chain.model.sampler()

    def next_distribution(self, context: np.ndarray) -> np.ndarray:
        """The twin's exact next-symbol distribution after `context` (symbol ids of the block
        so far, BOS first at a document start), layers included."""
        return self.chain.next_distribution(context)

    def _probs(self, segs: list[Segment]) -> np.ndarray:
        """Probability of every predicted symbol under the layered model."""
        return self.chain.probs(segs)

    def _generate(
        self, n: int, rng: np.random.Generator, history: np.ndarray, temperature: float
    ) -> tuple[list[int], bool]:
        return self.chain.generate(n, rng, history, temperature)

    def file_format(self) -> int:
        """2 for an ensemble of networks, or a network or mixture weights that learn while
        they read (format 1 readers cannot score them)."""
        nn = self.neural
        if nn is None:
            return 1
        net = nn.neural if isinstance(nn, MixModel) else nn
        learns = isinstance(nn, MixModel) and nn.learn is not None
        return 2 if net.adapt is not None or learns or net.nets > 1 else 1

    def model_meta(self) -> dict[str, Any]:
        nn = self.neural
        if nn is not None:
            net = nn if isinstance(nn, NeuralModel) else nn.neural
            meta: dict[str, Any] = {"base": net.base, "neural": net.meta(), "cache": None}
            if isinstance(nn, MixModel):
                c = nn.chain
                meta.update(order=c.model.order, smoother=c.model.smoother, mix_weight=nn.weight)
                if nn.learn is not None:
                    meta["mix_learn"] = nn.learn.to_json()
                meta["cache"] = c.cache.to_json() if c.cache else None
            return meta
        return {
            "order": self.model.order,
            "smoother": self.model.smoother,
            "base": self.model.base,
            "cache": self.cache.to_json() if self.cache else None,
        }

    @classmethod
    def _load_model(
        cls, info: Any, arrays: dict[str, np.ndarray], base: int, source: str
    ) -> tuple[Any, CacheSpec | None]:
        """The stored sequence model and its cache: an n-gram chain, a network, or a mixture
        of the two (validated; ModelFileError otherwise)."""
        cache = cls._load_cache(info, source)
        if info.get("neural") is None:
            model = NgramModel.from_arrays(
                arrays, base, info.get("order"), info.get("smoother"), source
            )
            return model, cache
        try:
            net = NeuralModel.from_arrays(arrays, base, info["neural"], source)
        except ValueError as exc:
            require(False, source, str(exc))
        if info.get("mix_weight") is None:
            return net, None
        w = info["mix_weight"]
        require(isinstance(w, float) and 0.0 < w < 1.0, source, "bad mixture weight")
        chain = NgramModel.from_arrays(
            arrays, base, info.get("order"), info.get("smoother"), source
        )
        try:
            hazard = LengthHazard.from_arrays(arrays)
        except ValueError as exc:
            require(False, source, str(exc))
        learn = info.get("mix_learn")
        try:
            learn = None if learn is None else Adaptation.from_json(learn)
        except (ValueError, TypeError) as exc:
            require(False, source, f"bad mixture weights' adaptation: {exc}")
        return MixModel(net, LayeredModel(chain, cache, hazard), w, learn), None

    def _set_steps(self, steps: Any) -> None:
        if self.neural is not None:
            self.info["neural_steps"] = int(steps)

    @staticmethod
    def _load_cache(info: dict[str, Any], source: str) -> CacheSpec | None:
        if info.get("cache") is None:
            return None
        try:
            return CacheSpec.from_json(info["cache"])
        except (KeyError, TypeError, ValueError) as exc:
            require(False, source, f"bad cache settings ({exc})")
        return None

    def cli_write_arpa(self, args: argparse.Namespace) -> None:
        if getattr(args, "arpa", None):
            from .arpa import write_arpa

            write_arpa(self, args.arpa)
            if self.hazard is not None:
                progress.note(
                    f"{args.arpa} holds the plain chain: ARPA cannot express the +len ends"
                )
