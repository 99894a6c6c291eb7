"""Local scores of a family (child given parents) for structure search.

- "bde": Bayesian-Dirichlet marginal likelihood with the prior centred on the child's
  marginal, its strength α chosen per family by empirical Bayes from a grid (α→∞ is the
  no-parent model, so adding a useless parent never gains);
- "bdeu": the classical BDeu marginal likelihood (uniform prior, equivalent sample size 1);
- "bic": maximum log-likelihood minus ½·log(N) per free parameter.
The same α also smooths the fitted conditional tables (see `cpt.py`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

from .counting import FamilyCounts

ALPHAS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0, 4096.0])
SCORES = ("bde", "bdeu", "bic")


def marginal_loglik(fc: FamilyCounts, prior: np.ndarray) -> float:
    """Σ n_cx log p_x: the score of the family as if the parents were ignored."""
    return float(np.sum(xlogy(fc.fam_n, prior[fc.fam_x])))


class GammaTables:
    """log Γ at the arguments `bde_alpha` needs most, for one child's prior p, computed once:
    log Γ(α·p_x), log Γ(n + α·p_x) and log Γ(n + α) for counts n < `SMALL`, every α of the
    grid. The same floating-point arguments as computing them directly: the same values."""

    SMALL = 32

    def __init__(self, prior: np.ndarray):
        self.ap = ALPHAS[:, None] * prior[None, :]  # α·p_x
        self.g_ap = gammaln(self.ap)
        n = np.arange(self.SMALL)
        # α, x·SMALL + n: a cell's values gathered by one flat index
        self.g_nap = gammaln(n[None, None, :] + self.ap[:, :, None]).reshape(len(ALPHAS), -1)
        self.g_na = gammaln(n[None, :] + ALPHAS[:, None])  # α, n

    def cells(self, fam_x: np.ndarray, fam_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log Γ(n + α·p_x), log Γ(α·p_x)) per α and seen (configuration, state)."""
        small = fam_n < self.SMALL
        out = np.take(self.g_nap, fam_x * self.SMALL + np.where(small, fam_n, 0), axis=1)
        big = ~small
        if big.any():
            out[:, big] = gammaln(fam_n[big][None, :] + self.ap[:, fam_x[big]])
        return out, np.take(self.g_ap, fam_x, axis=1)

    def configs(self, cfg_n: np.ndarray) -> np.ndarray:
        """log Γ(n_c + α) per α and seen configuration."""
        small = cfg_n < self.SMALL
        out = np.take(self.g_na, np.where(small, cfg_n, 0), axis=1)
        big = ~small
        if big.any():
            out[:, big] = gammaln(cfg_n[big][None, :] + ALPHAS[:, None])
        return out


def bde_alpha(
    fc: FamilyCounts, prior: np.ndarray, hyper: bool = True, tables: GammaTables | None = None
) -> tuple[float, float]:
    """(score, α) of the marginal-centred Dirichlet marginal likelihood.

    α has a uniform hyperprior over the grid plus α = ∞ (the parents ignored). With
    `hyper` the score marginalises α out (log-mean-exp), which keeps weak parents out;
    otherwise it is the maximum over α (empirical Bayes). The α returned is the most
    probable one, used to smooth the table. `tables`: the prior's `GammaTables` (the same
    score, faster when many families of one child are scored).
    """
    a = ALPHAS[:, None]
    if tables is None:
        ap = a * prior[fc.fam_x][None, :]
        g_cells, g_ap = gammaln(fc.fam_n[None, :] + ap), gammaln(ap)
        g_cfg = gammaln(fc.cfg_n[None, :] + a)
    else:
        g_cells, g_ap = tables.cells(fc.fam_x, fc.fam_n)
        g_cfg = tables.configs(fc.cfg_n)
    s = np.sum(g_cells - g_ap, axis=1) + np.sum(gammaln(a) - g_cfg, axis=1)
    s = np.append(s, marginal_loglik(fc, prior))  # (np.r_ costs more than the sums)
    i = int(np.argmax(s))
    alpha = float(ALPHAS[i]) if i < len(ALPHAS) else float("inf")
    if hyper:
        top = s[i]
        return float(top + np.log(np.mean(np.exp(s - top)))), alpha
    return float(s[i]), alpha


def bdeu(fc: FamilyCounts, k: int, q: int, ess: float = 1.0) -> float:
    a_cfg = ess / q
    a_cell = ess / (q * k)
    return float(
        np.sum(gammaln(fc.fam_n + a_cell) - gammaln(a_cell))
        + np.sum(gammaln(a_cfg) - gammaln(fc.cfg_n + a_cfg))
    )


def bic(fc: FamilyCounts, k_eff: int, n: int) -> float:
    ll = float(np.sum(xlogy(fc.fam_n, fc.fam_n / fc.cfg_n[fc.fam_cfg])))
    return ll - 0.5 * np.log(max(n, 2)) * len(fc.cfg_keys) * max(k_eff - 1, 1)


def family_score(
    method: str,
    fc: FamilyCounts,
    prior: np.ndarray,
    k: int,
    k_eff: int,
    q: int,
    n: int,
    tables: GammaTables | None = None,
) -> float:
    if method == "bde":
        return bde_alpha(fc, prior, tables=tables)[0]
    if method == "bdeu":
        return bdeu(fc, k_eff, q)
    if method == "bic":
        return bic(fc, k_eff, n)
    raise ValueError(f"unknown score {method!r}; choose one of {SCORES}")
