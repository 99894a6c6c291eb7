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
            _img(plots.structure(twin.modelled, twin.edges), "structure graph"),
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
