"""What text and event twins share: candidate parsing, holdout parsing, selection, sampling."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress
from ..base import Twin
from ..errors import InputError
from ..leaderboard import best, entry
from ..modelfile import require
from .cache import CacheSpec, cache_probs, generate_cached
from .counts import Segment, layout
from .model import NgramModel, fit_family, parse_structure, structure_name
from .smoothing import SMOOTHERS

DEFAULT_MAX_ORDER = 8
DEFAULT_HOLDOUT = 0.2
#: with at least this many documents, whole documents are held out instead of tails
WHOLE_DOC_MIN = 10


def _parse_structures(
    structures: str | list[str] | None, max_order: int, cache: bool
) -> list[tuple[int, str, bool]]:
    """Candidates (order, smoother, cached) from names like 'markov3+kn', 'markov5+kn+cache',
    'kn', 'wb', 'cache' or 'markov3' (each picks every matching candidate)."""
    every = [(k, s, False) for s in SMOOTHERS for k in range(max_order + 1)]
    if cache:
        every += [(k, s, True) for s in SMOOTHERS for k in range(1, max_order + 1)]
    if structures is None:
        return every
    names = structures.split(",") if isinstance(structures, str) else list(structures)
    out: list[tuple[int, str, bool]] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in SMOOTHERS:
            picked = [c for c in every if c[1] == name]
        elif name == "cache":
            picked = [c for c in every if c[2]]
        elif "+" in name:
            try:
                picked = [parse_structure(name)]
            except ValueError:
                picked = []
        else:
            picked = [c for c in every if structure_name(c[0], c[1]).split("+")[0] == name]
        if not picked:
            raise InputError(
                f"unknown structure {name!r}; use e.g. unigram+kn, markov5+kn, markov3+wb, "
                "markov7+kn+cache, kn, wb or cache (events also: markov6+kn+len, len)"
            )
        out.extend(c for c in picked if c not in out)
    return out


def _parse_holdout(holdout: Any) -> float | Path | None:
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
        raise InputError(f"--holdout fraction must be between 0 and 1, got {holdout}")
    return frac


class _SequenceTwin(Twin):
    """What text and event twins share: the model, selection, sampling machinery."""

    model: NgramModel
    _sampler = None

    def sampler(self):
        """The compiled state machine (built once)."""
        if self._sampler is None:
            from .sampling import Sampler

            self._sampler = Sampler(self.model)
        return self._sampler

    @staticmethod
    def _select(
        train: list[Segment],
        holdout: list[Segment],
        base: int,
        candidates: list[tuple[int, str, bool]],
        train_units: int,
        holdout_units: int,
        holdout_extra_bits: float,
        cache_holdout: list[Segment] | None = None,
    ) -> tuple[Any, list[dict[str, Any]], tuple[int, str, bool]]:
        max_order = max(c[0] for c in candidates)
        smoothers = tuple(s for s in SMOOTHERS if any(c[1] == s for c in candidates))
        orders = sorted({c[0] for c in candidates})
        use_cache = any(c[2] for c in candidates)
        tables, results = fit_family(
            train,
            holdout,
            base,
            max_order,
            smoothers,
            orders,
            holdout_extra_bits,
            cache=CacheSpec() if use_cache else None,
            cache_holdout=layout(cache_holdout) if use_cache and cache_holdout else None,
        )
        rows = []
        for r in results:
            if (r["order"], r["smoother"], r["cache"]) not in candidates:
                continue
            rows.append(
                entry(
                    r["structure"],
                    r["train_total_bits"] / max(train_units, 1),
                    r["holdout_total_bits"] / max(holdout_units, 1),
                    r["fit_seconds"],
                    order=r["order"],
                )
            )
        win = best(rows)
        return tables, rows, parse_structure(win["structure"])

    def model_meta(self) -> dict[str, Any]:
        return {
            "order": self.model.order,
            "smoother": self.model.smoother,
            "base": self.model.base,
            "cache": self.cache.to_json() if self.cache else None,
        }

    def _probs(self, segs: list[Segment]) -> np.ndarray:
        """Probability of every predicted symbol (static model, then the document cache)."""
        lay = layout(segs)
        p = self.model.prob_layout(lay)
        if self.cache is not None:
            p = cache_probs(lay, self.model.base, p, self.cache)
        return p

    def _generate(
        self, n: int, rng: np.random.Generator, history: np.ndarray, temperature: float
    ) -> tuple[list[int], bool]:
        sampler = self.sampler()
        state = sampler.walk(history)
        if self.cache is None:
            return sampler.generate(n, rng, state, temperature)
        return generate_cached(
            sampler, self.cache, [int(x) for x in history], n, rng, state, temperature
        )

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
            if getattr(self, "hazard", None) is not None:
                progress.note(
                    f"{args.arpa} holds the plain chain: ARPA cannot express the +len ends"
                )
