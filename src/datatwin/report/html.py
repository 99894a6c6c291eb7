"""The report: one self-contained HTML page (inline CSS, PNG data: URIs, no scripts, no CDN)."""

from __future__ import annotations

import html
import time
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__, progress
from . import plots

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1200px;color:#222;padding:0 16px}
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin-top:0}.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid img{border:1px solid #eee}img{max-width:100%}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f6f9}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:6px;
padding:10px 14px;min-width:200px}.card b{font-size:22px;display:block}
.good{color:#1a7f37}.warn{color:#b35900}.rows{overflow-x:auto}.note{color:#666;font-size:13px}
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _card(title: str, value: str, note: str, cls: str = "") -> str:
    return (
        f'<div class="card">{esc(title)}<b class="{cls}">{esc(value)}</b>'
        f'<span class="note">{esc(note)}</span></div>'
    )


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{esc(alt)}">'


def _rows_table(df: pd.DataFrame, caption: str) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return (
        f'<div class="rows"><table><caption style="text-align:left"><b>{esc(caption)}</b>'
        f"</caption><tr>{head}</tr>{body}</table></div>"
    )


def page(title: str, subtitle: str, sections: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p>'
        + "\n".join(sections)
        + f'<p class="note">datatwin {esc(__version__)} · generated '
        f"{esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</p></body></html>\n"
    )


def summary_cards(result: dict[str, Any]) -> str:
    fid, priv = result["fidelity"], result["privacy"]
    auc = fid.get("c2st_auc")
    cards = [
        _card(
            "Classifier test (ROC AUC)",
            fmt(auc),
            "0.5 = real and twin rows indistinguishable",
            "good" if auc is not None and auc <= 0.6 else "warn",
        ),
        _card("Mean column TV distance", fmt(fid.get("tv_mean")), "0 = same marginals"),
        _card(
            "Mean |ΔMI| (bits)",
            fmt(fid.get("mi_diff_mean"), 4),
            f"largest {fmt(fid.get('mi_diff_max'), 3)}",
        ),
    ]
    if priv.get("exact_copy_share") is not None:
        ecs, base = priv["exact_copy_share"], priv["holdout_exact_copy_share"]
        cards.append(
            _card(
                "Exact copies of training rows",
                f"{ecs:.2%}",
                f"holdout rows by chance: {base:.2%}",
                "good" if ecs <= 1.1 * base + 0.005 else "warn",
            )
        )
        cards.append(
            _card(
                "Median distance to closest training row",
                f"{fmt(priv['dcr_median_synthetic'])}",
                f"holdout rows: {fmt(priv['dcr_median_holdout'])}",
            )
        )
    if priv.get("bits_gap") is not None:
        cards.append(
            _card(
                "Holdout − train bits",
                fmt(priv["bits_gap"]),
                f"per {result['unit']}; near 0 = little to infer membership from",
            )
        )
    else:
        cards.append(_card("Privacy", "–", "give --train for privacy figures"))
    return '<div class="cards">' + "".join(cards) + "</div>"


def metrics_table(result: dict[str, Any]) -> str:
    cols = result["fidelity"]["columns"]
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(c['type'])}</td><td class=num>{fmt(c['tv'])}</td>"
        f"<td class=num>{fmt(c.get('ks'))}</td><td class=num>{c['missing_real']:.1%}</td>"
        f"<td class=num>{c['missing_twin']:.1%}</td></tr>"
        for name, c in cols.items()
    )
    return (
        "<table><tr><th>column</th><th>type</th><th>TV distance</th><th>KS</th>"
        f"<th>missing (real)</th><th>missing (twin)</th></tr>{rows}</table>"
    )


def table_report(twin, result: dict[str, Any], frames: dict[str, Any], source: str) -> str:
    """The whole page for a table twin."""
    real, synth = frames["real"], frames["synth"]
    fid = result["fidelity"]
    sections: list[str] = []
    with progress.step("drawing the leaderboard and structure"):
        if twin.leaderboard:
            sections += [
                "<h2>Leaderboard</h2>",
                _img(plots.leaderboard(twin.leaderboard, twin.unit), "leaderboard chart"),
            ]
        sections += [
            "<h2>Learned structure</h2>",
            _img(
                plots.structure(twin.modelled, twin.edges, twin.edge_weights()),
                "structure graph",
            ),
        ]
    with progress.step("drawing column distributions"):
        imgs = [
            _img(plots.column(r, s, fid["columns"][r.name]), f"distribution of {r.name}")
            for r, s in zip(real.columns, synth.columns, strict=True)
        ]
    sections += [
        "<h2>Columns: real vs twin</h2>",
        '<div class="grid">' + "".join(imgs) + "</div>",
        metrics_table(result),
    ]
    mi_r, mi_s = fid["_mi"]
    with progress.step("drawing dependence heatmaps"):
        sections += [
            "<h2>Pairwise dependence (mutual information)</h2>",
            _img(plots.mi_heatmaps(real.names, mi_r, mi_s), "mutual information heatmaps"),
            '<p class="note">Columns binned on the real data\'s grid (numbers: quantile '
            "bins; categories: the most frequent ones), missing values as their own bin.</p>",
        ]
    k = min(10, real.n_rows, synth.n_rows)
    rng = np.random.default_rng(result["seed"])
    pick = np.sort(rng.choice(real.n_rows, k, replace=False))
    sections += [
        "<h2>Rows: real next to twin</h2>",
        _rows_table(real.tokens.iloc[pick], f"{k} real records (random)"),
        _rows_table(synth.tokens.iloc[:k], f"{k} twin records"),
    ]
    if "finish" in frames:  # the classifier test ran in the background meanwhile
        frames["finish"]()
    head = [
        "<h2>Summary</h2>",
        summary_cards(result),
        f'<p class="note">{real.n_rows} real records (not seen in fitting) vs '
        f"{synth.n_rows} twin records (seed {result['seed']}). Classifier test: "
        f"{fid['c2st_folds']}-fold cross-validated gradient boosting telling real from twin "
        f"records ({fid['c2st_rows_per_side']} of each). Distance to closest record: Gower "
        "(rank-scaled numbers, category mismatches), averaged over columns.</p>",
    ]
    sections = head + sections
    title = f"datatwin report: {source}"
    sub = f"table twin, structure {twin.structure}; {len(twin.edges)} edges"
    return page(title, sub, sections)


def _cards_generic(result: dict[str, Any], extra: list[tuple[str, str, str]]) -> str:
    fid, priv = result["fidelity"], result["privacy"]
    auc = fid.get("c2st_auc")
    cards = [
        _card(
            "Classifier test (ROC AUC)",
            fmt(auc),
            "0.5 = real and twin indistinguishable",
            "good" if auc is not None and auc <= 0.6 else "warn",
        )
    ]
    cards += [_card(a, b, c) for a, b, c in extra]
    if priv.get("exact_copy_share") is not None:
        ecs, base = priv["exact_copy_share"], priv["holdout_exact_copy_share"]
        cards.append(
            _card(
                "Copies of training data",
                f"{ecs:.2%}",
                f"held-out data by chance: {base:.2%}",
                "good" if ecs <= 1.1 * base + 0.005 else "warn",
            )
        )
    if priv.get("bits_gap") is not None:
        cards.append(_card("Holdout − train bits", fmt(priv["bits_gap"]), f"per {result['unit']}"))
    elif priv.get("note"):
        cards.append(_card("Privacy", "–", priv["note"]))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _leader(twin) -> list[str]:
    if not twin.leaderboard:
        return []
    return [
        "<h2>Leaderboard</h2>",
        _img(plots.leaderboard(twin.leaderboard, twin.unit), "leaderboard chart"),
        '<p class="note">Grey bars: compressor or other baselines.</p>',
    ]


def _share(counter, keys) -> np.ndarray:
    total = max(sum(counter.values()), 1)
    return np.array([counter.get(k, 0) / total for k in keys])


def text_report(twin, result: dict[str, Any], ctx: dict[str, Any], source: str) -> str:
    from collections import Counter

    fid = result["fidelity"]
    real, tw = ctx["real_text"], ctx["twin_text"]
    sections = [
        "<h2>Summary</h2>",
        _cards_generic(
            result,
            [
                ("Character bigram TV", fmt(fid["char2gram_tv"]), "0 = same frequencies"),
                ("Word TV distance", fmt(fid["word_tv"]), "whitespace-separated words"),
            ],
        ),
        f'<p class="note">{len(real)} real characters vs {len(tw)} sampled; classifier test '
        f"on {fid.get('c2st_rows_per_side')} passages of {200} characters a side "
        "(character 1–3-gram frequencies). Copies: 32-character windows found verbatim in "
        "the training text.</p>",
        *_leader(twin),
    ]
    imgs = []
    for n, label in ((1, "characters"), (2, "character bigrams"), (3, "character trigrams")):
        cr = Counter(real[i : i + n] for i in range(len(real) - n + 1))
        ct = Counter(tw[i : i + n] for i in range(len(tw) - n + 1))
        keys = [k for k, _ in cr.most_common(20)]
        imgs.append(
            _img(
                plots.compare_bars(keys, _share(cr, keys), _share(ct, keys), f"top {label}"),
                f"{label} frequencies",
            )
        )
    wr, wt = ctx["words"]
    keys = [k for k, _ in wr.most_common(25)]
    imgs.append(
        _img(plots.compare_bars(keys, _share(wr, keys), _share(wt, keys), "top words"), "words")
    )
    sections += ["<h2>n-gram frequencies: real vs twin</h2>", '<div class="grid">', *imgs, "</div>"]
    rng = np.random.default_rng(result["seed"])
    k = 4
    rows = []
    for _ in range(k):
        a = int(rng.integers(0, max(len(real) - 400, 1)))
        b = int(rng.integers(0, max(len(tw) - 400, 1)))
        rows.append((real[a : a + 400], tw[b : b + 400]))
    body = "".join(
        f"<tr><td><pre style='white-space:pre-wrap'>{esc(r)}</pre></td>"
        f"<td><pre style='white-space:pre-wrap'>{esc(t)}</pre></td></tr>"
        for r, t in rows
    )
    sections += [
        "<h2>Passages: real next to twin</h2>",
        f"<table><tr><th>real</th><th>twin</th></tr>{body}</table>",
    ]
    return page(f"datatwin report: {source}", f"text twin, structure {twin.structure}", sections)


def events_report(twin, result: dict[str, Any], ctx: dict[str, Any], source: str) -> str:
    fid = result["fidelity"]
    rs, ts = ctx["real_seqs"], ctx["twin_seqs"]
    lr = np.array([len(s) for s in rs], float)
    lt = np.array([len(s) for s in ts], float)
    sections = [
        "<h2>Summary</h2>",
        _cards_generic(
            result,
            [
                ("Sequence-length TV", fmt(fid["length_tv"]), f"KS {fmt(fid['length_ks'])}"),
                ("Event TV distance", fmt(fid["event_tv"]), f"bigrams {fmt(fid['bigram_tv'])}"),
            ],
        ),
        f'<p class="note">{len(rs)} real sequences vs {len(ts)} sampled; classifier test on '
        "per-sequence features (length, first/last event, event counts). Copies: sampled "
        "sequences identical to a training sequence.</p>",
        *_leader(twin),
    ]
    er, et = ctx["events"]
    keys = [k for k, _ in er.most_common(25)]
    sections += [
        "<h2>Sequence lengths and events: real vs twin</h2>",
        '<div class="grid">',
        _img(plots.length_hist(lr, lt, "sequence length"), "sequence length distribution"),
        _img(plots.compare_bars(keys, _share(er, keys), _share(et, keys), "top events"), "events"),
        "</div>",
    ]
    k = min(12, len(rs), len(ts))
    body = "".join(
        f"<tr><td>{esc(' '.join(rs[i]))}</td><td>{esc(' '.join(ts[i]))}</td></tr>" for i in range(k)
    )
    sections += [
        "<h2>Sequences: real next to twin</h2>",
        f"<table><tr><th>real</th><th>twin</th></tr>{body}</table>",
    ]
    return page(f"datatwin report: {source}", f"events twin, structure {twin.structure}", sections)


def _series_tables(name: str, col: dict[str, Any]) -> list[str]:
    """Marginal quantiles and seasonal profiles (hour of day, weekday), real vs twin."""

    out = []
    q = col.get("quantiles")
    if q:
        df = pd.DataFrame(
            {
                "quantile": q["q"],
                "real": [fmt(v) for v in q["real"]],
                "twin": [fmt(v) for v in q["twin"]],
            }
        )
        out.append(_rows_table(df, f"{name}: marginal quantiles, real vs all simulated steps"))
    for key, label in (("profile_hour", "hour of day"), ("profile_weekday", "weekday (Mon = 0)")):
        p = col.get(key)
        if p:
            df = pd.DataFrame(
                {
                    label: p["key"],
                    "real mean": [fmt(v) for v in p["real"]],
                    "twin mean": [fmt(v) for v in p["twin"]],
                }
            )
            out.append(_rows_table(df, f"{name}: mean by {label}"))
    return out


def series_report(twin, result: dict[str, Any], ctx: dict[str, Any], source: str) -> str:
    fid = result["fidelity"]
    sections = [
        "<h2>Summary</h2>",
        _cards_generic(
            result,
            [
                ("Mean KS of values", fmt(fid["ks_mean"]), "real vs all simulated steps"),
                ("Autocorrelation RMSE", fmt(fid["acf_rmse_mean"]), "lags 1.., mean of columns"),
            ],
        ),
        f'<p class="note">{result["rows"]["real"]} real steps vs {result["rows"]["paths"]} '
        f"simulated paths of the same length; classifier test on windows of "
        f"{fid['window_steps']} consecutive steps.</p>",
        *_leader(twin),
        "<h2>Paths and autocorrelations</h2>",
    ]
    for name in ctx["names"][:6]:
        a_r, a_s = fid["columns"][name]["_acf"]
        sections += [
            _img(
                plots.paths(name, ctx["real"][:, ctx["names"].index(name)], ctx["sims"][name]), name
            ),
            _img(plots.acf_plot(name, a_r, a_s), f"autocorrelation of {name}"),
            *_series_tables(name, fid["columns"][name]),
        ]
    return page(f"datatwin report: {source}", f"series twin, structure {twin.structure}", sections)
