"""Train the text network on Shakespeare's train.txt alone (development run; the integrated
path is `datatwin fit ... --structures neural`). Writes weights to OUT.npz and a JSON report.
Usage: python bench/neural_text_run.py OUT BUDGET_S THREADS [cell hidden layers]"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from datatwin.nn.train import TrainConfig, train_recurrent
from datatwin.text.counts import BOS, EOS
from datatwin.text.tokenize import Document
from datatwin.text.twin import build_vocab

DATA = str(Path(__file__).resolve().parents[1].parent / "shared/data/text/shakespeare")


def main() -> None:
    out, budget, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    cell = sys.argv[4] if len(sys.argv) > 4 else "gru"
    hidden = int(sys.argv[5]) if len(sys.argv) > 5 else 512
    layers = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    text = Path(f"{DATA}/train.txt").read_text(encoding="utf-8")
    vocab = build_vocab([Document("", text)], "chars")
    ids = np.concatenate([[BOS], vocab.encode(text), [EOS]]).astype(np.int64)
    cfg = TrainConfig(
        cell=cell,
        hidden=hidden,
        layers=layers,
        time_budget=budget,
        threads=threads,
        eval_every=int(os.environ.get("EVAL_EVERY", 200)),
        seed=0,
    )
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    net, rep = train_recurrent([ids], vocab.base, vocab.base - 1, 1, cfg)
    secs = time.perf_counter() - t0
    np.savez(out + ".npz", **net.to_arrays(""))
    info = dict(
        cell=cell,
        hidden=hidden,
        layers=layers,
        params=net.n_params(),
        steps=rep.steps,
        epochs=rep.epochs,
        seconds=round(secs, 1),
        val_bits=rep.val_bits,
        stopped=rep.stopped,
        cpu_seconds=rep.cpu_seconds,
        curve=rep.curve,
        load_start=load0,
        load_end=os.getloadavg(),
        base=vocab.base,
    )
    Path(out + ".json").write_text(json.dumps(info))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
