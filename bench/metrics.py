"""Metrics shared by the benchmark runners."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _edge_set(edges: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for edge in edges:
        u, v = edge
        if u == v:
            raise ValueError(f"self-loop {u!r} -> {v!r} is not a DAG edge")
        out.add((str(u), str(v)))
    for u, v in out:
        if (v, u) in out:
            raise ValueError(f"both {u!r} -> {v!r} and {v!r} -> {u!r} given: not a DAG")
    return out


def shd(edges_learned: Iterable[Sequence[str]], edges_true: Iterable[Sequence[str]]) -> int:
    """Structural Hamming distance between two DAGs given as edge lists.

    Counts, over unordered node pairs, every pair joined in one graph but not the other
    (a missing or an extra edge: 1 each) and every pair joined in both with opposite
    directions (a reversed edge: 1, not 2). The graphs are compared as DAGs, not as
    equivalence classes (CPDAGs), so a reversal inside a Markov equivalence class counts.
    """
    learned = _edge_set(edges_learned)
    true = _edge_set(edges_true)
    # Every learned edge absent from the truth is extra or reversed: 1 each.  A reversal also
    # leaves its mirror in ``true - learned``; that one is not counted again.
    extra_or_reversed = len(learned - true)
    missing = sum(1 for u, v in true - learned if (v, u) not in learned)
    return extra_or_reversed + missing
