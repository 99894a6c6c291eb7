"""Maximum-likelihood training of a `RecurrentNet` with torch: budgeted, early-stopped,
reproducible (see `backend`).

Data are blocks of symbols, each ``[BOS] tokens [EOS]``-like, with the network reading symbol
t and predicting symbol t+1 (outcome index = symbol - `out_offset`; targets below the offset
are context only). Long blocks (text) train by truncated back-propagation through time over
`batch` parallel streams with the state carried between windows; short blocks (events) train
as padded batches of whole blocks from a zero state, exactly as they are scored.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .backend import deterministic, fast_bf16, resolve_device
from .ensemble import Ensemble
from .recurrent import RecurrentNet, SymbolNet
from .scoring import score_blocks

#: every training run's report, in order (benchmarks read the curves from here)
REPORTS: list[Any] = []

#: symbols of the internal validation split at most (evaluated every `eval_every` steps)
VAL_CAP = 30_000


@dataclass
class TrainConfig:
    cell: str = "lstm"
    hidden: int = 512
    layers: int = 1
    embed: int = 64
    window: int = 128  # TBPTT window (streams) / max block length per batch row (blocks)
    batch: int = 64
    lr: float = 3e-3
    steps: int | None = None  # fixed step count (reproducible); None = from time_budget
    time_budget: float = 60.0
    val_share: float = 0.02
    eval_every: int = 100
    patience: int = 4  # evaluations without improvement (at least; see _patience)
    threads: int = 1
    device: str = "cpu"
    seed: int = 0
    #: products in bfloat16 (torch autocast; weights, optimiser and validation in float32);
    #: None: where the CPU has bfloat16 instructions (`backend.fast_bf16`)
    bf16: bool | None = None
    #: validate and keep an exponential moving average of the weights with this decay (0: the
    #: weights themselves; cmudict, 5,000 steps: 3.1692 validation bits at 0.999, 3.1728)
    average: float = 0.0
    #: the seed of the validation split (None: `seed`; an ensemble's members share one)
    split_seed: int | None = None


@dataclass
class TrainReport:
    steps: int
    epochs: float
    seconds: float
    val_bits: float
    stopped: str  # "steps", "early", "time"
    cpu_seconds: float = 0.0
    curve: list[tuple[float, int, float]] = field(default_factory=list)  # (s, step, val bits)
    member_bits: list[float] = field(default_factory=list)  # an ensemble's members' val bits


def _module(torch: Any, cfg: TrainConfig, n_in: int, n_out: int) -> Any:
    nn = torch.nn

    class Net(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(n_in, cfg.embed)
            rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
            self.rnn = rnn(cfg.embed, cfg.hidden, cfg.layers, batch_first=True)
            self.out = nn.Linear(cfg.hidden, n_out)

        def forward(self, x: Any, state: Any = None) -> tuple[Any, Any]:
            y, state = self.rnn(self.emb(x), state)
            return self.out(y), state

    return Net()


def to_numpy_net(module: Any, cfg: TrainConfig) -> RecurrentNet:
    def a(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32).copy()

    rnn = module.rnn
    L = cfg.layers
    return RecurrentNet(
        cfg.cell,
        a(module.emb.weight),
        [a(getattr(rnn, f"weight_ih_l{i}")) for i in range(L)],
        [a(getattr(rnn, f"weight_hh_l{i}")) for i in range(L)],
        [a(getattr(rnn, f"bias_ih_l{i}")) for i in range(L)],
        [a(getattr(rnn, f"bias_hh_l{i}")) for i in range(L)],
        a(module.out.weight),
        a(module.out.bias),
    )


class _Streams:
    """One long symbol string cut into `batch` parallel streams, read window by window."""

    def __init__(self, torch: Any, seq: np.ndarray, batch: int, window: int, off: int) -> None:
        window = max(1, min(window, len(seq) - 1))
        batch = max(1, min(batch, (len(seq) - 1) // window))
        n = (len(seq) - 1) // batch
        self.x = torch.from_numpy(seq[: n * batch].reshape(batch, n).copy())
        y = seq[1 : n * batch + 1].reshape(batch, n) - off
        self.y = torch.from_numpy(np.where(y >= 0, y, -100).astype(np.int64))
        self.window, self.pos, self.epochs = window, 0, 0.0
        self.n = n

    def next(self) -> tuple[Any, Any, bool]:
        reset = False
        if self.pos + self.window > self.n:
            self.pos, reset = 0, True
        s = slice(self.pos, self.pos + self.window)
        self.pos += self.window
        self.epochs += self.window / self.n
        return self.x[:, s], self.y[:, s], reset


class _Blocks:
    """Short blocks drawn in seeded random batches, padded (targets -100 past a block's end)."""

    def __init__(self, torch: Any, blocks: list[np.ndarray], cfg: TrainConfig, off: int) -> None:
        self.torch, self.blocks, self.cfg, self.off = torch, blocks, cfg, off
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.order = self.rng.permutation(len(blocks))
        self.i, self.epochs = 0, 0.0

    def batch_of(self, idx: np.ndarray) -> tuple[Any, Any]:
        T = min(max(len(self.blocks[j]) for j in idx) - 1, self.cfg.window)
        x = np.zeros((len(idx), T), np.int64)
        y = np.full((len(idx), T), -100, np.int64)
        for r, j in enumerate(idx):
            b = self.blocks[j][: T + 1]
            x[r, : len(b) - 1] = b[:-1]
            t = b[1:] - self.off
            y[r, : len(b) - 1] = np.where(t >= 0, t, -100)
        return self.torch.from_numpy(x), self.torch.from_numpy(y)

    def next(self) -> tuple[Any, Any, bool]:
        B = self.cfg.batch
        if self.i + B > len(self.order):
            self.order, self.i = self.rng.permutation(len(self.blocks)), 0
        idx = self.order[self.i : self.i + B]
        self.i += B
        self.epochs += B / len(self.blocks)
        x, y = self.batch_of(idx)
        return x, y, True


def _split(blocks: list[np.ndarray], cfg: TrainConfig) -> tuple[Any, Any, bool]:
    """(train data, validation data, streams?) — the validation tail or blocks never train."""
    lens = np.array([len(b) for b in blocks])
    if np.median(lens) > cfg.window:
        seq = np.concatenate(blocks)
        n_val = max(int(len(seq) * cfg.val_share), min(len(seq) // 2, 2 * cfg.window))
        n_val = min(n_val, VAL_CAP)  # validation is run often: keep it cheap
        return seq[:-n_val], seq[-n_val:], True
    rng = np.random.default_rng((cfg.seed if cfg.split_seed is None else cfg.split_seed) + 2)
    perm = rng.permutation(len(blocks))
    n_val = max(1, int(len(blocks) * cfg.val_share))
    n_val = min(n_val, max(1, VAL_CAP // max(int(np.mean(lens)), 1)))
    return [blocks[i] for i in perm[n_val:]], [blocks[i] for i in perm[:n_val]], False


def _val_bits(torch: Any, net: Any, val: Any, streams: bool, cfg: TrainConfig, off: int) -> float:
    net.eval()
    tot, cnt = 0.0, 0
    with torch.no_grad():
        if streams:
            nb = max(1, min(16, (len(val) - 1) // (4 * cfg.window)))
            data = _Streams(torch, val, nb, min(4 * cfg.window, (len(val) - 1) // nb), off)
            state = None
            while data.pos + data.window <= data.n:
                x, y, _ = data.next()
                logits, state = net(x, state)
                lp = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
                )
                tot += float(lp)
                cnt += int((y >= 0).sum())
        else:
            holder = _Blocks(torch, val, cfg, off)
            for s in range(0, len(val), 256):
                x, y = holder.batch_of(np.arange(s, min(s + 256, len(val))))
                logits, _ = net(x)
                lp = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
                )
                tot += float(lp)
                cnt += int((y >= 0).sum())
    net.train()
    return tot / max(cnt, 1) / math.log(2)


def _patience(cfg: TrainConfig, total: int) -> int:
    """Evaluations without a better validation figure before training stops: `cfg.patience`,
    or as many as cover the last 15 % of the planned steps if more. The cosine schedule does
    much of its good late; a fixed 4 evaluations had stopped cmudict's network at 3,700 of
    its ~6,300 planned steps, while the validation bits were still drifting down."""
    if total >= 10**9:  # not planned yet
        return cfg.patience
    return max(cfg.patience, math.ceil(0.15 * total / cfg.eval_every))


class _Plan:
    """How many steps a run takes: `cfg.steps`, or what the time budget buys. The budget is
    planned at step 30 from the median of steps 11-30 (steps 1-10 pay one-off costs; a median,
    since a few slow steps, e.g. another process, would halve a mean's plan) times 1.1, and
    planned again once at step 300 from the mean of steps 31-300, evaluations included (the
    first plan had left 74 of 540 s unused in a bfloat16 run: its early steps were slower).
    Steps that get slower than planned are stopped in time. The label keeps the steps run; a
    label refit plans its schedule for those from the start, so it is not bit for bit."""

    CALIB, REPLAN = 30, 300

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.total = cfg.steps if cfg.steps is not None else 10**9
        self.stopped = "steps"
        self._took: list[float] = []
        self._at_calib = 0.0

    def after(self, step: int, took: float, elapsed: float) -> None:
        """Account for `step`, which took `took` seconds, `elapsed` since the start."""
        if self.cfg.steps is not None:
            return
        budget = self.cfg.time_budget
        if 10 < step <= self.CALIB:
            self._took.append(took)
        if step == self.CALIB:
            per = float(np.median(self._took)) * 1.1
            self.total = max(self.CALIB + 1, self.CALIB + int((budget - elapsed) / per))
            self._at_calib = elapsed
        elif step == self.REPLAN and step < self.total:
            per = (elapsed - self._at_calib) / (step - self.CALIB) * 1.02
            self.total = max(step + 1, step + int((budget - elapsed) / per))
        if self.CALIB < step < self.total and elapsed * (step + 1) / step > budget:
            self.total, self.stopped = step, "time"  # slower than planned: stop in time


def _follow(torch: Any, avg: Any, net: Any, decay: float) -> None:
    """avg <- decay * avg + (1 - decay) * net, weight by weight."""
    with torch.no_grad():
        for a, w in zip(avg.parameters(), net.parameters(), strict=True):
            a.lerp_(w, 1.0 - decay)


def train_recurrent(
    blocks: list[np.ndarray], n_in: int, n_out: int, out_offset: int, cfg: TrainConfig
) -> tuple[RecurrentNet, TrainReport]:
    """Fit a `RecurrentNet` by maximum likelihood (Adam, clipped gradients, warm-up then
    cosine decay over the planned steps), keeping the weights of the best validation bits."""
    device = resolve_device(cfg.device)
    bf16 = fast_bf16(device) if cfg.bf16 is None else cfg.bf16
    with deterministic(cfg.seed, cfg.threads) as torch:
        train, val, streams = _split(blocks, cfg)
        net = _module(torch, cfg, n_in, n_out).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        judged = copy.deepcopy(net) if cfg.average > 0 else net
        data: Any = (
            _Streams(torch, train, cfg.batch, cfg.window, out_offset)
            if streams
            else _Blocks(torch, train, cfg, out_offset)
        )
        t0, c0 = time.perf_counter(), time.process_time()
        plan = _Plan(cfg)
        best: tuple[float, RecurrentNet | None] = (math.inf, None)
        curve: list[tuple[float, int, float]] = []
        bad, step, state, elapsed = 0, 0, None, 0.0
        while step < plan.total:
            x, y, reset = data.next()
            x, y = x.to(device), y.to(device)
            if reset:
                state = None
            total = plan.total
            warm = max(1, min(100, total // 10))
            frac = min(1.0, step / max(total, 1))
            lr = (
                cfg.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
            )
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast(device.split(":")[0], torch.bfloat16, enabled=bf16):
                logits, state = net(x, state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, n_out), y.reshape(-1), ignore_index=-100
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            step += 1
            if judged is not net:
                _follow(torch, judged, net, min(cfg.average, (1 + step) / (10 + step)))
            before, elapsed = elapsed, time.perf_counter() - t0
            plan.after(step, elapsed - before, elapsed)
            total = plan.total
            if step % cfg.eval_every == 0 or step == total:
                vb = _val_bits(torch, judged, val, streams, cfg, out_offset)
                curve.append((round(elapsed, 2), step, round(vb, 4)))
                if vb < best[0] - 1e-4:
                    best, bad = (vb, to_numpy_net(judged, cfg)), 0
                else:
                    bad += 1
                    if bad >= _patience(cfg, total):
                        plan.stopped = "early"
                        break
        if best[1] is None:
            vb = _val_bits(torch, judged, val, streams, cfg, out_offset)
            best = (vb, to_numpy_net(judged, cfg))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert best[1] is not None
    rep = TrainReport(step, round(data.epochs, 3), seconds, best[0], plan.stopped, cpu, curve)
    REPORTS.append(rep)
    return best[1], rep


def train_members(
    blocks: list[np.ndarray], n_in: int, n_out: int, out_offset: int, cfg: TrainConfig, k: int
) -> tuple[SymbolNet, TrainReport]:
    """One network (k = 1), or an `Ensemble` of k trained one after another: seeds seed,
    seed + 1, ..., one validation split, the first planned from 1/k of the time budget and
    the others for the steps it ran (so a label's steps=N,nets=k names them all). The report
    gives the steps and epochs of one member, the seconds of all, the members' validation
    bits and the ensemble's (scored as the twin scores, with its floor), and the members'
    curves one after another on the time axis, the ensemble's figure last."""
    if k == 1:
        return train_recurrent(blocks, n_in, n_out, out_offset, cfg)
    first = replace(cfg, time_budget=cfg.time_budget / k, split_seed=cfg.seed)
    nets: list[RecurrentNet] = []
    reps: list[TrainReport] = []
    for j in range(k):
        c = first if j == 0 else replace(first, seed=cfg.seed + j, steps=reps[0].steps)
        net, rep = train_recurrent(blocks, n_in, n_out, out_offset, c)
        nets.append(net)
        reps.append(rep)
    ens = Ensemble(nets)
    val = _split(blocks, first)[1]
    seconds = sum(r.seconds for r in reps)
    curve, t = [], 0.0
    for r in reps:
        curve += [(round(t + s, 2), st, b) for s, st, b in r.curve]
        t += r.seconds
    bits = _block_bits(ens, val if isinstance(val, list) else [val], out_offset)
    curve.append((round(seconds, 2), reps[0].steps, round(bits, 4)))
    head = reps[0]
    rep = TrainReport(
        head.steps,
        head.epochs,
        seconds,
        bits,
        head.stopped,
        sum(r.cpu_seconds for r in reps),
        curve,
        [r.val_bits for r in reps],
    )
    REPORTS.append(rep)
    return ens, rep


def _block_bits(net: SymbolNet, blocks: list[np.ndarray], out_offset: int) -> float:
    """Bits per predicted symbol of whole blocks under `net` (numpy, as a twin scores)."""
    wanted = [np.arange(len(b)) > 0 for b in blocks]
    wanted = [w & (b >= out_offset) for w, b in zip(wanted, blocks, strict=True)]
    p = score_blocks(net, blocks, wanted, out_offset)
    return float(-sum(np.log2(q[w]).sum() for q, w in zip(p, wanted, strict=True))) / max(
        1, sum(int(w.sum()) for w in wanted)
    )
