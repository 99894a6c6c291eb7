"""Neural structures (issue 11) next to the count models, one command per kind:

    .venv/bin/python bench/neural_bench.py text   [--time-budget 600]   # Shakespeare (the
                                                                         # issue: 10 minutes)
    .venv/bin/python bench/neural_bench.py events [--time-budget 2700]  # cmudict
    .venv/bin/python bench/neural_bench.py spellings                   # cmudict's spellings
    .venv/bin/python bench/neural_bench.py table  [--time-budget 110]   # Adult
    .venv/bin/python bench/neural_bench.py census [--time-budget 240]   # census, no refit
    -> bench/results/neural_<kind>.json and neural_<kind>_curve.png (bits vs training time;
       census: the .json only, its curve inside); --tag _2700s names them neural_<kind>_2700s…

Every figure is recorded with os.getloadavg() (the machine is a shared 2-core CPU, no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import datatwin
from datatwin.nn import train as nntrain

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "results"


#: appended to the result files' names (--tag): a run off the default budget keeps its own
TAG = ""


def result(kind: str, ending: str) -> Path:
    """bench/results/neural_<kind><tag><ending>."""
    return OUT / f"neural_{kind}{TAG}{ending}"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rows(board: list[dict]) -> list[dict]:
    keep = (
        "structure",
        "train_bits",
        "holdout_bits",
        "fit_seconds",
        "steps",
        "epochs",
        "params",
        "weight",
        "stopped",
        "selected",
        "baseline",
    )
    return [{k: r[k] for k in keep if k in r} for r in board]


def _record_fit(res: dict, twin, t0: float, c0: float) -> None:
    """The fit's wall and CPU seconds, load, leaderboard and the network's training run."""
    res.update(
        fit_wall=time.perf_counter() - t0,
        fit_cpu=time.process_time() - c0,
        load_after_fit=load(),
        selected=twin.structure,
        leaderboard=rows(twin.leaderboard),
    )
    rep = nntrain.REPORTS[-1]
    res["training"] = dict(
        steps=rep.steps,
        epochs=rep.epochs,
        seconds=rep.seconds,
        cpu_seconds=rep.cpu_seconds,
        stopped=rep.stopped,
        curve=rep.curve,
        member_val_bits=rep.member_bits,
        val_bits=rep.val_bits,
    )


def speed(twin, n: int, seeds=(0, 1)) -> tuple[float, str]:
    """Best characters (or rows) per second over the seeds, and the first seed's sample."""
    rates, samples = _sample_rates(twin, n, seeds)
    return max(rates), samples[0]


def _sample_rates(twin, n: int, seeds) -> tuple[list[float], list]:
    rates, samples = [], []
    for s in seeds:
        t0 = time.perf_counter()
        samples.append(twin.sample(n, seed=s))
        rates.append(len(samples[-1]) / (time.perf_counter() - t0))
    return rates, samples


def curve_png(curves: dict[str, list], path: Path, unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in curves.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", ms=3, label=name)
    ax.set_xlabel("training seconds (wall, shared 2-core CPU)")
    ax.set_ylabel(f"internal validation bits per {unit}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def text(budget: float) -> dict:
    d = DATA / "text" / "shakespeare"
    res: dict = {"load_start": load()}
    t0, c0 = time.perf_counter(), time.process_time()
    twin = datatwin.fit(
        d / "train.txt",
        kind="text",
        holdout=d / "holdout.txt",
        structures="kn,cache,mix",
        time_budget=budget,
        seed=0,
    )
    _record_fit(res, twin, t0, c0)
    from datatwin.text.neural import MixModel, NeuralModel
    from datatwin.text.twin import TextTwin

    nn = twin.chain.model
    net = nn.neural if isinstance(nn, MixModel) else nn
    alone = twin
    if isinstance(net, NeuralModel) and net is not nn:  # the network alone, same weights
        alone = TextTwin(twin.vocab, net, [], {**twin.info}, None)
    for name, tw in (("selected", twin), ("neural", alone)):
        # the first call also builds the chain's state machine (once per loaded model)
        (first, warm), (sample, _) = _sample_rates(tw, 10_000, seeds=(0, 1))
        res[f"sample_chars_per_s_{name}"] = warm
        res[f"sample_chars_per_s_{name}_first_call"] = first
        res[f"sample_{name}"] = sample[:600]
        res[f"load_after_sampling_{name}"] = load()
    twin.save(result("text", ".twin"))  # for later measurements (not tracked: *.twin)
    curve_png(
        {"GRU-512 (text)": res["training"]["curve"]}, result("text", "_curve.png"), "character"
    )
    return res


def _cmudict() -> pd.DataFrame:
    path = DATA / "events" / "cmudict" / "pronunciations.csv.gz"
    return pd.read_csv(path, keep_default_na=False, dtype={"phone": str, "word": str})


def events(budget: float) -> dict:
    return _events_run(_cmudict(), "phone", " ", "events", budget, longest=15)


def spellings(budget: float) -> dict:
    """cmudict's spellings as letter events, data the events recipe was not tuned on: each
    word once (variants such as "read(2)" folded), its letters in order."""
    words = sorted(set(_cmudict()["word"].str.replace(r"\(\d+\)$", "", regex=True)))
    letters = [(w, i, c) for w in words for i, c in enumerate(w)]
    df = pd.DataFrame(letters, columns=["word", "position", "letter"])
    return _events_run(df, "letter", "", "spellings", budget, longest=24)


def _events_run(df, event: str, sep: str, kind: str, budget: float, longest: int) -> dict:
    """Fit kn,len,mix on words as sequences of `event`; sampled lengths against the real
    ones as total variation over 0..longest and longer."""
    res: dict = {"load_start": load()}
    t0, c0 = time.perf_counter(), time.process_time()
    twin = datatwin.fit(
        df,
        kind="events",
        sequence_id="word",
        order_by="position",
        event=event,
        structures="kn,len,mix",
        time_budget=budget,
        seed=0,
    )
    _record_fit(res, twin, t0, c0)
    n = 20_000
    t1 = time.perf_counter()
    fake = twin.sample(n, seed=0)
    res["sample_seconds"] = time.perf_counter() - t1
    real_len = df.groupby("word").size().to_numpy()
    fake_len = fake.groupby("word").size().reindex([f"s{i}" for i in range(n)], fill_value=0)
    bins = list(range(0, longest + 1)) + [1000]
    hr = np.histogram(np.minimum(real_len, 999), bins=bins)[0] / len(real_len)
    hf = np.histogram(np.minimum(fake_len.to_numpy(), 999), bins=bins)[0] / n
    other = twin.sample(n, seed=1).groupby("word").size()  # a second seed: the spread
    other = other.reindex([f"s{i}" for i in range(n)], fill_value=0).to_numpy()
    hf1 = np.histogram(np.minimum(other, 999), bins=bins)[0] / n
    res.update(
        length_real=hr.tolist(),
        length_sampled=hf.tolist(),
        tv_length=float(0.5 * np.abs(hr - hf).sum()),
        tv_length_seed1=float(0.5 * np.abs(hr - hf1).sum()),
        mean_length=[float(real_len.mean()), float(fake_len.mean())],
        examples=[sep.join(g[event]) for _, g in list(fake.groupby("word", sort=False))[:8]],
        load_end=load(),
    )
    k = max(1, len(res["training"]["member_val_bits"]))
    name = "LSTM-512" if k == 1 else f"{k} LSTM-512s, one after another (last point: averaged)"
    # an events network predicts an event or the word's end at each step, so its validation
    # bits are per target, below the holdout's bits per event
    curve_png({name: res["training"]["curve"]}, result(kind, "_curve.png"), f"{event} or end")
    return res


def _table_fit(data, budget: float, **options) -> dict:
    """One table fit with the neural candidate among others: its leaderboard, times, load
    and the network's training report (curve included)."""
    from datatwin.tabular import neural as tn

    res: dict = {"load_start": load()}
    t0, c0 = time.perf_counter(), time.process_time()
    twin = datatwin.fit(data, time_budget=budget, seed=0, **options)
    res.update(
        fit_wall=time.perf_counter() - t0,
        fit_cpu=time.process_time() - c0,
        load_after_fit=load(),
        selected=twin.structure,
        leaderboard=rows(twin.leaderboard),
    )
    if not tn.REPORTS:
        raise SystemExit('the neural table was not trained: install torch ("datatwin[neural]")')
    rep = tn.REPORTS[0]
    res["training"] = dict(
        epochs=rep.epochs, seconds=rep.seconds, stopped=rep.stopped, curve=rep.curve
    )
    return res


def table(budget: float) -> dict:
    d = DATA / "tables" / "adult"
    res = _table_fit(
        d / "adult_train.csv",
        budget,
        holdout=d / "adult_test.csv",
        structures="trees[bins=per-column],bayesnet,neural[bins=per-column]",
    )
    curve = res["training"]["curve"]
    curve_png({"neural table (states only)": curve}, result("table", "_curve.png"), "record")
    return res


def census(budget: float) -> dict:
    """Census (199,523 × 42, no header): the per-column trees next to the network with the
    same counts, on the fit's own hashed holdout (no refit: the leaderboard is the result)."""
    from datatwin.reader import read_table

    raw = read_table(DATA / "tables" / "census" / "census_income_train.csv.gz", header=False)
    structures = "trees[bins=per-column],neural[bins=per-column]"
    return _table_fit(raw, budget, structures=structures, refit=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["text", "events", "spellings", "table", "census"])
    ap.add_argument("--time-budget", type=float)
    ap.add_argument("--tag", default="", help="suffix of the result files, e.g. _2700s")
    a = ap.parse_args()
    global TAG
    TAG = a.tag
    defaults = {"text": 600, "events": 2700, "spellings": 2700, "table": 110, "census": 240}
    runs = {
        "text": text,
        "events": events,
        "spellings": spellings,
        "table": table,
        "census": census,
    }
    budget = float(a.time_budget or defaults[a.kind])
    res = runs[a.kind](budget)
    res["time_budget"] = budget
    result(a.kind, ".json").write_text(json.dumps(res, indent=1, default=str))
    print(
        json.dumps({k: v for k, v in res.items() if k not in ("training",)}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
