"""Standalone exploration: which character network learns Shakespeare fastest on this CPU?

Each architecture trains for the same wall-clock budget (stateful truncated BPTT for the
recurrent nets, windows for the transformer) and is scored on the internal validation tail
of train.txt (bits per character).  Usage: python bench/neural_explore.py ARCH SECONDS THREADS
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = str(Path(__file__).resolve().parents[1].parent / "shared/data/text/shakespeare")


def load():
    text = Path(f"{DATA}/train.txt").read_text(encoding="utf-8")
    chars = sorted(set(text))
    idx = {c: i for i, c in enumerate(chars)}
    ids = np.array([idx[c] for c in text], np.int64)
    n_val = 100_000
    return ids[:-n_val], ids[-n_val:], len(chars)


class RNN(nn.Module):
    def __init__(self, kind, V, E, H, layers):
        super().__init__()
        self.emb = nn.Embedding(V, E)
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(E, H, layers, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, x, state=None):
        y, state = self.rnn(self.emb(x), state)
        return self.out(y), state


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.att(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, V, d, layers, heads, ctx):
        super().__init__()
        self.emb = nn.Embedding(V, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, V)

    def forward(self, x, state=None):
        T = x.shape[1]
        mask = torch.triu(torch.full((T, T), float("-inf")), 1)
        h = self.emb(x) + self.pos[:T]
        for b in self.blocks:
            h = b(h, mask)
        return self.out(self.ln(h)), None


def streams(ids, B):
    n = len(ids) // B
    return torch.from_numpy(ids[: n * B].reshape(B, n))


def val_bits(model, val, recurrent, T, ctx):
    model.eval()
    with torch.no_grad():
        if recurrent:
            x = torch.from_numpy(val[None, :])
            logits, _ = model(x[:, :-1])
            lp = torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None])
            return float(-lp.mean() / math.log(2))
        tot, cnt = 0.0, 0
        half = ctx // 2
        for s in range(0, len(val) - ctx, half):
            x = torch.from_numpy(val[s : s + ctx + 1][None])
            logits, _ = model(x[:, :-1])
            lp = torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None])[0, half:, 0]
            tot += float(-lp.sum())
            cnt += len(lp)
        return tot / cnt / math.log(2)


def main():
    arch, budget, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    train, val, V = load()
    recurrent = arch != "gpt"
    B, T = 64, 128
    cfg = dict(arch=arch)
    if arch in ("lstm", "gru"):
        H = int(os.environ.get("H", 512))
        L = int(os.environ.get("L", 1))
        model = RNN(arch, V, 64, H, L)
        cfg.update(H=H, layers=L)
    else:
        model = GPT(V, 192, 4, 4, 128)
        cfg.update(d=192, layers=4, ctx=128)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3 if recurrent else 1e-3)
    S = streams(train, B)
    state, pos, step, seen = None, 0, 0, 0
    t0 = time.perf_counter()
    curve = []
    while time.perf_counter() - t0 < budget:
        if recurrent:
            if pos + T + 1 > S.shape[1]:
                pos, state = 0, None
            x, y = S[:, pos : pos + T], S[:, pos + 1 : pos + T + 1]
            pos += T
        else:
            starts = torch.randint(0, len(train) - T - 1, (B,))
            tt = torch.from_numpy(train)
            x = torch.stack([tt[s : s + T] for s in starts])
            y = torch.stack([tt[s + 1 : s + T + 1] for s in starts])
        model.train()
        logits, state = model(x, state)
        if state is not None:
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += B * T
        if step % 200 == 0:
            curve.append(
                (round(time.perf_counter() - t0, 1), seen, round(float(loss) / math.log(2), 4))
            )
    train_s = time.perf_counter() - t0
    vb = val_bits(model, val[:30000], recurrent, T, 128)
    out = dict(
        cfg,
        params=params,
        seconds=round(train_s, 1),
        steps=step,
        chars=seen,
        chars_per_s=round(seen / train_s),
        val_bits=round(vb, 4),
        load=os.getloadavg(),
        curve=curve,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
