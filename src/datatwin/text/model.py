"""A smoothed Markov model of order m over integer symbols: scoring, exact distributions,
persistence. It implements `SequenceModel` (protocols.py):

    p(x_i | x_<i) = p_m(x_i | x_{i-m..i-1}),
    p_k(w | h) = alpha_k(h, w) + gamma_k(h) p_{k-1}(w | h'),   p_{-1} = uniform over outcomes,

with alpha and gamma from the smoother of each level (smoothing.py). Fitting and selecting a
whole family of orders from one count pass is `family.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..modelfile import require
from .counts import BOS, N_SPECIAL, Layout, Segment, Tables, find, layout, lookup
from .smoothing import SMOOTHERS, Level, apply_level, make_level

if TYPE_CHECKING:
    from .sampling import Sampler


@dataclass
class NgramModel:
    """Interpolated smoothed n-gram model of order `order` over symbol ids 0..base-1."""

    base: int
    order: int
    smoother: str
    keys: list[np.ndarray]
    counts: list[np.ndarray]
    levels: list[Level] = field(default_factory=list)
    _sampler: Sampler | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.levels:
            self.levels = [
                make_level(
                    self.smoother,
                    self.keys[k],
                    self.counts[k],
                    self.base,
                    1 if k == 0 else len(self.keys[k - 1]),
                )
                for k in range(self.order + 1)
            ]

    @property
    def n_outcomes(self) -> int:
        """Symbols a model predicts: everything but BOS."""
        return self.base - 1

    @classmethod
    def from_tables(cls, tables: Tables, order: int, smoother: str) -> NgramModel:
        """The model of `order` with `smoother` from training tables."""
        counts = tables.model_counts(order, smoother)
        return cls(tables.base, order, smoother, list(tables.keys[: order + 1]), counts)

    @classmethod
    def taking_tables(cls, tables: Tables, order: int, smoother: str) -> NgramModel:
        """As `from_tables`, emptying `tables` first: the counts the model does not keep (raw
        and continuation counts below the top, BOS flags) are freed before its levels are
        built."""
        counts = tables.model_counts(order, smoother)
        keys = list(tables.keys[: order + 1])
        tables.keys, tables.raw, tables.cont, tables.bos_first = [], [], [], []
        return cls(tables.base, order, smoother, keys, counts)

    # ---- likelihood ----------------------------------------------------------------------
    def prob_layout(self, lay: Layout) -> np.ndarray:
        """Probability of every predicted position of a layout (float64, all > 0)."""
        ids = lookup(self.keys, self.base, lay)
        return chain_probs(self.levels, ids, lay.pred, self.n_outcomes)

    def prob_of_symbol(self, lay: Layout, symbol: int) -> np.ndarray:
        """Probability of `symbol` (instead of what is there) at every predicted position."""
        ids = lookup(self.keys, self.base, lay)
        where = np.flatnonzero(lay.pred)
        p = np.full(len(where), 1.0 / self.n_outcomes)
        for k, lev in enumerate(self.levels):
            ctx = None if k == 0 else ids[k - 1][where - 1]
            ok = np.ones(len(where), bool) if ctx is None else ctx >= 0
            q = np.full(len(where), symbol, np.int64) if ctx is None else ctx * self.base + symbol
            p = apply_level(lev, p, find(self.keys[k], q, ok), ctx)
        return p

    def log_prob_segments(self, segments: list[Segment]) -> np.ndarray:
        """Natural-log probability of each predicted symbol (tokens and EOS) of the segments."""
        return np.log(self.prob_layout(layout(segments)))

    # ---- exact distributions (tests, temperature sampling, ARPA) ----------------------------
    def context_chain(self, history: np.ndarray) -> list[int]:
        """Context ids per level 0..order for a history of symbols (ids, -1 = unseen): the
        n-gram ids (`lookup`) of the history's last `order` symbols at its last position."""
        hist = np.asarray(history, np.int64)[max(len(history) - self.order, 0) :]
        chain = [0]
        if self.order and len(hist):
            n = len(hist)
            ids = lookup(
                self.keys[: self.order], self.base, Layout(hist, np.ones(n, bool), np.arange(n))
            )
            chain += [int(ids[k - 1][-1]) if k <= n else -1 for k in range(1, self.order + 1)]
        else:
            chain += [-1] * self.order
        return chain

    def next_distribution(self, context: np.ndarray) -> np.ndarray:
        """The full next-symbol distribution (length `base`, BOS entry 0, sums to one) after
        `context`: the symbol ids of the current block so far, starting with BOS if the block
        starts at a document beginning."""
        chain = self.context_chain(np.asarray(context, np.int64))
        p = np.full(self.base, 1.0 / self.n_outcomes)
        p[BOS] = 0.0
        for k, lev in enumerate(self.levels):
            c = chain[k]
            if c < 0 or not lev.seen[c]:
                continue
            keys = self.keys[k]
            lo = int(np.searchsorted(keys, c * self.base))
            hi = int(np.searchsorted(keys, (c + 1) * self.base))
            p = p * lev.gamma[c]
            p[keys[lo:hi] % self.base] += lev.alpha[lo:hi]
        return p

    distribution = next_distribution

    @property
    def n_params(self) -> int:
        """Stored numbers: one count per n-gram of every level (the rest is derived)."""
        return int(sum(len(k) for k in self.keys))

    def sampler(self) -> Sampler:
        """The compiled state machine (built once per model)."""
        if self._sampler is None:
            from .sampling import Sampler

            self._sampler = Sampler(self)
        return self._sampler

    def entry_probs(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per level: the full interpolated probability of each n-gram (its symbol after its
        context) and the index of its suffix n-gram one level down (level 0: zeros)."""
        pfs: list[np.ndarray] = []
        sufs: list[np.ndarray] = []
        uniform = 1.0 / self.n_outcomes
        for k, lev in enumerate(self.levels):
            kk = self.keys[k]
            parent, sym = kk // self.base, kk % self.base
            if k == 0:
                suf = np.zeros(len(kk), np.int64)
                pf = lev.alpha + lev.gamma[0] * uniform
            else:
                prev = sym if k == 1 else sufs[-1][parent] * self.base + sym
                suf = np.searchsorted(self.keys[k - 1], prev)
                pf = np.where(
                    lev.seen[parent], lev.alpha + lev.gamma[parent] * pfs[-1][suf], pfs[-1][suf]
                )
            pfs.append(pf)
            sufs.append(suf)
        return pfs, sufs

    # ---- persistence -------------------------------------------------------------------------
    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Keys and counts per level (everything else is derived)."""
        out: dict[str, np.ndarray] = {}
        for k in range(self.order + 1):
            out[f"{prefix}keys{k}"] = self.keys[k]
            c = self.counts[k]
            out[f"{prefix}counts{k}"] = c.astype(np.int32 if c.max(initial=0) < 2**31 else np.int64)
        return out

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        base: int,
        order: int,
        smoother: str,
        source: str,
        prefix: str = "",
    ) -> NgramModel:
        """Rebuild and validate (ModelFileError) a model written by `to_arrays`."""
        require(isinstance(base, int) and base >= N_SPECIAL, source, "bad alphabet size")
        require(isinstance(order, int) and 0 <= order <= 64, source, "bad order")
        require(smoother in SMOOTHERS, source, f"unknown smoother {smoother!r}")
        keys: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for k in range(order + 1):
            kk, cc = f"{prefix}keys{k}", f"{prefix}counts{k}"
            require(kk in arrays and cc in arrays, source, f"missing arrays for level {k}")
            key = arrays[kk]
            cnt = arrays[cc]
            require(key.ndim == 1 and key.dtype.kind == "i", source, f"{kk} must be 1-d integers")
            require(cnt.shape == key.shape and cnt.dtype.kind == "i", source, f"{cc} shape/type")
            key = key.astype(np.int64)
            cnt = cnt.astype(np.int64)
            require(bool(np.all(cnt >= 0)), source, f"{cc} has negative counts")
            require(bool(np.all(np.diff(key) > 0)), source, f"{kk} is not strictly increasing")
            n_parent = 1 if k == 0 else len(keys[-1])
            if len(key):
                require(
                    int(key[0]) >= 0 and int(key[-1]) < n_parent * base,
                    source,
                    f"{kk} out of range",
                )
            keys.append(key)
            counts.append(cnt)
        require(int(counts[0].sum()) > 0, source, "the model has no counts")
        model = cls(base, order, smoother, keys, counts)
        model.check_normalised(source)
        return model

    def check_normalised(self, source: str) -> None:
        """Every context's alpha + gamma sums to one; no negative or non-finite value."""
        for k, lev in enumerate(self.levels):
            parent = self.keys[k] // self.base
            n_ctx = len(lev.gamma)
            total = np.bincount(parent, weights=lev.alpha, minlength=n_ctx) + lev.gamma
            ok = bool(np.all(np.isfinite(lev.alpha)) and np.all(lev.alpha >= 0))
            ok = ok and bool(np.all(lev.gamma[lev.seen] > 0))
            ok = ok and bool(np.allclose(total[lev.seen], 1.0, rtol=0, atol=1e-9))
            require(bool(ok), source, f"level {k} probabilities do not sum to one")


def chain_probs(
    levels: list[Level], ids: list[np.ndarray], pred: np.ndarray, n_outcomes: int
) -> np.ndarray:
    """Interpolate levels 0..len(levels)-1 at predicted positions."""
    where = np.flatnonzero(pred)
    p = np.full(len(where), 1.0 / n_outcomes)
    for k, lev in enumerate(levels):
        ctx = None if k == 0 else ids[k - 1][where - 1]
        p = apply_level(lev, p, ids[k][where], ctx)
    return p
