"""Maximum likelihood recovers the parameters of a known discrete Bayesian network, and the
true structure beats independence on holdout bits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.tabular.twin import TableTwin

# A known network: a -> b -> c, a -> d.
P_A = np.array([0.5, 0.3, 0.2])
P_B_A = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
P_C_B = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
P_D_A = np.array([[0.6, 0.3, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [0.05, 0.05, 0.1, 0.8]])
LABELS = {
    "a": ["x", "y", "z"],
    "b": ["p", "q", "r"],
    "c": ["u", "v"],
    "d": ["d0", "d1", "d2", "d3"],
}
TRUE_EDGES = [("a", "b"), ("b", "c"), ("a", "d")]


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of `probs`."""
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), probs.shape[1] - 1)


def simulate(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = _draw(rng, np.tile(P_A, (n, 1)))
    b = _draw(rng, P_B_A[a])
    c = _draw(rng, P_C_B[b])
    d = _draw(rng, P_D_A[a])
    codes = {"a": a, "b": b, "c": c, "d": d}
    return pd.DataFrame({k: np.array(LABELS[k], dtype=object)[v] for k, v in codes.items()})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(40_000, seed=123)


@pytest.fixture(scope="module")
def dag_twin(data) -> TableTwin:
    return TableTwin.fit(data, structure="dag", edges=TRUE_EDGES)


def _state(twin: TableTwin, col: str, label: str) -> int:
    codec = twin.codecs[twin.modelled.index(col)]
    return codec.tokens.index(label)


def _cpt_of(twin: TableTwin, child: str) -> tuple[np.ndarray, tuple[int, ...]]:
    i = twin.modelled.index(child)
    return twin.net.cpts[i].dense(), twin.net.cpts[i].parents


def _se(p: float, n: float) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-4) / n))


def test_fitted_structure_is_the_given_dag(dag_twin):
    assert sorted(dag_twin.edges) == sorted(TRUE_EDGES)


def test_root_marginal_recovered(dag_twin, data):
    table, parents = _cpt_of(dag_twin, "a")
    assert parents == ()
    n = len(data)
    for j, label in enumerate(LABELS["a"]):
        p_hat = table[0, _state(dag_twin, "a", label)]
        assert abs(p_hat - P_A[j]) < 4 * _se(P_A[j], n), (label, p_hat, P_A[j])


@pytest.mark.parametrize(
    ("child", "parent", "truth"),
    [("b", "a", P_B_A), ("c", "b", P_C_B), ("d", "a", P_D_A)],
)
def test_conditional_tables_recovered(dag_twin, data, child, parent, truth):
    table, parents = _cpt_of(dag_twin, child)
    assert parents == (dag_twin.modelled.index(parent),)
    # parent configuration key = the parent's state index (one parent)
    n_parent = data[parent].value_counts()
    for i, plabel in enumerate(LABELS[parent]):
        row = table[_state(dag_twin, parent, plabel)]
        assert row.sum() == pytest.approx(1.0, abs=1e-12)
        for j, clabel in enumerate(LABELS[child]):
            true_p = truth[i, j]
            if true_p == 0.0:
                # a value never seen in this configuration still gets a small probability
                assert label_absent(data, parent, plabel, child, clabel)
                continue
            p_hat = row[_state(dag_twin, child, clabel)]
            assert abs(p_hat - true_p) < 4 * _se(true_p, n_parent[plabel]), (
                plabel,
                clabel,
                p_hat,
                true_p,
            )


def label_absent(data, parent, plabel, child, clabel) -> bool:
    return not ((data[parent] == plabel) & (data[child] == clabel)).any()


def test_zero_probability_cell_is_small_but_positive(dag_twin):
    table, _ = _cpt_of(dag_twin, "d")
    p = table[_state(dag_twin, "a", "x"), _state(dag_twin, "d", "d3")]
    assert 0.0 < p < 1e-3


def test_log_prob_of_rows_matches_true_joint(dag_twin):
    rows = pd.DataFrame(
        {"a": ["x", "y", "z", "z"], "b": ["p", "q", "r", "p"], "c": ["u", "v", "v", "u"]}
        | {"d": ["d0", "d1", "d3", "d2"]}
    )
    idx = {k: [LABELS[k].index(v) for v in rows[k]] for k in LABELS}
    truth = np.array(
        [
            P_A[a] * P_B_A[a, b] * P_C_B[b, c] * P_D_A[a, d]
            for a, b, c, d in zip(idx["a"], idx["b"], idx["c"], idx["d"], strict=True)
        ]
    )
    got = dag_twin.log_prob(rows)
    # each factor within a few percent of the truth at 40k rows
    np.testing.assert_allclose(got, np.log(truth), atol=0.08)


def test_unseen_category_gets_finite_small_probability(dag_twin):
    rows = pd.DataFrame({"a": ["never-seen"], "b": ["p"], "c": ["u"], "d": ["d0"]})
    lp = dag_twin.log_prob(rows)
    assert np.isfinite(lp).all()
    seen = dag_twin.log_prob(pd.DataFrame({"a": ["x"], "b": ["p"], "c": ["u"], "d": ["d0"]}))
    assert lp[0] < seen[0] - 5


def test_true_structure_beats_independent_on_holdout():
    train = simulate(20_000, seed=1)
    hold = simulate(5_000, seed=2)
    ind = TableTwin.fit(train, structure="independent")
    dag = TableTwin.fit(train, structure="dag", edges=TRUE_EDGES)
    bn = TableTwin.fit(train, structure="bayesnet")
    h_ind, h_dag, h_bn = ind.bits(hold), dag.bits(hold), bn.bits(hold)
    # true mutual information of a-b plus b-c plus a-d is well above 0.2 bits per record
    assert h_dag < h_ind - 0.2
    assert h_bn < h_ind - 0.2
    # the learned network is about as good as the truth (it may add a harmless edge)
    assert abs(h_bn - h_dag) < 0.01
    # and its skeleton contains the true dependencies
    skeleton = {frozenset(e) for e in bn.edges}
    assert {frozenset(e) for e in TRUE_EDGES} <= skeleton


def test_fit_select_prefers_a_dependent_structure(data):
    twin = datatwin.fit(data.iloc[:15_000], seed=0)
    board = {e["structure"]: e for e in twin.leaderboard}
    assert {"independent", "chow-liu", "bayesnet"} <= set(board)
    assert twin.structure != "independent"
    assert board[twin.structure]["holdout_bits"] < board["independent"]["holdout_bits"] - 0.2
    assert sum(e["selected"] for e in twin.leaderboard) == 1


def test_bits_equal_minus_log2_prob(dag_twin, data):
    part = data.iloc[:500]
    lp = dag_twin.log_prob(part)
    assert dag_twin.bits(part) == pytest.approx(-lp.mean() / np.log(2), rel=1e-12)
    sc = dag_twin.score(part)
    assert sc["count"] == 500 and sc["unit"] == "record"
    assert sc["total_bits"] == pytest.approx(-lp.sum() / np.log(2), rel=1e-12)


def test_asia_network_reaches_the_known_limit(shared_data):
    """ASIA (8 binary columns, known DAG): fitted on 10k rows, the true structure's holdout
    bits are within a hair of the true model's; the learned network is close behind."""
    import json

    folder = shared_data / "bn" / "asia"
    if not (folder / "truth.json").exists():
        pytest.skip(f"{folder} not present")
    truth = json.loads((folder / "truth.json").read_text())
    limit = truth["limit_bits_per_record_on_holdout"]
    train = pd.read_csv(folder / "train_10000.csv.gz", dtype=str, keep_default_na=False)
    hold = pd.read_csv(folder / "holdout.csv.gz", dtype=str, keep_default_na=False)
    dag = TableTwin.fit(train, structure="dag", edges=[tuple(e) for e in truth["true_edges"]])
    bn = TableTwin.fit(train, structure="bayesnet")
    ind = TableTwin.fit(train, structure="independent")
    h_dag, h_bn, h_ind = dag.bits(hold), bn.bits(hold), ind.bits(hold)
    # 18 free parameters from 10k rows: expected excess ~ 18 / (2 n ln 2) = 0.0013 bits
    assert -0.005 < h_dag - limit < 0.005, (h_dag, limit)
    assert h_bn - limit < 0.01, (h_bn, limit)
    assert h_ind - limit > 0.3


def test_a_common_exact_amount_gets_its_own_frequency():
    """A value too rare to be an atom (0.8% of rows, as Adult's capital-gain 7688) but
    common inside its bin gets a fine bin of its own: its probability is its share of the
    rows (not 1/width of its bin), its neighbours' stays small, and samples repeat it."""
    rng = np.random.default_rng(5)
    n = 50_000
    x = rng.integers(1_000, 100_000, n)
    x[rng.random(n) < 0.008] = 7_688
    share = float(np.mean(x == 7_688))
    twin = TableTwin.fit(pd.DataFrame({"x": x}), structure="independent", bins=10)
    p = np.exp(twin.log_prob(pd.DataFrame({"x": [7_688, 7_689, 50_000]})))
    assert p[0] == pytest.approx(share, rel=0.1)
    assert p[1] < share / 50 and p[2] < share / 50
    sampled = twin.sample(100_000, seed=0)["x"].to_numpy()
    assert np.mean(sampled == 7_688) == pytest.approx(share, rel=0.15)


def test_a_fine_bin_holding_only_atoms_is_refused():
    """Every fine bin must hold a grid point that is not a value atom (else its uniform law
    divides by zero): such a codec is refused where it is built, at fit or at load."""
    from datatwin.tabular.codec import ColumnCodec

    rng = np.random.default_rng(2)
    x = rng.integers(1, 200, 20_000)
    x[rng.random(len(x)) < 0.1] = 50
    x[rng.random(len(x)) < 0.1] = 51
    codec = TableTwin.fit(pd.DataFrame({"x": x}), structure="independent").codecs[0]
    assert {50.0, 51.0} <= set(codec.value_atoms.tolist())
    meta, arrays = codec.to_archive("c_")
    fe, fl, fc = arrays["c_fine_edges"], arrays["c_fine_logp"], arrays["c_fine_coarse"]
    j = int(np.searchsorted(fe, 50, "right")) - 1  # the fine bin holding 50 and 51
    assert fe[j] < 50 and fe[j + 1] >= 52
    c = fc[j]
    cut = [50.0] + ([52.0] if fe[j + 1] > 52 else [])  # split off [50, 52): atoms only
    fe = np.r_[fe[: j + 1], cut, fe[j + 1 :]]
    fc = np.r_[fc[: j + 1], [c] * len(cut), fc[j + 1 :]]
    fl = np.r_[fl[: j + 1], [fl[j]] * len(cut), fl[j + 1 :]]
    fl[fc == c] = np.log(1.0 / np.sum(fc == c))  # still a distribution within the bin
    bad = {**arrays, "c_fine_edges": fe, "c_fine_logp": fl, "c_fine_coarse": fc}
    with pytest.raises(ValueError, match="a fine bin holds no grid point"):
        ColumnCodec.from_archive(meta, bad, "c_")


def test_a_value_finer_than_the_recorded_decimals_is_not_rounded_onto_the_grid():
    """A column recorded to one decimal scores `10.23` as a value it never saw (a token:
    the escape path), not as `10.2`; `10.20` and `1.02e1` are 10.2 written otherwise. A
    schema's own `decimals` rounds, as asked."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": np.round(rng.normal(10, 2, 5000), 1)})
    twin = TableTwin.fit(df, structure="independent")
    assert not twin.codecs[0].spec.rounded
    test = pd.DataFrame({"x": ["10.2", "10.20", "1.02e1", "10.23", "10.2000001"]})
    lp = twin.log_prob(test)
    assert lp[0] == lp[1] == lp[2]
    assert lp[3] < lp[0] - 20 and lp[4] < lp[0] - 20
    assert np.exp(lp[0]) + np.exp(lp[3]) + np.exp(lp[4]) < 1.0
    schema = {"x": {"type": "float", "decimals": 1}}
    rounding = TableTwin.fit(df, structure="independent", schema=schema)
    assert rounding.codecs[0].spec.rounded
    lr = rounding.log_prob(test)
    assert lr[3] == lr[0] == lr[4]


def test_a_specs_rounded_flag_must_be_a_boolean():
    from datatwin.errors import InputError
    from datatwin.tabular.schema import ColumnSpec

    spec = {"name": "x", "type": "float", "decimals": 1}
    assert ColumnSpec.from_dict({**spec, "rounded": True}).rounded is True
    assert ColumnSpec.from_dict(spec).rounded is False  # model files written before the flag
    with pytest.raises(InputError, match="rounded must be true or false"):
        ColumnSpec.from_dict({**spec, "rounded": "yes"})
