"""Lossless text compression: symbol by symbol with the twin's exact next-symbol distribution."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("constriction")

from compress_checks import assert_cli_round_trip, assert_damage_refused  # noqa: E402

import datatwin  # noqa: E402
from datatwin.coding import CompressedFileError, text_rows  # noqa: E402
from datatwin.coding.api import compress_report, decompress  # noqa: E402
from datatwin.coding.text import _compact, unseen_code, unseen_rank  # noqa: E402
from datatwin.coding.text_rows import vectorisable  # noqa: E402
from datatwin.text.counts import BOS  # noqa: E402
from datatwin.text.steps import Steps, Walker  # noqa: E402

TRAIN = (
    "When in the chronicle of wasted time\nI see descriptions of the fairest wights,\n"
    "And beauty making beautiful old rhyme\nIn praise of ladies dead and lovely knights,\n"
) * 6 + "Then, in the blazon of sweet beauty's best,\nOf hand, of foot, of lip, of eye, of brow,\n"
HOLD = "I see the chronicle of lovely knights,\nAnd praise of sweet beauty's brow.\n"


@pytest.fixture(scope="module")
def twin() -> datatwin.Twin:
    return datatwin.fit(TRAIN, kind="text", seed=0, structures="markov4+kn+cache")


@pytest.fixture(scope="module")
def words() -> datatwin.Twin:
    return datatwin.fit(TRAIN, kind="text", seed=0, tokens="words", structures="markov2+kn")


@pytest.fixture(scope="module")
def raw_bytes() -> datatwin.Twin:
    return datatwin.fit(TRAIN, kind="text", seed=0, tokens="bytes", structures="markov3+wb+cache")


CASES = {
    "plain": HOLD.encode(),
    "empty": b"",
    "one char": b"I",
    "unseen characters": "Zoë ☃ naïve 😀 Q\n".encode(),
    "crlf": HOLD.replace("\n", "\r\n").encode(),
    "mixed line ends": b"a\r\nb\nc\r",
    "bom": b"\xef\xbb\xbf" + HOLD.encode(),
    "no final newline": HOLD.rstrip("\n").encode(),
    "invalid utf-8": b"of \xff\xfe wasted\xc3 time \xed\xa0\x80 end",
    "nul": b"a\x00b",
}


@pytest.mark.parametrize("case", list(CASES))
def test_round_trips(twin: datatwin.Twin, words: datatwin.Twin, raw_bytes, case: str) -> None:
    raw = CASES[case]
    for t in (twin, words, raw_bytes):
        blob = t.compress(raw)
        assert t.decompress(blob) == raw
    assert decompress(twin.compress(raw, embed_model=True)) == raw


@pytest.mark.parametrize("which", ["chars", "words", "bytes"])
def test_payload_is_the_twins_bits(twin, words, raw_bytes, which: str) -> None:
    t = {"chars": twin, "words": words, "bytes": raw_bytes}[which]
    text = (HOLD + "Zoë ☃ unheard-of wordings\n") * 3
    predicted = -float(np.sum(t.log_prob(text))) / math.log(2)
    _, report = compress_report(t, text.encode())
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] <= predicted / 8 * 1.005 + 8
    assert report["sizes"]["layout"] <= 3


def test_side_costs_are_reported_apart(twin: datatwin.Twin) -> None:
    plain = compress_report(twin, HOLD.encode())[1]
    crlf = compress_report(twin, b"\xef\xbb\xbf" + HOLD.replace("\n", "\r\n").encode())[1]
    assert crlf["model_bits"] == pytest.approx(plain["model_bits"])  # CR and BOM: side only
    assert crlf["sizes"]["layout"] == plain["sizes"]["layout"]


@pytest.mark.parametrize("which", ["chars", "words", "bytes"])
def test_incremental_distribution_equals_next_distribution(twin, words, raw_bytes, which) -> None:
    """The coder's rows are the model's next-symbol distributions (the cache unrolled into
    one sum rounds differently, within a few units in the last place)."""
    t = {"chars": twin, "words": words, "bytes": raw_bytes}[which]
    text = HOLD + "Zoë ☃\n" + HOLD
    ids = t.vocab.encode(text if which != "bytes" else text.encode())
    steps = Steps(t.chain)
    ctx = [BOS]
    for i in range(len(ids) + 1):
        want = t.next_distribution(np.array(ctx))
        np.testing.assert_allclose(steps.distribution(), want, rtol=1e-13, atol=0)
        if i < len(ids):
            steps.push(int(ids[i]))
            ctx.append(int(ids[i]))


@pytest.mark.parametrize("python_only", [True, False])
@pytest.mark.parametrize("which", ["chars", "words", "bytes"])
def test_document_rows_equal_the_incremental_ones(
    twin, words, raw_bytes, which, python_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder's rows for a whole document (vectorised, or the compiled walk's) are bit
    for bit the rows the decoder computes one symbol at a time, at every position and across
    chunk borders."""
    monkeypatch.setattr(text_rows, "_CHUNK", 97)
    t = {"chars": twin, "words": words, "bytes": raw_bytes}[which]
    text = (HOLD + "Zoë ☃\n" + TRAIN[:300]) * 3
    ids = np.asarray(t.vocab.encode(text if which != "bytes" else text.encode()), np.int64)
    steps = Steps(t.chain, python_only=python_only)
    assert vectorisable(steps)
    assert steps.compiled == (Walker is not None and not python_only)
    got = np.concatenate([P.copy() for _, P in text_rows.rows(steps, ids)])
    seq = Steps(t.chain, python_only=python_only)
    want = []
    for i in range(len(ids) + 1):
        want.append(seq.distribution().copy())
        if i < len(ids):
            seq.push(int(ids[i]))
    assert np.array_equal(got, np.array(want))


@pytest.mark.parametrize("dense", [0, 3, 1000])
def test_walk_with_busy_contexts_gives_the_encoders_rows(
    twin, dense: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long repetitive document (contexts seen more than `cap` times, with several
    successors) walked symbol by symbol gives the encoder's rows bit for bit, with the
    counts kept as dense rows or not, and with a static memo small enough to be evicted."""
    from datatwin.text import steps as steps_module

    monkeypatch.setattr(steps_module, "_DENSE", dense)
    ids = np.asarray(twin.vocab.encode((HOLD + TRAIN[:400]) * 40), np.int64)
    vectorised = Steps(twin.chain, python_only=True)
    want = np.concatenate([P.copy() for _, P in text_rows.rows(vectorised, ids)])
    steps = Steps(twin.chain, python_only=True, memo_rows=16)
    walk = steps.walk()
    got = [next(walk).copy()]
    got += [walk.send(w).copy() for w in ids.tolist()]
    assert np.array_equal(np.array(got), want)
    assert walk.gi_frame is not None
    tables = [table for _, _, table in walk.gi_frame.f_locals["levels"]]
    entries = [e for table in tables for e in table.values() if isinstance(e, list)]
    assert max(e[1] for e in entries) > twin.chain.cache.cap
    assert any(e[2] is not None for e in entries) == (dense < 1000)


@pytest.mark.skipif(Walker is None, reason="the compiled walk was not built (no C compiler)")
@pytest.mark.parametrize("which", ["chars", "words", "bytes"])
def test_compiled_walk_gives_the_python_walks_rows_bit_for_bit(
    twin, words, raw_bytes, which: str
) -> None:
    """`_walker.c` and the Python walk give the same float64 rows at every position: a long
    repetitive document (contexts seen more than `cap` times) with unseen symbols, walked
    with the static memo evicted every few symbols (C forgets all rows when full, Python the
    older half: rows must not depend on it), and the document rows in one call."""
    t = {"chars": twin, "words": words, "bytes": raw_bytes}[which]
    text = (HOLD + "Zoë ☃\n" + TRAIN[:400]) * 20
    ids = np.asarray(t.vocab.encode(text if which != "bytes" else text.encode()), np.int64)
    rows = {}
    for python_only in (True, False):
        steps = Steps(t.chain, python_only=python_only, memo_rows=16)
        assert steps.compiled != python_only
        walk = steps.walk()
        got = [next(walk).copy()]
        got += [walk.send(w).copy() for w in ids.tolist()]
        rows[python_only] = np.array(got)
    assert np.array_equal(rows[True], rows[False])
    whole = np.concatenate([P for _, P in Steps(t.chain).document_rows(ids, 1000)])
    assert np.array_equal(whole, rows[True])
    assert t.chain.cache is None or np.max(rows[True]) > 0.5  # some contexts are busy


@pytest.mark.skipif(Walker is None, reason="the compiled walk was not built (no C compiler)")
def test_compiled_walk_with_a_large_vocabulary_and_cache() -> None:
    """Words over a vocabulary of about 300 (300 ** 8 > 2 ** 64: the cache's contexts are
    hashed in C, each hit confirmed on the symbols): the same rows as the Python walk's exact
    keys."""
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(400)]
    phrases = [" ".join(rng.choice(vocab, 9)) for _ in range(60)]
    text = "\n".join(rng.choice(phrases, 400)) + "\n"
    t = datatwin.fit(text, kind="text", tokens="words", seed=0, structures="markov2+kn+cache")
    assert t.chain.cache is not None and t.vocab.base ** max(t.chain.cache.orders) > 2**64
    ids = t.vocab.encode(text[: len(text) // 2]).tolist()
    rows = []
    for python_only in (True, False):
        walk = Steps(t.chain, python_only=python_only).walk()
        rows.append(np.array([next(walk).copy()] + [walk.send(w).copy() for w in ids]))
    assert np.array_equal(rows[0], rows[1])
    assert np.max(rows[0][len(ids) // 2 :, :]) > 0.5  # the cache predicts repeated phrases


@pytest.mark.skipif(Walker is None, reason="the compiled walk was not built (no C compiler)")
def test_compiled_walker_restarts_cleanly_and_refuses_a_stale_walk(twin) -> None:
    """One walker serves every block of a Steps: after a long block (its cache tables grown)
    a restart gives a fresh walk's rows exactly; an older walk then refuses to go on."""
    long_ids = twin.vocab.encode((HOLD + TRAIN) * 30).tolist()
    ids = twin.vocab.encode(HOLD).tolist()
    steps = Steps(twin.chain)
    old = steps.walk()
    next(old)
    for w in long_ids:
        old.send(w)
    new = steps.walk()
    got = [next(new).copy()] + [new.send(w).copy() for w in ids]
    fresh = Steps(twin.chain, python_only=True).walk()
    want = [next(fresh).copy()] + [fresh.send(w).copy() for w in ids]
    assert np.array_equal(np.array(got), np.array(want))
    with pytest.raises(RuntimeError, match="newer walk"):
        old.send(ids[0])


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI checks that the build compiled it")
def test_the_compiled_walk_is_built_in_ci() -> None:
    assert Walker is not None


def test_children_are_found_alike_in_bytes_and_by_bisection(twin, words) -> None:
    """`_StateTable.child` (bytes.find for a small alphabet, bisection otherwise) finds each
    state's children, and only them."""
    import dataclasses

    for t in (twin, words):
        tab = Steps(t.chain)._tab
        assert tab.sym_bytes is not None
        slow = dataclasses.replace(tab, sym_bytes=None)
        for s in range(len(tab.meta)):
            _, lo, hi, _ = tab.meta[s].tolist()
            kids = set(tab.sym[lo:hi].tolist())
            for w in range(t.vocab.base):
                j = tab.child(lo, hi, w)
                assert j == slow.child(lo, hi, w)
                assert (j >= 0) == (w in kids) and (j < 0 or tab.sym[j] == w)


def test_unseen_ranks_are_dense() -> None:
    vocab = np.array([0x41, 0x42, 0xD7FF, 0xE000, 0xE005])
    comp = _compact(vocab, True)
    for c in [0, 0x40, 0x43, 0xD7FE, 0xE001, 0xE006, 0x10FFFF]:
        r = unseen_rank(c, comp, True)
        assert unseen_code(r, comp, True) == c
    assert unseen_rank(0x10FFFF, comp, True) == 0x110000 - 2048 - len(vocab) - 1


def test_wrong_model_truncated_and_flipped_are_one_line_errors(
    twin: datatwin.Twin, words: datatwin.Twin
) -> None:
    blob = twin.compress(HOLD.encode())
    with pytest.raises(CompressedFileError, match="wrong model"):
        decompress(blob, words)
    with pytest.raises(CompressedFileError, match="does not embed"):
        decompress(blob)
    assert_damage_refused(blob, twin)


def test_cli_round_trip_and_no_partial_output(twin: datatwin.Twin, tmp_path: Path) -> None:
    assert_cli_round_trip(twin, CASES["crlf"] + "ünïcode\n".encode(), tmp_path, ".txt")
