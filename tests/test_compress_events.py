"""Lossless events compression: sequences under the twin, ids, order and layout as side."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("constriction")

from compress_checks import assert_cli_round_trip, assert_damage_refused  # noqa: E402

import datatwin  # noqa: E402
from datatwin.coding import CompressedFileError  # noqa: E402
from datatwin.coding.api import compress_report, decompress  # noqa: E402
from datatwin.text.counts import BOS  # noqa: E402
from datatwin.text.steps import Steps, Walker  # noqa: E402

EVENTS = ["view", "cart", "buy", "search", "leave"]


def _rows(n_seq: int, seed: int, start: int = 0) -> list[tuple[str, int, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seq):
        k = int(rng.integers(1, 9))
        e = int(rng.integers(4))
        for i in range(k):
            e = (e + int(rng.integers(1, 3))) % 4 if rng.random() < 0.7 else int(rng.integers(5))
            rows.append((f"u{1000 + s}", start + i, EVENTS[e]))
    return rows


def _csv(rows: list[tuple[str, int, str]], header: str = "user,step,action") -> bytes:
    return (header + "\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode()


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> datatwin.Twin:
    path = tmp_path_factory.mktemp("events") / "train.csv"
    path.write_bytes(_csv(_rows(300, 0)))
    return datatwin.fit(
        path,
        kind="events",
        seed=0,
        sequence_id="user",
        order_by="step",
        event="action",
        structures="markov2+kn+len",
    )


def _cases() -> dict[str, bytes]:
    rows = _rows(60, 1)
    rng = np.random.default_rng(5)
    interleaved = sorted(rows, key=lambda r: (r[1], r[0]))
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    return {
        "grouped": _csv(rows),
        "interleaved": _csv(interleaved),
        "shuffled": _csv(shuffled),
        "from one": _csv(_rows(30, 2, start=1)),
        "integer ids": _csv([(str(7 + 3 * int(a[1:])), b, c) for a, b, c in rows]),
        "unseen events": _csv([(a, b, "refund" if b == 2 else c) for a, b, c in rows]),
        "odd order": _csv([(a, f"2024-01-0{b + 1}" if b < 9 else b, c) for a, b, c in rows]),
        "extra column": (
            "user,step,action,price\n" + "".join(f"{a},{b},{c},{b * 1.5}\n" for a, b, c in rows)
        ).encode(),
        "crlf quoted no final newline": _csv(rows)
        .replace(b"\n", b"\r\n")
        .replace(b",buy", b',"buy"')
        .rstrip(b"\r\n"),
        "one row": _csv(rows[:1]),
        "ids with newlines": _csv([(f'"{a[:2]}\n{a[2:]}"', b, c) for a, b, c in rows]),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_round_trips(twin: datatwin.Twin, case: str) -> None:
    raw = _cases()[case]
    blob = twin.compress(raw)
    assert twin.decompress(blob) == raw
    assert decompress(twin.compress(raw, embed_model=True)) == raw


def test_payload_is_the_twins_bits_and_side_is_small(twin: datatwin.Twin, tmp_path: Path) -> None:
    raw = _cases()["grouped"]
    path = tmp_path / "h.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(twin.log_prob(path))) / math.log(2)
    _, report = compress_report(twin, raw)
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] <= predicted / 8 * 1.005 + 8
    assert report["side_row_order"] == 1 and report["exceptions"] == 0
    _, inter = compress_report(twin, _cases()["interleaved"])
    assert inter["model_bits"] == pytest.approx(predicted, rel=1e-9)  # same sequences
    assert inter["exceptions"] == 0


def test_unseen_names_cost_what_the_twin_scores(twin: datatwin.Twin, tmp_path: Path) -> None:
    """Unseen names are spelled in the payload as `log_prob` scores them (the spelling model
    without the seen names), so the payload is still the twin's own bits."""
    raw = _cases()["unseen events"].replace(b",leave", ",Ωμέγα".encode())
    raw = raw.replace(b",view\n", b",vie\n")
    path = tmp_path / "u.csv"
    path.write_bytes(raw)
    predicted = -float(np.sum(twin.log_prob(path))) / math.log(2)
    blob, report = compress_report(twin, raw)
    assert report["unseen_events"] > 0 and report["unseen_event_bits"] > 0
    assert report["model_bits"] == pytest.approx(predicted, rel=1e-9)
    assert report["sizes"]["payload"] <= predicted / 8 * 1.005 + 8
    assert twin.decompress(blob) == raw


def test_incremental_distribution_equals_next_distribution(twin: datatwin.Twin) -> None:
    assert twin.hazard is not None
    ids = twin._encode(np.array(["view", "cart", "refund", "buy"] * 5, dtype=object))
    steps = Steps(twin.chain)
    ctx = [BOS]
    for i in range(len(ids) + 1):
        assert np.array_equal(steps.distribution(), twin.next_distribution(np.array(ctx)))
        if i < len(ids):
            steps.push(int(ids[i]))
            ctx.append(int(ids[i]))


def test_block_rows_equal_the_sequential_distributions(twin: datatwin.Twin) -> None:
    """The encoder's all-at-once rows of many sequences (static rows, then the length-aware
    end on all rows) are bit for bit the decoder's `Steps.distribution` one step at a time."""
    from datatwin.coding import text_rows
    from datatwin.text.counts import EOS

    assert twin.hazard is not None and twin.chain.cache is None
    rng = np.random.default_rng(7)
    names = np.array(EVENTS + ["refund"], dtype=object)
    lengths = [int(x) for x in rng.integers(0, 12, 40)]
    ids = twin._encode(names[rng.integers(0, len(names), sum(lengths))])
    starts = [int(x) for x in np.cumsum([0, *lengths[:-1]])]
    got = list(text_rows.block_rows(Steps(twin.chain), ids, starts, lengths))
    rows = np.concatenate([P for _, P in got])
    syms = np.concatenate([y for y, _ in got])
    steps, want, want_syms = Steps(twin.chain), [], []
    for s0, n in zip(starts, lengths, strict=True):
        steps.reset()
        for i in range(n + 1):
            want.append(steps.distribution().copy())
            want_syms.append(int(ids[s0 + i]) if i < n else EOS)
            if i < n:
                steps.push(int(ids[s0 + i]))
    assert np.array_equal(syms, want_syms)
    assert np.array_equal(rows, np.array(want))


def test_missing_columns_are_refused(twin: datatwin.Twin) -> None:
    with pytest.raises(datatwin.InputError, match="columns"):
        twin.compress(b"a,b\n1,2\n")


def test_wrong_model_truncated_and_flipped_are_one_line_errors(
    twin: datatwin.Twin, tmp_path: Path
) -> None:
    blob = twin.compress(_cases()["shuffled"])
    other_path = tmp_path / "other.csv"
    other_path.write_bytes(_csv(_rows(100, 9)))
    other = datatwin.fit(
        other_path, kind="events", sequence_id="user", order_by="step", event="action"
    )
    with pytest.raises(CompressedFileError, match="wrong model"):
        decompress(blob, other)
    assert_damage_refused(blob, twin)


def test_cli_round_trip_and_no_partial_output(twin: datatwin.Twin, tmp_path: Path) -> None:
    assert_cli_round_trip(twin, _cases()["interleaved"], tmp_path, ".csv", self_contained=False)


@pytest.mark.skipif(Walker is None, reason="the compiled walk was not built (no C compiler)")
def test_a_cache_with_length_aware_ends_walks_alike_compiled_and_in_python(twin) -> None:
    """A chain with a document cache from order 1 and length-aware ends (the structures make
    one or the other; the walk allows both), walked sequence by sequence with `reset`: the
    compiled and the Python walk give the same rows at every step of every sequence."""
    from datatwin.text.cache import CacheSpec
    from datatwin.text.layers import LayeredModel

    assert twin.chain.hazard is not None
    chain = LayeredModel(twin.chain.model, CacheSpec(orders=(1, 2, 3)), twin.chain.hazard)
    seqs = [[2 + (i * j) % 5 for j in range(1 + i % 9)] for i in range(40)]

    def walk(steps: Steps) -> np.ndarray:
        got = []
        for seq in seqs:
            steps.reset()
            for w in seq:
                got.append(steps.distribution().copy())
                steps.push(w)
            got.append(steps.distribution().copy())
        return np.array(got)

    python, compiled = (walk(Steps(chain, python_only=p)) for p in (True, False))
    assert np.array_equal(python, compiled)
    assert not np.allclose(python, walk(Steps(twin.chain)))  # the cache does change the rows
