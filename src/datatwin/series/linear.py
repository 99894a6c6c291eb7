"""`LinearModel`: the one conditional every series structure is written as (see protocols.py).

In the standardised transformed space z = (g(y) - center) / scale, column j of step t has

    mean_j(t) = C_j(t) + Σ_{i<j} A[j, i] z[t, i] + Σ_l B[j, l, :] · z[t - lag_l, :]
    z[t, j] = mean_j(t) + s_j(t) · e,   e ~ Σ_k mix_w[j, k] N(mix_mu[j, k], mix_sd[j, k]²)

C_j(t) is the intercept (or, with a `level` m(t), the intercept that makes the model revert to
it: m(t) = a table by phase (step mod Pm) plus Fourier terms Σ_h α cos(2πt/P_h) + β sin(2πt/P_h)
over several seasonal periods at once) and s_j(t) the residual scale of the step's seasonal
phase (1 without `phase_scale`). A `regime` (regime.py) adds a second set of coefficients to
the mean while the column's recent change is positive (decided by steps before t only); a
`hetero` scale (hetero.py) multiplies s_j(t) by a function of the recent residuals' size. `chain` is the order the columns are drawn in (calendar
columns first, so the other columns condition on them within the step): A[j, i] ≠ 0 only for i
before j in the chain. The columns of a `calendar` model (calendar.py) are not Gaussian: they
are scored and drawn from the calendar. The model stores itself as arrays (`to_arrays`) and
validates a model file's arrays (`from_arrays`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..modelfile import require
from .calendar import CalendarModel, Clock
from .hetero import Hetero
from .precision import log_cell_mass
from .regime import Regime
from .simulate import simulate

if TYPE_CHECKING:
    from .ar import Columns, Prepared

#: the arrays a model file must hold for a LinearModel (`level`, `phase_scale` are optional)
ARRAY_KEYS = ("lags", "intercept", "A", "B", "mix_w", "mix_mu", "mix_sd")


@dataclass
class LinearModel:
    """A fitted conditional, in the raw-lag form used for scoring and simulation."""

    lags: np.ndarray  # (L,) int, ascending, ≥ 1
    intercept: np.ndarray  # (d,)
    A: np.ndarray  # (d, d) strictly lower triangular
    B: np.ndarray  # (d, L, d)
    mix_w: np.ndarray  # (d, K) weights (rows sum to 1; zero-padded)
    mix_mu: np.ndarray  # (d, K)
    mix_sd: np.ndarray  # (d, K) > 0
    info: dict = field(default_factory=dict)
    #: (d, period) residual scale by seasonal phase (step index mod period), or None
    phase_scale: np.ndarray | None = None
    #: (d, Pm) the level the series reverts to, by phase (step index mod Pm), or None (0)
    level: np.ndarray | None = None
    #: (H,) periods (in steps) of the level's Fourier terms, and their (d, 2H) coefficients
    fourier_periods: np.ndarray | None = None
    fourier_coef: np.ndarray | None = None
    #: (d,) the order the columns are drawn in (None: as given)
    chain: np.ndarray | None = None
    #: the calendar columns (scored and drawn from the calendar), or None
    calendar: CalendarModel | None = None
    #: a second regime's additions to the mean (regime.py), or None
    regime: Regime | None = None
    #: a residual scale following recent volatility (hetero.py), or None
    hetero: Hetero | None = None

    def order(self) -> list[int]:
        """The columns in chain order."""
        d = len(self.intercept)
        return list(range(d)) if self.chain is None else [int(j) for j in self.chain]

    def calendar_index(self) -> dict[int, int]:
        """Column -> its index among the calendar columns."""
        if self.calendar is None:
            return {}
        return {int(j): ci for ci, j in enumerate(self.calendar.cols)}

    def level_at(self, steps: np.ndarray) -> np.ndarray:
        """(n, d) the level m(t) at step indices (table by phase plus Fourier terms)."""
        d = len(self.intercept)
        steps = np.asarray(steps)
        out = np.zeros((len(steps), d))
        if self.level is not None:
            out += self.level[:, steps % self.level.shape[1]].T
        if self.fourier_periods is not None and self.fourier_coef is not None:
            out += fourier_basis(steps, self.fourier_periods) @ self.fourier_coef.T
        return out

    def intercepts_at(self, steps: np.ndarray) -> np.ndarray:
        """(n, d) the intercept of each step: m(t) - A m(t) - Σ_l B_l m(t - l) + c."""
        steps = np.asarray(steps)
        if self.fourier_periods is None:
            C = self.intercepts()
            return C[:, steps % C.shape[1]].T
        if not len(steps):
            return np.zeros((0, len(self.intercept)))
        # the level once over the steps' span (with the lags' history), then indexed per lag
        lo = int(steps.min()) - (int(self.lags[-1]) if len(self.lags) else 0)
        lv = self.level_at(np.arange(lo, int(steps.max()) + 1))
        m = lv[steps - lo]
        C = m - m @ self.A.T + self.intercept
        run = _is_run(steps)
        for li, lag in enumerate(self.lags):
            first = int(steps[0]) - int(lag) - lo
            lagged = lv[first : first + len(steps)] if run else lv[steps - lag - lo]
            C -= lagged @ self.B[:, li, :].T
        return C

    @property
    def max_lag(self) -> int:
        """The number of past steps a conditional looks at."""
        own = int(self.lags[-1]) if len(self.lags) else 0
        if self.regime is not None:
            own = max(own, self.regime.max_lag)
        # volatility: the residuals of the window before a step need their own history
        return own + self.hetero.span if self.hetero is not None else own

    def n_params(self) -> int:
        """Free parameters (coefficients, residual parameters)."""
        coef = self.info.get("n_coef")
        if coef is None:
            coef = int(np.count_nonzero(self.B) + np.count_nonzero(self.A)) + len(self.intercept)
        k = int(np.count_nonzero(self.mix_w))
        extra = 0
        if self.level is not None and self.level.shape[1] > 1:
            extra += self.level.size - len(self.intercept)
        if self.phase_scale is not None:
            extra += self.phase_scale.size
        if self.hetero is not None:
            extra += 3 * int(np.count_nonzero(self.hetero.theta.any(axis=1)))
        if self.fourier_coef is not None:
            extra += self.fourier_coef.size
        if self.calendar is not None:
            cal = self.calendar
            extra += int(np.sum((cal.nvals - 1) * cal.table.shape[1])) + cal.lam.size
            extra += int(np.sum(cal.exc_keys >= 0))
            if cal.novel_rate is not None:  # the new-exception rate and values
                extra += cal.novel_rate.size + int(np.sum(cal.nvals - 1))
            # the calendar columns' Gaussian conditionals are not used
            for j in cal.cols:
                extra -= int(np.count_nonzero(self.B[j]) + np.count_nonzero(self.A[j]) + 3)
        return int(coef) + 3 * k - len(self.intercept) + extra

    def means(self, Z: np.ndarray, rows: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
        """Conditional means (n_rows, d) of z at `rows` given everything before (and left).

        `steps` are the rows' indices on the training grid (for calendar terms; default rows).
        """
        steps = rows if steps is None else steps
        M = self.intercepts_at(steps).copy()
        M += Z[rows] @ self.A.T
        run = _is_run(rows) and rows[0] >= (int(self.lags.max()) if len(self.lags) else 0)
        for li, lag in enumerate(self.lags):
            # a run of consecutive rows reads its lags as a view (no gather)
            lagged = Z[rows[0] - lag : rows[-1] + 1 - lag] if run else Z[rows - lag]
            M += lagged @ self.B[:, li, :].T
        if self.regime is not None:
            M += self.regime.mean_shift(self, Z, rows, steps)
        return M

    def intercepts(self) -> np.ndarray:
        """(d, Pm) intercept of each phase: the model written as deviations from its level,

        z_t - m(t) = A (z_t - m(t))_<j + Σ_l B_l (z_{t-l} - m(t-l)) + e, expanded.
        Kept while the arrays it is made of are the same objects (none is changed in place)."""
        parts = (self.intercept, self.level, self.A, self.B, self.lags)
        hit = self.__dict__.get("_intercepts")
        if hit is None or any(a is not b for a, b in zip(hit[0], parts, strict=True)):
            hit = (parts, self._intercepts())
            self.__dict__["_intercepts"] = hit
        return hit[1]

    def _intercepts(self) -> np.ndarray:
        d = len(self.intercept)
        if self.level is None:
            return self.intercept[:, None].copy()
        m = self.level
        pm = m.shape[1]
        phases = np.arange(pm)
        C = m - self.A @ m
        for li, lag in enumerate(self.lags):
            C -= self.B[:, li, :] @ m[:, (phases - lag) % pm]
        return C + self.intercept.reshape(d, 1)

    def column_logp(
        self, j: int, a: np.ndarray, b: np.ndarray, mean: np.ndarray, s: np.ndarray | None = None
    ) -> np.ndarray:
        """Log cell masses of column j given its conditional means and residual scale
        multipliers `s` (None: 1)."""
        keep = self.mix_w[j] > 0
        w, mu, sd = self.mix_w[j][keep], self.mix_mu[j][keep], self.mix_sd[j][keep]
        if s is None:
            return log_cell_mass(a, b, mean, w, mu, sd)
        return log_cell_mass((a - mean) / s, (b - mean) / s, np.zeros_like(mean), w, mu, sd)

    def means_and_scales(
        self, Z: np.ndarray, rows: np.ndarray, steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, d) conditional means at `rows` and residual scale multipliers (seasonal phase
        times recent volatility; None when both are 1). `steps` - `rows` must be constant."""
        S = None
        if self.phase_scale is not None:
            S = self.phase_scale[:, steps % self.phase_scale.shape[1]].T
        if self.hetero is None or not len(rows):
            return self.means(Z, rows, steps), S
        # the residuals of the window before the first row, and of the rows themselves
        r0 = int(rows.min()) - self.hetero.span
        R = np.arange(r0, int(rows.max()) + 1)
        offset = int(steps[0]) - int(rows[0])
        if not np.all(steps - rows == offset):
            raise ValueError("means_and_scales: steps must be rows plus one offset")
        MR = self.means(Z, R, R + offset)
        H = self.hetero.factors(np.abs(Z[R] - MR), rows - r0)
        return MR[rows - r0], H if S is None else S * H

    def cell_log_probs(
        self, prep: Prepared, rows: np.ndarray, steps: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per column: (observed mask of `rows`, log mass of each observed value's cell given
        the steps before it), in model space (no escape mass, no missing rate)."""
        M, S = self.means_and_scales(prep.Z, rows, steps)
        cal = self.calendar_index()
        out = []
        for j in range(M.shape[1]):
            o = prep.observed[rows, j]
            a, b = prep.a[rows, j][o], prep.b[rows, j][o]
            if j in cal:
                assert self.calendar is not None
                r = rows[o]
                z, zp = prep.Z[r, j], prep.Z[np.maximum(r - 1, 0), j]
                lp = self.calendar.log_probs(cal[j], z, zp, a, b, steps[o])
            else:
                lp = self.column_logp(j, a, b, M[o, j], None if S is None else S[o, j])
            out.append((o, lp))
        return out

    def simulate(
        self,
        cols: Columns,
        transforms: list[str],
        center: np.ndarray,
        scale: np.ndarray,
        missing_rate: np.ndarray,
        history_z: np.ndarray,
        n: int,
        paths: int,
        rng: np.random.Generator,
        step0: int = 0,
    ) -> np.ndarray:
        """`paths` simulated continuations of `n` steps (paths, n, d), NaN = missing."""
        return simulate(
            self, cols, transforms, center, scale, missing_rate, history_z, n, paths, rng, step0
        )

    # ---- persistence ----------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The model's arrays for a model file (`info` goes to the JSON metadata)."""
        d = len(self.intercept)
        return {
            "lags": self.lags.astype(np.int64),
            "intercept": self.intercept,
            "A": self.A,
            "B": self.B,
            "mix_w": self.mix_w,
            "mix_mu": self.mix_mu,
            "mix_sd": self.mix_sd,
            "level": self.level if self.level is not None else np.zeros((d, 1)),
            "phase_scale": self.phase_scale if self.phase_scale is not None else np.ones((d, 1)),
            **self.extra_arrays(),
        }

    def extra_arrays(self) -> dict[str, np.ndarray]:
        """The optional arrays: Fourier level terms, chain order, calendar columns."""
        out: dict[str, np.ndarray] = {}
        if self.fourier_periods is not None and self.fourier_coef is not None:
            out["fourier_periods"] = self.fourier_periods
            out["fourier_coef"] = self.fourier_coef
        if self.chain is not None:
            out["chain"] = self.chain.astype(np.int64)
        if self.calendar is not None:
            out.update(self.calendar.to_arrays())
        if self.regime is not None:
            out.update(self.regime.to_arrays())
        if self.hetero is not None:
            out.update(self.hetero.to_arrays())
        return out

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], info: dict[str, Any], d: int, source: str
    ) -> LinearModel:
        """Rebuild a model of `d` columns from `to_arrays` output, validating every array."""
        for key in ARRAY_KEYS:
            require(key in arrays, source, f"array {key} missing")
            require(arrays[key].dtype.kind in "fiu", source, f"array {key} is not numeric")
        lags = arrays["lags"].astype(np.int64)
        L = len(lags)
        require(bool(lags.ndim == 1 and np.all(lags >= 1)), source, "lags must be ≥ 1")
        require(bool(L == 0 or np.all(np.diff(lags) > 0)), source, "lags must increase")
        require(arrays["intercept"].shape == (d,), source, "intercept shape")
        require(arrays["A"].shape == (d, d), source, "A shape")
        require(arrays["B"].shape == (d, L, d), source, "B shape")
        w = arrays["mix_w"]
        require(w.ndim == 2 and w.shape[0] == d and w.shape[1] >= 1, source, "mix_w shape")
        K = w.shape[1]
        require(arrays["mix_mu"].shape == (d, K), source, "mix_mu shape")
        require(arrays["mix_sd"].shape == (d, K), source, "mix_sd shape")
        require(
            bool(np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0, atol=1e-9)), source, "weights"
        )
        require(bool(np.all(arrays["mix_sd"] > 0)), source, "residual scales must be > 0")
        for key in ("intercept", "A", "B", "mix_w", "mix_mu", "mix_sd"):
            require(bool(np.all(np.isfinite(arrays[key]))), source, f"{key} not finite")
        phase = _optional(arrays, "phase_scale", np.ones((d, 1)), d, source)
        require(bool(np.all(phase > 0)), source, "phase_scale > 0")
        level = _optional(arrays, "level", np.zeros((d, 1)), d, source)
        fp = fc = chain = None
        if "fourier_periods" in arrays:
            fp = arrays["fourier_periods"].astype(float)
            fc = arrays.get("fourier_coef", np.zeros(0)).astype(float)
            require(fp.ndim == 1 and bool(np.all(fp > 1)), source, "fourier_periods")
            require(fc.shape == (d, 2 * len(fp)), source, "fourier_coef shape")
            require(bool(np.all(np.isfinite(fc))), source, "fourier_coef not finite")
        if "chain" in arrays:
            chain = arrays["chain"].astype(np.int64)
            require(sorted(chain.tolist()) == list(range(d)), source, "chain")
            Ap = arrays["A"][np.ix_(chain, chain)]
            require(bool(np.all(np.triu(Ap) == 0)), source, "A must follow the chain")
        else:
            require(
                bool(np.all(np.triu(arrays["A"]) == 0)),
                source,
                "A must be strictly lower triangular",
            )
        calendar = None
        if "cal_cols" in arrays:
            clock = Clock.from_json(info.get("calendar_clock") or {}, source)
            calendar = CalendarModel.from_arrays(arrays, clock, d, source)
        regime = Regime.from_arrays(arrays, d, L, source)
        if regime is not None:
            order = chain if chain is not None else np.arange(d)
            Ap = regime.A[np.ix_(order, order)]
            require(bool(np.all(np.triu(Ap) == 0)), source, "regime_A must follow the chain")
        return cls(
            lags,
            arrays["intercept"].astype(float),
            arrays["A"].astype(float),
            arrays["B"].astype(float),
            w.astype(float),
            arrays["mix_mu"].astype(float),
            arrays["mix_sd"].astype(float),
            dict(info),
            phase if phase.shape[1] > 1 else None,
            level,
            fp,
            fc,
            chain,
            calendar,
            regime,
            Hetero.from_arrays(arrays, d, source),
        )


def fourier_basis(steps: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """(n, 2H) [cos(2π t / P_h), sin(2π t / P_h)] for each period P_h (read-only when the
    steps are a run of consecutive integers: the last few such runs are kept, since a fit
    asks for the same span again for every candidate)."""
    steps, periods = np.asarray(steps), np.asarray(periods, dtype=float)
    n = len(steps)
    if steps.ndim == 1 and n > 1 and steps.dtype.kind in "iu" and _is_run(steps):
        return _run_basis(int(steps[0]), n, periods.tobytes())
    return _basis(steps, periods)


@lru_cache(maxsize=2)
def _run_basis(lo: int, n: int, periods: bytes) -> np.ndarray:
    out = _basis(np.arange(lo, lo + n), np.frombuffer(periods))
    out.flags.writeable = False
    return out


def _basis(steps: np.ndarray, periods: np.ndarray) -> np.ndarray:
    w = 2.0 * np.pi * np.asarray(steps, dtype=float)[:, None] / periods[None, :]
    return np.concatenate([np.cos(w), np.sin(w)], axis=1)


def _optional(
    arrays: dict[str, np.ndarray], key: str, default: np.ndarray, d: int, source: str
) -> np.ndarray:
    """An optional (d, k ≥ 1) finite array (files written before it existed: `default`)."""
    x = arrays.get(key, default)
    require(x.ndim == 2 and x.shape[0] == d and x.shape[1] >= 1, source, f"{key} shape")
    require(bool(np.all(np.isfinite(x))), source, f"{key} not finite")
    return x.astype(float)


def _is_run(idx: np.ndarray) -> bool:
    """Whether `idx` is a run of consecutive integers (its lags can be read as views)."""
    n = len(idx)
    return n > 0 and int(idx[-1]) - int(idx[0]) == n - 1 and bool(np.all(idx[1:] > idx[:-1]))
