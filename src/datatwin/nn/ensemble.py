"""K recurrent networks trained apart (other seeds), read side by side as one network:

    p(y | x_≤t) = (1 - ε) softmax_y( (1/K) Σ_k z_k(x_≤t) ) + ε / V
                ∝ Π_k p_k(y | x_≤t)^(1/K)      (before the floor: their normalised
                                                  geometric mean)

where z_k = W_k h_k + b_k are member k's logits. That is one output layer over the members'
concatenated last states [h_1 .. h_K] with weights [W_1 .. W_K] / K and bias mean_k b_k, so an
`Ensemble` is a `SymbolNet` like a single network: every row sums to one, and scoring,
sampling and adaptation (which learns that shared output layer) use it unchanged. Each member
steps its own state, so it costs K networks, not one K times as wide.

On cmudict, two LSTM-512s of 5,000 steps each, scored apart: 3.110 and 3.114 bits a target
alone, 3.068 averaged as probabilities, 3.066 as here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelFileError
from .recurrent import RecurrentNet, SymbolNet

MAX_MEMBERS = 8


@dataclass
class Ensemble(SymbolNet):
    """Members over the same symbols and outcomes (see the module docstring)."""

    members: list[RecurrentNet]
    escape: int | None = None
    w_out: np.ndarray = field(init=False)
    b_out: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        first = self.members[0]
        if any(m.n_in != first.n_in or m.n_out != first.n_out for m in self.members):
            raise ValueError("ensemble members read or predict different alphabets")
        k = len(self.members)
        self.w_out = (np.concatenate([m.w_out for m in self.members], axis=1) / k).astype(
            np.float32
        )
        self.b_out = (np.mean([m.b_out for m in self.members], axis=0)).astype(np.float32)
        self._cuts = np.cumsum([0] + [len(m.zero_state(1)) for m in self.members])

    @property
    def hidden(self) -> int:
        return sum(m.hidden for m in self.members)

    @property
    def n_in(self) -> int:
        return self.members[0].n_in

    def n_params(self) -> int:
        return sum(m.n_params() for m in self.members)

    def zero_state(self, batch: int) -> list[np.ndarray]:
        """The members' states, one after another."""
        return [s for m in self.members for s in m.zero_state(batch)]

    def step(self, x: np.ndarray, state: list[np.ndarray]) -> np.ndarray:
        """Advance every member's part of `state` (in place); their last states side by side."""
        hs = []
        for m, a, b in zip(self.members, self._cuts[:-1], self._cuts[1:], strict=True):
            part = state[a:b]
            hs.append(m.step(x, part))
            state[a:b] = part
        return np.concatenate(hs, axis=1)

    def settings(self) -> dict[str, object]:
        return {"members": [m.settings() for m in self.members]}

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, m in enumerate(self.members):
            out.update(m.to_arrays(f"{prefix}m{k}_"))
        return out


def load_net(
    arrays: dict[str, np.ndarray], prefix: str, settings: dict[str, Any], source: str
) -> SymbolNet:
    """The network a model file's `settings` (`SymbolNet.settings`) and arrays describe:
    one `RecurrentNet`, or an `Ensemble` of them (ModelFileError when they do not fit)."""

    def single(s: Any, pre: str) -> RecurrentNet:
        layers = s.get("layers") if isinstance(s, dict) else None
        if not isinstance(layers, int):
            raise ModelFileError(f"{source}: bad neural layer count")
        return RecurrentNet.from_arrays(arrays, pre, str(s.get("cell")), layers, source)

    members = settings.get("members")
    if members is None:
        return single(settings, prefix)
    if not isinstance(members, list) or not 2 <= len(members) <= MAX_MEMBERS:
        raise ModelFileError(f"{source}: bad ensemble of networks")
    nets = [single(s, f"{prefix}m{k}_") for k, s in enumerate(members)]
    try:
        return Ensemble(nets)
    except ValueError as exc:
        raise ModelFileError(f"{source}: {exc}") from None
