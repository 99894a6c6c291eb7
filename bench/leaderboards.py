"""Every leaderboard row's bits on the shared datasets, to check that a change keeps behaviour.

    python bench/leaderboards.py -o before.json            # on the old code
    python bench/leaderboards.py --compare before.json     # on the new code: every row's diff

It runs datatwin alone (no peers), the same fits the suites run: tables (Adult with its test
file as holdout, alarm and insurance 10k, ecoli70 1k, sachs; census with --census), text
(Shakespeare), events (cmudict) and series (sunspot_month, elecdemand). Progress on stderr,
results (JSON) on stdout or in -o FILE. Fit times are recorded, to compare as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

import datatwin

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _table_cases(census: bool) -> list[tuple[str, Any, dict[str, Any]]]:
    t = DATA / "tables"
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        ("adult", t / "adult/adult_train.csv", {"holdout": t / "adult/adult_test.csv"}),
        ("alarm_10k", DATA / "bn/alarm/train_10000.csv.gz", {}),
        ("insurance_10k", DATA / "bn/insurance/train_10000.csv.gz", {}),
        ("ecoli70_1k", DATA / "gbn/ecoli70/train_1000.csv.gz", {}),
        ("sachs", t / "sachs/sachs.csv", {}),
    ]
    if census:  # no header line
        try:
            from datatwin.reader import read_table
        except ImportError:  # older layout, for a baseline run on an earlier commit
            from datatwin.tabular.reader import read_table  # type: ignore[no-redef]
        raw = read_table(t / "census/census_income_train.csv.gz", header=False)
        cases.append(("census", raw, {}))
    return cases


def _rows(twin: Any) -> list[dict[str, Any]]:
    return [
        {k: e[k] for k in ("structure", "train_bits", "holdout_bits", "fit_seconds") if k in e}
        for e in twin.leaderboard
    ]


def run(census: bool, only: set[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def record(name: str, fit) -> None:
        if only is not None and name not in only:
            return
        print(f"[leaderboards] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        twin = fit()
        out[name] = {
            "selected": twin.structure,
            "seconds": time.perf_counter() - t0,
            "rows": _rows(twin),
        }

    for name, path, kw in _table_cases(census and (only is None or "census" in only)):
        data = str(path) if isinstance(path, Path) else path
        record(name, lambda d=data, kw=kw: datatwin.fit(d, seed=0, **kw))
    sh = DATA / "text/shakespeare"
    record(
        "shakespeare",
        lambda: datatwin.fit(str(sh / "train.txt"), kind="text", holdout=sh / "holdout.txt"),
    )
    record(
        "cmudict",
        lambda: datatwin.fit(
            pd.read_csv(
                DATA / "events/cmudict/pronunciations.csv.gz",
                keep_default_na=False,
                dtype={"phone": str, "word": str},
            ),
            kind="events",
            sequence_id="word",
            order_by="position",
            event="phone",
            seed=0,
        ),
    )
    for s in ("sunspot_month", "elecdemand"):
        record(s, lambda s=s: datatwin.fit(str(DATA / f"series/{s}.csv"), kind="series"))
    out["_load_average"] = os.getloadavg()
    return out


def compare(now: dict[str, Any], before: dict[str, Any]) -> int:
    worst = 0.0
    for name, res in now.items():
        if name.startswith("_") or not isinstance(res, dict):
            continue
        if name not in before:
            print(f"{name}: NOT IN {len(before)} baseline datasets; nothing compared")
            worst = float("inf")
            continue
        old = {r["structure"]: r for r in before[name]["rows"]}
        sel = "same" if res["selected"] == before[name]["selected"] else "CHANGED"
        ratio = res["seconds"] / before[name]["seconds"]
        print(f"{name}: selected {res['selected']} ({sel}); whole fit {ratio:.2f}x before")
        for r in res["rows"]:
            o = old.get(r["structure"])
            if o is None:
                print(f"   {r['structure']}: new row {r['holdout_bits']:.6f}")
                continue
            d = r["holdout_bits"] - o["holdout_bits"]
            worst = max(worst, abs(d))
            flag = "" if abs(d) < 1e-9 else "  <-- differs"
            print(f"   {r['structure']}: {r['holdout_bits']:.6f} ({d:+.2e}){flag}")
        gone = set(old) - {r["structure"] for r in res["rows"]}
        for g in sorted(gone):
            print(f"   {g}: row missing now")
    print(f"largest holdout-bits difference: {worst:.3e}")
    return 0 if worst < 1e-9 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", help="write the JSON here instead of stdout")
    ap.add_argument("--compare", metavar="BEFORE.json", help="print each row's difference")
    ap.add_argument("--census", action="store_true", help="also census (about 2 minutes)")
    ap.add_argument("--only", metavar="A,B", help="just these datasets (names as in the output)")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"leaderboards: {DATA} not found (../shared/data beside the repo)", file=sys.stderr)
        return 2
    res = run(args.census, set(args.only.split(",")) if args.only else None)
    text = json.dumps(res, indent=1)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    if args.compare:
        return compare(res, json.loads(Path(args.compare).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
