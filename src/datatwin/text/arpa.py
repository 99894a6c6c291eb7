"""Export a fitted n-gram twin as an ARPA back-off language model (read by KenLM, SRILM).

An interpolated model converts exactly to back-off form: every seen n-gram is listed with its
full interpolated log10 probability, and every context with log10 gamma(context) as its back-off
weight, so p(w | h) = p_listed(h w) if listed, else bow(h) * p(w | h'). Symbols are written one
per "word": printable characters as themselves, others as <U+XXXX>; <s>, </s> and <unk> are the
block begin, end and the escape. (The ARPA <unk> is the escape itself; the uniform choice of
*which* unseen character is not part of the ARPA file.)
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..modelfile import atomic_write_bytes
from .counts import BOS, UNK


def arpa_text(model, names: list[str]) -> str:
    """The ARPA file for `model` (an NgramModel) with symbol names for ids 3.."""
    words = ["<s>", "</s>", "<unk>", *names]
    base = model.base
    pfs, _ = model.entry_probs()
    sections: list[list[str]] = []
    strings_prev: Any = None
    for k, (kk, lev) in enumerate(zip(model.keys, model.levels, strict=True)):
        parent, sym = kk // base, kk % base
        live = model.counts[k] > 0
        if k == 0:
            strings = np.array(words, dtype=object)[sym]
            keep = live | (sym == BOS) | (sym == UNK)
        else:
            strings = strings_prev[parent] + " " + np.array(words, dtype=object)[sym]
            keep = live
        has_bow = model.levels[k + 1].seen if k + 1 <= model.order else np.zeros(len(kk), bool)
        lines = []
        logp = np.log10(np.maximum(pfs[k], 1e-300))
        gam: Any = model.levels[k + 1].gamma if k + 1 <= model.order else None
        for i in np.flatnonzero(keep):
            lp = -99.0 if (k == 0 and sym[i] == BOS) else logp[i]
            if has_bow[i]:
                lines.append(f"{lp:.7g}\t{strings[i]}\t{math.log10(gam[i]):.7g}")
            else:
                lines.append(f"{lp:.7g}\t{strings[i]}")
        if k == 0 and not np.any(sym == UNK):
            lines.append(f"{math.log10(lev.gamma[0] / model.n_outcomes):.7g}\t<unk>")
        sections.append(lines)
        strings_prev = strings
    out = io.StringIO()
    out.write("\\data\\\n")
    for k, lines in enumerate(sections):
        out.write(f"ngram {k + 1}={len(lines)}\n")
    for k, lines in enumerate(sections):
        out.write(f"\n\\{k + 1}-grams:\n")
        out.write("\n".join(lines))
        out.write("\n")
    out.write("\n\\end\\\n")
    return out.getvalue()


def write_arpa(twin, path: str | Path) -> None:
    """Write `twin`'s model as an ARPA file, atomically."""
    text = arpa_text(twin.model, twin.symbol_names())
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


__all__ = ["arpa_text", "write_arpa"]
