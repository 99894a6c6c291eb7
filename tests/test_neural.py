"""Neural structures (issue 11): numpy forward passes equal torch's, training is bit-for-bit
reproducible, text/events/table twins score, sample, save and load exactly, mixtures sum to
one, and without torch the candidates are skipped with a note while saved twins still load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.cli import main
from datatwin.errors import InputError
from datatwin.nn import backend
from datatwin.nn.recurrent import RecurrentNet
from datatwin.text.cache import CacheSpec
from datatwin.text.counts import Segment, count, layout
from datatwin.text.layers import LayeredModel
from datatwin.text.model import NgramModel
from datatwin.text.neural import MixModel, NeuralModel

torch = pytest.importorskip("torch")

TINY_TEXT = {"cell": "gru", "hidden": 16, "embed": 8, "window": 16, "batch": 8, "threads": 1}


@pytest.fixture(autouse=True)
def tiny_networks(monkeypatch):
    import datatwin.text.neural_select as ns

    monkeypatch.setitem(ns.NET, "text", TINY_TEXT)
    monkeypatch.setitem(ns.NET, "events", TINY_TEXT)


def _random_net(cell: str, base: int, rng, layers: int = 1) -> RecurrentNet:
    H, E, G = 5, 3, {"lstm": 4, "gru": 3}[cell]

    def r(*s):
        return rng.normal(size=s).astype(np.float32)

    ins = [E] + [H] * (layers - 1)
    return RecurrentNet(
        cell,
        r(base, E),
        [r(G * H, i) for i in ins],
        [r(G * H, H) for _ in ins],
        [r(G * H) for _ in ins],
        [r(G * H) for _ in ins],
        r(base - 1, H),
        r(base - 1),
    )


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_numpy_forward_equals_torch(cell):
    from datatwin.nn.train import TrainConfig, _module, to_numpy_net

    cfg = TrainConfig(cell=cell, hidden=8, embed=4, layers=2)
    torch.manual_seed(0)
    m = _module(torch, cfg, 9, 8)
    net = to_numpy_net(m, cfg)
    x = np.random.default_rng(0).integers(0, 9, size=(3, 40))
    with torch.no_grad():
        p_t = torch.softmax(m(torch.from_numpy(x))[0], -1).numpy()
    state = net.zero_state(3)
    for t in range(40):
        p_n = (net.probs(net.step(x[:, t], state)) - 1e-4 / 8) / (1 - 1e-4)
        np.testing.assert_allclose(p_n, p_t[:, t], atol=2e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_layout_scoring_matches_step_by_step_and_sums_to_one(cell):
    rng = np.random.default_rng(1)
    m = NeuralModel(7, _random_net(cell, 7, rng), chunk=4, warm=2)
    segs = [
        Segment(rng.integers(3, 7, size=11)),
        Segment(rng.integers(2, 7, size=3), False, True, 1),
    ]
    ng = NgramModel.from_tables(count([Segment(rng.integers(3, 7, size=200))], 7, 3), 3, "kn")
    for model in (m, MixModel(m, LayeredModel(ng, CacheSpec()), 0.4)):
        p = model.prob_layout(layout(segs))
        q = []
        for s in segs:
            toks, ctx = list(s.tokens), [0] if s.begin else []
            for i, x in enumerate([*toks, 1]):
                if i >= s.n_context:
                    d = model.next_distribution(np.array(ctx + toks[:i]))
                    assert d[0] == 0.0 and abs(d.sum() - 1.0) < 1e-12 and d.min(initial=1) >= 0
                    assert np.all(d[1:] > 0)
                    q.append(d[x])
        np.testing.assert_allclose(p, q, rtol=1e-6)


def test_sampler_draws_from_the_distribution():
    rng = np.random.default_rng(2)
    m = NeuralModel(7, _random_net("gru", 7, rng), chunk=3, warm=1)
    ng = NgramModel.from_tables(count([Segment(rng.integers(3, 7, size=100))], 7, 2), 2, "kn")
    mix = MixModel(m, LayeredModel(ng, CacheSpec()), 0.5)
    for model in (m, mix):
        smp = model.sampler()
        first = np.zeros(7)
        for k in range(4000):
            out, _ = smp.generate(1, np.random.default_rng(k))
            first[out[0] if out else 1] += 1
        want = model.next_distribution(np.array([0]))
        assert np.abs(first / 4000 - want).max() < 0.03


def test_training_is_bit_for_bit_reproducible():
    from datatwin.nn.train import TrainConfig, train_recurrent

    rng = np.random.default_rng(0)
    blocks = [np.concatenate([[0], rng.integers(3, 10, size=2000), [1]])]
    cfg = TrainConfig(hidden=16, embed=4, window=16, batch=4, steps=25, eval_every=10, seed=3)
    a, ra = train_recurrent(blocks, 10, 9, 1, cfg)
    b, rb = train_recurrent(blocks, 10, 9, 1, cfg)
    for k, v in a.to_arrays("").items():
        assert np.array_equal(v, b.to_arrays("")[k]), k
    assert ra.val_bits == rb.val_bits and ra.steps == rb.steps == 25


def test_bfloat16_training_is_reproducible_and_differs_from_float32(monkeypatch):
    from dataclasses import replace

    from datatwin.nn.train import TrainConfig, train_recurrent

    rng = np.random.default_rng(0)
    blocks = [np.concatenate([[0], rng.integers(3, 10, size=2000), [1]])]
    cfg = TrainConfig(
        hidden=16, embed=4, window=16, batch=4, steps=15, eval_every=10, seed=3, bf16=True
    )
    a, b = (train_recurrent(blocks, 10, 9, 1, cfg)[0] for _ in range(2))
    c = train_recurrent(blocks, 10, 9, 1, replace(cfg, bf16=False))[0]
    assert np.array_equal(a.w_hh[0], b.w_hh[0]) and a.w_hh[0].dtype == np.float32
    assert not np.array_equal(a.w_hh[0], c.w_hh[0])  # the products did run in bfloat16
    assert not backend.fast_bf16("cuda")  # GPUs stay in float32 (untested)


def test_averaged_weights_are_what_training_keeps_and_are_reproducible():
    from dataclasses import replace

    from datatwin.nn.train import TrainConfig, train_recurrent

    rng = np.random.default_rng(0)
    blocks = [np.r_[0, rng.integers(3, 10, size=8), 1] for _ in range(400)]
    cfg = TrainConfig(hidden=8, embed=4, window=16, batch=16, steps=30, eval_every=30, seed=3)
    plain, rp = train_recurrent(blocks, 10, 9, 1, cfg)
    avg, ra = train_recurrent(blocks, 10, 9, 1, replace(cfg, average=0.9))
    again, _ = train_recurrent(blocks, 10, 9, 1, replace(cfg, average=0.9))
    assert np.array_equal(avg.w_hh[0], again.w_hh[0])
    # the same steps (same seed, same batches): the kept weights are an average, not the last
    assert not np.array_equal(avg.w_hh[0], plain.w_hh[0]) and ra.val_bits != rp.val_bits
    first = train_recurrent(blocks, 10, 9, 1, replace(cfg, steps=1))[1].val_bits
    assert ra.val_bits < first - 0.03  # it follows the training, not the initial weights


TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def test_text_neural_twin_refits_from_its_label_and_loads(tmp_path):
    twin = datatwin.fit(TEXT, kind="text", structures="neural[steps=30]", baselines=False)
    assert twin.structure == "neural[steps=30]"
    row = next(r for r in twin.leaderboard if r["selected"])
    assert row["steps"] == 30 and row["epochs"] > 0 and row["params"] > 0
    again = datatwin.fit(TEXT, kind="text", structures=twin.structure, baselines=False)
    assert np.array_equal(twin.log_prob("the cat"), again.log_prob("the cat"))
    twin.save(tmp_path / "t.twin")
    back = datatwin.load(tmp_path / "t.twin")
    assert back.structure == twin.structure
    assert np.array_equal(back.log_prob("the cat\u00e9"), twin.log_prob("the cat\u00e9"))
    assert np.isfinite(back.log_prob("\u00e9\u00e9")).all()  # unseen: the escape
    assert back.sample(80, seed=4) == twin.sample(80, seed=4)
    assert back.sample(80, seed=4, prefix="the ").startswith("the ")


def test_text_mixture_rows_and_selected_mixture_loads(tmp_path, capsys):
    twin = datatwin.fit(
        TEXT,
        kind="text",
        structures="markov3+kn+cache,mix",
        baselines=False,
        time_budget=3.0,
        max_order=3,
    )
    labels = [r["structure"] for r in twin.leaderboard]
    assert any(lb.startswith("neural[steps=") for lb in labels)
    assert any("markov3+kn+cache+neural[w=" in lb for lb in labels)
    label = next(lb for lb in labels if "+neural[w=0.3," in lb)
    mix = datatwin.fit(TEXT, kind="text", structures=label, baselines=False, max_order=3)
    assert mix.structure == label
    mix.save(tmp_path / "m.twin")
    back = datatwin.load(tmp_path / "m.twin")
    assert np.array_equal(back.log_prob("the dog"), mix.log_prob("the dog"))
    assert back.sample(60, seed=1) == mix.sample(60, seed=1)
    # a network's rows differ between CPUs: compressing says so in one line, writes nothing
    with pytest.raises(InputError, match="needs a count model"):
        back.compress("the dog")
    (tmp_path / "d.txt").write_text("the dog")
    out = tmp_path / "d.dtz"
    assert main(["-q", "compress", str(tmp_path / "m.twin"), str(tmp_path / "d.txt"), "-o",
                 str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "needs a count model" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_events_neural_twin(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (f"w{i}", j, e)
        for i in range(150)
        for j, e in enumerate(rng.choice(list("ABCD"), size=int(rng.integers(1, 6))))
    ]
    df = pd.DataFrame(rows, columns=["word", "pos", "phone"])
    twin = datatwin.fit(
        df,
        kind="events",
        sequence_id="word",
        order_by="pos",
        event="phone",
        structures="neural[steps=40]",
        baselines=False,
    )
    assert twin.structure == "neural[steps=40]"
    s = twin.sample(20, seed=0)
    assert set(s["phone"]) <= set("ABCD") and s.equals(twin.sample(20, seed=0))
    label = "markov2+kn+len[w=1]+neural[w=0.5,steps=40]"
    mix = datatwin.fit(
        df,
        kind="events",
        sequence_id="word",
        order_by="pos",
        event="phone",
        structures=label,
        baselines=False,
    )
    assert mix.structure == label
    mix.save(tmp_path / "e.twin")
    back = datatwin.load(tmp_path / "e.twin")
    assert np.array_equal(back.log_prob(df), mix.log_prob(df))
    assert back.sample(30, seed=2).equals(mix.sample(30, seed=2))
    with pytest.raises(InputError, match="needs a count model"):
        back.compress(df.to_csv(index=False).encode())


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 400
    a = rng.choice(["a1", "a2", "a3"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < 0.8, np.where(a == "a1", "b1", "b2"), "b3")
    c = np.where(rng.random(n) < 0.7, np.where(b == "b1", "c1", "c2"), "c1")
    return pd.DataFrame({"a": a, "b": b, "c": c})


@pytest.mark.parametrize("mixed", [False, True])
def test_neural_table_coder_rows_are_fixed_order_float64(mixed, monkeypatch):
    """The coder's rows of a neural table (`state_probs`) are `fixedmath.softmax_rows`: the
    compiled and the numpy version give the same bits (no BLAS product, no numpy reduction,
    whose last bits depend on the CPU), sum to one, and agree with `probs` to 1e-6."""
    import datatwin.tabular.neural as tn
    from datatwin.coding import fixedmath
    from datatwin.tabular.neural import EPS, MixedCPT, NeuralCPT
    from datatwin.tabular.trees import TreeCPT

    rng = np.random.default_rng(3)
    H, k, cards, n = 32, 7, (4, 5), 600
    tables = [rng.normal(0, 0.5, (c, H)).astype(np.float32) for c in cards]
    w = rng.normal(0, 0.5, (k, H)).astype(np.float32)
    seen = np.array([True] * 6 + [False])
    prior = rng.dirichlet(np.ones(k))
    cpt = NeuralCPT(k, (0, 1), tables, rng.normal(0, 0.1, H).astype(np.float32), w,
                    rng.normal(0, 0.3, k).astype(np.float32), prior, seen)  # fmt: skip
    cols = [rng.integers(0, c, n) for c in cards]
    rows = cpt.state_probs(cols, np.array([*cards, k]), n)
    h = cpt._hidden(cols, n).astype(np.float64)
    wT = np.ascontiguousarray(w.astype(np.float64).T)
    ref = fixedmath.softmax_rows_numpy(h, wT, cpt.b.astype(np.float64), seen * 1.0, prior, EPS)
    np.testing.assert_array_equal(rows.view(np.int64), ref.view(np.int64))
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rows, cpt.probs(cols, n), rtol=1e-6, atol=1e-9)
    assert np.all(rows[:, 6] == EPS * prior[6])  # unseen: the floor alone
    if mixed:  # (1 - λ) network + λ tree, the tree's rows stubbed as uniform
        monkeypatch.setattr(tn, "_row_probs", lambda tree, c, m: np.full((m, k), 1 / k))
        mix = MixedCPT(cpt, TreeCPT.__new__(TreeCPT), 0.25)
        got = mix.state_probs(cols, np.array([*cards, k]), n)
        np.testing.assert_array_equal(got, 0.75 * rows + 0.25 * np.full((n, k), 1 / k))


def test_compiled_softmax_rows_refuse_arrays_of_the_wrong_size():
    from datatwin.coding.fixedmath import compiled

    if compiled is None:
        pytest.skip("the compiled extension was not built")
    h, wT, b = np.zeros((3, 2)), np.zeros((2, 4)), np.zeros(4)
    for out in (np.zeros((3, 5)), np.zeros((2, 4))):
        with pytest.raises(ValueError, match="bad arrays"):
            compiled.softmax_rows(h, wT, b, np.ones(4), np.full(4, 0.25), 0.002, out)
    with pytest.raises(ValueError, match="bad arrays"):
        compiled.softmax_rows(h, wT, b, np.ones(3), np.full(4, 0.25), 0.002, np.zeros((3, 4)))


def test_table_neural_given_save_load_and_label(tmp_path):
    df = _table()
    twin = datatwin.fit(df, structures="neural[epochs=4]", seed=0)
    assert twin.structure == "neural[epochs=4]"
    combos = pd.DataFrame(
        [(x, y, z) for x in ("a1", "a2", "a3") for y in ("b1", "b2", "b3") for z in ("c1", "c2")],
        columns=["a", "b", "c"],
    )
    mass = float(np.exp(twin.log_prob(combos)).sum())
    assert 0.97 < mass <= 1.0 + 1e-9
    twin.save(tmp_path / "n.twin")
    back = datatwin.load(tmp_path / "n.twin")
    assert np.array_equal(back.log_prob(df), twin.log_prob(df))
    raw = df.to_csv(index=False).encode()
    assert back.decompress(twin.compress(raw)) == raw  # rows the same on every CPU
    order = twin.params["order"]
    lead = order[0]
    val = df[lead].iloc[0]
    s = back.sample(300, seed=1, given={lead: val})
    assert (s[lead] == val).all()
    again = datatwin.fit(df, structures=twin.structure, seed=0)
    assert np.array_equal(again.log_prob(df), twin.log_prob(df))


def test_without_torch_candidates_are_skipped_and_twins_still_load(monkeypatch, tmp_path):
    twin = datatwin.fit(TEXT, kind="text", structures="neural[steps=10]", baselines=False)
    twin.save(tmp_path / "t.twin")
    monkeypatch.setattr(backend, "torch_or_none", lambda: None)
    import datatwin.tabular.select as ts
    import datatwin.text.neural_select as ns

    monkeypatch.setattr(ns, "torch_or_none", lambda: None)
    monkeypatch.setattr(ts, "torch_or_none", lambda: None)
    notes: list[str] = []
    monkeypatch.setattr(datatwin.progress, "note", lambda m: notes.append(m))
    plain = datatwin.fit(TEXT, kind="text", structures="kn,neural", baselines=False)
    assert "neural" not in plain.structure
    tab = datatwin.fit(_table(), structures="independent,neural", seed=0)
    assert tab.structure == "independent"
    assert sum("torch is not installed" in n and "datatwin[neural]" in n for n in notes) == 2
    back = datatwin.load(tmp_path / "t.twin")  # numpy forward pass: no torch needed
    assert np.array_equal(back.log_prob("the mat"), twin.log_prob("the mat"))
    with pytest.raises(datatwin.InputError, match=r"datatwin\[neural\]"):
        backend.require_torch("neural training")


def test_a_rows_product_does_not_depend_on_the_batch_around_it():
    """BLAS rounds a row differently by call shape (on some CPUs for any change of the row
    count); `matmul_t` gives each row the same floats alone, in any batch, at any place."""
    from datatwin.nn.recurrent import matmul_t

    rng = np.random.default_rng(0)
    for h in (16, 48, 256):
        w = rng.normal(size=(3 * h, h)).astype(np.float32)
        a = rng.normal(size=(40, h)).astype(np.float32)
        alone = np.stack([matmul_t(a[i : i + 1], w)[0] for i in range(len(a))])
        for start, stop in ((0, 2), (0, 9), (3, 20), (5, 40), (0, 40)):
            np.testing.assert_array_equal(matmul_t(a[start:stop], w), alone[start:stop])
        exact = a.astype(float) @ w.T.astype(float)  # and it is a @ w.T, to float32 rounding
        np.testing.assert_allclose(alone, exact, atol=1e-5 * np.sqrt(h) * np.abs(exact).max())


def test_table_neural_twin_loads_in_a_fresh_process(tmp_path):
    """Loading registers the neural tables' tags itself (a fresh process has not trained)."""
    twin = datatwin.fit(_table(), structures="neural[epochs=2]", seed=0)
    twin.save(tmp_path / "n.twin")
    code = (
        "import sys, datatwin; t = datatwin.load(sys.argv[1]); "
        "print(t.structure, len(t.sample(7, seed=0)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "n.twin")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [twin.structure, "7"]


def test_table_training_stops_when_the_next_epoch_would_overrun_the_budget(monkeypatch):
    """Epochs are planned from the second one's time; when later epochs get slower (a busy
    machine), training stops before the budget is overrun (a fake clock: 10, 10, then 40 s
    an epoch against a 60 s budget plans 6 epochs and stops after the third)."""
    import itertools
    import types

    from datatwin.tabular import neural as tn

    ticks = itertools.chain([0.0, 10.0, 20.0], itertools.count(60.0, 40.0))
    monkeypatch.setattr(tn, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    tn.REPORTS.clear()
    datatwin.fit(_table(), structures="neural", time_budget=60, seed=0, refit=False)
    rep = tn.REPORTS[0]
    assert (rep.epochs, rep.stopped) == (3, "time")


def test_recurrent_training_waits_a_share_of_its_plan_before_stopping_early():
    """A network that cannot improve (learning rate 0) stops early after as many evaluations
    as cover 15 % of its planned steps (15 of every 10 steps for a plan of 1,000: step 160),
    not after the configured minimum of 4 (step 50)."""
    from datatwin.nn.train import TrainConfig, train_recurrent

    rng = np.random.default_rng(0)
    blocks = [np.concatenate([[0], rng.integers(3, 10, size=4000), [1]])]
    cfg = TrainConfig(hidden=8, embed=4, window=16, batch=4, steps=1000, eval_every=10, lr=0.0)
    _, rep = train_recurrent(blocks, 10, 9, 1, cfg)
    assert (rep.steps, rep.stopped) == (160, "early")
    short = TrainConfig(hidden=8, embed=4, window=16, batch=4, steps=100, eval_every=10, lr=0.0)
    assert train_recurrent(blocks, 10, 9, 1, short)[1].steps == 50  # the minimum of 4


def test_recurrent_training_stops_in_time_when_steps_get_slower(monkeypatch):
    """Steps are planned from steps 11-30 (1 s each, ×1.1: 63 more for a 100 s budget); when
    they then take 3 s (a busy machine) training stops before the budget is overrun instead of
    running the 93 planned steps (a fake clock: it stops after step 53, at 99 s)."""
    import itertools
    import time as real_time
    import types

    from datatwin.nn import train as nt
    from datatwin.nn.train import TrainConfig, train_recurrent

    ticks = itertools.chain([0.0], range(1, 31), itertools.count(33.0, 3.0))
    fake = types.SimpleNamespace(
        perf_counter=lambda: float(next(ticks)), process_time=real_time.process_time
    )
    monkeypatch.setattr(nt, "time", fake)
    rng = np.random.default_rng(0)
    blocks = [np.concatenate([[0], rng.integers(3, 10, size=4000), [1]])]
    cfg = TrainConfig(hidden=8, embed=4, window=16, batch=4, time_budget=100.0, eval_every=10)
    _, rep = train_recurrent(blocks, 10, 9, 1, cfg)
    assert (rep.steps, rep.stopped) == (53, "time")
    assert rep.curve[-1][:2] == (99.0, 53)  # the stopping step is evaluated


def test_recurrent_training_plans_again_at_step_300_from_the_steps_since(monkeypatch):
    """Steps 11-30 take 2 s (a first plan of 30 + 940 / 2.2 = 457 steps for a 1,000 s budget),
    then 1 s each: at step 300 the plan becomes 300 + 670 / 1.02 = 956 steps, which end within
    the budget (a fake clock)."""
    import itertools
    import time as real_time
    import types

    from datatwin.nn import train as nt
    from datatwin.nn.train import TrainConfig, train_recurrent

    ticks = itertools.chain([0.0], range(2, 62, 2), itertools.count(61.0, 1.0))
    fake = types.SimpleNamespace(
        perf_counter=lambda: float(next(ticks)), process_time=real_time.process_time
    )
    monkeypatch.setattr(nt, "time", fake)
    rng = np.random.default_rng(0)
    blocks = [np.concatenate([[0], rng.integers(3, 10, size=4000), [1]])]
    cfg = TrainConfig(
        hidden=4, embed=2, window=8, batch=2, time_budget=1000.0, eval_every=200, patience=99
    )
    _, rep = train_recurrent(blocks, 10, 9, 1, cfg)
    assert (rep.steps, rep.stopped) == (956, "steps")
    assert rep.curve[-1][:2] == (986.0, 956)
