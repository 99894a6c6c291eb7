"""Text and events twins: fit/select, save/load, sampling, bad input, CLI, ARPA."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datatwin
from datatwin.cli import main
from datatwin.errors import InputError, ModelFileError
from datatwin.modelfile import load_archive, save_archive
from datatwin.text.arpa import arpa_text
from datatwin.text.tokenize import Document
from datatwin.text.twin import EventsTwin, TextTwin, _split_docs

TEXT = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away.\n"
    "A lazy afternoon: the brown dog dreams of foxes, the quick fox of nothing at all.\n"
) * 6


@pytest.fixture(scope="module")
def twin() -> TextTwin:
    return datatwin.fit(TEXT, kind="text", max_order=4, seed=0)


def test_leaderboard_has_every_order_smoother_and_baseline(twin):
    names = [r["structure"] for r in twin.leaderboard]
    for k in range(5):
        for s in ("kn", "wb"):
            assert (f"markov{k}" if k else "unigram") + f"+{s}" in names
    base = [r for r in twin.leaderboard if r.get("baseline")]
    assert sorted(r["structure"] for r in base) == ["bzip2", "gzip", "xz"]
    assert all(math.isfinite(r["holdout_bits"]) for r in twin.leaderboard)
    sel = [r for r in twin.leaderboard if r.get("selected")]
    assert len(sel) == 1 and sel[0]["structure"] == twin.structure
    assert sel[0]["holdout_bits"] == min(
        r["holdout_bits"] for r in twin.leaderboard if not r.get("baseline")
    )


def test_bits_are_finite_with_unseen_characters(twin):
    s = twin.score("Zebras ∑ quickly ☃ 日本")
    assert math.isfinite(s["total_bits"]) and s["count"] == len("Zebras ∑ quickly ☃ 日本")
    assert s["bits_per_unit"] > 10  # unseen symbols cost about 20 bits each


def test_save_load_round_trip_is_exact(twin, tmp_path):
    path = tmp_path / "t.twin"
    twin.save(path)
    back = datatwin.load(path)
    assert isinstance(back, TextTwin) and back.structure == twin.structure
    np.testing.assert_array_equal(back.log_prob(TEXT[:300]), twin.log_prob(TEXT[:300]))
    assert back.sample(500, seed=7) == twin.sample(500, seed=7)
    assert back.sample(100, seed=7, prefix="The ", temperature=0.7) == twin.sample(
        100, seed=7, prefix="The ", temperature=0.7
    )


def test_fit_is_reproducible():
    a = datatwin.fit(TEXT, kind="text", max_order=3, baselines=False)
    b = datatwin.fit(TEXT, kind="text", max_order=3, baselines=False)
    ma, mb = a.to_archive()[1], b.to_archive()[1]
    assert ma.keys() == mb.keys()
    for k in ma:
        np.testing.assert_array_equal(ma[k], mb[k])


def test_tampered_model_files_are_rejected(twin, tmp_path):
    path = tmp_path / "t.twin"
    twin.save(path)
    meta, arrays = load_archive(path)
    for name, change in [
        ("counts1", lambda a: -a),
        ("keys1", lambda a: a[::-1].copy()),
        ("vocab", lambda a: a[:-1]),
    ]:
        bad = {**arrays, name: change(arrays[name])}
        save_archive(
            tmp_path / "bad.twin",
            {k: v for k, v in meta.items() if k not in ("format", "format_version")},
            bad,
        )
        with pytest.raises(ModelFileError):
            datatwin.load(tmp_path / "bad.twin")


def test_sampling_prefix_temperature_and_end(twin):
    out = twin.sample(200, seed=3, prefix="The lazy ")
    assert out.startswith("The lazy ") and len(out) <= len("The lazy ") + 200
    assert twin.sample(200, seed=3) == twin.sample(200, seed=3)
    assert twin.sample(200, seed=3) != twin.sample(200, seed=4)
    # characters never seen in training in the prefix: the sample still continues
    assert twin.sample(50, seed=1, prefix="Ωmega ").startswith("Ωmega ")
    with pytest.raises(InputError):
        twin.sample(10, temperature=0)
    # documents end: a corpus of short documents gives short samples
    docs = datatwin.fit(["ab", "abab", "ab", "abab"] * 5, kind="text", max_order=2, baselines=False)
    assert len(docs.sample(10_000, seed=0)) < 200


def test_tail_holdout_never_overlaps_training():
    docs = [Document("a", "x" * 50 + "y" * 50), Document("b", "abcdefghij")]
    train, hold = _split_docs(docs, 0.2, 0)
    for (tr, end), (_ho, hist, hend) in zip(train, hold, strict=True):
        assert not end and hend and hist == tr
    assert train[0][0] + hold[0][0] == docs[0].content
    many = [Document(str(i), "abc" * (i + 1)) for i in range(12)]
    train, hold = _split_docs(many, 0.2, 0)
    assert len(train) + len(hold) == 12 and hold and all(h is None for _, h, _ in hold)


def test_holdout_file_and_folder_of_documents(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(3):
        (folder / f"d{i}.txt").write_text(TEXT[i * 100 : i * 100 + 300], encoding="utf-8")
    (tmp_path / "held.txt").write_text(TEXT[:200], encoding="utf-8")
    t = TextTwin.fit_select(folder, max_order=3, holdout=tmp_path / "held.txt", baselines=False)
    assert t.info["documents"] == 3 and not t.info["refit_on_all_data"]
    best = min(r["holdout_bits"] for r in t.leaderboard)
    assert math.isclose(t.bits(tmp_path / "held.txt"), best, rel_tol=1e-9)


def test_bytes_tokens_report_bits_per_character(tmp_path):
    p = tmp_path / "u.txt"
    p.write_text("héllo wörld " * 30, encoding="utf-8")
    t = TextTwin.fit_select(p, tokens="bytes", max_order=3, baselines=False)
    s = t.score(Path(p))
    assert s["count"] == len("héllo wörld " * 30)
    assert t.sample(100, seed=0, prefix="hé").startswith("hé".encode())


def test_bad_text_input(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        TextTwin.fit_select(empty)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="binary"):
        TextTwin.fit_select(binary)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xff\xfe world " * 20)
    with pytest.raises(InputError, match="not valid UTF-8.*tokens='bytes'"):
        TextTwin.fit_select(bad)
    t = TextTwin.fit_select(bad, tokens="bytes", max_order=2, baselines=False)
    assert math.isfinite(t.bits(bad))
    with pytest.raises(InputError):
        TextTwin.fit_select("x", max_order=2)  # too little to hold out


def test_single_huge_line():
    rng = np.random.default_rng(0)
    line = "".join(rng.choice(list("abcde "), 300_000))
    t = datatwin.fit(line, kind="text", max_order=3, baselines=False)
    assert math.isfinite(t.bits(line[:1000]))
    assert "\n" not in t.sample(1000, seed=0)


def test_arpa_reproduces_model_probabilities(twin):
    text = arpa_text(twin.model, twin.symbol_names())
    lines = text.splitlines()
    assert lines[0] == "\\data\\" and lines[-1] == "\\end\\"
    declared = [int(x.split("=")[1]) for x in lines if x.startswith("ngram ")]
    probs: dict[tuple[str, ...], float] = {}
    bows: dict[tuple[str, ...], float] = {}
    section = 0
    counts = [0] * len(declared)
    for line in lines:
        if line.startswith("\\") and line.endswith("-grams:"):
            section = int(line[1:].split("-")[0])
            continue
        parts = line.split("\t")
        if section and len(parts) >= 2:
            counts[section - 1] += 1
            words = tuple(parts[1].split(" "))
            probs[words] = float(parts[0])
            if len(parts) == 3:
                bows[words] = float(parts[2])
    assert counts == declared

    def logp(words: tuple[str, ...]) -> float:
        if words in probs:
            return probs[words]
        return bows.get(words[:-1], 0.0) + logp(words[1:])

    names = twin.symbol_names()
    sample = "The lazy fox."
    toks = ["<s>"] + [names[i - 3] for i in twin.vocab.encode(sample)] + ["</s>"]
    total = sum(
        logp(tuple(toks[max(0, i - twin.model.order) : i + 1])) for i in range(1, len(toks))
    )
    nats = twin.log_prob(sample).sum()
    assert math.isclose(total * math.log(10), nats, rel_tol=1e-6)


# ---- events ---------------------------------------------------------------------------------
def _events(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        length = int(rng.integers(2, 8))
        ev = "S"
        for pos in range(length):
            rows.append((f"w{s}", pos, ev))
            ev = {"S": "A", "A": rng.choice(["B", "C"]), "B": "C", "C": rng.choice(["A", "D"])}.get(
                ev, "A"
            )
    return pd.DataFrame(rows, columns=["word", "position", "phone"]).sample(frac=1, random_state=1)


def test_events_fit_score_sample_round_trip(tmp_path):
    df = _events()
    t = datatwin.fit(
        df, kind="events", sequence_id="word", order_by="position", event="phone", max_order=3
    )
    assert t.unit == "event" and t.model.order >= 1
    s = t.score(df)
    assert s["count"] == len(df) and math.isfinite(s["bits_per_unit"])
    out = t.sample(200, seed=1)
    assert list(out.columns) == ["word", "position", "phone"]
    assert out["word"].nunique() == 200 and set(out["phone"]) <= {"S", "A", "B", "C", "D"}
    first = out[out["position"] == 0]["phone"]
    assert (first == "S").mean() > 0.9
    t.save(tmp_path / "e.twin")
    back = datatwin.load(tmp_path / "e.twin")
    pd.testing.assert_frame_equal(back.sample(50, seed=2), t.sample(50, seed=2))
    unseen = pd.DataFrame({"word": ["x", "x"], "position": [0, 1], "phone": ["S", "ZZZ"]})
    assert math.isfinite(back.score(unseen)["total_bits"])
    assert 0.0 <= t.novelty(out, df) <= 1.0


def test_events_missing_columns_is_input_error():
    with pytest.raises(InputError, match="no column.*'wrd'.*columns are"):
        EventsTwin.fit_select(_events(), sequence_id="wrd", order_by="position", event="phone")
    with pytest.raises(InputError, match="sequence_id, order_by and event"):
        EventsTwin.fit_select(_events(), order_by="position", event="phone")


# ---- command line ---------------------------------------------------------------------------
def test_cli_fit_score_sample_text(tmp_path, capsys):
    data = tmp_path / "c.txt"
    data.write_text(TEXT, encoding="utf-8")
    model = tmp_path / "c.twin"
    arpa = tmp_path / "c.arpa"
    assert (
        main(
            ["fit", str(data), "-o", str(model), "--max-order", "3", "--json", "--arpa", str(arpa)]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "text" and out["unit"] == "character"
    assert {r["structure"] for r in out["leaderboard"] if r.get("baseline")} == {
        "gzip",
        "bzip2",
        "xz",
    }
    assert arpa.read_text().startswith("\\data\\")
    assert main(["score", str(model), str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unit"] == "character"
    sample = tmp_path / "s.txt"
    rc = main(
        [
            "sample",
            str(model),
            "-n",
            "300",
            "--seed",
            "1",
            "--prefix",
            "The ",
            "-o",
            str(sample),
            "--novelty",
            str(data),
        ]
    )
    assert rc == 0 and sample.read_text(encoding="utf-8").startswith("The ")
    assert "novelty" in capsys.readouterr().err


def test_cli_events_and_bad_input_exit_2_without_output(tmp_path, capsys):
    csv = tmp_path / "ev.csv"
    _events(100).to_csv(csv, index=False)
    model = tmp_path / "ev.twin"
    args = [
        "fit",
        str(csv),
        "--kind",
        "events",
        "--sequence-id",
        "word",
        "--order-by",
        "position",
        "--event",
        "phone",
        "--max-order",
        "2",
        "-o",
        str(model),
    ]
    assert main(args) == 0
    capsys.readouterr()
    bad = [
        "fit",
        str(csv),
        "--kind",
        "events",
        "--sequence-id",
        "nope",
        "--order-by",
        "position",
        "--event",
        "phone",
        "-o",
        str(tmp_path / "bad.twin"),
    ]
    for argv, path in [
        (bad, tmp_path / "bad.twin"),
        (["fit", str(tmp_path / "e.txt"), "-o", str(tmp_path / "e.twin")], tmp_path / "e.twin"),
    ]:
        (tmp_path / "e.txt").write_bytes(b"")
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("datatwin: error:")
        assert not path.exists()
    assert main(["sample", str(model), "-n", "3", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("word,position,phone")


# ---- words ----------------------------------------------------------------------------------
def test_word_tokens_join_back_and_spelling_sums_to_one():
    from datatwin.text.tokenize import WordVocabulary, split_words

    text = "Hello, world!  It's 3 o'clock\n\tnaïve café"
    assert "".join(split_words(text)) == text
    vocab = WordVocabulary.build([Document("d", "a b a b c d e " * 3 + "rare once")])
    assert vocab.words == sorted(vocab.words) and "rare" not in vocab.words
    # spelling model, one step: seen characters + escape + end sum to one
    total = vocab.spell_counts.sum() + 1
    p_end = 2 ** -vocab.spell_bits("")
    p_chars = sum(2 ** -vocab.spell_bits(chr(c)) for c in vocab.spell_codes) / p_end
    assert math.isclose(p_chars + 1 / total + p_end, 1.0)
    unseen = 2 ** -vocab.spell_bits("Ж") / p_end
    assert math.isclose(unseen, 1 / total / (0x110000 - 2048 - len(vocab.spell_codes)))


def test_words_twin_scores_per_character_and_round_trips(tmp_path):
    t = TextTwin.fit_select(TEXT, tokens="words", max_order=3, baselines=False)
    s = t.score("The quick zebra jumps.")
    assert s["count"] == len("The quick zebra jumps.") and math.isfinite(s["total_bits"])
    assert t.score("The zebra")["total_bits"] > t.score("The quick")["total_bits"]
    out = t.sample(40, seed=0, prefix="The ")
    assert out.startswith("The ")
    t.save(tmp_path / "w.twin")
    back = datatwin.load(tmp_path / "w.twin")
    assert back.sample(40, seed=0, prefix="The ") == out
    np.testing.assert_array_equal(back.log_prob("The zebra sleeps"), t.log_prob("The zebra sleeps"))


def test_model_file_validation_of_cache_and_words(tmp_path):
    t = TextTwin.fit_select(TEXT, tokens="words", structures="markov2+kn+cache", baselines=False)
    t.save(tmp_path / "w.twin")
    meta, arrays = load_archive(tmp_path / "w.twin")
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    bad_cache = {
        **meta,
        "text": {**meta["text"], "cache": {"orders": [4, 2], "a": 2, "b": 8, "cap": 32}},
    }
    bad_words = {**meta, "text": {**meta["text"], "words": list(reversed(meta["text"]["words"]))}}
    bad_spell = {**arrays, "spell_counts": np.zeros_like(arrays["spell_counts"])}
    for m, a in [(bad_cache, arrays), (bad_words, arrays), (meta, bad_spell)]:
        save_archive(tmp_path / "bad.twin", m, a)
        with pytest.raises(ModelFileError):
            datatwin.load(tmp_path / "bad.twin")


def test_structure_names_and_bad_options():
    t = TextTwin.fit_select(TEXT, structures="markov2,wb", max_order=3, baselines=False)
    names = {r["structure"] for r in t.leaderboard}
    assert names == {
        "markov2+kn",
        "markov2+wb",
        "markov2+kn+cache",
        "markov2+wb+cache",
        "unigram+wb",
        "markov1+wb",
        "markov3+wb",
        "markov1+wb+cache",
        "markov3+wb+cache",
    }
    for bad in (
        {"structures": "markov2+zz"},
        {"max_order": -1},
        {"holdout": 1.5},
        {"tokens": "runes"},
    ):
        with pytest.raises(InputError):
            TextTwin.fit_select(TEXT, baselines=False, **bad)


def test_events_holdout_is_whole_sequences():
    df = _events(300)
    t = EventsTwin.fit_select(
        df,
        sequence_id="word",
        order_by="position",
        event="phone",
        max_order=2,
        holdout=0.25,
        refit=False,
        baselines=False,
    )
    assert t.info["train_events"] + t.info["holdout_events"] == len(df)
    assert not t.info["refit_on_all_data"]
