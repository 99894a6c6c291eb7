"""Events twins spell the names they never saw: P(name | h) = P(UNK | h) · P(name | UNK), with
P(. | UNK) the spelling model of the training names without those names (`UnseenNames`)."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.errors import ModelFileError
from datatwin.text.unseen import UnseenNames

NAMES = ["view", "cart", "buy", "search", "leave"]
UNSEEN = ["x", "refund", "refund-2", "zzz", "view!", "Ωμέγα", ""]


def _table(seqs: list[list[str]]) -> pd.DataFrame:
    rows = [(f"q{i}", j, e) for i, s in enumerate(seqs) for j, e in enumerate(s)]
    return pd.DataFrame(rows, columns=["S", "P", "E"])


@pytest.fixture(scope="module")
def twin() -> datatwin.Twin:
    rng = np.random.default_rng(3)
    seqs = [list(rng.choice(NAMES, int(rng.integers(1, 6)))) for _ in range(120)]
    return datatwin.fit(
        _table(seqs), kind="events", sequence_id="S", order_by="P", event="E", seed=0,
        structures="markov1+kn",
    )  # fmt: skip


def _next(twin: datatwin.Twin, prefix: list[str], names: list[str]) -> np.ndarray:
    """P(prefix · name as a prefix) / P(prefix) for each name."""
    lp = twin.log_prob(_table([prefix + [e] for e in names]))
    k = len(prefix)
    per = lp.reshape(len(names), k + 2)
    return np.exp(per[:, k])


def test_unseen_names_share_the_unk_mass(twin: datatwin.Twin) -> None:
    prefix = ["view"]
    seen = _next(twin, prefix, sorted(NAMES)).sum()
    lp_end = twin.log_prob(_table([prefix]))
    end = float(np.exp(lp_end[1]))
    unseen = _next(twin, prefix, UNSEEN)
    assert np.all(unseen > 0)
    assert seen + end + unseen.sum() <= 1.0 + 1e-12
    # different lengths, different probabilities (each name no longer takes all of UNK)
    assert len({float(p) for p in unseen}) == len(UNSEEN)
    assert unseen[UNSEEN.index("refund")] > unseen[UNSEEN.index("refund-2")]
    # exactly one with the whole UNK mass: P(UNK | h) = P(name | h) / P(name | UNK)
    unk = unseen[0] / math.exp(-float(twin.unseen.nats_many(["x"])[0]))
    assert seen + end + unk == pytest.approx(1.0, rel=1e-12)


def test_spelling_of_unseen_names_sums_to_one_without_the_seen_names() -> None:
    """P(. | UNK) = P_spell / (1 - S): summed over the unseen strings of the listed characters
    up to length 8, plus the spelling's mass on every other string (longer, or with an
    unlisted character) over 1 - S, it is exactly one; the seen names get nothing."""
    seen = ["a", "ab", "b"]
    un = UnseenNames.fit(seen)
    q = un.spelling.step()  # a, b, end, escape
    assert un.spelling.codes.tolist() == [ord("a"), ord("b")]
    keep_mass = 1.0 - float(np.exp(-un.spelling.nats_many(seen)).sum())
    total, strings, short = 0.0, [""], 0.0
    for n in range(9):
        total += float(np.exp(-un.nats_many([s for s in strings if s not in seen])).sum())
        short += (q[0] + q[1]) ** n * q[2]
        strings = [s + c for s in strings for c in "ab"]
    assert total + (1.0 - short) / keep_mass == pytest.approx(1.0, rel=1e-12)


def test_coding_rows_telescope_to_the_score() -> None:
    un = UnseenNames.fit(["a", "ab", "b", "abc"])
    for name in ["", "aa", "ba", "abd", "abcc", "c", "Ω", "aΩb"]:
        syms, _ = un.spelling.symbols(name)
        nats = 0.0
        for i, x in enumerate(syms):
            row = un.row(syms[:i])
            nats += math.log(row.sum()) - math.log(row[x])
        escapes = sum(x == un.spelling.n_known + 1 for x in syms)
        nats += escapes * math.log(un.spelling.n_unlisted)
        assert nats == pytest.approx(float(un.nats_many([name])[0]), rel=1e-12), name
    assert un.row(un.spelling.symbols("ab")[0][:2])[un.spelling.n_known] == 0.0


def test_sampling_draws_what_is_scored() -> None:
    un = UnseenNames.fit(["a", "ab", "b"])
    rng = np.random.default_rng(0)
    draws = pd.Series([un.sample(rng) for _ in range(20_000)]).value_counts() / 20_000
    assert not {"a", "ab", "b"} & set(draws.index)
    for name in ["", "aa", "ba", "bb", "aab"]:
        p = math.exp(-float(un.nats_many([name])[0]))
        assert draws.get(name, 0.0) == pytest.approx(p, abs=4 * math.sqrt(p / 20_000) + 1e-4)


def test_sampled_unseen_names_are_spelled_and_scored(twin: datatwin.Twin) -> None:
    out = twin.sample(3000, seed=1)
    new = set(out["E"]) - set(NAMES)
    assert new and "<other>" not in new
    assert np.all(np.isfinite(twin.log_prob(out)))


def test_save_load_keeps_the_spelling(twin: datatwin.Twin, tmp_path: Path) -> None:
    path = tmp_path / "e.twin"
    twin.save(path)
    back = datatwin.load(path)
    data = _table([["view", *UNSEEN[:3]], ["buy", "Ωμέγα", "cart"]])
    np.testing.assert_array_equal(back.log_prob(data), twin.log_prob(data))
    pd.testing.assert_frame_equal(back.sample(200, seed=4), twin.sample(200, seed=4))


def _rewrite(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as z:
        meta = z.read("model.json")
        arrays = dict(np.load(io.BytesIO(z.read("arrays.npz"))))
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("model.json", meta)
        z.writestr("arrays.npz", buf.getvalue())


def test_old_files_without_the_spelling_load_and_bad_ones_are_refused(
    twin: datatwin.Twin, tmp_path: Path
) -> None:
    path = tmp_path / "e.twin"
    twin.save(path)
    old = tmp_path / "old.twin"

    def drop(a: dict) -> None:
        del a["spell_codes"], a["spell_counts"]

    _rewrite(path, old, drop)
    back = datatwin.load(old)  # the spelling is fitted on the stored names, as a fit does
    data = _table([["view", "refund", "buy"]])
    np.testing.assert_array_equal(back.log_prob(data), twin.log_prob(data))
    again = tmp_path / "again.twin"
    back.save(again)  # written back without it: same model bytes, old compressed files valid
    assert datatwin.load(again).store_spelling is False
    bad = {
        "zero counts": lambda a: a.update(spell_counts=np.zeros_like(a["spell_counts"])),
        "characters missing": lambda a: a.update(
            spell_codes=a["spell_codes"][1:], spell_counts=a["spell_counts"][1:]
        ),
        "float codes": lambda a: a.update(spell_codes=a["spell_codes"].astype(float)),
    }
    for change in bad.values():
        _rewrite(path, tmp_path / "bad.twin", change)
        with pytest.raises(ModelFileError):
            datatwin.load(tmp_path / "bad.twin")
