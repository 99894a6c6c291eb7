"""Smoothed, sparse conditional probability tables P(child | parents).

P(x | c) = (n_cx + α·p_x) / (n_c + α): counts of the configurations seen, shrunk towards the
child's smoothed marginal p (which gives unseen states and the escape state their mass);
a configuration never seen falls back to p itself. Only seen configurations are stored.
Lookups use a dense table when the configuration space is small, a sorted search otherwise.
"""

from __future__ import annotations

import numpy as np

from ..modelfile import require_integer
from .counting import FamilyCounts, config_keys
from .protocols import CONDITIONALS

_DENSE_CELLS = 1 << 21


@CONDITIONALS.register("table")
class CPT:
    """One node's conditional table; `alpha = inf` means the parents are ignored."""

    def __init__(
        self,
        k: int,
        parents: tuple[int, ...],
        parent_cards: np.ndarray,
        alpha: float,
        prior: np.ndarray,
        counts: FamilyCounts,
    ):
        self.k = int(k)
        self.parents = tuple(int(p) for p in parents)
        self.parent_cards = np.asarray(parent_cards, dtype=np.int64)
        self.alpha = float(alpha)
        self.prior = np.asarray(prior, dtype=float)
        self.counts = counts
        self.space = int(np.prod(self.parent_cards)) if len(self.parents) else 1
        self._dense_logp: np.ndarray | None = None
        self._dense_p: np.ndarray | None = None
        self._cum: np.ndarray | None = None

    def n_params(self) -> int:
        """Free parameters of the seen configurations (a complexity figure)."""
        if not np.isfinite(self.alpha):
            return self.k - 1
        return len(self.counts.cfg_keys) * (self.k - 1)

    # ---- probabilities -----------------------------------------------------------------
    def _lam(self) -> np.ndarray:
        if not np.isfinite(self.alpha):
            return np.zeros(len(self.counts.cfg_n))
        return self.counts.cfg_n / (self.counts.cfg_n + self.alpha)

    def dense(self) -> np.ndarray:
        """Full table (space × k) of probabilities; only for small configuration spaces."""
        table = np.tile(self.prior, (self.space, 1))
        fc = self.counts
        if len(fc.cfg_keys) and np.isfinite(self.alpha):
            lam = self._lam()
            rows = fc.cfg_keys
            table[rows] *= (1.0 - lam)[:, None]
            emp = fc.fam_n / fc.cfg_n[fc.fam_cfg]
            np.add.at(table, (rows[fc.fam_cfg], fc.fam_x), lam[fc.fam_cfg] * emp)
        return table

    def dense_cells(self) -> int:
        """Cells of the dense table (configurations × k)."""
        return self.space * self.k

    def parent_weights(self) -> None:
        """Every parent counts alike in a table."""
        return None

    def _use_dense(self) -> bool:
        return self.space * self.k <= _DENSE_CELLS

    def log_prob(self, columns: list[np.ndarray], cards: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log P(x | parents) for each row (nats)."""
        if not self.parents or not np.isfinite(self.alpha):
            return np.log(self.prior[x])
        key = config_keys(columns, cards, self.parents)
        if self._use_dense():
            if self._dense_logp is None:
                self._dense_logp = np.log(self.dense()).ravel()
            return self._dense_logp[key * self.k + x]
        fc = self.counts
        ci = np.searchsorted(fc.cfg_keys, key)
        ci_c = np.minimum(ci, len(fc.cfg_keys) - 1)
        found = fc.cfg_keys[ci_c] == key
        n_c = np.where(found, fc.cfg_n[ci_c], 0)
        fam_key = fc.cfg_keys[fc.fam_cfg] * self.k + fc.fam_x  # sorted
        q = key * self.k + x
        fi = np.minimum(np.searchsorted(fam_key, q), len(fam_key) - 1)
        n_cx = np.where(fam_key[fi] == q, fc.fam_n[fi], 0)
        return np.log((n_cx + self.alpha * self.prior[x]) / (n_c + self.alpha))

    def state_probs(self, columns: list[np.ndarray], cards: np.ndarray, n: int) -> np.ndarray:
        """P(x | parents) for every state x, one row per row of the parent columns."""
        if not self.parents or not np.isfinite(self.alpha) or not len(self.counts.cfg_keys):
            return np.repeat(self.prior[None, :], n, axis=0)
        key = config_keys(columns, cards, self.parents)
        if self._use_dense():
            if self._dense_p is None:
                self._dense_p = self.dense()
            return self._dense_p[key]
        fc = self.counts
        ci = np.minimum(np.searchsorted(fc.cfg_keys, key), len(fc.cfg_keys) - 1)
        found = fc.cfg_keys[ci] == key
        uniq, inv = np.unique(ci[found], return_inverse=True)
        table = np.zeros((len(uniq), self.k))
        pick = np.isin(fc.fam_cfg, uniq)
        table[np.searchsorted(uniq, fc.fam_cfg[pick]), fc.fam_x[pick]] = fc.fam_n[pick]
        out = np.repeat((self.alpha * self.prior)[None, :], n, axis=0)
        out[found] += table[inv.reshape(-1)]
        n_c = np.where(found, fc.cfg_n[ci], 0)
        return out / (n_c + self.alpha)[:, None]

    # ---- sampling ----------------------------------------------------------------------
    def sample(
        self,
        columns: list[np.ndarray],
        cards: np.ndarray,
        rng: np.random.Generator,
        n: int,
        allowed: np.ndarray,
    ) -> np.ndarray:
        """Draw the child for each row given its sampled parents; only `allowed` states."""
        prior = np.where(allowed, self.prior, 0.0)
        z = prior.sum()
        if not self.parents or not np.isfinite(self.alpha) or not len(self.counts.cfg_keys):
            cdf = np.cumsum(prior / z)
            return np.minimum(np.searchsorted(cdf, rng.random(n), "right"), self.k - 1)
        key = config_keys(columns, cards, self.parents)
        if self._use_dense():
            cols = self._sampling_columns(allowed)
            u = rng.random(n)
            out = np.zeros(n, dtype=np.int64)
            for c in cols:  # x = number of cumulative probabilities below u
                out += u >= c[key]
            return out
        # sparse: mixture of the seen configuration's counts and the marginal
        fc = self.counts
        ci = np.searchsorted(fc.cfg_keys, key)
        ci_c = np.minimum(ci, len(fc.cfg_keys) - 1)
        found = fc.cfg_keys[ci_c] == key
        lam = np.where(found, self._lam()[ci_c], 0.0)
        esc_mass = 1.0 - z  # mass of disallowed states in the marginal
        lam = lam / (1.0 - (1.0 - lam) * esc_mass)
        u = rng.random(n)
        use_emp = u < lam
        out = np.empty(n, dtype=np.int64)
        cdf = np.cumsum(prior / z)
        m = ~use_emp
        out[m] = np.minimum(np.searchsorted(cdf, rng.random(int(m.sum())), "right"), self.k - 1)
        if use_emp.any():
            if self._cum is None:
                self._cum = np.cumsum(fc.fam_n)
            first = np.searchsorted(fc.fam_cfg, np.arange(len(fc.cfg_keys)))
            before = np.r_[0, self._cum][first]
            rows = ci_c[use_emp]
            r = before[rows] + np.floor(rng.random(len(rows)) * fc.cfg_n[rows])
            out[use_emp] = fc.fam_x[np.searchsorted(self._cum, r, "right")]
        return out

    def _sampling_columns(self, allowed: np.ndarray) -> list[np.ndarray]:
        """Per-state cumulative probabilities (first k−1 columns), cached per `allowed` mask."""
        tag = allowed.tobytes()
        if getattr(self, "_cols_tag", None) != tag:
            table = self.dense() * allowed[None, :]
            table /= table.sum(axis=1, keepdims=True)
            cdf = np.cumsum(table, axis=1)
            last = np.flatnonzero(allowed)[-1]  # states after the last allowed one are never drawn
            self._cols = [np.ascontiguousarray(cdf[:, j]) for j in range(last)]
            self._cols_tag = tag
        return self._cols

    # ---- persistence -------------------------------------------------------------------
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        fc = self.counts
        return {
            f"{prefix}parents": np.array(self.parents, dtype=np.int64),
            f"{prefix}alpha_prior": np.r_[self.alpha, self.prior],
            f"{prefix}cfg_keys": fc.cfg_keys,
            f"{prefix}cfg_n": fc.cfg_n,
            f"{prefix}fam_cfg": fc.fam_cfg,
            f"{prefix}fam_x": fc.fam_x,
            f"{prefix}fam_n": fc.fam_n,
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, k: int, cards: np.ndarray
    ) -> CPT:
        ints = ("parents", "cfg_keys", "cfg_n", "fam_cfg", "fam_x", "fam_n")
        require_integer(arrays, [f"{prefix}{n}" for n in ints], "conditional table")
        parents = tuple(int(p) for p in arrays[f"{prefix}parents"])
        ap = arrays[f"{prefix}alpha_prior"].astype(float)
        alpha, prior = float(ap[0]), ap[1:]
        fc = FamilyCounts(
            *(
                arrays[f"{prefix}{n}"].astype(np.int64)
                for n in ("cfg_keys", "cfg_n", "fam_cfg", "fam_x", "fam_n")
            )
        )
        if prior.shape != (k,) or np.any(prior <= 0) or abs(prior.sum() - 1.0) > 1e-9:
            raise ValueError("a marginal does not sum to one over the column's states")
        if not (alpha > 0):
            raise ValueError("a smoothing strength is not positive")
        space = int(np.prod([cards[p] for p in parents])) if parents else 1
        ok = (
            len(fc.cfg_keys) == len(fc.cfg_n)
            and len(fc.fam_cfg) == len(fc.fam_x) == len(fc.fam_n)
            and (
                len(fc.cfg_keys) == 0
                or (
                    fc.cfg_keys.min() >= 0
                    and fc.cfg_keys.max() < space
                    and np.all(np.diff(fc.cfg_keys) > 0)
                )
            )
            and (
                len(fc.fam_x) == 0
                or (
                    fc.fam_x.min() >= 0
                    and fc.fam_x.max() < k
                    and fc.fam_cfg.min() >= 0
                    and fc.fam_cfg.max() < len(fc.cfg_keys)
                )
            )
            and np.all(fc.fam_n > 0)
            and np.array_equal(
                np.bincount(fc.fam_cfg, weights=fc.fam_n, minlength=len(fc.cfg_keys)), fc.cfg_n
            )
        )
        if not ok:
            raise ValueError("a conditional table's counts are inconsistent")
        return cls(
            k, parents, np.array([cards[p] for p in parents], dtype=np.int64), alpha, prior, fc
        )
