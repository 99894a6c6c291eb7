"""Fast exact sampling from an interpolated n-gram model, plus a novelty measure.

The model is compiled into a state machine: a state is the longest context of the history that
was seen in training (as KenLM does). From state h, with probability P_S(h) the next symbol is
one of h's seen children, drawn from their exact interpolated probabilities (a precomputed
cumulative array); otherwise the sampler backs off to the shorter context and draws from it,
rejecting symbols that are children of h (exclusion). This draws from exactly
p(w | h) = alpha(h, w) + gamma(h) p(w | h') at a cost of about one binary search per symbol. Each
emitted n-gram has a precomputed next state.

Temperature != 1 computes the dense distribution at every step (slower, still exact).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

import numpy as np

from .counts import BOS, EOS, UNK
from .model import NgramModel


def tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T), normalised, computed in logs: exact for any T > 0 (T -> 0 is the argmax,
    T -> inf uniform over the support), where p ** (1/T) under- or overflows for T = 1e-300."""
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    if not np.isfinite(logp).any():
        raise ValueError("no symbol has a positive probability")
    z = logp / temperature if temperature >= 1e-12 else np.where(logp == logp.max(), 0.0, -np.inf)
    with np.errstate(invalid="ignore"):
        z = z - np.max(z)
    q = np.exp(z)
    q[~np.isfinite(logp)] = 0.0
    return q / q.sum()


class Sampler:
    """A compiled state machine for one `NgramModel`."""

    def __init__(self, model: NgramModel) -> None:
        self.model = model
        self.base = model.base
        m, base, keys = model.order, model.base, model.keys
        # global entry ids: level k's entries start at entry_off[k]
        sizes = [len(k) for k in keys]
        self.entry_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # states: root (0), then level k >= 1 contexts = entries of level k-1
        self.state_off = np.zeros(m + 1, np.int64)
        for k in range(1, m + 1):
            self.state_off[k] = 1 if k == 1 else self.state_off[k - 1] + sizes[k - 2]
        # exact probability of every seen child (0 for unseen), its suffix entry one level down
        pfs, sufs = model.entry_probs()
        weight = np.concatenate([np.where(model.counts[k] > 0, pfs[k], 0.0) for k in range(m + 1)])
        self.sym = np.concatenate([kk % base for kk in keys])
        self._states(sizes, sufs)
        # cumulative weights within each context's children run (runs are contiguous)
        csum = np.cumsum(weight)
        owner_lo = np.concatenate(
            [
                self.lo[keys[k] // base if k == 0 else self.state_off[k] + keys[k] // base]
                for k in range(m + 1)
            ]
        )
        start_sum = np.where(owner_lo > 0, csum[np.maximum(owner_lo - 1, 0)], 0.0)
        self.cum = csum - start_sum
        self.ps = np.where(self.hi > self.lo, self.cum[np.maximum(self.hi - 1, 0)], 0.0)
        self.live = weight > 0
        root_live = self.sym[: sizes[0]][weight[: sizes[0]] > 0]
        self.root_unseen = np.setdiff1d(np.arange(1, base), root_live)  # UNK at least
        # start state: the context "<s>"
        self.start = 0
        if m >= 1:
            b = int(np.searchsorted(keys[0], BOS))
            if b < len(keys[0]) and keys[0][b] == BOS and model.levels[1].seen[b]:
                self.start = int(self.state_off[1]) + b
        self._cache: dict[int, tuple[float, list[float], list[int], list[int]]] = {}

    def _states(self, sizes: list[int], sufs: list[np.ndarray]) -> None:
        """Per state: its children's run [lo, hi) of entries, its suffix state and level; per
        entry: the state after emitting it (the deepest context it leaves that was seen)."""
        model = self.model
        m, base, keys, levels = model.order, model.base, model.keys, model.levels
        n_states = 1 + sum(sizes[:m])
        self.lo = np.zeros(n_states, np.int64)
        self.hi = np.zeros(n_states, np.int64)
        self.suffix_state = np.zeros(n_states, np.int64)
        self.state_level = np.zeros(n_states, np.int64)
        nxt: list[np.ndarray] = []
        for k in range(m + 1):
            parent, off = keys[k] // base, self.entry_off[k]
            st0 = 0 if k == 0 else int(self.state_off[k])
            n_ctx = 1 if k == 0 else sizes[k - 1]
            ctx = np.arange(n_ctx)
            self.lo[st0 : st0 + n_ctx] = np.searchsorted(parent, ctx) + off
            self.hi[st0 : st0 + n_ctx] = np.searchsorted(parent, ctx, side="right") + off
            self.state_level[st0 : st0 + n_ctx] = k
            if k >= 2:  # the suffix state of a level-k context (entry c of level k-1): suf(c)'s
                self.suffix_state[st0 : st0 + n_ctx] = self.state_off[k - 1] + sufs[k - 1]
            # next state after emitting an entry of level k
            if k < m:
                as_ctx = levels[k + 1].seen  # indexed by entries of level k
                deeper = int(self.state_off[k + 1]) + np.arange(len(keys[k]))
            else:
                as_ctx = np.zeros(len(keys[k]), bool)
                deeper = np.zeros(len(keys[k]), np.int64)
            fallback = np.zeros(len(keys[k]), np.int64) if k == 0 else nxt[-1][sufs[k]]
            nxt.append(np.where(as_ctx, deeper, fallback))
        self.nxt = np.concatenate(nxt)

    # ---- transitions -------------------------------------------------------------------
    def advance(self, state: int, w: int) -> int:
        """State after symbol w is appended to the history of `state`."""
        if w == UNK:
            return 0
        if w == BOS:
            return self.start
        s = state
        while True:
            run = self._cache.get(s) or self._run(s)
            syms = run[2]
            j = bisect_left(syms, w)
            if j < len(syms) and syms[j] == w:
                return run[3][j]
            if s == 0:
                return 0
            s = int(self.suffix_state[s])

    def walk(self, ids: np.ndarray, state: int | None = None) -> int:
        """State after reading symbol ids from `state` (default: start of a document)."""
        s = self.start if state is None else state
        for w in ids:
            s = self.advance(s, int(w))
        return s

    # ---- sampling ----------------------------------------------------------------------
    def draw(self, state: int, next_u: Callable[[], float], rng) -> tuple[int, int]:
        """One symbol from p(.|state) and the state that follows it."""
        u = next_u()
        run = self._cache.get(state) or self._run(state)
        if u < run[0]:
            i = bisect_right(run[1], u)
            return run[2][i], run[3][i]
        syms = run[2]
        while True:
            if state == 0:
                w = int(self.root_unseen[int(rng.integers(len(self.root_unseen)))])
                return w, 0
            w, nx = self.draw(int(self.suffix_state[state]), next_u, rng)
            j = bisect_left(syms, w)
            if j >= len(syms) or syms[j] != w:  # not a child of `state`: accept (exclusion)
                return w, nx

    def generate(
        self,
        n: int,
        rng: np.random.Generator,
        state: int | None = None,
        temperature: float = 1.0,
    ) -> tuple[list[int], bool]:
        """Up to n symbols (EOS excluded) and whether the block ended with EOS."""
        s = int(self.start if state is None else state)
        out: list[int] = []
        buf: list[float] = []
        pos = [0]
        chunk = min(8192, max(16, 2 * n + 8))

        def next_u() -> float:
            if pos[0] >= len(buf):
                buf[:] = rng.random(chunk).tolist()
                pos[0] = 0
            v = buf[pos[0]]
            pos[0] += 1
            return v

        cache = self._cache
        exact = temperature == 1.0
        append = out.append
        while len(out) < n:
            if exact:
                u = next_u()
                run = cache.get(s)
                if run is None:
                    run = self._run(s)
                ps, cum, syms, nexts = run
                if u < ps:
                    i = bisect_right(cum, u)
                    w = syms[i]
                    if w == EOS:
                        return out, True
                    append(w)
                    s = nexts[i]
                    continue
                pos[0] -= 1  # the same uniform decides the back-off inside _draw
                w, nx = self.draw(s, next_u, rng)
                if w == EOS:
                    return out, True
                append(w)
                s = nx
                continue
            else:
                p = tempered(self.distribution(s), temperature)
                w = int(np.searchsorted(np.cumsum(p), next_u(), "right"))
                w = min(w, len(p) - 1)
                if w == EOS:
                    return out, True
                append(w)
                s = self.advance(s, w)
        return out, False

    def _run(self, s: int) -> tuple[float, list[float], list[int], list[int]]:
        """Python lists of one state's children (cached: the sampling loop's fast path)."""
        lo, hi = int(self.lo[s]), int(self.hi[s])
        run = (
            float(self.ps[s]),
            self.cum[lo:hi].tolist(),
            self.sym[lo:hi].tolist(),
            self.nxt[lo:hi].tolist(),
        )
        if len(self._cache) < 2_000_000:
            self._cache[s] = run
        return run

    def state_of(self, context: np.ndarray) -> int:
        """The state after a block's symbols so far (starting with BOS at a document start)."""
        return self.walk(np.asarray(context, np.int64), 0)

    def distribution(self, state: int) -> np.ndarray:
        """Dense next-symbol distribution (length base) at `state`."""
        model = self.model
        chain = [state]
        while chain[-1] != 0:
            chain.append(int(self.suffix_state[chain[-1]]))
        p = np.full(model.base, 1.0 / model.n_outcomes)
        p[BOS] = 0.0
        for st in reversed(chain):
            k = int(self.state_level[st])
            ctx = 0 if k == 0 else st - int(self.state_off[k])
            lev = model.levels[k]
            if not lev.seen[ctx]:
                continue
            lo, hi = int(self.lo[st]), int(self.hi[st])
            loc = lo - int(self.entry_off[k])
            p *= lev.gamma[ctx]
            p[self.sym[lo:hi]] += lev.alpha[loc : loc + (hi - lo)]
        return p


def ngram_hashes(codes: np.ndarray, n: int) -> np.ndarray:
    """64-bit polynomial hashes of every length-n window of an integer array."""
    codes = np.asarray(codes, np.uint64)
    if len(codes) < n:
        return np.zeros(0, np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    h = np.zeros(len(codes) - n + 1, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * mult + codes[j : j + len(h)] + np.uint64(1)
    return h


def novelty_ngrams(sample_codes: np.ndarray, train_codes: np.ndarray, n: int = 20) -> float:
    """Share of the sample's length-n windows that occur verbatim in training (nan if none)."""
    hs = ngram_hashes(sample_codes, n)
    if not len(hs):
        return float("nan")
    ht = np.unique(ngram_hashes(train_codes, n))
    return float(np.isin(hs, ht).mean())
