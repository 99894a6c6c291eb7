"""Time-series twins: i.i.d., (vector) AR(p), seasonal and differenced structures, Gaussian or
mixture residuals, all scored at the recorded precision in bits per time step."""

from __future__ import annotations

from .twin import SeriesTwin

__all__ = ["SeriesTwin"]
