"""Neural conditional tables: every column's state given the states of the columns before it
(in the learned network's order, like `trees`), computed by a small network.

    h     = relu(b1 + Σ_{p < v} T_p[s_p])          (T_p: one H-vector per state of parent p,
                                                    i.e. an embedding folded into layer one)
    P(s_v | s_<v) = (1 - ε) softmax_seen(W h + b) + ε m_v

softmax_seen runs over the states seen in training only (the escape state and other unseen
states get no share of it, whatever an undertrained output layer says); m_v is the column's
smoothed marginal (the codec's pseudo-counts included), so every state,
the escape state too, keeps a finite probability and each row sums to one; with the codec's
within-state term P(value | state) the row likelihood stays an exact probability mass. The
tables are plain float32 arrays with a numpy forward pass (scoring and sampling need no
torch); training (torch, `nn/backend.py`) fits all columns at once by maximum likelihood with
per-column early stopping on an internal validation split.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..nn.backend import deterministic, resolve_device
from ..nn.recurrent import matmul_t
from ..nn.train import REPORTS
from .bayesnet import DiscreteBayesNet, marginal_prior
from .protocols import CONDITIONALS, ConditionalTable

EPS = 0.002
_DENSE_CELLS = 20_000_000


@CONDITIONALS.register("neural")
class NeuralCPT:
    """P(child state | parent states) from a one-hidden-layer network (module docstring)."""

    def __init__(
        self,
        k: int,
        parents: tuple[int, ...],
        tables: list[np.ndarray],
        b1: np.ndarray,
        w: np.ndarray,
        b: np.ndarray,
        prior: np.ndarray,
        seen: np.ndarray,
    ) -> None:
        self.k, self.parents = int(k), tuple(int(p) for p in parents)
        self.tables, self.b1, self.w, self.b, self.prior = tables, b1, w, b, prior
        self.seen = np.asarray(seen, bool)
        self._cards = np.array([len(t) for t in tables], np.int64)
        self._cdf_tag: bytes | None = None

    def n_params(self) -> int:
        return int(sum(t.size for t in self.tables) + self.b1.size + self.w.size + self.b.size)

    def _hidden(self, columns: list[np.ndarray], n: int) -> np.ndarray:
        """relu(b1 + Σ T_p[s_p]) (n, H), float32 sums taken elementwise (the same bits on
        every CPU)."""
        h = np.broadcast_to(self.b1, (n, len(self.b1))).astype(np.float32)
        for p, t in zip(self.parents, self.tables, strict=True):
            h = h + t[columns[p][:n]]
        return np.maximum(h, 0.0)

    def probs(self, columns: list[np.ndarray], n: int) -> np.ndarray:
        """P(. | parents) for each of n rows (float64, rows sum to one)."""
        logits = (matmul_t(self._hidden(columns, n), self.w) + self.b).astype(np.float64)
        logits[:, ~self.seen] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        q = np.exp(logits)
        q /= q.sum(axis=1, keepdims=True)
        return (1.0 - EPS) * q + EPS * self.prior

    def state_probs(self, columns: list[np.ndarray], cards: np.ndarray, n: int) -> np.ndarray:
        """P(x | earlier columns) for every state x, one row per row (what a coder needs):
        `probs` with its product, softmax and sum in one fixed order of float64 operations
        (`fixedmath.softmax_rows`), so a file decodes on any CPU. `probs` takes BLAS's
        float32 product and numpy's exp and sums, whose last bits depend on the CPU; the
        two agree to ~1e-7."""
        from ..coding.fixedmath import softmax_rows

        h = self._hidden(columns, n)
        return softmax_rows(h, self.w, self.b, self.seen, self.prior, EPS)

    def log_prob(self, columns: list[np.ndarray], cards: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        for s in range(0, len(x), 65536):  # bounded memory: rows × k at a time
            sl = slice(s, s + 65536)
            p = self.probs([c[sl] if len(c) else c for c in columns], len(x[sl]))
            out[sl] = np.log(p[np.arange(len(p)), x[sl]])
        return out

    def sample(
        self,
        columns: list[np.ndarray],
        cards: np.ndarray,
        rng: np.random.Generator,
        n: int,
        allowed: np.ndarray,
    ) -> np.ndarray:
        p = self.probs(columns, n) * allowed[None, :]
        cdf = np.cumsum(p, axis=1)
        u = rng.random(n) * cdf[:, -1]
        idx = (cdf < u[:, None]).sum(axis=1)
        last = int(np.flatnonzero(allowed)[-1])
        return np.minimum(idx, last)

    def dense_cells(self) -> int:
        return int(np.prod(self._cards, dtype=np.float64)) * self.k if self.parents else self.k

    def dense(self) -> np.ndarray:
        if self.dense_cells() > _DENSE_CELLS:
            raise InputError(
                f"conditioning on this neural twin needs a {self.dense_cells():,}-cell table "
                "for one column; condition on leading columns or fit --structures bayesnet"
            )
        space = self.dense_cells() // self.k
        if not self.parents:
            return self.probs([], 1)
        grid = np.unravel_index(np.arange(space), tuple(int(c) for c in self._cards))
        cols: list[np.ndarray] = [np.zeros(0, np.int64)] * (max(self.parents, default=0) + 1)
        for p, g in zip(self.parents, grid, strict=True):
            cols[p] = np.asarray(g, np.int64)
        return self.probs(cols, space)

    def parent_weights(self) -> None:
        return None

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {
            f"{prefix}nn_parents": np.array(self.parents, np.int64),
            f"{prefix}nn_b1": self.b1,
            f"{prefix}nn_w": self.w,
            f"{prefix}nn_b": self.b,
            f"{prefix}nn_prior": self.prior,
            f"{prefix}nn_seen": self.seen.astype(np.int8),
        }
        for i, t in enumerate(self.tables):
            out[f"{prefix}nn_t{i}"] = t
        return out

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, k: int, cards: np.ndarray
    ) -> NeuralCPT:
        """Load and validate shapes, finiteness and the marginal (ValueError otherwise)."""
        parents = arrays[f"{prefix}nn_parents"].astype(np.int64)
        b1, w, b = (arrays[f"{prefix}nn_{n}"] for n in ("b1", "w", "b"))
        prior = arrays[f"{prefix}nn_prior"].astype(np.float64)
        seen = arrays[f"{prefix}nn_seen"]
        H = len(b1)
        tables = [arrays[f"{prefix}nn_t{i}"] for i in range(len(parents))]
        ok = (
            parents.ndim == 1
            and len(set(parents.tolist())) == len(parents)
            and bool(np.all((parents >= 0) & (parents < len(cards))))
            and b1.ndim == 1
            and w.shape == (k, H)
            and b.shape == (k,)
            and prior.shape == (k,)
            and seen.shape == (k,)
            and bool(np.all((seen == 0) | (seen == 1)))
            and bool(seen.any())
            and all(t.shape == (int(cards[p]), H) for p, t in zip(parents, tables, strict=True))
            and all(np.isfinite(a).all() for a in (b1, w, b, prior, *tables))
            and bool(np.all(prior > 0))
            and abs(prior.sum() - 1.0) < 1e-9
        )
        if not ok:
            raise ValueError("a neural table's arrays are inconsistent")
        f32 = [np.ascontiguousarray(a, np.float32) for a in (b1, w, b)]
        tabs = [np.ascontiguousarray(t, np.float32) for t in tables]
        return cls(k, tuple(parents.tolist()), tabs, f32[0], f32[1], f32[2], prior, seen == 1)


def _row_probs(cpt: Any, columns: list[np.ndarray], n: int) -> np.ndarray:
    if isinstance(cpt, NeuralCPT):
        return cpt.probs(columns, n)
    return np.asarray(cpt.probs[cpt.leaves(columns, n)], np.float64)


@CONDITIONALS.register("neural+tree")
class MixedCPT(NeuralCPT):
    """(1 - λ) · network + λ · decision tree over the same earlier columns, λ per column chosen
    on the internal validation rows: two exact conditionals, so an exact conditional."""

    def __init__(self, net: NeuralCPT, tree: Any, lam: float) -> None:
        self.net, self.tree, self.lam = net, tree, float(lam)
        self.k, self.parents, self._cards = net.k, net.parents, net._cards

    def n_params(self) -> int:
        return int(self.net.n_params() + self.tree.n_params() + 1)

    def probs(self, columns: list[np.ndarray], n: int) -> np.ndarray:
        return (1.0 - self.lam) * self.net.probs(columns, n) + self.lam * _row_probs(
            self.tree, columns, n
        )

    def state_probs(self, columns: list[np.ndarray], cards: np.ndarray, n: int) -> np.ndarray:
        """`probs` with the network's rows from its `state_probs` (the same on every CPU)."""
        net = self.net.state_probs(columns, cards, n)
        return (1.0 - self.lam) * net + self.lam * _row_probs(self.tree, columns, n)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            **self.net.to_arrays(prefix + "a_"),
            **self.tree.to_arrays(prefix + "b_"),
            f"{prefix}mix_lambda": np.array([self.lam]),
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, k: int, cards: np.ndarray
    ) -> MixedCPT:
        from .trees import TreeCPT

        lam = arrays[f"{prefix}mix_lambda"]
        if lam.shape != (1,) or not 0.0 <= float(lam[0]) <= 1.0:
            raise ValueError("a mixed table's weight is not in [0, 1]")
        net = NeuralCPT.from_arrays(arrays, prefix + "a_", k, cards)
        tree = TreeCPT.from_arrays(arrays, prefix + "b_", k, cards)
        if not set(tree.parents) <= set(net.parents):
            raise ValueError("a mixed table's tree splits on a column its network does not read")
        return cls(net, tree, float(lam[0]))


LAMBDAS = np.round(np.arange(0.0, 1.0, 0.1), 2)


def _mix_with_trees(
    nets: list[NeuralCPT],
    columns: list[np.ndarray],
    cards: np.ndarray,
    pseudo: list[np.ndarray],
    order: list[int],
    ranks: list[Any],
    tr: np.ndarray,
    val: np.ndarray,
) -> list[Any]:
    """Each column's network mixed with a tree grown on the training part, λ by validation."""
    from .counting import FamilyCounter
    from .growth import grow_trees
    from .trees import TreeCPT

    trees = grow_trees(FamilyCounter([c[tr] for c in columns], cards), pseudo, order, ranks)
    vcols = [c[val] for c in columns]
    out: list[Any] = []
    for v, net in enumerate(nets):
        tree = trees.cpts[v]
        assert isinstance(tree, TreeCPT)  # grow_trees grows one tree per column
        tree.bind(cards)
        a, b = net.probs(vcols, len(val)), _row_probs(tree, vcols, len(val))
        x = vcols[v]
        ll = [
            np.log((1 - lam) * a[np.arange(len(x)), x] + lam * b[np.arange(len(x)), x]).sum()
            for lam in LAMBDAS
        ]
        lam = float(LAMBDAS[int(np.argmax(ll))])
        out.append(MixedCPT(net, tree, lam) if lam > 0 else net)
    return out


@dataclass
class TableTrainReport:
    epochs: int
    seconds: float
    val_bits: float
    stopped: str
    curve: list[tuple[float, int, float]]


def train_tables(
    columns: list[np.ndarray],
    cards: np.ndarray,
    pseudo: list[np.ndarray],
    order: list[int],
    *,
    hidden: int = 128,
    dropout: float = 0.2,
    epochs: int | None = None,
    time_budget: float = 90.0,
    device: str = "cpu",
    threads: int = 1,
    seed: int = 0,
    batch: int = 512,
    lr: float = 3e-3,
    patience: int = 3,
    ranks: list[Any] | None = None,
) -> tuple[DiscreteBayesNet, TableTrainReport]:
    """The network over `order` (each column given all before it), by maximum likelihood."""
    dev = resolve_device(device)
    d, n = len(cards), len(columns[0])
    priors = [marginal_prior(columns[v], int(cards[v]), pseudo[v]) for v in range(d)]
    seen = [np.bincount(columns[v], minlength=int(cards[v])) > 0 for v in range(d)]
    with deterministic(seed, threads) as torch:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        n_val = max(1, min(n // 10, 20000)) if n > 1 else 0
        val, tr = perm[:n_val], perm[n_val:] if n > 1 else perm
        X = torch.from_numpy(np.stack(columns, 1).astype(np.int64))
        preds = {v: order[:i] for i, v in enumerate(order)}

        cols = _column_networks(torch, preds, cards, priors, seen, hidden, dropout).to(dev)
        opt = torch.optim.Adam(cols.parameters(), lr=lr)
        best = [math.inf] * d
        snaps: list[Any] = [None] * d
        bad = [0] * d
        curve: list[tuple[float, int, float]] = []
        t0 = time.perf_counter()
        total = epochs if epochs is not None else 10**6
        ep, stopped, first = 0, "epochs", 0.0
        Xv = X[val].to(dev)
        while ep < total:
            order_t = torch.from_numpy(rng.permutation(tr))
            cols.train()
            for s in range(0, len(tr), batch):
                xb = X[order_t[s : s + batch]].to(dev)
                loss = sum(-c(xb).gather(1, xb[:, v : v + 1]).mean() for v, c in enumerate(cols))
                opt.zero_grad()
                loss.backward()
                opt.step()
            ep += 1
            cols.eval()
            with torch.no_grad():
                vl = [float(-c(Xv).gather(1, Xv[:, v : v + 1]).mean()) for v, c in enumerate(cols)]
            _keep_best(cols, vl, best, bad, snaps)
            elapsed = time.perf_counter() - t0
            curve.append((round(elapsed, 2), ep, round(sum(best) / math.log(2), 4)))
            last, first = elapsed - first, elapsed
            if epochs is None and ep == 2:  # the first epoch pays start-up costs: time the second
                total = max(2, 2 + int((time_budget - elapsed) / max(last, 1e-3)))
            if ep >= 2 and total < 10**6:  # planned epochs known (as in a refit): decay to lr/10
                for g in opt.param_groups:
                    g["lr"] = lr * (1.0 - 0.9 * min(1.0, ep / max(total - 1, 1)))
            if all(b >= patience for b in bad):
                stopped = "early"
                break
            if epochs is None and ep >= 2 and ep < total and elapsed + last > time_budget:
                stopped = "time"  # the machine slowed down: the next epoch would overrun
                break
        seconds = time.perf_counter() - t0
    tables = _tables_from_snapshots(snaps, preds, cards, priors, seen)
    if ranks is not None and n > 1:  # each column's network mixed with a tree (λ ≥ 0)
        tables = _mix_with_trees(tables, columns, cards, pseudo, order, ranks, tr, val)  # type: ignore[arg-type]
    net = DiscreteBayesNet(cards, [t.parents for t in tables])
    net.cpts = tables
    rep = TableTrainReport(ep, round(seconds, 2), round(sum(best) / math.log(2), 4), stopped, curve)
    REPORTS.append(rep)
    return net, rep


def _keep_best(
    cols: Any, losses: list[float], best: list[float], bad: list[int], snaps: list[Any]
) -> None:
    """Early stopping per column: a column whose validation loss improved keeps a snapshot
    of its weights; the others count one more epoch without improvement."""
    for v, loss in enumerate(losses):
        if loss < best[v] - 1e-5:
            best[v], bad[v] = loss, 0
            snaps[v] = {k: t.detach().cpu().numpy().copy() for k, t in cols[v].state_dict().items()}
        else:
            bad[v] += 1


def _column_networks(
    torch: Any,
    preds: dict[int, list[int]],
    cards: np.ndarray,
    priors: list[np.ndarray],
    seen: list[np.ndarray],
    hidden: int,
    dropout: float,
) -> Any:
    """One module per column v: log P(s_v | earlier states) = log[(1−ε)·softmax(W·relu(Σ
    embeddings of the earlier states + b)) + ε·prior], unseen states masked out."""
    nn = torch.nn

    class Col(nn.Module):  # type: ignore[name-defined]
        def __init__(self, v: int) -> None:
            super().__init__()
            ps = preds[v]
            offs = np.concatenate([[0], np.cumsum([int(cards[p]) for p in ps])])
            self.register_buffer("offs", torch.from_numpy(offs[:-1].astype(np.int64)))
            self.ps = list(ps)
            self.emb = nn.EmbeddingBag(max(int(offs[-1]), 1), hidden, mode="sum")
            nn.init.normal_(self.emb.weight, std=0.1)
            self.b1 = nn.Parameter(torch.zeros(hidden))
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(hidden, int(cards[v]))
            lp = np.log(priors[v] * EPS)
            self.register_buffer("log_prior", torch.from_numpy(lp.astype(np.float32)))
            unseen = np.where(seen[v], 0.0, -np.inf).astype(np.float32)
            self.register_buffer("unseen", torch.from_numpy(unseen))

        def forward(self, x: Any) -> Any:
            if self.ps:
                h = self.emb(x[:, self.ps] + self.offs) + self.b1
            else:
                h = self.b1.expand(len(x), -1)
            logits = self.out(self.drop(torch.relu(h))) + self.unseen
            lq = torch.log_softmax(logits, -1) + math.log(1 - EPS)
            return torch.logaddexp(lq, self.log_prior)

    return nn.ModuleList([Col(v) for v in range(len(cards))])


def _tables_from_snapshots(
    snaps: list[Any],
    preds: dict[int, list[int]],
    cards: np.ndarray,
    priors: list[np.ndarray],
    seen: list[np.ndarray],
) -> list[ConditionalTable]:
    """Each column's best weights (as numpy arrays) as a `NeuralCPT`."""
    d = len(cards)
    tables: list[ConditionalTable] = []
    for v in range(d):
        sd = snaps[v]
        ps = preds[v]
        offs = np.concatenate([[0], np.cumsum([int(cards[p]) for p in ps])]).astype(np.int64)
        emb = sd["emb.weight"].astype(np.float32)
        tabs = [emb[offs[i] : offs[i + 1]] for i in range(len(ps))]
        # parents stored in node order (the dense form's mixed radix follows it)
        srt = np.argsort(ps, kind="stable")
        tables.append(
            NeuralCPT(
                int(cards[v]),
                tuple(int(ps[i]) for i in srt),
                [tabs[i] for i in srt],
                sd["b1"].astype(np.float32),
                sd["out.weight"].astype(np.float32),
                sd["out.bias"].astype(np.float32),
                priors[v],
                seen[v],
            )
        )
    return tables
