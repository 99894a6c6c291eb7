"""Counting in pieces is exact: the tables merged from chunks equal the tables of the whole
(keys, raw and continuation counts, BOS flags), equal a brute-force count of the strings, and a
twin fit with tiny chunks scores the holdout to the same bits as one fit in one piece."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from datatwin.text import cache, merge, positions, smoothing
from datatwin.text.cache import CacheSpec, cache_stats
from datatwin.text.counts import BOS, N_SPECIAL, Segment, Tables, count, layout, lookup
from datatwin.text.family import fit_family
from datatwin.text.merge import count_part, pieces
from datatwin.text.model import NgramModel
from datatwin.text.twin import TextTwin


def _segments(seed: int, n: int = 40, alphabet: int = 5) -> list[Segment]:
    """Random blocks of every kind: documents, cut documents (no EOS), tails with history."""
    rng = np.random.default_rng(seed)
    segs = []
    for i in range(n):
        tokens = rng.integers(N_SPECIAL, N_SPECIAL + alphabet, size=int(rng.integers(0, 60)))
        begin, end = bool(i % 3), bool(i % 4)
        ctx = int(rng.integers(0, 5)) if not begin else 0
        segs.append(Segment(tokens, begin, end, min(ctx, len(tokens))))
    return segs


def _assert_same(a: Tables, b: Tables) -> None:
    assert len(a.keys) == len(b.keys)
    for k in range(len(a.keys)):
        for name in ("keys", "raw", "cont", "bos_first"):
            x, y = getattr(a, name)[k], getattr(b, name)[k]
            assert np.array_equal(x, y), (name, k)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [1, 7, 50, 333])
def test_chunked_tables_equal_whole(seed: int, chunk: int) -> None:
    segs = _segments(seed)
    base, top = N_SPECIAL + 5, 6
    whole = count(segs, base, top, chunk_symbols=10**9)
    assert len(list(pieces(segs, top, 10**9))) == 1
    assert len(list(pieces(segs, top, chunk))) > 1  # really in pieces
    _assert_same(count(segs, base, top, chunk_symbols=chunk), whole)


def _brute(segs: list[Segment], top: int) -> list[Counter]:
    """Raw counts of every string ending at a predicted position, by level, as tuples."""
    lay = layout(segs)
    t, pred, off = lay.t.tolist(), lay.pred.tolist(), lay.offset.tolist()
    out: list[Counter] = [Counter() for _ in range(top + 1)]
    for i in range(len(t)):
        for k in range(top + 1):
            if off[i] >= k and pred[i]:
                out[k][tuple(t[i - k : i + 1])] += 1
    return out


def _strings(tables: Tables, k: int) -> list[tuple[int, ...]]:
    """The string of every level-k key, by walking parents."""
    prev = [()] if k == 0 else _strings(tables, k - 1)
    keys = tables.keys[k]
    return [
        (int(x),) if k == 0 else prev[int(x) // tables.base] + (int(x) % tables.base,) for x in keys
    ]


def test_chunked_counts_match_brute_force() -> None:
    segs = _segments(5, n=25, alphabet=3)
    base, top = N_SPECIAL + 3, 4
    tables = count(segs, base, top, chunk_symbols=1)
    brute = _brute(segs, top)
    for k in range(top + 1):
        strings = _strings(tables, k)
        assert strings == sorted(strings)  # ids are the lexicographic ranks
        got = {s: int(c) for s, c in zip(strings, tables.raw[k], strict=True) if c}
        assert got == dict(brute[k])
        assert tables.bos_first[k].tolist() == [s[0] == BOS for s in strings]
        if k < top:  # continuation: distinct counted left extensions
            ext = Counter(s[1:] for s in brute[k + 1])
            assert {s: int(c) for s, c in zip(strings, tables.cont[k], strict=True) if c} == {
                s: n for s, n in ext.items()
            }


def test_merge_of_parts_is_the_part_of_the_concatenation() -> None:
    segs = _segments(3)
    base, top = N_SPECIAL + 5, 5
    a, b = count_part(segs[:17], base, top), count_part(segs[17:], base, top)
    whole = count_part(segs, base, top)
    merged = merge.merge(a, b)
    for k in range(top + 1):
        assert np.array_equal(merged.keys[k], whole.keys[k])
        assert np.array_equal(merged.raw[k], whole.raw[k])
        assert np.array_equal(merged.suffix[k], whole.suffix[k])


def test_long_segment_cut_keeps_history() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(N_SPECIAL, N_SPECIAL + 4, size=5000)
    segs = [
        Segment(tokens),
        Segment(tokens[:100], True, False),
        Segment(tokens[:50], False, True, 9),
    ]
    base, top = N_SPECIAL + 4, 8
    cut = list(pieces(segs, top, 64))
    later = [s for p in cut for s in p if not s.begin and s.n_context == top]
    assert len(cut) > 50 and len(later) >= 5000 // 64 - 1  # each later cut: 8 tokens of history
    _assert_same(count(segs, base, top, chunk_symbols=64), count(segs, base, top, 10**9))


def test_family_bits_identical_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    segs = _segments(7, n=60)
    hold = _segments(8, n=10)
    base, top = N_SPECIAL + 5, 5
    _, whole = fit_family(segs, hold, base, top)
    monkeypatch.setattr(merge, "DEFAULT_CHUNK_SYMBOLS", 11)
    _, chunked = fit_family(segs, hold, base, top)
    for r, s in zip(whole, chunked, strict=True):
        assert r["structure"] == s["structure"]
        assert r["holdout_total_bits"] == s["holdout_total_bits"]
        assert r["train_total_bits"] == s["train_total_bits"]


def test_twin_identical_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    words = ["the ", "king ", "queen ", "shall ", "not ", "be ", "here", ".\n", "and "]
    docs = ["".join(rng.choice(words, size=400)) for _ in range(12)]
    one = TextTwin.fit_select(docs, max_order=6, baselines=False)
    monkeypatch.setattr(merge, "DEFAULT_CHUNK_SYMBOLS", 37)
    many = TextTwin.fit_select(docs, max_order=6, baselines=False)
    assert [r["holdout_bits"] for r in one.leaderboard] == [
        r["holdout_bits"] for r in many.leaderboard
    ]
    a, b = one.model, many.model
    assert isinstance(a, NgramModel) and isinstance(b, NgramModel)
    assert a.order == b.order and a.smoother == b.smoother
    for x, y in zip(a.keys + a.counts, b.keys + b.counts, strict=True):
        assert np.array_equal(x, y)
    assert np.array_equal(one.log_prob(docs[:2]), many.log_prob(docs[:2]))


def test_positions_in_slices_equal_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    segs, hold = _segments(11), _segments(12, n=15)
    base, top = N_SPECIAL + 5, 6
    tables = count(segs, base, top)
    lay = layout(hold)
    ids = lookup(tables.keys, base, lay)
    where = np.flatnonzero(lay.pred)
    monkeypatch.setattr(positions, "PIECE", 13)
    monkeypatch.setattr(positions, "MEMO_POSITIONS", 0)
    got = list(positions.Positions.of(lay).levels(tables.keys, base))
    assert len(where) and len(got) == top + 1
    for k, (h, h_prev) in enumerate(got):
        assert np.array_equal(h, ids[k])
        assert h_prev is None if k == 0 else np.array_equal(h_prev, ids[k - 1])


def test_cache_stats_by_groups_of_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    segs = _segments(13, n=30, alphabet=3)
    spec = CacheSpec()
    whole = cache_stats(layout(segs), N_SPECIAL + 3, spec)
    monkeypatch.setattr(positions, "PIECE", 40)
    grouped = positions.cache_stats_pieces(segs, N_SPECIAL + 3, spec)
    for a, b in zip(whole, grouped, strict=True):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)


def test_baselines_bounded() -> None:
    from datatwin.text import baselines

    small = b"abc" * 10
    assert baselines._bounded(small, 30, head=False) == (small, 30)
    big = b"x" * (baselines.BASELINE_BYTES * 2)
    cut, units = baselines._bounded(big, len(big), head=True)
    assert len(cut) == baselines.BASELINE_BYTES and units == baselines.BASELINE_BYTES


def test_levels_in_slices_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    segs, hold = _segments(21, n=50), _segments(22, n=12)
    base, top = N_SPECIAL + 5, 5
    tables, whole = fit_family(segs, hold, base, top)
    monkeypatch.setattr(smoothing, "LEVEL_SLICE", 3)
    monkeypatch.setattr(smoothing, "APPLY_SLICE", 5)
    monkeypatch.setattr(cache, "SLICE", 7)
    _, sliced = fit_family(segs, hold, base, top)
    for r, s in zip(whole, sliced, strict=True):
        assert r["holdout_total_bits"] == s["holdout_total_bits"]
        assert r["train_total_bits"] == s["train_total_bits"]
    for smoother in smoothing.SMOOTHERS:
        for k in range(top + 1):
            a = NgramModel.from_tables(tables, k, smoother)
            monkeypatch.setattr(smoothing, "LEVEL_SLICE", 1 << 22)
            b = NgramModel.from_tables(tables, k, smoother)
            monkeypatch.setattr(smoothing, "LEVEL_SLICE", 3)
            for x, y in zip(a.levels, b.levels, strict=True):
                assert np.array_equal(x.alpha, y.alpha) and np.array_equal(x.gamma, y.gamma)
