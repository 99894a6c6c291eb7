"""The walkthrough "add a structure" (docs/architecture.md), done by a test: one module
(tests/examples/star.py) plus one registry line make a structure the whole tool uses."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from examples import star

import datatwin
from datatwin import cli
from datatwin.tabular.structures import TABLE_STRUCTURES


@pytest.fixture
def registered() -> Iterator[None]:
    star.register()
    try:
        yield
    finally:
        TABLE_STRUCTURES.remove("star")


def _hub_table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    hub = rng.choice(["h1", "h2", "h3"], n)
    a = np.where(rng.random(n) < 0.85, np.char.replace(hub, "h", "a"), "a9")
    b = np.where(rng.random(n) < 0.8, np.char.replace(hub, "h", "b"), "b9")
    return pd.DataFrame({"hub": hub, "a": a, "b": b})


def test_a_registered_structure_is_fit_selected_and_round_trips(registered, tmp_path: Path):
    df = _hub_table()
    twin = datatwin.fit(df, structures="independent,star", seed=0)
    assert twin.structure == "star"  # the true structure wins the holdout
    assert sorted(twin.edges) == [("hub", "a"), ("hub", "b")]
    rows = {r["structure"]: r["holdout_bits"] for r in twin.leaderboard}
    assert rows["star"] < rows["independent"]
    # probabilities over every combination of seen values: at most one, nearly all of it
    combos = pd.DataFrame(
        list(itertools.product(*[sorted(df[c].unique()) for c in df])), columns=list(df)
    )
    total = float(np.exp(twin.log_prob(combos)).sum())
    assert 0.95 < total <= 1.0 + 1e-12
    path = tmp_path / "star.twin"
    twin.save(path)
    back = datatwin.load(path)
    assert back.structure == "star"
    assert np.array_equal(back.log_prob(df), twin.log_prob(df))
    pd.testing.assert_frame_equal(back.sample(50, seed=1), twin.sample(50, seed=1))
    # the label fits the same twin again
    again = datatwin.fit(df, structures=twin.structure, seed=0)
    assert np.array_equal(again.log_prob(df), twin.log_prob(df))


def test_the_cli_accepts_it_and_its_help_lists_it(registered, tmp_path: Path, capsys):
    path = tmp_path / "d.csv"
    _hub_table().to_csv(path, index=False)
    out = tmp_path / "m.twin"
    assert cli.main(["-q", "fit", str(path), "--structures", "star", "-o", str(out)]) == 0
    assert datatwin.load(out).structure == "star"
    capsys.readouterr()
    assert cli.main(["structures", "--kind", "table"]) == 0
    listed = capsys.readouterr().out
    assert "star" in listed.split() and "every other column's parent" in listed
    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    assert "star" in re.findall(r"[\w-]+", capsys.readouterr().out)


def test_an_unregistered_name_is_refused_listing_the_registry() -> None:
    with pytest.raises(datatwin.InputError) as err:
        datatwin.fit(_hub_table(), structures="star")
    assert "unknown table structure" in str(err.value) and "trees" in str(err.value)
