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
from .cache import CacheSpec
from .counts import Segment
from .layers import LayeredModel
from .length import LengthHazard
from .model import NgramModel
from .sampling import Sampler
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

    def _init_chain(self, model: NgramModel, cache: CacheSpec | None) -> None:
        self.chain = LayeredModel(model, cache)

    # the chain's parts, by name (tests, benches and the ARPA export use them)
    @property
    def model(self) -> NgramModel:
        assert isinstance(self.chain.model, NgramModel)
        return self.chain.model

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
        """The leaderboard label: 'markov8+kn+cache', 'markov6+kn+len[w=1.5]'."""
        p = self.params
        return chain_label(p["order"], p["smoother"], p["cache"], p["len_weight"])

    @property
    def params(self) -> dict[str, Any]:
        """The structure's parameters: order, smoother, cache, len_weight (None: plain ends)."""
        hz = self.chain.hazard
        return {
            "order": self.model.order,
            "smoother": self.model.smoother,
            "cache": self.chain.cache is not None,
            "len_weight": None if hz is None else hz.weight,
        }

    def sampler(self) -> Sampler:
        """The compiled state machine of the chain (built once)."""
        return self.model.sampler()

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

    def model_meta(self) -> dict[str, Any]:
        return {
            "order": self.model.order,
            "smoother": self.model.smoother,
            "base": self.model.base,
            "cache": self.cache.to_json() if self.cache else None,
        }

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
