"""A network whose output layer learns each document as it reads it (nn/adapt.py), and mixture
weights that learn per previous symbol (text/mixer.py): batched scoring equals the sampler's
step-by-step rows, rows sum to one, both learn, labels refit and files load exactly (format 2,
refused by a format-1 reader)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import datatwin
from datatwin import ModelFileError
from datatwin.errors import InputError
from datatwin.nn.adapt import Adaptation, AdaptiveHead
from datatwin.nn.recurrent import RecurrentNet
from datatwin.text.cache import CacheSpec
from datatwin.text.counts import Segment, count, layout
from datatwin.text.layers import LayeredModel
from datatwin.text.model import NgramModel
from datatwin.text.neural import MixModel, NeuralModel, _Stepper

pytest.importorskip("torch")

TINY = {"cell": "gru", "hidden": 16, "embed": 8, "window": 16, "batch": 8, "threads": 1}
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


@pytest.fixture(autouse=True)
def tiny_networks(monkeypatch):
    import datatwin.text.neural_select as ns

    monkeypatch.setitem(ns.NET, "text", TINY)


def _net(cell: str, base: int, seed: int = 0) -> RecurrentNet:
    rng = np.random.default_rng(seed)
    H, E, G = 6, 3, {"lstm": 4, "gru": 3}[cell]

    def r(*s):
        return (0.7 * rng.normal(size=s)).astype(np.float32)

    return RecurrentNet(
        cell, r(base, E), [r(G * H, E)], [r(G * H, H)], [r(G * H)], [r(G * H)],
        r(base - 1, H), r(base - 1),
    )  # fmt: skip


def _step_by_step(model, segs: list[Segment]) -> np.ndarray:
    """Each predicted symbol's probability from `next_distribution` of its prefix, every row
    checked to be a distribution (BOS impossible, every other symbol possible)."""
    q = []
    for s in segs:
        toks, ctx = [int(x) for x in s.tokens], [0] if s.begin else []
        for i, x in enumerate([*toks, 1]):
            if i >= s.n_context:
                d = model.next_distribution(np.array(ctx + toks[:i]))
                assert d[0] == 0.0 and abs(d.sum() - 1.0) < 1e-12 and np.all(d[1:] > 0)
                q.append(d[x])
    return np.array(q)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_adapted_scoring_equals_the_step_by_step_rows_bit_for_bit(cell):
    rng = np.random.default_rng(3)
    m = NeuralModel(8, _net(cell, 8), chunk=5, warm=2, adapt=Adaptation(0.8, 3))
    segs = [
        Segment(rng.integers(3, 8, size=23)),
        Segment(rng.integers(2, 8, size=9), False, True, 4),
    ]
    p = m.prob_layout(layout(segs))
    assert np.array_equal(p, _step_by_step(m, segs))
    static = m.with_adaptation(None).prob_layout(layout(segs))
    assert not np.allclose(p, static)  # it did learn something


def test_the_sampler_reads_what_it_draws_as_scoring_does():
    m = NeuralModel(8, _net("gru", 8, 1), chunk=6, warm=2, adapt=Adaptation(1.0, 4))
    seq = [5, 3, 7, 7, 4, 3, 6, 5, 5, 7, 3, 4, 6, 7, 2, 5, 3]
    step = _Stepper(m, seq[:3])  # a history of three symbols, then one symbol at a time
    for j in range(3, len(seq)):
        want = m.next_distribution(np.array([0, *seq[:j]]))[1:]
        assert np.array_equal(step.dist(), want), j
        step.push(seq[j])


def test_adaptation_learns_a_document_unlike_the_training_text():
    net = _net("gru", 8, 2)
    doc = layout([Segment(np.array([5, 6] * 300))])
    static, adapted = NeuralModel(8, net).prob_layouts(doc, [None, Adaptation(0.5, 8)])
    assert np.log2(adapted[-101:-1]).mean() > -0.25  # learnt: 0.25 bits a symbol at most
    assert np.log2(static[-101:-1]).mean() < -1.0  # (the end of the document: EOS, not learnt)
    assert np.log2(adapted).sum() > np.log2(static).sum() + 300
    # the escape outcome (UNK, outcome 1) and padding teach nothing; other targets do
    net.escape = 1
    head = AdaptiveHead(net, Adaptation(0.5, 2))
    head.read(np.ones((8, 6), np.float32), np.array([1, 1, -1, 1, 1, -1, 1, 1]))
    assert np.array_equal(head.w, net.w_out) and np.array_equal(head.b, net.b_out)
    head.read(np.ones((2, 6), np.float32), np.array([3, 3]))
    assert head.rows(np.ones((1, 6), np.float32))[0, 1] == pytest.approx(1e-4 / 7)
    assert not np.array_equal(head.w, net.w_out)


def _mix(learn: float | None, seed: int = 5) -> MixModel:
    rng = np.random.default_rng(seed)
    m = NeuralModel(7, _net("gru", 7, seed), chunk=4, warm=1, adapt=Adaptation(0.6, 2))
    ng = NgramModel.from_tables(count([Segment(rng.integers(3, 7, size=100))], 7, 2), 2, "kn")
    return MixModel(m, LayeredModel(ng, CacheSpec()), 0.4, None if learn is None else
                    Adaptation(learn, 3))  # fmt: skip


def _draws_first_symbol_as_scored(mix: MixModel, hist: list[int]) -> None:
    """The sampler's first symbol after `hist`, over 3,000 seeds, is distributed as the
    model's row there (which sums to one)."""
    want = mix.next_distribution(np.array([0, *hist]))
    assert abs(want.sum() - 1.0) < 1e-12
    smp = mix.sampler()
    first = np.zeros(7)
    for k in range(3000):
        out, _ = smp.generate(1, np.random.default_rng(k), smp.state_of(np.array(hist)))
        first[out[0] if out else 1] += 1
    assert np.abs(first / 3000 - want).max() < 0.03


def test_mixture_with_an_adapting_network_sums_to_one_and_samples():
    _draws_first_symbol_as_scored(_mix(None), [4, 5, 4, 5, 6])


def test_adapting_twin_refits_from_its_label_saves_as_format_2(tmp_path, monkeypatch):
    label = "neural[steps=30,adapt=0.5]"
    twin = datatwin.fit(TEXT, kind="text", structures=label, baselines=False)
    assert twin.structure == label and twin.params["adapt"] == {"rate": 0.5, "segment": 64}
    again = datatwin.fit(TEXT, kind="text", structures=label, baselines=False)
    doc = "the cat sat on the mat. " * 8  # longer than a segment: the layer learns
    assert np.array_equal(twin.log_prob(doc), again.log_prob(doc))
    static = datatwin.fit(TEXT, kind="text", structures="neural[steps=30]", baselines=False)
    assert not np.array_equal(static.log_prob(doc), twin.log_prob(doc))
    twin.save(tmp_path / "a.twin")
    static.save(tmp_path / "s.twin")
    for name, version in (("a.twin", 2), ("s.twin", 1)):
        meta = json.loads(zipfile.ZipFile(tmp_path / name).read("model.json"))
        assert meta["format_version"] == version
    back = datatwin.load(tmp_path / "a.twin")
    assert back.structure == label
    assert np.array_equal(back.log_prob(doc), twin.log_prob(doc))
    assert back.sample(200, seed=4) == twin.sample(200, seed=4)
    import datatwin.modelfile as mf

    monkeypatch.setattr(mf, "FORMAT_VERSION", 1)  # a reader from before adaptation
    datatwin.load(tmp_path / "s.twin")
    with pytest.raises(ModelFileError, match="newer datatwin"):
        datatwin.load(tmp_path / "a.twin")


def test_mix_shorthand_scores_static_and_adapting_rows():
    twin = datatwin.fit(
        TEXT, kind="text", structures="markov3+kn+cache,mix", baselines=False,
        time_budget=3.0, max_order=3,
    )  # fmt: skip
    labels = [r["structure"] for r in twin.leaderboard]
    steps = next(lb for lb in labels if lb.startswith("neural["))[len("neural[steps=") : -1]
    for rate in ("", ",adapt=0.05", ",adapt=0.15"):
        assert f"neural[steps={steps}{rate}]" in labels
        assert f"markov3+kn+cache+neural[w=0.3,steps={steps}{rate}]" in labels
        assert f"markov3+kn+cache+neural[w=0.3,steps={steps}{rate},learn=3]" in labels
    assert all(np.isfinite(r["holdout_bits"]) for r in twin.leaderboard)


@pytest.mark.parametrize("bad", ["neural[adapt=0]", "neural[steps=3,adapt=x]", "neural[adapt=-1]"])
def test_bad_adaptation_labels_are_refused(bad):
    with pytest.raises(InputError, match="adapt=R"):
        datatwin.fit(TEXT, kind="text", structures=bad, baselines=False)


@pytest.mark.parametrize(
    "adapt", [{"rate": -0.5, "segment": 64}, {"rate": 0.5}, {"rate": 0.5, "segment": 0}, "fast"]
)
def test_damaged_adaptation_in_a_model_file_is_refused(tmp_path, adapt):
    twin = datatwin.fit(TEXT, kind="text", structures="neural[steps=5,adapt=0.5]", baselines=False)
    twin.save(tmp_path / "a.twin")
    with zipfile.ZipFile(tmp_path / "a.twin") as zf:
        meta = json.loads(zf.read("model.json"))
        arrays = zf.read("arrays.npz")
    meta["text"]["neural"]["adapt"] = adapt
    with zipfile.ZipFile(tmp_path / "b.twin", "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("arrays.npz", arrays)
    with pytest.raises(ModelFileError, match="adaptation"):
        datatwin.load(tmp_path / "b.twin")


def test_learnt_mixture_weights_score_as_the_step_by_step_rows():
    rng = np.random.default_rng(6)
    mix = _mix(2.0)
    segs = [
        Segment(rng.integers(3, 7, size=20)),
        Segment(rng.integers(3, 7, size=8), False, True, 3),
    ]
    p = mix.prob_layout(layout(segs))
    np.testing.assert_allclose(p, _step_by_step(mix, segs), rtol=1e-12)
    fixed = MixModel(mix.neural, mix.chain, 0.4).prob_layout(layout(segs))
    assert not np.allclose(p, fixed)  # the weights moved


def test_the_weight_after_a_symbol_moves_toward_the_model_that_predicts_better():
    from datatwin.text.mixer import OnlineWeights

    state = OnlineWeights(5, 0.3, Adaptation(2.0, 4))
    prev = np.array([3, 3, 4, 3, 3, 4, 3, 3])
    state.read(prev, np.where(prev == 3, 0.9, 0.1), np.where(prev == 3, 0.2, 0.6))
    assert state.weight(3) > 0.3 > state.weight(4)
    assert state.weight(2) == pytest.approx(0.3)  # symbols not read keep their weight


def test_a_sampler_with_learnt_weights_draws_from_the_mixture(monkeypatch):
    import datatwin.text.neural as tn

    mix = _mix(3.0)
    hist = [4, 5, 4, 5, 6, 4, 4]  # past two segments of the weights
    _draws_first_symbol_as_scored(mix, hist)
    smp = mix.sampler()
    rows: list[np.ndarray] = []  # every row the sampler draws from, as it reads and learns
    draw = tn._draw
    monkeypatch.setattr(tn, "_draw", lambda p, u, t: rows.append(p.copy()) or draw(p, u, t))
    out, _ = smp.generate(40, np.random.default_rng(1), smp.state_of(np.array(hist)))
    assert len(out) >= 6  # (past two more segment ends)
    for i, row in enumerate(rows[: len(out)]):
        want = mix.next_distribution(np.array([0, *hist, *out[:i]]))[1:]
        np.testing.assert_allclose(row, want, rtol=1e-12)


def test_learnt_mixture_twin_refits_from_its_label_and_loads(tmp_path):
    label = "markov3+kn+cache+neural[w=0.3,steps=20,adapt=0.05,learn=3]"
    twin = datatwin.fit(TEXT, kind="text", structures=label, baselines=False, max_order=3)
    assert twin.structure == label and twin.params["learn"] == {"rate": 3.0, "segment": 64}
    again = datatwin.fit(TEXT, kind="text", structures=label, baselines=False, max_order=3)
    doc = "the dog sat on the log. " * 8
    assert np.array_equal(twin.log_prob(doc), again.log_prob(doc))
    twin.save(tmp_path / "m.twin")
    meta = json.loads(zipfile.ZipFile(tmp_path / "m.twin").read("model.json"))
    assert meta["format_version"] == 2 and meta["text"]["mix_learn"]["rate"] == 3.0
    back = datatwin.load(tmp_path / "m.twin")
    assert back.structure == label
    assert np.array_equal(back.log_prob(doc), twin.log_prob(doc))
    assert back.sample(120, seed=2) == twin.sample(120, seed=2)
    meta["text"]["mix_learn"] = {"rate": 3.0}
    with zipfile.ZipFile(tmp_path / "m.twin") as zf:
        arrays = zf.read("arrays.npz")
    with zipfile.ZipFile(tmp_path / "b.twin", "w") as zf:
        zf.writestr("model.json", json.dumps(meta))
        zf.writestr("arrays.npz", arrays)
    with pytest.raises(ModelFileError, match="adaptation"):
        datatwin.load(tmp_path / "b.twin")
