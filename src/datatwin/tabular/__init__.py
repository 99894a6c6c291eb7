"""Tables: schema inference, column codecs at recorded precision, and Bayesian-network twins."""

from .twin import STRUCTURES, TableTwin

__all__ = ["STRUCTURES", "TableTwin"]
