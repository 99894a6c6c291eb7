"""Text and events twins on the shared real data (skipped when ../shared/data is absent)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE = DATA / "text" / "shakespeare"
CMUDICT = DATA / "events" / "cmudict" / "pronunciations.csv.gz"


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"shared data not found at {SHAKESPEARE}")
def test_shakespeare_slice_selects_a_markov_model_beating_gzip():
    text = (SHAKESPEARE / "train.txt").read_text(encoding="utf-8")[:400_000]
    twin = datatwin.fit(text, kind="text", max_order=6, seed=0)
    rows = {r["structure"]: r for r in twin.leaderboard}
    assert twin.model.order >= 3
    assert rows[twin.structure]["holdout_bits"] < rows["gzip"]["holdout_bits"]
    assert rows[twin.structure]["holdout_bits"] < 2.8


@pytest.mark.skipif(not CMUDICT.exists(), reason=f"shared data not found at {CMUDICT}")
def test_cmudict_subset_lengths_are_realistic():
    df = pd.read_csv(CMUDICT, nrows=60_000, keep_default_na=False, dtype={"phone": str})
    twin = datatwin.fit(
        df, kind="events", sequence_id="word", order_by="position", event="phone", max_order=5
    )
    assert math.isfinite(twin.bits(df)) and twin.model.order >= 2
    real = df.groupby("word").size().to_numpy()
    fake = twin.sample(2000, seed=0).groupby("word").size().to_numpy()
    assert abs(np.mean(fake) - np.mean(real)) < 0.5
