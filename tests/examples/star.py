"""The walkthrough's example structure (docs/architecture.md, "Add a structure"): one module
and one registry line.

`star`: the first column is the hub and every other column depends on it alone,

    P(s_1, ..., s_d) = P(s_1) · Π_{v>1} P(s_v | s_1),

a network of conditional tables, so it normalises as any network does (each factor is a
distribution over its child's states for every hub state). Nothing else is needed: the
leaderboard, `structures=`, the CLI, the model file and the contract suite pick it up.
"""

from __future__ import annotations

from datatwin.tabular.protocols import StateModel
from datatwin.tabular.structures import TABLE_STRUCTURES, FitContext


def build_star(ctx: FitContext) -> StateModel:
    """Every column but the first has the first as its only parent."""
    return ctx.discrete([()] + [(0,) for _ in ctx.names[1:]])


def register() -> None:
    """The registry line (tests call it, then `TABLE_STRUCTURES.remove("star")`)."""
    TABLE_STRUCTURES.add("star", "the first column is every other column's parent", build_star)
