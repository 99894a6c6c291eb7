"""Figures of the report, drawn with matplotlib (Agg) and returned as PNG data: URIs."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

from . import deps
from .tables import MISSING, OTHER, Column, categories

REAL = "#4c72b0"
TWIN = "#dd8452"
DPI = 80


def _uri(fig, tight: bool = False) -> str:
    plt = deps.pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _esc(s: object) -> str:
    """`s` as matplotlib shows it literally: a `$` would start mathtext (and an odd number
    of them fail the whole figure), so each is escaped."""
    return str(s).replace("$", r"\$")


def _short(s: str, n: int = 18) -> str:
    s = str(s)
    return _esc(s if len(s) <= n else s[: n - 1] + "…")


def leaderboard(board: list[dict[str, Any]], unit: str, limit: float | None = None) -> str:
    """Holdout (bars) and train (dots) bits per structure; baselines grey, the limit dashed."""
    plt = deps.pyplot()
    ranked = sorted(board, key=lambda e: float(e["holdout_bits"]))
    models = [e for e in ranked if not e.get("baseline")]
    keep = models[:12] + [e for e in models[12:] if e.get("selected")]  # the best dozen
    keep += [e for e in ranked if e.get("baseline")]
    rows = sorted(keep, key=lambda e: -float(e["holdout_bits"]))
    fig, ax = plt.subplots(layout="constrained", figsize=(8, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))
    hold = np.array([float(e["holdout_bits"]) for e in rows])
    train = np.array([float(e.get("train_bits", np.nan)) for e in rows])
    colors = [
        "#999999" if e.get("baseline") else (TWIN if e.get("selected") else REAL) for e in rows
    ]
    ax.barh(y, hold, color=colors, height=0.6, label="holdout")
    ax.plot(train, y, "k|", markersize=14, label="train")
    for yi, h in zip(y, hold, strict=True):
        ax.text(h, yi, f" {h:.3f}", va="center", fontsize=8)
    names = [("★ " if e.get("selected") else "") + _short(e["structure"], 28) for e in rows]
    ax.set_yticks(y, names, fontsize=9)
    finite = np.r_[hold, train[np.isfinite(train)]]
    lo, hi = float(finite.min()), float(finite.max())
    if limit is not None:
        ax.axvline(limit, color="k", ls="--", lw=1, label=f"known limit {limit:.3f}")
        lo = min(lo, limit)
    span = max(hi - lo, 1e-9)
    ax.set_xlim(max(0.0, lo - 0.15 * span), hi + 0.2 * span)
    ax.set_xlabel(f"bits per {unit} (lower is better)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Leaderboard: candidate structures scored on held-out data", y=1.01)
    return _uri(fig)


def structure(
    names: list[str], edges: list[tuple[str, str]], weights: list[float] | None = None
) -> str:
    """The learned DAG, drawn in layers (parents to the left of children); `weights` (e.g. a
    tree's splits per parent) set the arrows' width and shade."""
    plt = deps.pyplot()
    if weights is not None and len(weights) == len(edges) and len(edges):
        top = max(max(weights), 1e-9)
        strength = [w / top for w in weights]
    else:
        strength, weights = [1.0] * len(edges), None
    parents: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        parents[b].append(a)
    depth: dict[str, int] = {}

    def d(n: str, seen: frozenset = frozenset()) -> int:
        if n not in depth:
            depth[n] = 1 + max((d(p, seen | {n}) for p in parents[n] if p not in seen), default=-1)
        return depth[n]

    for n in names:
        d(n)
    layers: dict[int, list[str]] = {}
    for n in names:
        layers.setdefault(depth[n], []).append(n)
    tallest = max(len(v) for v in layers.values())
    pos = {}  # layers run left to right, so long chains make the picture wide, not tall
    for lvl, members in layers.items():
        for i, n in enumerate(members):
            y = (i + 0.5) * tallest / len(members) + (0.35 if lvl % 2 else 0.0)
            pos[n] = (lvl * 1.6, -y)
    fig, ax = plt.subplots(
        layout="constrained",
        figsize=(min(2.5 + 1.9 * len(layers), 15), min(2.5 + 1.1 * tallest, 9)),
    )
    for (a, b), w in sorted(zip(edges, strength, strict=True), key=lambda e: e[1]):
        shade = "#777777" if weights is None else plt.cm.Greys(0.3 + 0.65 * w)
        ax.annotate(
            "",
            xy=pos[b],
            xytext=pos[a],
            arrowprops={
                "arrowstyle": "-|>",
                "color": shade,
                "lw": 0.9 if weights is None else 0.4 + 2.4 * w,
                "shrinkA": 12,
                "shrinkB": 12,
                "connectionstyle": "arc3,rad=0.12",
            },
        )
    for n, (x, y) in pos.items():
        ax.text(
            x,
            y,
            _short(n, 16),
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#eaf0f8", "ec": REAL},
        )
    ax.set_xlim(-0.9, 1.6 * max(layers) + 0.9)
    ax.set_ylim(-tallest - 0.4, 0.2)
    ax.axis("off")
    how = "arrows: parent → child" + (
        "; width: splits on the parent in the child's tree" if weights is not None else ""
    )
    ax.set_title(f"Learned structure: {len(edges)} dependencies ({how})", fontsize=10, y=1.0)
    return _uri(fig)


def column(real: Column, twin: Column, stats: dict[str, Any]) -> str:
    """Real vs twin distribution of one column, missing values included."""
    plt = deps.pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.3)
    m_r, m_t = float(real.missing.mean()), float(twin.missing.mean())
    if real.numeric:
        a, b = real.num[~np.isnan(real.num)], twin.num[~np.isnan(twin.num)]
        uniq = np.unique(a)
        if 0 < len(uniq) <= 30:
            keys = list(uniq)
            pa = np.array([np.mean(a == k) for k in keys]) * (1 - m_r)
            pb = np.array([np.mean(b == k) for k in keys]) * (1 - m_t) if len(b) else 0 * pa
            labels = [f"{k:g}" for k in keys]
            _bars(ax, labels, pa, pb, m_r, m_t)
        else:
            lo, hi = np.quantile(a, [0.0, 1.0]) if len(a) else (0.0, 1.0)
            edges = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            ax.hist(a, bins=edges, density=True, color=REAL, alpha=0.55, label="real")
            ax.hist(b, bins=edges, density=True, histtype="step", color=TWIN, lw=1.6, label="twin")
            ax.set_yticks([])
            if len(a) and np.max(np.unique(a, return_counts=True)[1]) > 0.3 * len(a):
                ax.set_yscale("log")  # a point mass (e.g. mostly zeros): show the tail too
            if m_r or m_t:
                ax.text(
                    0.98,
                    0.95,
                    f"missing: real {m_r:.1%}, twin {m_t:.1%}",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=7,
                )
            ax.tick_params(labelsize=7)
    else:
        top = categories(real, 12)
        vr = pd.Series(real.cat, dtype=object).value_counts() / max(len(real), 1)
        vt = pd.Series(twin.cat, dtype=object).value_counts() / max(len(twin), 1)
        pa = vr.reindex(top).fillna(0).to_numpy(float)
        pb = vt.reindex(top).fillna(0).to_numpy(float)
        other_r = 1 - m_r - pa.sum()
        other_t = 1 - m_t - pb.sum()
        labels = [_short(k, 14) for k in top]
        if other_r > 1e-9 or other_t > 1e-9:
            labels.append(OTHER)
            pa, pb = np.r_[pa, other_r], np.r_[pb, other_t]
        _bars(ax, labels, pa, pb, m_r, m_t)
    text = f"TV {stats['tv']:.3f}"
    if stats.get("ks") is not None:
        text += f" · KS {stats['ks']:.3f}"
    # a fixed title position skips matplotlib's costly automatic title placement
    ax.set_title(f"{_short(real.name, 26)}   ({text})", fontsize=9, y=1.01)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
    return _uri(fig)


def _bars(ax, labels, pa, pb, m_r, m_t) -> None:
    if m_r > 0 or m_t > 0:
        labels = [*labels, MISSING]
        pa, pb = np.r_[pa, m_r], np.r_[pb, m_t]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, pa, width=0.4, color=REAL, label="real")
    ax.bar(x + 0.2, pb, width=0.4, color=TWIN, label="twin")
    ax.set_xticks(x, labels, rotation=60 if len(labels) > 4 else 0, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def mi_heatmaps(names: list[str], mi_real: np.ndarray, mi_twin: np.ndarray) -> str:
    """Pairwise mutual information of real and twin rows, same colour scale, plus |difference|."""
    plt = deps.pyplot()
    p = len(names)
    size = min(3.2 + 0.22 * p, 8)
    fig, axes = plt.subplots(1, 3, layout="constrained", figsize=(3 * size, size))
    vmax = float(max(mi_real.max(initial=0), mi_twin.max(initial=0), 1e-6))
    labels = [_short(n, 14) for n in names]
    diff = np.abs(mi_real - mi_twin)
    for ax, mat, title, cmap, vm in (
        (axes[0], mi_real, "real data", "viridis", vmax),
        (axes[1], mi_twin, "twin samples", "viridis", vmax),
        (axes[2], diff, f"|real − twin| (max {diff.max(initial=0):.3f})", "viridis", vmax),
    ):
        im = ax.imshow(mat, cmap=cmap, vmin=0, vmax=vm)
        fs = 7 if p <= 25 else 5
        ax.set_xticks(range(p), labels, rotation=90, fontsize=fs)
        ax.set_yticks(range(p), labels if ax is axes[0] else [""] * p, fontsize=fs)
        ax.set_title(title, fontsize=10, y=1.01)
    fig.colorbar(im, ax=list(axes), shrink=0.7, label="mutual information (bits)")
    return _uri(fig)


def compare_bars(labels: list[str], pa, pb, title: str, xlabel: str = "share") -> str:
    """Horizontal bars of real vs twin shares for a list of items (n-grams, events, ...)."""
    plt = deps.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 0.22 * len(labels) + 1.2))
    fig.subplots_adjust(left=0.3, right=0.97, top=0.92, bottom=0.08)
    y = np.arange(len(labels))[::-1]
    ax.barh(y + 0.2, pa, height=0.4, color=REAL, label="real")
    ax.barh(y - 0.2, pb, height=0.4, color=TWIN, label="twin")
    shown = [
        _short(repr(x)[1:-1].replace(" ", "␣") if isinstance(x, str) else x, 22) for x in labels
    ]
    ax.set_yticks(y, shown)
    ax.tick_params(labelsize=7)
    ax.set_xlabel(_esc(xlabel), fontsize=8)
    ax.set_title(_esc(title), fontsize=9, y=1.0)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _uri(fig)


def length_hist(a: np.ndarray, b: np.ndarray, title: str) -> str:
    plt = deps.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.15)
    hi = int(max(a.max(initial=1), b.max(initial=1)))
    edges = np.arange(0, hi + 2) - 0.5 if hi <= 60 else np.linspace(0, hi + 1, 61)
    ax.hist(a, bins=edges, density=True, color=REAL, alpha=0.55, label="real")
    ax.hist(b, bins=edges, density=True, histtype="step", color=TWIN, lw=1.6, label="twin")
    ax.set_title(_esc(title), fontsize=9, y=1.0)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _uri(fig)


def paths(name: str, real: np.ndarray, sims: np.ndarray, show: int = 3) -> str:
    """The real series next to a few simulated paths of the same length."""
    plt = deps.pyplot()
    fig, ax = plt.subplots(figsize=(10, 2.6))
    fig.subplots_adjust(left=0.06, right=0.99, top=0.88, bottom=0.14)
    t = np.arange(len(real))
    ax.plot(t, real, color=REAL, lw=1.0, label="real")
    for k in range(min(show, len(sims))):
        ax.plot(t, sims[k], color=TWIN, lw=0.7, alpha=0.7, label="twin paths" if k == 0 else None)
    ax.set_title(f"{_short(name, 30)}: real vs simulated paths", fontsize=9, y=1.0)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    return _uri(fig)


def acf_plot(name: str, a_real: np.ndarray, a_twin: np.ndarray) -> str:
    plt = deps.pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 2.6))
    fig.subplots_adjust(left=0.12, right=0.97, top=0.88, bottom=0.16)
    lags = np.arange(len(a_real))
    ax.bar(lags - 0.2, a_real, width=0.4, color=REAL, label="real")
    ax.bar(lags + 0.2, a_twin, width=0.4, color=TWIN, label="twin (mean of paths)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("lag (steps)", fontsize=8)
    ax.set_title(f"{_short(name, 30)}: autocorrelation", fontsize=9, y=1.0)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    return _uri(fig)
