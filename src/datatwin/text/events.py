"""Event-sequence twins: sequences of events read from a table (a sequence id, an order column
and an event column), smoothed Markov chains of order m chosen by holdout bits per event.

An event name training never saw is the chain's UNK symbol followed by the name spelled out
(`unseen.UnseenNames`): P(name | history) = P(UNK | history) * P_spell(name) / (1 - S), so
distinct unseen names share the UNK mass and every next-event distribution sums to one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import progress
from ..core.seeding import SeedLike, as_int_seed
from ..errors import InputError
from ..modelfile import require
from ..reader import RawTable, from_frame, read_table
from .cache import CacheSpec
from .counts import N_SPECIAL, UNK, Segment, count
from .length import LengthHazard
from .model import NgramModel
from .neural_select import NeuralCandidates, chain_parts, split_structures
from .neural_select import neural_info as _neural_info
from .select import Refit, SplitData, fit_chain
from .sequence import (
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_ORDER,
    SequenceTwin,
    check_temperature,
    parse_holdout,
    rng_of,
)
from .spelling import Spelling
from .structures import EVENTS_STRUCTURES, plan
from .unseen import UnseenNames

COLUMNS = ("sequence_id", "order_by", "event")


def _encode_events(names: list[str], ev: np.ndarray) -> np.ndarray:
    idx = pd.Index(np.asarray(names, dtype=object)).get_indexer(ev)
    return np.where(idx >= 0, idx + N_SPECIAL, UNK).astype(np.int64)


def _typed(tokens: np.ndarray, dtype: str) -> tuple[np.ndarray, Any]:
    """A column of text tokens as (code per cell, value per distinct cell) to group or sort
    by: numbers when every cell is a number (as a CSV reader would type the column; a
    DataFrame's int or float column comes back as itself), datetimes for a DataFrame's
    datetime column, else the text itself."""
    codes, uniq = pd.factorize(tokens, sort=False)
    if dtype.startswith("datetime"):
        return codes, pd.to_datetime(pd.Series(uniq), errors="coerce").to_numpy()
    try:
        return codes, pd.to_numeric(pd.Series(uniq, dtype=object)).to_numpy()
    except (ValueError, TypeError):
        return codes, uniq


def _check_order(name: str, tokens: np.ndarray, codes: np.ndarray, values: Any) -> None:
    """An order column of numbers with a few cells that are not (a `?`, a typo) would be sorted
    as text ("10" before "2"): that is an error naming the first such row. A column of text
    throughout (ISO timestamps, labels) is ordered as text."""
    if values.dtype != object:
        return
    num = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").notna().to_numpy()
    if not num.any():
        return
    bad = ~num[codes]
    row = int(np.argmax(bad))
    raise InputError(
        f"order column {name!r}: data row {row + 1} holds {str(tokens[row])!r}, not a number "
        f"like the other {int((~bad).sum())} rows ({int(bad.sum())} such rows); fix or drop "
        "those rows (events are ordered numerically)"
    )


class EventsTwin(SequenceTwin):
    """A Markov twin of event sequences read from a table, bits per event."""

    kind: ClassVar[str] = "events"
    unit: ClassVar[str] = "event"
    archive_keys: ClassVar[frozenset[str]] = frozenset({"events"})
    structure_registry = EVENTS_STRUCTURES

    def __init__(
        self,
        events: list[str],
        columns: dict[str, str],
        model: NgramModel,
        leaderboard: list[dict[str, Any]] | None = None,
        info: dict[str, Any] | None = None,
        cache: CacheSpec | None = None,
        unseen: UnseenNames | None = None,
    ) -> None:
        self.events = list(events)
        self.columns = dict(columns)
        #: how unseen names are spelled (None: fit on `events`, as a fresh fit does)
        self.unseen = unseen if unseen is not None else UnseenNames.fit(self.events)
        #: False for a twin read from a file written before the spelling was stored: it is
        #: written back the same way (the same bytes, so the same compression fingerprint)
        self.store_spelling = True
        self._init_chain(model, cache)
        self.leaderboard = leaderboard or []
        self.info = info or {}
        self._last_units = 0

    # ---- reading -----------------------------------------------------------------------
    @staticmethod
    def read_table(
        data: Any,
        sequence_id: str | None,
        order_by: str | None,
        event: str | None,
        encoding: str = "utf-8",
    ) -> tuple[RawTable, dict[str, str]]:
        """The events table (a path to CSV, .csv.gz, TSV or Parquet, or a DataFrame, read by
        `datatwin.reader`) with its three named columns checked."""
        if not (sequence_id and order_by and event):
            raise InputError(
                "events need the names of three columns: sequence_id, order_by and event"
            )
        cols = {"sequence_id": sequence_id, "order_by": order_by, "event": event}
        if isinstance(data, pd.DataFrame):
            _check_columns([str(c) for c in data.columns], cols, "the table")
            if len(data) == 0:
                raise InputError("the table has no rows; there are no events to learn from")
            raw = from_frame(data[[sequence_id, order_by, event]], source="the table")
        else:
            raw = read_table(data, encoding=encoding)
            _check_columns(raw.columns, cols, raw.source)
        return raw, cols

    @staticmethod
    def sequences(
        table: RawTable | pd.DataFrame, cols: dict[str, str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(event strings, sequence start offsets, lengths) sorted by sequence (in order of
        first appearance) then by the order column (numerically when it holds numbers)."""
        raw = table if isinstance(table, RawTable) else from_frame(table[list(cols.values())])
        sid, order_by = cols["sequence_id"], cols["order_by"]
        codes, values = _typed(raw.text(sid), raw.dtypes.get(sid, ""))
        seq = pd.factorize(values, sort=False)[0][codes]  # equal values: one sequence
        codes, values = _typed(raw.text(order_by), raw.dtypes.get(order_by, ""))
        _check_order(order_by, raw.text(order_by), codes, values)
        order = values[codes]
        frame = pd.DataFrame({"seq": seq, "order": order, "i": np.arange(raw.n_rows)})
        frame = frame.sort_values(["seq", "order"], kind="stable")
        ev = raw.text(cols["event"])[frame["i"].to_numpy()]
        lengths = np.bincount(frame["seq"].to_numpy())
        lengths = lengths[lengths > 0]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return ev, starts, lengths

    def _read(
        self, data: Any, encoding: str = "utf-8"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.columns
        raw, cols = self.read_table(data, c["sequence_id"], c["order_by"], c["event"], encoding)
        return self.sequences(raw, cols)

    def _encode(self, ev: np.ndarray) -> np.ndarray:
        return _encode_events(self.events, ev)

    @staticmethod
    def _segments(
        ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pick: Any = None
    ) -> list[Segment]:
        sel = range(len(starts)) if pick is None else pick
        return [Segment(ids[starts[i] : starts[i] + lengths[i]]) for i in sel]

    # ---- fitting -----------------------------------------------------------------------
    @classmethod
    def fit_select(
        cls,
        data: Any,
        *,
        sequence_id: str | None = None,
        order_by: str | None = None,
        event: str | None = None,
        max_order: int = DEFAULT_MAX_ORDER,
        structures: str | list[str] | None = None,
        holdout: float | str | Path | None = None,
        seed: SeedLike = 0,
        refit: bool = True,
        baselines: bool = True,
        cache: bool = False,
        encoding: str = "utf-8",
        time_budget: float | None = None,
        device: str = "auto",
    ) -> EventsTwin:
        """Fit orders 0..max_order with each smoother on sequences, select by bits per event.

        `holdout`: a fraction of whole sequences (default 0.2, seeded) or a table file.
        `structures`: labels or shorthands (`EVENTS_STRUCTURES`; a twin's `structure` refits
        exactly that candidate). `cache`: also try each order with a per-sequence cache (off
        by default: sequences are usually short). Length-aware ends (`+len`) are tried on the
        best chain unless `structures` leaves them out. `seed`: int, None or a Generator.
        """
        chains, nplan = split_structures(structures)
        pl = plan(chains if chains != [] else "unigram+kn", max_order, cache, EVENTS_STRUCTURES)
        if chains == []:  # only neural labels: no chain contends (a mixture's is counted)
            pl.chains, pl.lengths = [], []
        if nplan.chain is not None:
            pl.max_order = max(pl.max_order, chain_parts(nplan.chain, "events")[0])
        neural = (
            NeuralCandidates("events", nplan, time_budget, device, as_int_seed(seed))
            if nplan.any
            else None
        )
        raw, cols = cls.read_table(data, sequence_id, order_by, event, encoding)
        ev, starts, lengths = cls.sequences(raw, cols)
        hold = parse_holdout(holdout)
        if isinstance(hold, Path):
            hraw, _ = cls.read_table(hold, sequence_id, order_by, event, encoding)
            held: Any = cls.sequences(hraw, cols)
            train_pick = np.arange(len(starts))
        else:
            train_pick, held = _split_sequences(len(starts), hold or DEFAULT_HOLDOUT, seed)
        split, names = _events_split(ev, starts, lengths, train_pick, held)
        if not isinstance(hold, Path):
            split.refit = lambda order: _refit_events(ev, starts, lengths, order)
        fitted = fit_chain(split, pl, refit=refit, baselines=baselines, neural=neural)
        chosen = fitted.chosen
        info = {
            "max_order": pl.max_order,
            "train_events": split.train_units,
            "holdout_events": split.holdout_units,
            "sequences": int(len(starts)),
            "max_length": int(lengths.max()),
            "refit_on_all_data": chosen.refitted,
            "fit_seconds_total": fitted.seconds,
            **_neural_info(fitted.leaderboard),
        }
        names = chosen.vocab if chosen.refitted else names
        twin = cls(names, cols, chosen.model, fitted.leaderboard, info, chosen.cache)
        twin.set_hazard(chosen.hazard)
        return twin

    # ---- likelihood --------------------------------------------------------------------
    def log_prob(self, data: Any) -> np.ndarray:
        """Nats of every event of every sequence, including each sequence's end; an unseen
        name adds log P(name | UNK) to its UNK's log-probability."""
        ev, starts, lengths = self._read(data)
        ids = self._encode(ev)
        segs = self._segments(ids, starts, lengths)
        self._last_units = int(len(ev))
        out = np.log(self._probs(segs))
        unk = np.flatnonzero(ids == UNK)
        if len(unk):  # event i of sequence j sits at i + j (each sequence ends once)
            at = unk + np.repeat(np.arange(len(lengths)), lengths)[unk]
            out[at] -= self.unseen.nats_many([str(v) for v in ev[unk]])
        return out

    def unit_count(self, data: Any, logp: np.ndarray) -> int:
        """Events (bits are reported per event; sequence ends are included in the total)."""
        return self._last_units

    # ---- sampling ----------------------------------------------------------------------
    def sample_sequences(
        self, n: int, seed: SeedLike = None, *, temperature: float = 1.0
    ) -> list[list[str]]:
        """`n` sequences of event names, each ending where the model ends it; where the chain
        draws UNK, a name never seen is spelled (`UnseenNames.sample`, at temperature 1)."""
        if n is None or n < 0:
            raise InputError("the number of sequences to sample must be a non-negative count")
        check_temperature(temperature)
        rng = rng_of(seed)
        cap = max(10 * int(self.info.get("max_length", 100)), 100)
        names = self.events
        empty = np.zeros(0, np.int64)
        out = []
        for _ in range(n):
            ids = self._generate(cap, rng, empty, temperature)[0]
            out.append(
                [names[i - N_SPECIAL] if i >= N_SPECIAL else self.unseen.sample(rng) for i in ids]
            )
        return out

    def sample(self, n: int, seed: SeedLike = None, *, temperature: float = 1.0) -> pd.DataFrame:
        """`n` new sequences as a table with the training columns (sequence id, order, event)."""
        seqs = self.sample_sequences(n, seed=seed, temperature=temperature)
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
        spelling = self.unseen.spelling.to_arrays() if self.store_spelling else {}
        return meta, {**spelling, **self.chain.to_arrays()}

    @classmethod
    def from_archive(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], source: str
    ) -> EventsTwin:
        info: Any = meta.get("events")
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
        model, cache = cls._load_model(info, arrays, base, source)
        rest = {k: v for k, v in info.items() if k not in ("names", "columns")}
        unseen = _load_unseen(arrays, names, source)
        twin = cls(names, cols, model, list(meta.get("leaderboard", [])), rest, cache, unseen)
        twin.store_spelling = unseen is not None
        try:
            hazard = LengthHazard.from_arrays(arrays)
        except ValueError as exc:
            require(False, source, str(exc))
        require(hazard is None or twin.cache is None, source, "length-aware ends with a cache")
        if twin.neural is None:  # (a mixture keeps its chain's ends inside it)
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
            encoding=getattr(args, "encoding", None) or "utf-8",
        )
        twin.cli_write_arpa(args)
        return twin

    def cli_read(self, path: Path, args: argparse.Namespace) -> Any:
        c = self.columns
        encoding = getattr(args, "encoding", None) or "utf-8"
        return self.read_table(path, c["sequence_id"], c["order_by"], c["event"], encoding)[0]

    def cli_sample(self, args: argparse.Namespace) -> Any:
        n = 100 if args.n is None else args.n
        out = self.sample(n, seed=args.seed, temperature=getattr(args, "temperature", 1.0))
        if getattr(args, "novelty", None):
            c = self.columns
            train, _ = self.read_table(
                Path(args.novelty), c["sequence_id"], c["order_by"], c["event"]
            )
            share = self.novelty(out, train)
            progress.note(
                f"novelty: {share:.1%} of the sampled sequences occur verbatim in {args.novelty}"
            )
        return out

    def novelty(self, samples: pd.DataFrame, train: pd.DataFrame | RawTable) -> float:
        """Share of sampled sequences that occur verbatim in `train`."""

        def keys(df: pd.DataFrame | RawTable) -> set[tuple[str, ...]]:
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


def _load_unseen(arrays: dict[str, np.ndarray], names: list[str], source: str) -> Any:
    """The stored spelling of unseen names, validated; None for a file written before it was
    stored (the twin then fits it on its names, as the fit that wrote the file would now)."""
    if "spell_codes" not in arrays and "spell_counts" not in arrays:
        return None
    try:
        unseen = UnseenNames(Spelling.from_arrays(arrays), names)
    except ValueError as exc:
        require(False, source, str(exc))
    require(unseen.covers_seen(), source, "the spelling model lacks characters of the names")
    return unseen


def _check_columns(names: list[str], cols: dict[str, str], source: str) -> None:
    missing = [c for c in cols.values() if c not in names]
    if missing:
        raise InputError(
            f"{source} has no column(s) {', '.join(map(repr, missing))}; "
            f"its columns are: {', '.join(names)}"
        )


def _split_sequences(n_seq: int, frac: float, seed: SeedLike) -> tuple[np.ndarray, np.ndarray]:
    """Training and holdout sequence indices: a seeded `frac` of whole sequences held out."""
    if n_seq < 2:
        raise InputError("need at least 2 sequences to hold some out (or a holdout file)")
    perm = rng_of(seed).permutation(n_seq)
    n_hold = min(max(1, int(round(frac * n_seq))), n_seq - 1)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def _events_split(
    ev: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    train_pick: np.ndarray,
    held: Any,
) -> tuple[SplitData, list[str]]:
    """The split as blocks of event ids and the training vocabulary (sorted event names).
    `held`: holdout sequence indices into `ev`, or (events, starts, lengths) of a file."""
    train_events = np.concatenate([ev[starts[i] : starts[i] + lengths[i]] for i in train_pick])
    names = sorted(set(train_events.tolist()))
    ids = _encode_events(names, ev)
    train_segs = EventsTwin._segments(ids, starts, lengths, train_pick)
    if isinstance(held, tuple):
        hev, hstarts, hlengths = held
        hold_segs = EventsTwin._segments(_encode_events(names, hev), hstarts, hlengths)
        hold_text = [hev[a : a + n] for a, n in zip(hstarts, hlengths, strict=True)]
    else:
        hold_segs = EventsTwin._segments(ids, starts, lengths, held)
        hold_text = [ev[starts[i] : starts[i] + lengths[i]] for i in held]

    def as_bytes() -> tuple[bytes, bytes]:
        tb = "".join(" ".join(ev[starts[i] : starts[i] + lengths[i]]) + "\n" for i in train_pick)
        hb = "".join(" ".join(x) + "\n" for x in hold_text)
        return tb.encode(), hb.encode()

    unseen = [
        str(v) for seg, x in zip(hold_segs, hold_text, strict=True) for v in x[seg.tokens == UNK]
    ]
    split = SplitData(
        train_segs,
        hold_segs,
        len(names) + N_SPECIAL,
        int(sum(len(s.tokens) for s in train_segs)),
        int(sum(len(s.tokens) for s in hold_segs)),
        holdout_extra_bits=float(UnseenNames.fit(names).nats_many(unseen).sum() / np.log(2.0)),
        cache_holdout=hold_segs,
        baseline_bytes=as_bytes,
    )
    return split, names


def _refit_events(ev: np.ndarray, starts: np.ndarray, lengths: np.ndarray, order: int) -> Refit:
    """Every sequence counted at `order`, with the vocabulary of all the events."""
    names = sorted(set(ev.tolist()))
    segs = EventsTwin._segments(_encode_events(names, ev), starts, lengths)
    return Refit(count(segs, len(names) + N_SPECIAL, order), segs, names)
