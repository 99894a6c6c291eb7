"""A linear-Gaussian Bayesian network over numeric columns, scored at recorded precision.

Each column is a linear regression on its parents with Gaussian noise (fit by least squares,
the maximum-likelihood estimate); a value's probability is the Gaussian mass of its recorded
cell [x − δ/2, x + δ/2), never a density. Structure: hill climbing on BIC computed from the
covariance matrix (one pass over the data). Sampling runs the regressions forward and rounds
to the recorded grid, which is exactly the model's distribution over cells.
Non-numeric tokens (e.g. a missing value where training had none) get a small escape mass.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..modelfile import require, require_integer
from ..numerics import log_normal_cell
from .codec import ColumnCodec, Decoded, grid_to_values, to_grid
from .protocols import STATE_MODELS

if TYPE_CHECKING:
    from ..reader import RawTable

_LOG_BYTE = math.log(256.0)


class GaussianScorer:
    """BIC of a linear-Gaussian family from the data's covariance (cached per family)."""

    def __init__(self, X: np.ndarray):
        self.n, self.d = X.shape
        self.mean = X.mean(axis=0)
        Xc = X - self.mean
        self.cov = (Xc.T @ Xc) / self.n
        self._cache: dict[tuple[int, tuple[int, ...]], float] = {}

    def residual_var(self, child: int, parents: tuple[int, ...]) -> float:
        c = self.cov
        v = c[child, child]
        if parents:
            p = list(parents)
            beta = np.linalg.lstsq(c[np.ix_(p, p)], c[p, child], rcond=None)[0]
            v = v - c[child, p] @ beta
        return max(float(v), 1e-300)

    def __call__(self, child: int, parents: tuple[int, ...]) -> float:
        parents = tuple(sorted(parents))
        key = (child, parents)
        s = self._cache.get(key)
        if s is None:
            var = self.residual_var(child, parents)
            s = -0.5 * self.n * math.log(var) - 0.5 * math.log(self.n) * (len(parents) + 2)
            self._cache[key] = s
        return s


@STATE_MODELS.register("gaussian")
class LinearGaussianNet:
    """x_v = intercept_v + coef_v · x_parents(v) + sigma_v · ε, on each column's grid."""

    def __init__(
        self,
        parents: list[tuple[int, ...]],
        intercept: np.ndarray,
        coefs: list[np.ndarray],
        sigma: np.ndarray,
        step: np.ndarray,
        mean: np.ndarray,
        escape: np.ndarray,
    ):
        from .bayesnet import topological_order

        self.parents = [tuple(int(p) for p in ps) for ps in parents]
        self.order = topological_order(self.parents)
        self.intercept = np.asarray(intercept, dtype=float)
        self.coefs = [np.asarray(c, dtype=float) for c in coefs]
        self.sigma = np.asarray(sigma, dtype=float)
        self.step = np.asarray(step, dtype=float)
        self.mean = np.asarray(mean, dtype=float)
        self.escape = np.asarray(escape, dtype=float)  # log-probability of a non-number

    @classmethod
    def fit(
        cls, X: np.ndarray, parents: list[tuple[int, ...]], step: np.ndarray
    ) -> LinearGaussianNet:
        n, d = X.shape
        intercept, coefs, sigma = np.zeros(d), [], np.zeros(d)
        for v, ps in enumerate(parents):
            A = np.column_stack([np.ones(n)] + [X[:, p] for p in ps])
            beta = np.linalg.lstsq(A, X[:, v], rcond=None)[0]
            resid = X[:, v] - A @ beta
            # ML variance, floored so a value's cell never has more than ~all the mass
            sigma[v] = max(math.sqrt(float(resid @ resid) / n), 0.25 * step[v])
            intercept[v] = beta[0]
            coefs.append(beta[1:])
        escape = np.full(d, math.log(0.5 / (n + 1)))
        return cls(parents, intercept, coefs, sigma, step, X.mean(axis=0), escape)

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [(p, v) for v, ps in enumerate(self.parents) for p in ps]

    def n_params(self) -> int:
        return int(sum(len(ps) + 2 for ps in self.parents))

    def _mu(self, X: np.ndarray, v: int) -> np.ndarray:
        mu = np.full(len(X), self.intercept[v])
        for c, p in zip(self.coefs[v], self.parents[v], strict=True):
            mu += c * X[:, p]
        return mu

    def edge_weights(self) -> None:
        return None

    def log_prob_grid(self, X: np.ndarray, tokens_len: np.ndarray) -> np.ndarray:
        """log P(row); X holds numbers (NaN where the cell held a non-number of `tokens_len`
        UTF-8 bytes, which is scored by the escape: a byte-uniform spelling)."""
        Xf = np.where(np.isnan(X), self.mean[None, :], X)  # regressors for non-numbers
        out = np.zeros(len(X))
        for v in range(X.shape[1]):
            num = ~np.isnan(X[:, v])
            lp = np.empty(len(X))
            mu = self._mu(Xf, v)
            lp[num] = math.log1p(-math.exp(self.escape[v])) + log_normal_cell(
                X[num, v], mu[num], self.sigma[v], self.step[v]
            )
            k = tokens_len[~num, v]
            lp[~num] = self.escape[v] + math.log(0.2) + k * (math.log(0.8) - _LOG_BYTE)
            out += lp
        return out

    def sample_grid(self, n: int, rng: np.random.Generator) -> np.ndarray:
        X = np.zeros((n, len(self.parents)))
        for v in self.order:
            x = self._mu(X, v) + self.sigma[v] * rng.standard_normal(n)
            X[:, v] = np.round(x / self.step[v]) * self.step[v]
        return X

    # ---- the StateModel of a table twin -----------------------------------------------
    def log_prob(self, codecs: list[ColumnCodec], raw: RawTable) -> np.ndarray:
        """log P(row) in nats: each value's cell mass (non-numbers by the escape)."""
        X = np.column_stack([to_grid(c.spec, raw.cells[c.spec.name]) for c in codecs])
        nbytes = (
            np.column_stack(
                [
                    raw.cells[c.spec.name].per_cell(_utf8_lengths(raw.cells[c.spec.name].uniques))
                    for c in codecs
                ]
            )
            if np.isnan(X).any()
            else np.zeros(X.shape, dtype=np.int64)
        )
        return self.log_prob_grid(X, nbytes)

    def sample(
        self,
        codecs: list[ColumnCodec],
        n: int,
        rng: np.random.Generator,
        allowed: list[np.ndarray],
        evidence: dict[int, int],
    ) -> list[Decoded]:
        """Values drawn forward on each column's grid (no states: `allowed` is moot)."""
        if evidence:
            raise InputError(
                "given values are supported for discrete structures; this twin is "
                "linear-Gaussian (fit with structures=['bayesnet'] to condition)"
            )
        X = self.sample_grid(n, rng)
        return [
            Decoded(grid_to_values(c.spec, X[:, i]), np.zeros(n, bool), None)
            for i, c in enumerate(codecs)
        ]

    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, self.to_arrays()

    @classmethod
    def from_archive(
        cls,
        meta: dict[str, Any],
        arrays: dict[str, np.ndarray],
        codecs: list[ColumnCodec],
        source: str,
    ) -> LinearGaussianNet:
        net = cls.from_arrays(arrays)  # raises on a cycle or bad values
        require(len(net.parents) == len(codecs), source, "Gaussian network size mismatch")
        return net

    def to_arrays(self) -> dict[str, np.ndarray]:
        d = len(self.parents)
        pmat = np.full((d, max([len(p) for p in self.parents] + [1])), -1, dtype=np.int64)
        cmat = np.zeros(pmat.shape)
        for v, ps in enumerate(self.parents):
            pmat[v, : len(ps)] = ps
            cmat[v, : len(ps)] = self.coefs[v]
        return {
            "g_parents": pmat,
            "g_coefs": cmat,
            "g_intercept": self.intercept,
            "g_sigma": self.sigma,
            "g_step": self.step,
            "g_mean": self.mean,
            "g_escape": self.escape,
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> LinearGaussianNet:
        require_integer(a, ["g_parents"], "Gaussian network")
        pmat, cmat = a["g_parents"], a["g_coefs"]
        d = len(a["g_sigma"])
        vecs = [a[k] for k in ("g_intercept", "g_sigma", "g_step", "g_mean", "g_escape")]
        if pmat.shape[0] != d or cmat.shape != pmat.shape or any(x.shape != (d,) for x in vecs):
            raise ValueError("Gaussian network arrays have inconsistent shapes")
        if not all(np.all(np.isfinite(x)) for x in [cmat, *vecs]):
            raise ValueError("Gaussian network parameters are not finite")
        if np.any(a["g_sigma"] <= 0) or np.any(a["g_step"] <= 0) or np.any(a["g_escape"] >= 0):
            raise ValueError("Gaussian network scales or escape masses are out of range")
        if pmat.min() < -1 or pmat.max() >= d:
            raise ValueError("a parent index is out of range")
        parents = [tuple(int(p) for p in row if p >= 0) for row in pmat]
        coefs = [cmat[v, : len(ps)] for v, ps in enumerate(parents)]
        return cls(
            parents, a["g_intercept"], coefs, a["g_sigma"], a["g_step"], a["g_mean"], a["g_escape"]
        )


def _utf8_lengths(texts: np.ndarray) -> np.ndarray:
    """Bytes of each text in UTF-8."""
    return np.array([len(str(t).encode()) for t in texts], dtype=np.int64).reshape(-1)
