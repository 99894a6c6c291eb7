"""Evaluation and reports of twins: fidelity, privacy, and a self-contained HTML page.

Needs the optional extra: pip install "datatwin[report]" (matplotlib, scikit-learn).

    from datatwin.report import evaluate, write_report
    evaluate(twin, "holdout.csv", train="train.csv")   # {"fidelity": {...}, "privacy": {...}}
    write_report(twin, "holdout.csv", "report.html", train="train.csv")
"""

from __future__ import annotations

from .commands import evaluate, render_report, write_report

__all__ = ["evaluate", "render_report", "write_report"]
