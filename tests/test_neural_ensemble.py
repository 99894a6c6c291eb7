"""Ensembles of networks (nn/ensemble.py): the normalised geometric mean of the members, exact
like one network, stored, loaded and named by its label."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import ModelFileError
from datatwin.nn.ensemble import Ensemble, load_net
from datatwin.nn.recurrent import EPS_FLOOR, RecurrentNet
from datatwin.text.counts import Segment, layout
from datatwin.text.neural import NeuralModel

TINY = {"cell": "gru", "hidden": 12, "embed": 6, "window": 16, "batch": 8, "threads": 1}


def _net(cell: str, base: int, seed: int, hidden: int = 5) -> RecurrentNet:
    rng = np.random.default_rng(seed)
    H, E, G = hidden, 3, {"lstm": 4, "gru": 3}[cell]

    def r(*s):
        return (0.8 * rng.normal(size=s)).astype(np.float32)

    return RecurrentNet(
        cell, r(base, E), [r(G * H, E)], [r(G * H, H)], [r(G * H)], [r(G * H)],
        r(base - 1, H), r(base - 1),
    )  # fmt: skip


def test_rows_are_the_normalised_geometric_mean_of_the_members():
    members = [_net("lstm", 8, 0), _net("gru", 8, 1, hidden=4), _net("lstm", 8, 2)]
    ens = Ensemble(members, escape=1)
    x = np.random.default_rng(5).integers(0, 8, size=(3, 9))
    h = ens.states(x).reshape(-1, ens.hidden)
    got = ens.probs(h)
    logits = np.mean(
        [(m.states(x).reshape(-1, m.hidden) @ m.w_out.T + m.b_out) for m in members], axis=0
    ).astype(np.float64)
    logits[:, 1] = -np.inf  # the escape outcome gets the floor alone
    want = np.exp(logits - logits.max(axis=1, keepdims=True))
    want = (1 - EPS_FLOOR) * want / want.sum(axis=1, keepdims=True) + EPS_FLOOR / 7
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    assert ens.n_params() == sum(m.n_params() for m in members)


def test_batched_scoring_equals_the_step_by_step_rows():
    rng = np.random.default_rng(3)
    model = NeuralModel(8, Ensemble([_net("lstm", 8, 0), _net("lstm", 8, 1)]), chunk=5, warm=2)
    segs = [Segment(rng.integers(3, 8, size=17)), Segment(rng.integers(2, 8, size=6), False)]
    p = model.prob_layout(layout(segs))
    q = []
    for s in segs:
        toks, ctx = [int(t) for t in s.tokens], [0] if s.begin else []
        for i, x in enumerate(toks + ([1] if s.end else [])):
            d = model.next_distribution(np.array(ctx + toks[:i]))
            assert d[0] == 0 and abs(d.sum() - 1) < 1e-12
            q.append(d[x])
    assert np.array_equal(p, np.array(q))


def test_a_file_ensemble_is_refused_when_members_do_not_fit():
    arrays = {
        **_net("lstm", 8, 0).to_arrays("nn_m0_"),
        **_net("lstm", 9, 1).to_arrays("nn_m1_"),
    }
    two = {"members": [{"cell": "lstm", "layers": 1}] * 2}
    with pytest.raises(ModelFileError, match="different alphabets"):
        load_net(arrays, "nn_", two, "f.twin")
    with pytest.raises(ModelFileError, match="bad ensemble"):
        load_net(arrays, "nn_", {"members": [{"cell": "lstm", "layers": 1}]}, "f.twin")
    one = _net("gru", 8, 0).to_arrays("nn_m0_")
    with pytest.raises(ModelFileError, match="missing or invalid"):
        load_net(one, "nn_", {"members": [{"cell": "gru", "layers": 1}] * 2}, "f.twin")


def test_members_train_apart_and_the_ensemble_beats_their_mean():
    from datatwin.nn.train import TrainConfig, train_members

    rng = np.random.default_rng(0)
    blocks = [np.r_[0, rng.integers(3, 9, size=int(rng.integers(2, 9))), 1] for _ in range(600)]
    cfg = TrainConfig(hidden=8, embed=4, window=16, batch=16, steps=40, eval_every=20, seed=4)
    ens, rep = train_members(blocks, 9, 8, 1, cfg, 2)
    again, _ = train_members(blocks, 9, 8, 1, cfg, 2)
    assert isinstance(ens, Ensemble) and len(ens.members) == 2 and rep.steps == 40
    a, b = ens.members
    assert not np.array_equal(a.w_hh[0], b.w_hh[0])  # other seeds
    assert all(
        np.array_equal(x.w_hh[0], y.w_hh[0])
        for x, y in zip(ens.members, again.members, strict=True)
    )
    # -log of a normalised geometric mean <= the members' mean -log (Hölder), up to the floor
    assert len(rep.member_bits) == 2 and rep.val_bits <= np.mean(rep.member_bits) + 1e-3


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        (f"w{i}", j, e)
        for i in range(150)
        for j, e in enumerate(rng.choice(list("ABCD"), size=int(rng.integers(1, 6))))
    ]
    return pd.DataFrame(rows, columns=["word", "pos", "phone"])


def test_events_ensemble_label_refits_saves_as_format_2_and_loads(tmp_path, monkeypatch):
    import datatwin.text.neural_select as ns

    monkeypatch.setitem(ns.NET, "events", TINY)
    df = _events()
    opts = dict(kind="events", sequence_id="word", order_by="pos", event="phone")
    label = "markov2+kn+len[w=1]+neural[w=0.5,steps=30,nets=2]"
    twin = datatwin.fit(df, structures=label, baselines=False, **opts)
    assert twin.structure == label and twin.params["hidden"] == 24
    again = datatwin.fit(df, structures=label, baselines=False, **opts)
    assert np.array_equal(twin.log_prob(df), again.log_prob(df))
    twin.save(tmp_path / "e.twin")
    with zipfile.ZipFile(tmp_path / "e.twin") as z:
        assert json.loads(z.read("model.json"))["format_version"] == 2
    back = datatwin.load(tmp_path / "e.twin")
    assert back.structure == label
    assert np.array_equal(back.log_prob(df), twin.log_prob(df))
    assert back.sample(30, seed=2).equals(twin.sample(30, seed=2))
    one = datatwin.fit(df, structures="neural[steps=30]", baselines=False, **opts)
    assert one.structure == "neural[steps=30]"  # a label without nets is one network
    with pytest.raises(datatwin.InputError, match="nets=K"):
        datatwin.fit(df, structures="neural[steps=30,nets=9]", **opts)


def test_fit_help_states_the_neural_time_budget_defaults_in_use(capsys):
    """The --time-budget help text repeats the defaults (the CLI does not import the neural
    code to start): it must give the ones fitting uses (it once said events 900 at 1,350)."""
    from datatwin import cli
    from datatwin.tabular.structures import DEFAULT_TABLE_BUDGET
    from datatwin.text.neural_select import DEFAULT_BUDGET

    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind, seconds in {**DEFAULT_BUDGET, "table": DEFAULT_TABLE_BUDGET}.items():
        assert f"{kind} {seconds:g}" in text, (kind, seconds)
