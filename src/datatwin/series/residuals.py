"""What is fit after the linear model: its residuals, a residual scale per seasonal phase,
Gaussian-mixture residuals, and the cap on the AR part's spectral radius that keeps long
simulations from drifting (a root on or outside the unit circle would make a simulated path
wander off or explode, however well it scores one step ahead)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ar import SD_FLOOR, Prepared
from .hetero import fit_hetero
from .linear import LinearModel


def residuals(model: LinearModel, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    """Residuals z - mean at `rows` (NaN where the value is missing)."""
    M = model.means(prep.Z, rows)
    r = prep.Z[rows] - M
    return np.where(prep.observed[rows], r, np.nan)


def scaled_residuals(model: LinearModel, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    """Residuals at `rows` divided by the model's scale multipliers (phase, volatility)."""
    M, S = model.means_and_scales(prep.Z, rows, rows)
    r = prep.Z[rows] - M
    if S is not None:
        r = r / S
    return np.where(prep.observed[rows], r, np.nan)


def fit_phase_scale(
    res: np.ndarray, steps: np.ndarray, sd: np.ndarray, period: int, shrink: float = 5.0
) -> np.ndarray:
    """Residual scale per seasonal phase, relative to `sd`, shrunk toward 1 (d, period)."""
    d = res.shape[1]
    out = np.ones((d, period))
    ph = steps % period
    for j in range(d):
        r = res[:, j]
        ok = np.isfinite(r)
        ss = np.bincount(ph[ok], weights=r[ok] ** 2, minlength=period)
        nn = np.bincount(ph[ok], minlength=period)
        var = (ss + shrink * sd[j] ** 2) / (nn + shrink)
        out[j] = np.maximum(np.sqrt(var) / sd[j], 1e-3)
    return out


#: the largest spectral radius of the AR part of a structure that must revert (fourier, exog):
#: a root at 0.9995 forgets its start in ~2000 steps (six weeks of half-hours), so a long
#: simulation's deviations from the level revert within a season instead of wandering for a
#: year (at 0.9999, elecdemand's simulated Demand wandered: ACF error 0.16, SD ratio 1.18);
#: roots at or beyond 1 make long simulations wander off or explode
RADIUS_CAP = 0.9995


def spectral_radius(model: LinearModel, steps: int = 10000, starts: int = 4) -> float:
    """The largest |root| of the model's AR recursion z_t = Σ_l (I - A)^-1 B_l z_{t-l}, by
    power iteration from `starts` fixed random states (the growth rate over the last half)."""
    d, lags = len(model.intercept), model.lags
    if not len(lags):
        return 0.0
    L = int(lags[-1])
    M = np.linalg.solve(np.eye(d) - model.A, model.B.reshape(d, -1)).reshape(d, len(lags), d)
    Mflat = M.reshape(d, -1)
    # (step, column, start): a step's lags are one gather of contiguous blocks, one product
    buf = np.zeros((L + steps, d, starts))
    buf[:L] = np.random.default_rng(0).standard_normal((starts, L, d)).transpose(1, 2, 0)
    log_growth = np.zeros(starts)
    half = L + steps // 2
    for t in range(L, L + steps):
        buf[t] = Mflat @ buf[t - lags].reshape(-1, starts)
        if t % 50 == 0 or t == half:
            window = buf[t - L + 1 : t + 1]
            norm = np.sqrt((window**2).sum(axis=(0, 1))) + 1e-300
            if t > half:
                log_growth += np.log(norm)
            window /= norm
            if t == half:
                start_t = t
    return float(np.exp(np.max(log_growth) / max(L + steps - 1 - start_t, 1)))


def stabilize(model: LinearModel, cap: float = RADIUS_CAP, tol: float = 0.0) -> LinearModel:
    """Shrink the lag coefficients B_l by ρ^l so the AR part's spectral radius is at most `cap`
    (within a relative `tol`): the level and variance of long simulations revert. ρ^l scales
    every root by exactly ρ, so one shrink by cap / radius puts the radius on the cap (up to
    the power iteration's estimate, which is not checked again)."""
    r = spectral_radius(model)
    if r > cap * (1.0 + tol):
        rho = cap / r
        model.B = model.B * (rho ** model.lags.astype(float))[None, :, None]
        model.info["shrink"] = float(model.info.get("shrink", 1.0) * rho)
    model.info["radius_cap"] = cap
    return model


def fit_mixture(e: np.ndarray, k: int = 3, iters: int = 100) -> tuple[np.ndarray, ...]:
    """Maximum-likelihood Gaussian mixture of residuals `e` by EM (deterministic start)."""
    e = e[np.isfinite(e)]
    s0 = float(np.std(e)) if e.size > 1 else 1.0
    s0 = max(s0, SD_FLOOR)
    w = np.full(k, 1.0 / k)
    mu = np.zeros(k)
    sd = s0 * np.geomspace(0.5, 2.0, k)
    floor = max(0.02 * s0, SD_FLOOR)
    prev = -np.inf
    for _ in range(iters):
        logr = (
            np.log(w)[:, None]
            - np.log(sd)[:, None]
            - 0.5 * ((e[None, :] - mu[:, None]) / sd[:, None]) ** 2
        )
        m = logr.max(axis=0)
        r = np.exp(logr - m)
        tot = r.sum(axis=0)
        ll = float(np.sum(np.log(tot) + m))
        r /= tot
        nk = r.sum(axis=1) + 1e-12
        w = nk / nk.sum()
        mu = (r @ e) / nk
        sd = np.sqrt(np.maximum((r * (e[None, :] - mu[:, None]) ** 2).sum(axis=1) / nk, floor**2))
        if ll - prev < 1e-7 * abs(ll):
            break
        prev = ll
    order = np.argsort(sd)
    return w[order], mu[order], sd[order]


def refit_residuals(
    model: LinearModel, old: LinearModel, prep: Prepared, rows: np.ndarray
) -> LinearModel:
    """The residual parts of `old` (volatility scale, phase scales, mixtures) fit again for
    `model`, a refit mean, on `rows`."""
    if old.hetero is not None:
        cols = [j for j in range(len(old.intercept)) if old.hetero.theta[j].any()]
        model.hetero, _ = fit_hetero(model, prep, rows, old.hetero.windows, cols)
    rows = rows[rows >= model.max_lag]
    res = scaled_residuals(model, prep, rows)
    if old.phase_scale is not None:
        ps = fit_phase_scale(res, rows, model.mix_sd[:, 0], old.phase_scale.shape[1])
        model.phase_scale = ps
        res = res / ps[:, rows % ps.shape[1]].T
    if old.mix_w.shape[1] > 1 and old.mix_w[:, 1:].any():
        W, MU, SD = old.mix_w.copy(), old.mix_mu.copy(), old.mix_sd.copy()
        for j in range(len(old.intercept)):
            if old.mix_w[j, 1:].any():
                W[j], MU[j], SD[j] = fit_mixture(res[:, j], W.shape[1])
            else:
                W[j], MU[j], SD[j] = 0.0, 0.0, 1.0
                W[j, 0], SD[j, 0] = 1.0, model.mix_sd[j, 0]
        model = replace(model, mix_w=W, mix_mu=MU, mix_sd=SD)
    return model
