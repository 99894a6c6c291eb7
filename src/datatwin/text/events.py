"""Event-sequence twins: sequences of events read from a table (a sequence id, an order column
and an event column), smoothed Markov chains of order m chosen by holdout bits per event."""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import progress
from ..errors import InputError
from ..leaderboard import best, entry, mark_selected
from ..modelfile import require
from .baselines import start_baselines
from .cache import CacheSpec
from .counts import N_SPECIAL, UNK, Segment, count, layout
from .length import WEIGHTS, Ends, LengthHazard
from .length import generate as generate_with_ends
from .model import NgramModel, structure_name
from .sequence import (
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_ORDER,
    _parse_holdout,
    _parse_structures,
    _SequenceTwin,
)


def _encode_events(names: list[str], ev: np.ndarray) -> np.ndarray:
    idx = pd.Index(np.asarray(names, dtype=object)).get_indexer(ev)
    return np.where(idx >= 0, idx + N_SPECIAL, UNK).astype(np.int64)


class EventsTwin(_SequenceTwin):
    """A Markov twin of event sequences read from a table, bits per event."""

    kind: ClassVar[str] = "events"
    unit: ClassVar[str] = "event"
    archive_keys: ClassVar[frozenset[str]] = frozenset({"events"})

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
        self.hazard: LengthHazard | None = None  # length-aware ends (`+len`), or None
        self._end_cache: dict[int, float] = {}

    def set_hazard(self, hazard: LengthHazard | None) -> None:
        """Use length-aware sequence ends (None: the chain's own)."""
        self.hazard = hazard
        self._end_cache = {}
        base = structure_name(self.model.order, self.model.smoother)
        ends = f"+len[w={hazard.weight:g}]" if hazard else ""
        self.structure = base + ("+cache" if self.cache else "") + ends

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
        structures, with_len = _split_len(structures)
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
        hazard = None
        if with_len and not cached and hold_segs:  # the same chain, length-aware ends
            t1 = time.perf_counter()
            split_model = NgramModel.from_tables(tables, order, smoother)
            lays = {"train": layout(train_segs), "hold": layout(hold_segs)}
            probs = {k: split_model.prob_layout(v) for k, v in lays.items()}
            ends = {k: Ends.of(split_model, v) for k, v in lays.items()}
            offsets = LengthHazard.fit(ends["train"])
            secs = time.perf_counter() - t1
            units = {"train": max(train_units, 1), "hold": max(hold_units, 1)}
            for w in WEIGHTS:
                hz = offsets.with_weight(w)
                tb, hb = (
                    -np.sum(np.log2(hz.adjust(probs[k], ends[k]))) / units[k]
                    for k in ("train", "hold")
                )
                rows.append(entry(f"{name}+len[w={w:g}]", tb, hb, secs, order=order, weight=w))
            win = best(rows)
            if win.get("weight") is not None:
                hazard, name = offsets.with_weight(float(win["weight"])), win["structure"]
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
        twin = cls(vocab_names, cols, model, rows, info, CacheSpec() if cached else None)
        if hazard is not None and refitted:  # offsets from the refit chain on all the data
            all_ends = Ends.of(model, layout(cls._segments(ids, starts, lengths)))
            hazard = LengthHazard.fit(all_ends, hazard.weight)
        twin.set_hazard(hazard)
        return twin

    def _probs(self, segs: list[Segment]) -> np.ndarray:
        p = super()._probs(segs)
        if self.hazard is None:
            return p
        return self.hazard.adjust(p, Ends.of(self.model, layout(segs)))

    def _generate(
        self, n: int, rng: np.random.Generator, history: np.ndarray, temperature: float
    ) -> tuple[list[int], bool]:
        if self.hazard is None:
            return super()._generate(n, rng, history, temperature)
        sampler = self.sampler()
        state = sampler.walk(history)
        return generate_with_ends(sampler, self.hazard, n, rng, state, temperature, self._end_cache)

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
        arrays = self.model.to_arrays()
        if self.hazard is not None:
            arrays.update(self.hazard.to_arrays())
        return meta, arrays

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
        twin = cls(
            names,
            cols,
            model,
            list(meta.get("leaderboard", [])),
            rest,
            cls._load_cache(info, source),
        )
        try:
            hazard = LengthHazard.from_arrays(arrays)
        except ValueError as exc:
            require(False, source, str(exc))
        require(hazard is None or twin.cache is None, source, "length-aware ends with a cache")
        twin.set_hazard(hazard)
        return twin

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


def _split_len(structures: str | list[str] | None) -> tuple[str | list[str] | None, bool]:
    """Structure names without their `+len` part, and whether length-aware ends are wanted
    (by default, or when a name asks for them: `markov6+kn+len`, or `len` alone)."""
    if structures is None:
        return None, True
    names = structures.split(",") if isinstance(structures, str) else list(structures)
    out, want = [], False
    for raw in names:
        name = raw.strip()
        plain = re.sub(r"\+len(\[w=[^\]]*\])?$", "", name)
        want |= plain != name or name == "len"
        if name != "len":
            out.append(plain)
    return (out or None), want
