"""Text twins: documents of characters, bytes or words; smoothed Markov chains of order m
(with an optional document cache) chosen by holdout bits per character.

`EventsTwin` (event sequences from a table) lives in `events.py` and is re-exported here for the
kind registry.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import progress
from ..core.seeding import SeedLike, as_int_seed
from ..errors import InputError
from ..modelfile import require
from .cache import CacheSpec
from .counts import UNK, Segment, count
from .model import NgramModel
from .neural_select import NeuralCandidates, chain_parts, split_structures
from .neural_select import neural_info as _neural_info
from .select import Refit, SplitData, fit_chain
from .sequence import (
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_ORDER,
    WHOLE_DOC_MIN,
    SequenceTwin,
    check_temperature,
    parse_holdout,
    rng_of,
)
from .spelling import Spelling
from .structures import TEXT_STRUCTURES, plan
from .tokenize import (
    TOKENS,
    Document,
    Vocabulary,
    WordVocabulary,
    as_documents,
    char_count,
    read_documents,
)

#: a training part (content, ends its document) and a holdout part (content, the document
#: before it or None, ends its document)
TrainPart = tuple[str | bytes, bool]
HoldPart = tuple[str | bytes, str | bytes | None, bool]


class TextTwin(SequenceTwin):
    """A Markov twin of text: documents of characters (or bytes), bits per character."""

    kind: ClassVar[str] = "text"
    unit: ClassVar[str] = "character"
    archive_keys: ClassVar[frozenset[str]] = frozenset({"text"})
    structure_registry = TEXT_STRUCTURES

    def __init__(
        self,
        vocab: Vocabulary | WordVocabulary,
        model: NgramModel,
        leaderboard: list[dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
        cache: CacheSpec | None = None,
    ) -> None:
        self.vocab = vocab
        self._init_chain(model, cache)
        self.leaderboard = leaderboard or []
        self.info = info or {}
        self._last_units = 0

    @property
    def params(self) -> dict[str, Any]:
        """order, smoother, cache, len_weight (always None for text) and tokens."""
        return {**super().params, "tokens": self.vocab.tokens}

    # ---- fitting -----------------------------------------------------------------------
    @classmethod
    def fit_select(
        cls,
        data: Any,
        *,
        tokens: str = "chars",
        max_order: int = DEFAULT_MAX_ORDER,
        structures: str | list[str] | None = None,
        holdout: float | str | Path | None = None,
        seed: SeedLike = 0,
        refit: bool = True,
        baselines: bool = True,
        cache: bool = True,
        time_budget: float | None = None,
        device: str = "auto",
    ) -> TextTwin:
        """Fit orders 0..max_order with each smoother, select by holdout bits per character.

        `data`: a path (file or folder), a str, or a list of str/paths (one document each).
        `holdout`: a fraction (default 0.2: the tail of each document, or whole documents when
        there are 10 or more) or a path to held-out text (then the twin is fit on `data` only).
        `structures`: labels or shorthands (`TEXT_STRUCTURES`; a twin's `structure` refits
        exactly that candidate). `cache`: also try each order with a document cache.
        `seed`: int, None or a numpy Generator (the holdout split).
        """
        if tokens not in TOKENS:
            raise InputError(f"unknown tokens {tokens!r}; choose one of: {', '.join(TOKENS)}")
        chains, nplan = split_structures(structures)
        pl = plan(chains if chains != [] else "unigram+kn", max_order, cache, TEXT_STRUCTURES)
        if chains == []:  # only neural labels: no chain contends (a mixture's is counted)
            pl.chains, pl.lengths = [], []
        if nplan.chain is not None:
            pl.max_order = max(pl.max_order, chain_parts(nplan.chain, "text")[0])
        neural = (
            NeuralCandidates("text", nplan, time_budget, device, as_int_seed(seed))
            if nplan.any
            else None
        )
        docs = as_documents(
            Path(data) if isinstance(data, str) and _looks_like_path(data) else data, tokens
        )
        docs = [d for d in docs if len(d.content)]
        if not docs:
            raise InputError("the text is empty; there is nothing to learn from")
        hold = parse_holdout(holdout)
        if isinstance(hold, Path):
            train_parts: list[TrainPart] = [(d.content, True) for d in docs]
            hold_parts: list[HoldPart] = [
                (d.content, None, True) for d in read_documents(hold, tokens)
            ]
        else:
            train_parts, hold_parts = _split_docs(docs, hold or DEFAULT_HOLDOUT, seed)
        split, vocab = _text_split(train_parts, hold_parts, tokens, pl.max_order)
        if not isinstance(hold, Path):
            split.refit = lambda order: _refit_docs(docs, tokens, order)
        fitted = fit_chain(split, pl, refit=refit, baselines=baselines, neural=neural)
        chosen = fitted.chosen
        info = {
            "tokens": tokens,
            "max_order": pl.max_order,
            "train_characters": split.train_units,
            "holdout_characters": split.holdout_units,
            "documents": len(docs),
            "refit_on_all_data": chosen.refitted,
            "fit_seconds_total": fitted.seconds,
            **_neural_info(fitted.leaderboard),
        }
        vocab = chosen.vocab if chosen.refitted else vocab
        return cls(vocab, chosen.model, fitted.leaderboard, info, chosen.cache)

    # ---- likelihood --------------------------------------------------------------------
    def _docs(self, data: Any) -> list[Document]:
        if isinstance(data, str) and _looks_like_path(data):
            data = Path(data)
        return as_documents(data, self.vocab.tokens)

    def log_prob(self, data: Any) -> np.ndarray:
        """Nats of every symbol of every document, including each document's end."""
        docs = self._docs(data)
        segs = [Segment(self.vocab.encode(d.content)) for d in docs]
        lp = np.log(self._probs(segs))
        extra = [
            np.append(self.vocab.unk_nats(s.tokens, d.content), 0.0)
            for s, d in zip(segs, docs, strict=True)
        ]
        if extra:
            lp = lp - np.concatenate(extra)
        self._last_units = sum(d.n_chars for d in docs)
        return lp

    def unit_count(self, data: Any, logp: np.ndarray) -> int:
        """Characters of the original text (bits are reported per character)."""
        return self._last_units

    # ---- sampling ----------------------------------------------------------------------
    def sample(
        self,
        n: int,
        seed: SeedLike = None,
        *,
        prefix: str | bytes = "",
        temperature: float = 1.0,
    ) -> str | bytes:
        """`prefix` followed by up to `n` new symbols; stops early at the end of a document."""
        if n is None or n < 0:
            raise InputError("the number of characters to sample must be a non-negative count")
        check_temperature(temperature)
        if self.vocab.tokens == "bytes" and isinstance(prefix, str):
            prefix = prefix.encode("utf-8")
        rng = rng_of(seed)
        pre_ids = self.vocab.encode(prefix) if len(prefix) else np.zeros(0, np.int64)
        ids, _ = self._generate(n, rng, pre_ids, temperature)
        return prefix + self.vocab.render(ids, rng)  # type: ignore[operator]

    # ---- persistence -------------------------------------------------------------------
    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"text": {**self.info, **self.model_meta(), "tokens": self.vocab.tokens}}
        if isinstance(self.vocab, WordVocabulary):
            meta["text"]["words"] = self.vocab.words
            vocab_arrays = {
                "spell_codes": self.vocab.spell_codes,
                "spell_counts": self.vocab.spell_counts,
            }
        else:
            vocab_arrays = {"vocab": self.vocab.codes}
        return meta, {**vocab_arrays, **self.chain.to_arrays()}

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> TextTwin:
        info: Any = meta.get("text")
        require(isinstance(info, dict), source, "missing text section")
        tokens = info.get("tokens")
        require(tokens in TOKENS, source, f"unknown tokens {tokens!r}")

        def int_array(name: str, limit: int) -> np.ndarray:
            a: Any = arrays.get(name)
            require(a is not None and a.ndim == 1 and a.dtype.kind in "iu", source, f"bad {name}")
            a = a.astype(np.int64)
            require(bool(np.all(np.diff(a) > 0)), source, f"{name} is not sorted and unique")
            require(len(a) == 0 or (a[0] >= 0 and a[-1] < limit), source, f"{name} out of range")
            return a

        vocab: Vocabulary | WordVocabulary
        if tokens == "words":
            words = info.get("words")
            require(
                isinstance(words, list)
                and all(isinstance(w, str) and w for w in words)
                and words == sorted(set(words)),
                source,
                "bad word list",
            )
            try:
                spelling = Spelling.from_arrays(arrays)
            except ValueError as exc:
                require(False, source, str(exc))
            vocab = WordVocabulary(words, spelling.codes, spelling.counts)
        else:
            vocab = Vocabulary(tokens, int_array("vocab", 256 if tokens == "bytes" else 0x110000))
        base = info.get("base")
        require(base == vocab.base, source, "alphabet size does not match the vocabulary")
        model, cache = cls._load_model(info, arrays, base, source)
        return cls(
            vocab,
            model,
            list(meta.get("leaderboard", [])),
            info,
            cache,
        )

    # ---- command line ------------------------------------------------------------------
    @classmethod
    def cli_add_options(cls, fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
        g = fit.add_argument_group("text and events")
        opt, both = cls.cli_option, ("text", "events")
        opt(
            g,
            "--tokens",
            kinds=("text",),
            choices=TOKENS,
            default="chars",
            help="text: model Unicode characters (default), raw bytes or words",
        )
        opt(
            g,
            "--max-order",
            kinds=both,
            type=int,
            default=DEFAULT_MAX_ORDER,
            help=f"text/events: highest Markov order tried (default {DEFAULT_MAX_ORDER})",
        )
        for flag, text in (
            ("--sequence-id", "events: column naming the sequence"),
            ("--order-by", "events: column ordering events"),
            ("--event", "events: column holding the event"),
        ):
            opt(g, flag, kinds=("events",), metavar="COL", help=text)
        opt(g, "--arpa", kinds=both, metavar="FILE", help="text/events: also export as ARPA")
        opt(
            g,
            "--no-baselines",
            kinds=both,
            action="store_true",
            help="text/events: skip gzip/bzip2/xz",
        )
        s = sample.add_argument_group("text and events")
        opt(
            s,
            "--prefix",
            kinds=("text",),
            metavar="TEXT",
            default="",
            help="text: continue this prompt",
        )
        opt(
            s,
            "--temperature",
            kinds=both,
            type=float,
            default=1.0,
            help="text/events: sharpen (<1) or flatten (>1)",
        )
        opt(
            s,
            "--novelty",
            kinds=both,
            metavar="DATA",
            help="text/events: report how much of the sample occurs verbatim in DATA",
        )

    @classmethod
    def cli_fit(cls, path: Path, args: argparse.Namespace) -> TextTwin:
        twin = cls.fit_select(
            path,
            tokens=getattr(args, "tokens", "chars"),
            max_order=getattr(args, "max_order", DEFAULT_MAX_ORDER),
            structures=args.structures,
            holdout=args.holdout,
            seed=args.seed,
            refit=not args.no_refit,
            baselines=not getattr(args, "no_baselines", False),
            time_budget=getattr(args, "time_budget", None),
            device=getattr(args, "device", "auto"),
        )
        twin.cli_write_arpa(args)
        return twin

    def cli_read(self, path: Path, args: argparse.Namespace) -> Any:
        return read_documents(path, self.vocab.tokens)

    def cli_sample(self, args: argparse.Namespace) -> Any:
        prefix: str | bytes = getattr(args, "prefix", "") or ""
        if prefix:
            ids = self.vocab.encode(
                prefix.encode("utf-8")
                if self.vocab.tokens == "bytes" and isinstance(prefix, str)
                else prefix
            )
            unseen = int(np.sum(ids == UNK))
            if unseen:
                progress.note(
                    f"the prefix has {unseen} symbol(s) never seen in training; "
                    "the continuation restarts from an empty context after each of them"
                )
        n = 1000 if args.n is None else args.n
        out = self.sample(
            n, seed=args.seed, prefix=prefix, temperature=getattr(args, "temperature", 1.0)
        )
        if getattr(args, "novelty", None):
            from .sampling import novelty_ngrams
            from .tokenize import to_codes

            docs = read_documents(Path(args.novelty), self.vocab.tokens)
            train = np.concatenate([np.append(to_codes(d.content), -1) for d in docs])
            share = novelty_ngrams(to_codes(out), train, 20)
            progress.note(
                f"novelty: {share:.1%} of the sample's 20-character windows occur verbatim in "
                f"{args.novelty}"
            )
        return out

    def cli_write(self, samples: Any, fh, args: argparse.Namespace) -> None:
        fh.write(samples if isinstance(samples, bytes) else samples.encode("utf-8"))

    def symbol_names(self) -> list[str]:
        """Printable names of symbol ids 3.. (for ARPA)."""
        return self.vocab.symbol_names()


def build_vocab(docs: list[Document], tokens: str) -> Vocabulary | WordVocabulary:
    """The vocabulary of training documents for `tokens` (chars, bytes or words)."""
    if tokens == "words":
        return WordVocabulary.build(docs)
    return Vocabulary.build(docs, tokens)


def _looks_like_path(s: str) -> bool:
    """A str names a file when it is an existing path; otherwise it is the text itself."""
    try:
        return len(s) < 1024 and "\n" not in s and Path(s).exists()
    except (OSError, ValueError):
        return False


def _as_bytes(c: str | bytes) -> bytes:
    return c if isinstance(c, bytes) else c.encode("utf-8")


def _text_split(
    train_parts: list[TrainPart], hold_parts: list[HoldPart], tokens: str, max_order: int
) -> tuple[SplitData, Vocabulary | WordVocabulary]:
    """The split as blocks of symbol ids (a holdout tail keeps the last `max_order` symbols
    before it as context, and its whole document so far for the cache), and the vocabulary
    of the training parts."""
    vocab = build_vocab([Document("", c) for c, _ in train_parts], tokens)
    train_segs = [Segment(_ids(vocab, c), True, end) for c, end in train_parts]
    hold_segs: list[Segment] = []
    cache_segs: list[Segment] = []
    unk_bits = 0.0
    for content, history, end in hold_parts:
        ids = _ids(vocab, content)
        if isinstance(vocab, Vocabulary):  # (as unk_bits_total, without encoding again)
            unk_bits += float(np.sum(ids == UNK)) * vocab.unk_bits
        else:
            unk_bits += vocab.unk_bits_total(content)
        if history is None or not len(history):
            hold_segs.append(Segment(ids, True, end))
            cache_segs.append(hold_segs[-1])
        else:
            full = _ids(vocab, history)
            h = full[len(full) - max_order :] if max_order else np.zeros(0, np.int64)
            starts_doc = len(full) <= max_order
            hold_segs.append(Segment(np.concatenate([h, ids]), starts_doc, end, len(h)))
            cache_segs.append(Segment(np.concatenate([full, ids]), True, end, len(full)))
    train_units = sum(char_count(c) for c, _ in train_parts)
    hold_units = sum(char_count(c) for c, _, _ in hold_parts)
    if hold_units == 0:
        raise InputError("too little text to hold any out; give more text or a holdout file")

    def as_bytes() -> tuple[bytes, bytes]:
        return (
            b"".join(_as_bytes(c) for c, _ in train_parts),
            b"".join(_as_bytes(c) for c, _, _ in hold_parts),
        )

    split = SplitData(
        train_segs,
        hold_segs,
        vocab.base,
        train_units,
        hold_units,
        holdout_extra_bits=unk_bits,
        cache_holdout=cache_segs,
        baseline_bytes=as_bytes,
        what="text",
    )
    return split, vocab


def _refit_docs(docs: list[Document], tokens: str, order: int) -> Refit:
    """All the documents counted at `order`, with their vocabulary."""
    vocab = build_vocab(docs, tokens)
    segs = [Segment(_ids(vocab, d.content)) for d in docs]
    return Refit(count(segs, vocab.base, order), segs, vocab)


def _ids(vocab: Vocabulary | WordVocabulary, content: str | bytes) -> np.ndarray:
    """Symbol ids for fitting: one byte each for most alphabets (`encode_compact`)."""
    return vocab.encode_compact(content) if isinstance(vocab, Vocabulary) else vocab.encode(content)


def _split_docs(
    docs: list[Document], frac: float, seed: SeedLike
) -> tuple[list[TrainPart], list[HoldPart]]:
    """Train parts (content, ends_doc) and holdout parts (content, history, ends_doc)."""
    if len(docs) >= WHOLE_DOC_MIN:
        rng = rng_of(seed)
        order = rng.permutation(len(docs))
        total = sum(len(d.content) for d in docs)
        held: set[int] = set()
        acc = 0
        for i in order[:-1]:
            if acc >= frac * total:
                break
            held.add(int(i))
            acc += len(docs[i].content)
        train: list[TrainPart] = [(d.content, True) for i, d in enumerate(docs) if i not in held]
        hold: list[HoldPart] = [(d.content, None, True) for i, d in enumerate(docs) if i in held]
        return train, hold
    train, hold = [], []
    for d in docs:
        n = len(d.content)
        nh = int(round(frac * n))
        if n < 2 or nh == 0:
            train.append((d.content, True))
            continue
        nh = min(nh, n - 1)
        cut = n - nh
        train.append((d.content[:cut], False))
        hold.append((d.content[cut:], d.content[:cut], True))
    if not hold:
        # every document too short for a tail of `frac`: hold out the last symbol of the
        # longest document that has at least two (none: the caller reports too little text)
        i = max(range(len(docs)), key=lambda j: len(docs[j].content))
        d = docs[i]
        if len(d.content) >= 2:
            train[i] = (d.content[:-1], False)
            hold.append((d.content[-1:], d.content[:-1], True))
    return train, hold


from .events import EventsTwin  # noqa: E402  (re-exported for datatwin.kinds)

__all__ = ["TextTwin", "EventsTwin"]
