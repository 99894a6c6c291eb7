"""Text and event-sequence twins: smoothed Markov chains chosen by holdout bits per symbol."""

from __future__ import annotations

__all__ = ["TextTwin", "EventsTwin"]


def __getattr__(name: str):
    if name in __all__:
        from . import twin

        return getattr(twin, name)
    raise AttributeError(name)
