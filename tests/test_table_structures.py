"""Structures as data: the registry, labels that fit the same twin again, state models and
conditional tables stored under a kind tag (and files from before the tags), seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import InputError, ModelFileError
from datatwin.modelfile import load_archive, save_archive
from datatwin.tabular.gaussian import LinearGaussianNet
from datatwin.tabular.protocols import CONDITIONALS, STATE_MODELS
from datatwin.tabular.structures import (
    DEFAULT_STRUCTURES,
    STRUCTURES,
    TABLE_STRUCTURES,
    parse_label,
)
from datatwin.tabular.twin import TableTwin


def mixed_frame(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])
    b = np.where(rng.random(n) < 0.7, np.where(a == "x", "p", "q"), "r")
    age = np.round(rng.normal(np.where(b == "p", 30, 50), 8)).astype(int)
    amount = np.round(rng.gamma(2.0, np.where(a == "z", 50.0, 10.0)), 2)
    return pd.DataFrame({"id": np.arange(n), "a": a, "b": b, "age": age, "amount": amount})


def linear_frame(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(10.0, 2.0, n)
    b = 3.0 + 0.5 * a + rng.normal(0, 1.0, n)
    return pd.DataFrame({"a": a.round(2), "b": b.round(2)})


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame()


@pytest.fixture(scope="module")
def selected(frame) -> TableTwin:
    return datatwin.fit(frame, seed=3)


# ---- the registry -------------------------------------------------------------------------
def test_structures_come_from_the_registry():
    assert STRUCTURES == (
        "independent",
        "chow-liu",
        "bayesnet",
        "trees",
        "neural",
        "dag",
        "gaussian",
    )
    assert DEFAULT_STRUCTURES == ("independent", "chow-liu", "bayesnet", "trees")
    help_text = TABLE_STRUCTURES.help_text()
    assert all(name in help_text for name in STRUCTURES)


@pytest.mark.parametrize(
    "call",
    [
        lambda df: TableTwin.fit(df, structure="forest"),
        lambda df: datatwin.fit(df, structures=["bayesnet", "forest"]),
        lambda df: datatwin.fit(df, structures="forest[bins=5]"),
    ],
)
def test_unknown_structure_lists_the_valid_names(frame, call):
    with pytest.raises(InputError) as err:
        call(frame)
    msg = str(err.value)
    assert "forest" in msg and "\n" not in msg
    assert all(name in msg for name in STRUCTURES), msg


def test_fit_takes_keywords_after_the_data(frame):
    with pytest.raises(TypeError):
        TableTwin.fit(frame, "bayesnet")  # type: ignore[misc]
    with pytest.raises(TypeError):
        TableTwin.fit_select(frame, ["bayesnet"])  # type: ignore[misc]


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("trees[bins=x]", ["bins", "whole number"]),
        ("trees[depth=3]", ["depth", "bins", "score", "max_parents"]),
        ("trees[bins=0]", ["bins must be"]),
        ("bayesnet[max_parents=-1]", ["max_parents must be"]),
        ("trees[bins=5", ["cannot read"]),
    ],
)
def test_bad_labels_name_the_parameter(label, words):
    with pytest.raises(InputError) as err:
        parse_label(label)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


@pytest.mark.parametrize(
    ("kw", "word"), [({"bins": 0}, "bins must be"), ({"max_parents": -1}, "max_parents must be")]
)
def test_library_messages_name_parameters_not_flags(frame, kw, word):
    with pytest.raises(InputError) as err:
        datatwin.fit(frame, **kw)
    assert word in str(err.value) and "--" not in str(err.value)


# ---- labels fit the same twin again --------------------------------------------------------
def test_label_and_params_round_trip(frame, selected):
    assert "[bins=" in " ".join(e["structure"] for e in selected.leaderboard), (
        "the fixture should run the bins search"
    )
    assert {"bins", "score", "max_parents", "max_categories"} <= set(selected.params)
    again = TableTwin.fit_select(frame, structures=[selected.structure], seed=3)
    assert again.structure == selected.structure
    assert again.params == selected.params
    np.testing.assert_array_equal(again.log_prob(frame), selected.log_prob(frame))
    as_string = datatwin.fit(frame, structures=selected.structure, seed=3)
    np.testing.assert_array_equal(as_string.log_prob(frame), selected.log_prob(frame))


def test_every_leaderboard_row_fits_again_from_its_label(frame, selected):
    for row in selected.leaderboard:
        twin = datatwin.fit(frame, structures=[row["structure"]], seed=3, refit=False)
        again = twin.leaderboard[0]  # a plain name still gets its bins search after it
        assert again["structure"] == row["structure"]
        assert again["holdout_bits"] == row["holdout_bits"], row["structure"]
        assert again["train_bits"] == row["train_bits"], row["structure"]
        assert again["bins"] == row["bins"] and again["params"] == row["params"]


def test_label_parameters_override_the_keywords(frame):
    by_label = datatwin.fit(frame, structures=["bayesnet[score=bic,bins=5]"], seed=1)
    by_keyword = datatwin.fit(frame, structures=["bayesnet"], score="bic", bins=5, seed=1)
    assert by_label.structure == "bayesnet[score=bic,bins=5]"
    assert by_label.params == by_keyword.params
    np.testing.assert_array_equal(by_label.log_prob(frame), by_keyword.log_prob(frame))
    single = TableTwin.fit(frame, structure="trees[bins=20]")
    assert single.params["bins"] == 20 and single.structure == "trees[bins=20]"
    assert single.params["order"] == [n for n in single.params["order"] if n in single.modelled]


def test_leaderboard_rows_keep_their_keys_and_order(selected):
    keys = ["structure", "train_bits", "holdout_bits", "fit_seconds", "bins", "edges", "params"]
    for row in selected.leaderboard:
        assert list(row) == [*keys, "selected"]
    assert [e["structure"] for e in selected.leaderboard][:4] == list(DEFAULT_STRUCTURES)
    assert sum(e["selected"] for e in selected.leaderboard) == 1


# ---- state models and conditional tables by kind tag ---------------------------------------
def _rewrite(path, edit) -> None:
    meta, arrays = load_archive(path)
    edit(meta, arrays)
    save_archive(path, meta, arrays)


def test_components_are_stored_with_their_tags(frame, tmp_path):
    twin = TableTwin.fit(frame, structure="trees")
    meta, _ = twin.to_archive()
    assert meta["state_model"]["kind"] == "discrete"
    assert set(meta["state_model"]["conditionals"]) <= set(CONDITIONALS.tags())
    assert "tree" in meta["state_model"]["conditionals"]
    assert set(STATE_MODELS.tags()) >= {"discrete", "gaussian"}


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m["state_model"]["conditionals"].__setitem__(0, "mlp"), ["mlp"]),
        (lambda m: m["state_model"].__setitem__("kind", "transformer"), ["transformer"]),
    ],
)
def test_unknown_tag_is_refused_in_one_line(frame, tmp_path, edit, words):
    path = tmp_path / "m.twin"
    TableTwin.fit(frame, structure="chow-liu").save(path)
    _rewrite(path, lambda meta, arrays: edit(meta))
    with pytest.raises(ModelFileError) as err:
        datatwin.load(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "newer datatwin" in msg
    assert all(w in msg for w in words), msg


@pytest.mark.parametrize("structure", ["bayesnet", "trees", "gaussian"])
def test_files_written_before_the_tags_still_load(tmp_path, structure):
    df = linear_frame() if structure == "gaussian" else mixed_frame(800)
    twin = TableTwin.fit(df, structure=structure)
    path = tmp_path / "old.twin"
    twin.save(path)

    def untag(meta, arrays):
        del meta["state_model"]
        if structure == "gaussian":  # the old layout also shipped an unused discrete network
            _, discrete = TableTwin.fit(df, structure="independent").net.to_archive()
            arrays.update(discrete)

    _rewrite(path, untag)
    back = datatwin.load(path)
    assert type(back.net) is type(twin.net)
    np.testing.assert_array_equal(back.log_prob(df), twin.log_prob(df))
    assert back.sample(50, seed=1).equals(twin.sample(50, seed=1))


def test_gaussian_twin_has_no_discrete_network(tmp_path):
    df = linear_frame()
    twin = TableTwin.fit(df, structure="gaussian")
    assert isinstance(twin.net, LinearGaussianNet)
    meta, arrays = twin.to_archive()
    assert meta["state_model"] == {"kind": "gaussian"}
    assert "cards" not in arrays and not any(k.startswith("n0_") for k in arrays)
    assert twin.edge_weights() is None and twin.n_params() == twin.net.n_params()
    chosen = datatwin.fit(df, seed=0)
    assert chosen.structure == "gaussian" and isinstance(chosen.net, LinearGaussianNet)


# ---- seeds ------------------------------------------------------------------------------------
def test_seed_may_be_an_int_none_or_a_generator(frame):
    twin = TableTwin.fit(frame, structure="bayesnet")
    g1 = twin.sample(500, seed=np.random.default_rng(5))
    g2 = twin.sample(500, seed=np.random.default_rng(5))
    assert g1.equals(g2)
    n1, n2 = twin.sample(500, seed=None), twin.sample(500, seed=None)
    assert not n1.drop(columns="id").equals(n2.drop(columns="id"))
    with pytest.raises(InputError, match="seed"):
        twin.sample(5, seed=-1)
    with pytest.raises(InputError, match="unknown option"):
        twin.sample(5, seed=0, novle=True)
    a = datatwin.fit(frame, structures="independent", seed=np.random.default_rng(2))
    b = datatwin.fit(frame, structures="independent", seed=np.random.default_rng(2))
    assert a.leaderboard[0]["holdout_bits"] == b.leaderboard[0]["holdout_bits"]


def test_int_seed_values_stream_is_the_plain_generator_of_the_seed(frame):
    """An int seed draws the values from default_rng(seed), as before the named streams:
    samples of an int seed are unchanged by them."""
    twin = TableTwin.fit(frame, structure="chow-liu")
    allowed = [(c.state_kind != 4) for c in twin.codecs]
    rng = np.random.default_rng(11)
    states = twin.net.sample_states(300, rng, allowed)
    decoded = [c.decode(s, rng) for c, s in zip(twin.codecs, states, strict=True)]
    s = twin.sample_tokens(300, seed=11)
    for c, d in zip(twin.codecs, decoded, strict=True):
        if not c.numeric:
            assert list(s[c.spec.name]) == list(d.values)
