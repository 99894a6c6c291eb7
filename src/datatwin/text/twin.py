"""Text and event-sequence twins: smoothed Markov chains of order m chosen by holdout bits.

`TextTwin` models documents of characters (or bytes), reporting bits per character;
`EventsTwin` models event sequences read from a table, reporting bits per event. Both count
n-grams once at the highest order, score every order 0..M with Kneser-Ney and Witten-Bell
smoothing on held-out text, keep the best and sample from it exactly.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import progress
from ..base import Twin
from ..errors import InputError
from ..leaderboard import best, entry, mark_selected
from ..modelfile import require
from .baselines import start_baselines
from .cache import CacheSpec, cache_probs, generate_cached
from .counts import N_SPECIAL, UNK, Segment, count, layout
from .model import NgramModel, fit_family, parse_structure, structure_name
from .smoothing import SMOOTHERS
from .tokenize import (
    TOKENS,
    Document,
    Vocabulary,
    WordVocabulary,
    as_documents,
    char_count,
    read_documents,
)

DEFAULT_MAX_ORDER = 8
DEFAULT_HOLDOUT = 0.2
#: with at least this many documents, whole documents are held out instead of tails
WHOLE_DOC_MIN = 10


def _parse_structures(
    structures: str | list[str] | None, max_order: int, cache: bool
) -> list[tuple[int, str, bool]]:
    """Candidates (order, smoother, cached) from names like 'markov3+kn', 'markov5+kn+cache',
    'kn', 'wb', 'cache' or 'markov3' (each picks every matching candidate)."""
    every = [(k, s, False) for s in SMOOTHERS for k in range(max_order + 1)]
    if cache:
        every += [(k, s, True) for s in SMOOTHERS for k in range(1, max_order + 1)]
    if structures is None:
        return every
    names = structures.split(",") if isinstance(structures, str) else list(structures)
    out: list[tuple[int, str, bool]] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in SMOOTHERS:
            picked = [c for c in every if c[1] == name]
        elif name == "cache":
            picked = [c for c in every if c[2]]
        elif "+" in name:
            try:
                picked = [parse_structure(name)]
            except ValueError:
                picked = []
        else:
            picked = [c for c in every if structure_name(c[0], c[1]).split("+")[0] == name]
        if not picked:
            raise InputError(
                f"unknown structure {name!r}; use e.g. unigram+kn, markov5+kn, markov3+wb, "
                "markov7+kn+cache, kn, wb or cache"
            )
        out.extend(c for c in picked if c not in out)
    return out


def _parse_holdout(holdout: Any) -> float | Path | None:
    if holdout is None:
        return None
    if isinstance(holdout, int | float):
        frac = float(holdout)
    elif isinstance(holdout, Path):
        return holdout
    else:
        try:
            frac = float(holdout)
        except ValueError:
            path = Path(holdout)
            if not path.exists():
                raise InputError(f"holdout file not found: {path}") from None
            return path
    if not 0.0 < frac < 1.0:
        raise InputError(f"--holdout fraction must be between 0 and 1, got {holdout}")
    return frac


class _SequenceTwin(Twin):
    """What text and event twins share: the model, selection, sampling machinery."""

    model: NgramModel
    _sampler = None

    def sampler(self):
        """The compiled state machine (built once)."""
        if self._sampler is None:
            from .sampling import Sampler

            self._sampler = Sampler(self.model)
        return self._sampler

    @staticmethod
    def _select(
        train: list[Segment],
        holdout: list[Segment],
        base: int,
        candidates: list[tuple[int, str, bool]],
        train_units: int,
        holdout_units: int,
        holdout_extra_bits: float,
        cache_holdout: list[Segment] | None = None,
    ) -> tuple[Any, list[dict[str, Any]], tuple[int, str, bool]]:
        max_order = max(c[0] for c in candidates)
        smoothers = tuple(s for s in SMOOTHERS if any(c[1] == s for c in candidates))
        orders = sorted({c[0] for c in candidates})
        use_cache = any(c[2] for c in candidates)
        tables, results = fit_family(
            train,
            holdout,
            base,
            max_order,
            smoothers,
            orders,
            holdout_extra_bits,
            cache=CacheSpec() if use_cache else None,
            cache_holdout=layout(cache_holdout) if use_cache and cache_holdout else None,
        )
        rows = []
        for r in results:
            if (r["order"], r["smoother"], r["cache"]) not in candidates:
                continue
            rows.append(
                entry(
                    r["structure"],
                    r["train_total_bits"] / max(train_units, 1),
                    r["holdout_total_bits"] / max(holdout_units, 1),
                    r["fit_seconds"],
                    order=r["order"],
                )
            )
        win = best(rows)
        return tables, rows, parse_structure(win["structure"])

    def model_meta(self) -> dict[str, Any]:
        return {
            "order": self.model.order,
            "smoother": self.model.smoother,
            "base": self.model.base,
            "cache": self.cache.to_json() if self.cache else None,
        }

    def _probs(self, segs: list[Segment]) -> np.ndarray:
        """Probability of every predicted symbol (static model, then the document cache)."""
        lay = layout(segs)
        p = self.model.prob_layout(lay)
        if self.cache is not None:
            p = cache_probs(lay, self.model.base, p, self.cache)
        return p

    def _generate(
        self, n: int, rng: np.random.Generator, history: np.ndarray, temperature: float
    ) -> tuple[list[int], bool]:
        sampler = self.sampler()
        state = sampler.walk(history)
        if self.cache is None:
            return sampler.generate(n, rng, state, temperature)
        return generate_cached(
            sampler, self.cache, [int(x) for x in history], n, rng, state, temperature
        )

    @staticmethod
    def _load_cache(info: dict[str, Any], source: str) -> CacheSpec | None:
        if info.get("cache") is None:
            return None
        try:
            return CacheSpec.from_json(info["cache"])
        except (KeyError, TypeError, ValueError) as exc:
            require(False, source, f"bad cache settings ({exc})")
        return None

    def cli_write_arpa(self, args: argparse.Namespace) -> None:
        if getattr(args, "arpa", None):
            from .arpa import write_arpa

            write_arpa(self, args.arpa)


# =============================================================================================
class TextTwin(_SequenceTwin):
    """A Markov twin of text: documents of characters (or bytes), bits per character."""

    kind: ClassVar[str] = "text"
    unit: ClassVar[str] = "character"

    def __init__(
        self,
        vocab: Vocabulary | WordVocabulary,
        model: NgramModel,
        leaderboard: list[dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
        cache: CacheSpec | None = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.cache = cache
        self.structure = structure_name(model.order, model.smoother) + ("+cache" if cache else "")
        self.leaderboard = leaderboard or []
        self.info = info or {}
        self._last_units = 0

    # ---- fitting -----------------------------------------------------------------------
    @classmethod
    def fit_select(
        cls,
        data: Any,
        tokens: str = "chars",
        max_order: int = DEFAULT_MAX_ORDER,
        structures: str | list[str] | None = None,
        holdout: float | str | Path | None = None,
        seed: int = 0,
        refit: bool = True,
        baselines: bool = True,
        cache: bool = True,
    ) -> TextTwin:
        """Fit orders 0..max_order with each smoother, select by holdout bits per character.

        `data`: a path (file or folder), a str, or a list of str/paths (one document each).
        `holdout`: a fraction (default 0.2: the tail of each document, or whole documents when
        there are 10 or more) or a path to held-out text (then the twin is fit on `data` only).
        `cache`: also try each order with a document cache (see `datatwin.text.cache`).
        """
        if tokens not in TOKENS:
            raise InputError(f"unknown --tokens {tokens!r}; choose one of: {', '.join(TOKENS)}")
        if not isinstance(max_order, int) or not 0 <= max_order <= 32:
            raise InputError(f"--max-order must be an integer from 0 to 32, got {max_order}")
        docs = as_documents(
            Path(data) if isinstance(data, str) and _looks_like_path(data) else data, tokens
        )
        docs = [d for d in docs if len(d.content)]
        if not docs:
            raise InputError("the text is empty; there is nothing to learn from")
        candidates = _parse_structures(structures, max_order, cache)
        max_order = max(c[0] for c in candidates)
        hold = _parse_holdout(holdout)
        if isinstance(hold, Path):
            hold_docs = read_documents(hold, tokens)
            train_parts = [(d.content, True) for d in docs]
            hold_parts = [(d.content, None, True) for d in hold_docs]
        else:
            train_parts, hold_parts = _split_docs(docs, hold or DEFAULT_HOLDOUT, seed)
        vocab = build_vocab([Document("", c) for c, _ in train_parts], tokens)
        train_segs = [Segment(vocab.encode(c), True, end) for c, end in train_parts]
        hold_segs = []
        cache_segs = []  # the holdout with each document's whole history (for the cache)
        unk_bits = 0.0
        for content, history, end in hold_parts:
            ids = vocab.encode(content)
            unk_bits += vocab.unk_bits_total(content)
            if history is None or not len(history):
                hold_segs.append(Segment(ids, True, end))
                cache_segs.append(hold_segs[-1])
            else:
                full = vocab.encode(history)
                h = full[len(full) - max_order :] if max_order else np.zeros(0, np.int64)
                starts_doc = len(full) <= max_order
                hold_segs.append(Segment(np.concatenate([h, ids]), starts_doc, end, len(h)))
                cache_segs.append(Segment(np.concatenate([full, ids]), True, end, len(full)))
        train_units = sum(char_count(c) for c, _ in train_parts)
        hold_units = sum(char_count(c) for c, _, _ in hold_parts)
        if hold_units == 0:
            raise InputError("too little text to hold any out; give more text or a --holdout FILE")
        fut = None
        if baselines:
            tb = b"".join(_as_bytes(c) for c, _ in train_parts)
            hb = b"".join(_as_bytes(c) for c, _, _ in hold_parts)
            fut = start_baselines(tb, hb, train_units, hold_units)
        t0 = time.perf_counter()
        with progress.step(f"counting n-grams up to order {max_order} and scoring the holdout"):
            tables, rows, (order, smoother, cached) = cls._select(
                train_segs,
                hold_segs,
                vocab.base,
                candidates,
                train_units,
                hold_units,
                unk_bits,
                cache_segs,
            )
        name = structure_name(order, smoother) + ("+cache" if cached else "")
        refitted = False
        if refit and not isinstance(hold, Path):
            all_vocab = build_vocab(docs, tokens)
            segs = [Segment(all_vocab.encode(d.content)) for d in docs]
            del tables
            with progress.step(f"refitting {name} on all the text"):
                tables = count(segs, all_vocab.base, order)
            vocab = all_vocab
            refitted = True
        model = NgramModel.from_tables(tables, order, smoother)
        if fut is not None:
            rows.extend(fut.result())
        mark_selected(rows, name)
        info = {
            "tokens": tokens,
            "max_order": max_order,
            "train_characters": train_units,
            "holdout_characters": hold_units,
            "documents": len(docs),
            "refit_on_all_data": refitted,
            "fit_seconds_total": time.perf_counter() - t0,
        }
        return cls(vocab, model, rows, info, CacheSpec() if cached else None)

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
        seed: int | None = None,
        prefix: str | bytes = "",
        temperature: float = 1.0,
    ) -> str | bytes:
        """`prefix` followed by up to `n` new symbols; stops early at the end of a document."""
        if n is None or n < 0:
            raise InputError("the number of characters to sample must be a non-negative count")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise InputError(f"--temperature must be a positive number, got {temperature}")
        if self.vocab.tokens == "bytes" and isinstance(prefix, str):
            prefix = prefix.encode("utf-8")
        rng = np.random.default_rng(seed)
        pre_ids = self.vocab.encode(prefix) if len(prefix) else np.zeros(0, np.int64)
        ids, _ = self._generate(n, rng, pre_ids, temperature)
        return prefix + self.vocab.render(ids, rng)

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
        return meta, {**vocab_arrays, **self.model.to_arrays()}

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> TextTwin:
        info = meta.get("text")
        require(isinstance(info, dict), source, "missing text section")
        tokens = info.get("tokens")
        require(tokens in TOKENS, source, f"unknown tokens {tokens!r}")

        def int_array(name: str, limit: int) -> np.ndarray:
            a = arrays.get(name)
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
            codes = int_array("spell_codes", 0x110000)
            counts = arrays.get("spell_counts")
            require(
                counts is not None
                and counts.shape == (len(codes) + 1,)
                and counts.dtype.kind in "iu"
                and bool(np.all(counts > 0)),
                source,
                "bad spelling counts",
            )
            vocab = WordVocabulary(words, codes, counts.astype(np.int64))
        else:
            vocab = Vocabulary(tokens, int_array("vocab", 256 if tokens == "bytes" else 0x110000))
        base = info.get("base")
        require(base == vocab.base, source, "alphabet size does not match the vocabulary")
        model = NgramModel.from_arrays(
            arrays, base, info.get("order"), info.get("smoother"), source
        )
        return cls(
            vocab,
            model,
            list(meta.get("leaderboard", [])),
            info,
            cls._load_cache(info, source),
        )

    # ---- command line ------------------------------------------------------------------
    @classmethod
    def cli_add_options(cls, fit: argparse.ArgumentParser, sample: argparse.ArgumentParser) -> None:
        g = fit.add_argument_group("text and events")
        g.add_argument(
            "--tokens",
            choices=TOKENS,
            default="chars",
            help="text: model Unicode characters (default), raw bytes or words",
        )
        g.add_argument(
            "--max-order",
            type=int,
            default=DEFAULT_MAX_ORDER,
            help=f"text/events: highest Markov order tried (default {DEFAULT_MAX_ORDER})",
        )
        g.add_argument("--sequence-id", metavar="COL", help="events: column naming the sequence")
        g.add_argument("--order-by", metavar="COL", help="events: column ordering events")
        g.add_argument("--event", metavar="COL", help="events: column holding the event")
        g.add_argument("--arpa", metavar="FILE", help="text/events: also export the model as ARPA")
        g.add_argument(
            "--no-baselines", action="store_true", help="text/events: skip gzip/bzip2/xz"
        )
        s = sample.add_argument_group("text and events")
        s.add_argument("--prefix", metavar="TEXT", default="", help="text: continue this prompt")
        s.add_argument(
            "--temperature",
            type=float,
            default=1.0,
            help="text/events: sharpen (<1) or flatten (>1)",
        )
        s.add_argument(
            "--novelty",
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
        )
        twin.cli_write_arpa(args)
        return twin

    def cli_read(self, path: Path, args: argparse.Namespace) -> Any:
        return read_documents(path, self.vocab.tokens)

    def cli_sample(self, args: argparse.Namespace) -> Any:
        prefix: str | bytes = getattr(args, "prefix", "") or ""
        if prefix:
            ids = self.vocab.encode(
                prefix.encode("utf-8") if self.vocab.tokens == "bytes" else prefix
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


def _encode_events(names: list[str], ev: np.ndarray) -> np.ndarray:
    idx = pd.Index(np.asarray(names, dtype=object)).get_indexer(ev)
    return np.where(idx >= 0, idx + N_SPECIAL, UNK).astype(np.int64)


def _looks_like_path(s: str) -> bool:
    """A str names a file when it is an existing path; otherwise it is the text itself."""
    try:
        return len(s) < 1024 and "\n" not in s and Path(s).exists()
    except (OSError, ValueError):
        return False


def _as_bytes(c: str | bytes) -> bytes:
    return c if isinstance(c, bytes) else c.encode("utf-8")


def _split_docs(docs: list[Document], frac: float, seed: int):
    """Train parts (content, ends_doc) and holdout parts (content, history, ends_doc)."""
    if len(docs) >= WHOLE_DOC_MIN:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(docs))
        total = sum(len(d.content) for d in docs)
        held: set[int] = set()
        acc = 0
        for i in order[:-1]:
            if acc >= frac * total:
                break
            held.add(int(i))
            acc += len(docs[i].content)
        train = [(d.content, True) for i, d in enumerate(docs) if i not in held]
        hold = [(d.content, None, True) for i, d in enumerate(docs) if i in held]
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
    return train, hold


# =============================================================================================
class EventsTwin(_SequenceTwin):
    """A Markov twin of event sequences read from a table, bits per event."""

    kind: ClassVar[str] = "events"
    unit: ClassVar[str] = "event"

    def __init__(
        self,
        events: list[str],
        columns: dict[str, str],
        model: NgramModel,
        leaderboard: list[dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
        cache: CacheSpec | None = None,
    ) -> None:
        self.events = list(events)
        self.columns = dict(columns)
        self.model = model
        self.cache = cache
        self.structure = structure_name(model.order, model.smoother) + ("+cache" if cache else "")
        self.leaderboard = leaderboard or []
        self.info = info or {}
        self._last_units = 0

    # ---- reading -----------------------------------------------------------------------
    @staticmethod
    def read_table(
        data: Any, sequence_id: str | None, order_by: str | None, event: str | None
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        """The events table with its three named columns checked."""
        if not (sequence_id and order_by and event):
            raise InputError(
                "events need --sequence-id COL, --order-by COL and --event COL "
                "(sequence_id=, order_by=, event= in Python)"
            )
        if isinstance(data, pd.DataFrame):
            df = data
            name = "the table"
        else:
            path = Path(data)
            if not path.exists():
                raise InputError(f"data file not found: {path}")
            name = str(path)
            try:
                if path.suffix.lower() == ".parquet":
                    df = pd.read_parquet(path)
                else:
                    df = pd.read_csv(path, dtype={event: str}, keep_default_na=False)
            except (
                pd.errors.EmptyDataError,
                pd.errors.ParserError,
                UnicodeDecodeError,
                ValueError,
            ) as exc:
                raise InputError(
                    f"cannot read {path} as a table: {str(exc).splitlines()[0]}"
                ) from None
        missing = [c for c in (sequence_id, order_by, event) if c not in df.columns]
        if missing:
            raise InputError(
                f"{name} has no column(s) {', '.join(map(repr, missing))}; "
                f"its columns are: {', '.join(map(str, df.columns))}"
            )
        if len(df) == 0:
            raise InputError(f"{name} has no rows; there are no events to learn from")
        return df, {"sequence_id": sequence_id, "order_by": order_by, "event": event}

    @staticmethod
    def sequences(
        df: pd.DataFrame, cols: dict[str, str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(event strings, sequence start offsets, lengths) sorted by sequence then order."""
        seq = pd.factorize(df[cols["sequence_id"]], sort=False)[0]
        order = df[cols["order_by"]]
        frame = pd.DataFrame({"seq": seq, "order": order.to_numpy(), "i": np.arange(len(df))})
        frame = frame.sort_values(["seq", "order"], kind="stable")
        ev = df[cols["event"]].astype(str).to_numpy()[frame["i"].to_numpy()]
        lengths = np.bincount(frame["seq"].to_numpy())
        lengths = lengths[lengths > 0]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return ev, starts, lengths

    def _encode(self, ev: np.ndarray) -> np.ndarray:
        return _encode_events(self.events, ev)

    @staticmethod
    def _segments(
        ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pick=None
    ) -> list[Segment]:
        sel = range(len(starts)) if pick is None else pick
        return [Segment(ids[starts[i] : starts[i] + lengths[i]]) for i in sel]

    # ---- fitting -----------------------------------------------------------------------
    @classmethod
    def fit_select(
        cls,
        data: Any,
        sequence_id: str | None = None,
        order_by: str | None = None,
        event: str | None = None,
        max_order: int = DEFAULT_MAX_ORDER,
        structures: str | list[str] | None = None,
        holdout: float | str | Path | None = None,
        seed: int = 0,
        refit: bool = True,
        baselines: bool = True,
        cache: bool = False,
    ) -> EventsTwin:
        """Fit orders 0..max_order with each smoother on sequences, select by bits per event.

        `holdout`: a fraction of whole sequences (default 0.2, seeded) or a table file.
        `cache`: also try each order with a per-sequence cache (off by default: sequences are
        usually short).
        """
        if not isinstance(max_order, int) or not 0 <= max_order <= 32:
            raise InputError(f"--max-order must be an integer from 0 to 32, got {max_order}")
        df, cols = cls.read_table(data, sequence_id, order_by, event)
        ev, starts, lengths = cls.sequences(df, cols)
        candidates = _parse_structures(structures, max_order, cache)
        max_order = max(c[0] for c in candidates)
        hold = _parse_holdout(holdout)
        n_seq = len(starts)
        if isinstance(hold, Path):
            hdf, _ = cls.read_table(hold, sequence_id, order_by, event)
            hev, hstarts, hlengths = cls.sequences(hdf, cols)
            train_pick = np.arange(n_seq)
        else:
            if n_seq < 2:
                raise InputError("need at least 2 sequences to hold some out (or a --holdout FILE)")
            frac = hold or DEFAULT_HOLDOUT
            rng = np.random.default_rng(seed)
            perm = rng.permutation(n_seq)
            n_hold = min(max(1, int(round(frac * n_seq))), n_seq - 1)
            hold_pick = np.sort(perm[:n_hold])
            train_pick = np.sort(perm[n_hold:])
        train_events = np.concatenate([ev[starts[i] : starts[i] + lengths[i]] for i in train_pick])
        vocab_names = sorted(set(train_events.tolist()))
        ids = _encode_events(vocab_names, ev)
        train_segs = cls._segments(ids, starts, lengths, train_pick)
        if isinstance(hold, Path):
            hids = _encode_events(vocab_names, hev)
            hold_segs = cls._segments(hids, hstarts, hlengths)
            hold_text = [hev[a : a + n] for a, n in zip(hstarts, hlengths, strict=True)]
        else:
            hold_segs = cls._segments(ids, starts, lengths, hold_pick)
            hold_text = [ev[starts[i] : starts[i] + lengths[i]] for i in hold_pick]
        train_units = int(sum(len(s.tokens) for s in train_segs))
        hold_units = int(sum(len(s.tokens) for s in hold_segs))
        fut = None
        if baselines:
            tb = "".join(
                " ".join(ev[starts[i] : starts[i] + lengths[i]]) + "\n" for i in train_pick
            )
            hb = "".join(" ".join(x) + "\n" for x in hold_text)
            fut = start_baselines(tb.encode(), hb.encode(), train_units, hold_units)
        base = len(vocab_names) + N_SPECIAL
        t0 = time.perf_counter()
        tables, rows, (order, smoother, cached) = cls._select(
            train_segs, hold_segs, base, candidates, train_units, hold_units, 0.0, hold_segs
        )
        name = structure_name(order, smoother) + ("+cache" if cached else "")
        refitted = False
        if refit and not isinstance(hold, Path):
            vocab_names = sorted(set(ev.tolist()))
            ids = _encode_events(vocab_names, ev)
            del tables
            tables = count(cls._segments(ids, starts, lengths), len(vocab_names) + N_SPECIAL, order)
            refitted = True
        model = NgramModel.from_tables(tables, order, smoother)
        if fut is not None:
            rows.extend(fut.result())
        mark_selected(rows, name)
        info = {
            "max_order": max_order,
            "train_events": train_units,
            "holdout_events": hold_units,
            "sequences": int(n_seq),
            "max_length": int(lengths.max()),
            "refit_on_all_data": refitted,
            "fit_seconds_total": time.perf_counter() - t0,
        }
        return cls(vocab_names, cols, model, rows, info, CacheSpec() if cached else None)

    # ---- likelihood --------------------------------------------------------------------
    def log_prob(self, data: Any) -> np.ndarray:
        """Nats of every event of every sequence, including each sequence's end."""
        df, cols = self.read_table(
            data, self.columns["sequence_id"], self.columns["order_by"], self.columns["event"]
        )
        ev, starts, lengths = self.sequences(df, cols)
        ids = self._encode(ev)
        segs = self._segments(ids, starts, lengths)
        self._last_units = int(len(ev))
        return np.log(self._probs(segs))

    def unit_count(self, data: Any, logp: np.ndarray) -> int:
        """Events (bits are reported per event; sequence ends are included in the total)."""
        return self._last_units

    # ---- sampling ----------------------------------------------------------------------
    def sample_sequences(
        self, n: int, seed: int | None = None, temperature: float = 1.0
    ) -> list[list[str]]:
        """`n` sequences of event names, each ending where the model ends it."""
        if n is None or n < 0:
            raise InputError("the number of sequences to sample must be a non-negative count")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise InputError(f"--temperature must be a positive number, got {temperature}")
        rng = np.random.default_rng(seed)
        cap = max(10 * int(self.info.get("max_length", 100)), 100)
        names = ["<other>", "<other>", "<other>", *self.events]
        empty = np.zeros(0, np.int64)
        return [
            [names[i] for i in self._generate(cap, rng, empty, temperature)[0]] for _ in range(n)
        ]

    def sample(self, n: int, seed: int | None = None, temperature: float = 1.0) -> pd.DataFrame:
        """`n` new sequences as a table with the training columns (sequence id, order, event)."""
        seqs = self.sample_sequences(n, seed, temperature)
        lens = [len(s) for s in seqs]
        return pd.DataFrame(
            {
                self.columns["sequence_id"]: np.repeat([f"s{i}" for i in range(len(seqs))], lens),
                self.columns["order_by"]: np.concatenate([np.arange(k) for k in lens])
                if seqs
                else np.zeros(0, np.int64),
                self.columns["event"]: [e for s in seqs for e in s],
            }
        )

    # ---- persistence -------------------------------------------------------------------
    def to_archive(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "events": {
                **self.info,
                **self.model_meta(),
                "names": self.events,
                "columns": self.columns,
            }
        }
        return meta, self.model.to_arrays()

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> EventsTwin:
        info = meta.get("events")
        require(isinstance(info, dict), source, "missing events section")
        names = info.get("names")
        require(
            isinstance(names, list) and all(isinstance(x, str) for x in names), source, "bad names"
        )
        require(len(set(names)) == len(names), source, "duplicate event names")
        cols = info.get("columns")
        require(
            isinstance(cols, dict) and {"sequence_id", "order_by", "event"} <= set(cols),
            source,
            "bad columns",
        )
        base = info.get("base")
        require(base == len(names) + N_SPECIAL, source, "alphabet size does not match the names")
        model = NgramModel.from_arrays(
            arrays, base, info.get("order"), info.get("smoother"), source
        )
        rest = {k: v for k, v in info.items() if k not in ("names", "columns")}
        return cls(
            names,
            cols,
            model,
            list(meta.get("leaderboard", [])),
            rest,
            cls._load_cache(info, source),
        )

    # ---- command line ------------------------------------------------------------------
    @classmethod
    def cli_fit(cls, path: Path, args: argparse.Namespace) -> EventsTwin:
        twin = cls.fit_select(
            path,
            sequence_id=getattr(args, "sequence_id", None),
            order_by=getattr(args, "order_by", None),
            event=getattr(args, "event", None),
            max_order=getattr(args, "max_order", DEFAULT_MAX_ORDER),
            structures=args.structures,
            holdout=args.holdout,
            seed=args.seed,
            refit=not args.no_refit,
            baselines=not getattr(args, "no_baselines", False),
        )
        twin.cli_write_arpa(args)
        return twin

    def cli_read(self, path: Path, args: argparse.Namespace) -> Any:
        return path

    def cli_sample(self, args: argparse.Namespace) -> Any:
        n = 100 if args.n is None else args.n
        out = self.sample(n, seed=args.seed, temperature=getattr(args, "temperature", 1.0))
        if getattr(args, "novelty", None):
            df, cols = self.read_table(
                Path(args.novelty),
                self.columns["sequence_id"],
                self.columns["order_by"],
                self.columns["event"],
            )
            share = self.novelty(out, df)
            progress.note(
                f"novelty: {share:.1%} of the sampled sequences occur verbatim in {args.novelty}"
            )
        return out

    def novelty(self, samples: pd.DataFrame, train: pd.DataFrame) -> float:
        """Share of sampled sequences that occur verbatim in `train`."""

        def keys(df: pd.DataFrame) -> set[tuple[str, ...]]:
            ev, st, ln = self.sequences(df, self.columns)
            return {tuple(ev[a : a + n]) for a, n in zip(st, ln, strict=True)}

        if not len(samples):
            return float("nan")
        ev, st, ln = self.sequences(samples, self.columns)
        seen = keys(train)
        return float(np.mean([tuple(ev[a : a + n]) in seen for a, n in zip(st, ln, strict=True)]))

    def cli_write(self, samples: Any, fh, args: argparse.Namespace) -> None:
        fh.write(samples.to_csv(index=False).encode("utf-8"))

    def symbol_names(self) -> list[str]:
        """Names of symbol ids 3.. (for ARPA; spaces replaced by '_')."""
        return [e.replace(" ", "_") or "<empty>" for e in self.events]


__all__ = ["TextTwin", "EventsTwin"]
