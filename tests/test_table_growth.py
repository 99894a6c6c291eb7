"""Growing decision trees fast finds the same trees: the pruned split search, the counts kept
per node, the category ordering and the vectorised per-predictor sums against their plain
definitions."""

from __future__ import annotations

import numpy as np
import pytest

from datatwin.tabular import growth, splitbatch, splits
from datatwin.tabular.bayesnet import marginal_prior
from datatwin.tabular.counting import FamilyCounter


def _table(n: int = 4000, seed: int = 0):
    """Five columns: two categoricals (8 and 12 states), a 30-state ordered one, a child that
    depends on all three, and a 6-state child of the child."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, n)
    b = rng.integers(0, 12, n)
    o = rng.integers(0, 30, n)
    logit = (np.isin(a, [1, 4, 6]) * 1.5) + (b % 3 == 0) * 1.0 + (o > 17) * 0.8
    c = (rng.random(n) < 1 / (1 + np.exp(-logit + 1.5))).astype(np.int64) + 2 * (a == 7)
    d = (c * 2 + rng.integers(0, 2, n) + (b > 9)) % 6
    cols = [a, b, o, c, d]
    cards = np.array([8, 12, 30, 4, 6])
    ranks: list[np.ndarray | None] = [None, None, np.arange(30), None, None]
    return cols, cards, ranks


def _grow_all(cols, cards, ranks):
    counter = FamilyCounter(cols, cards)
    pseudo = [np.zeros(int(k)) for k in cards]
    return growth.grow_trees(counter, pseudo, [0, 1, 2, 3, 4], ranks)


def _same(net1, net2) -> None:
    for t1, t2 in zip(net1.cpts, net2.cpts, strict=True):
        assert np.array_equal(t1.feature, t2.feature)
        assert np.array_equal(t1.mask, t2.mask)
        assert np.array_equal(t1.probs, t2.probs)


def _segments(blocks: list[np.ndarray]) -> splits.Segments:
    """Blocks as consecutive segments of predictors 0, 1, ..."""
    sizes = np.array([len(b) for b in blocks])
    states = np.concatenate([np.arange(len(b)) for b in blocks])
    return splits.Segments(np.arange(len(blocks)), sizes, states, np.concatenate(blocks))


def _reference_order(block: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The ordering by its definition: a full SVD of √n (p − p̄)."""
    n = block.sum(axis=1)
    p = (block + q[None, :]) / (n + 1.0)[:, None]
    mean = (n[:, None] * p).sum(axis=0) / n.sum()
    _, _, vt = np.linalg.svd(np.sqrt(n)[:, None] * (p - mean), full_matrices=False)
    v = vt[0] if vt[0][np.argmax(np.abs(vt[0]))] > 0 else -vt[0]
    return np.argsort((p - mean) @ v, kind="stable")


def test_category_order_is_the_main_axis_of_the_child_distributions():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(3, 40))
        c = int(rng.integers(3, 60))
        block = rng.poisson(rng.gamma(0.5, 5, (c, k)))
        block = block[block.sum(axis=1) > 0]
        if len(block) < 3:
            continue
        q = rng.dirichlet(np.ones(k))
        assert np.array_equal(splits.category_order(block, q), _reference_order(block, q))


def test_category_order_recovers_a_planted_split():
    """States {1, 4, 6} make the child likely, the others unlikely: the order puts one group
    before the other, so a single threshold separates them."""
    rng = np.random.default_rng(2)
    k = 5
    block = np.zeros((10, k), dtype=np.int64)
    for s in range(10):
        p = np.r_[0.7, 0.1, 0.1, 0.05, 0.05] if s in (1, 4, 6) else np.r_[0.05, 0.05, 0.1, 0.1, 0.7]
        block[s] = rng.multinomial(400, p)
    order = splits.category_order(block, np.full(k, 1 / k))
    first = set(order[:3].tolist())
    assert first == {1, 4, 6} or set(order[-3:].tolist()) == {1, 4, 6}


def test_pruned_split_search_finds_the_same_trees(monkeypatch):
    cols, cards, ranks = _table()
    fast = _grow_all(cols, cards, ranks)
    # no predictor skipped: every categorical ordered and scanned
    monkeypatch.setattr(
        splitbatch, "_bounds", lambda lv, costly: np.full(len(costly.start), np.inf)
    )
    _same(fast, _grow_all(cols, cards, ranks))
    assert sum(t.n_leaves for t in fast.cpts) > 5  # the table has structure to find


def test_multiway_gain_bounds_every_binary_split():
    rng = np.random.default_rng(3)
    for _ in range(100):
        block = rng.poisson(3.0, (int(rng.integers(3, 9)), 4))
        block = block[block.sum(axis=1) > 0]
        if len(block) < 3:
            continue
        bound = splits._multiway_gains(_segments([block]))[0]
        totals = block.sum(axis=0)
        for mask in range(1, 2 ** (len(block) - 1)):
            left = block[[(mask >> i) & 1 == 1 for i in range(len(block))]].sum(axis=0)
            right = totals - left
            g = sum(
                float(np.sum(x[x > 0] * np.log(x[x > 0]))) - x.sum() * np.log(max(x.sum(), 1))
                for x in (left, right)
            )
            assert g <= bound + 1e-9


def test_valid_threshold_range_holds_for_every_order():
    rng = np.random.default_rng(4)
    for _ in range(50):
        blocks = []
        for _ in range(int(rng.integers(1, 4))):  # several predictors at once
            block = rng.poisson(rng.gamma(0.7, 4, (int(rng.integers(2, 9)), 1)) * np.ones((1, 3)))
            blocks.append(block[block.sum(axis=1) > 0])
        blocks = [b for b in blocks if len(b) >= 2]
        if not blocks:
            continue
        lo, hi = splits._valid_ranges(_segments(blocks), 5)
        for j, block in enumerate(blocks):
            n = block.sum(axis=1)
            seen = []
            for _ in range(20):
                s = np.cumsum(n[rng.permutation(len(n))])[:-1]
                seen.append(int(np.sum((s >= 5) & (n.sum() - s >= 5))))
            assert lo[j] <= min(seen) and max(seen) <= hi[j]
            # by definition: a prefix of t + 1 states holds between the t + 1 smallest and
            # the t + 1 largest counts
            small, large = np.cumsum(np.sort(n))[:-1], np.cumsum(np.sort(n)[::-1])[:-1]
            total = n.sum()
            assert lo[j] == np.sum((small >= 5) & (total - large >= 5))
            assert hi[j] == np.sum((large >= 5) & (total - small >= 5))


def test_n_log_n_table_and_eigenvector_are_the_library_values():
    from scipy.linalg import eigh
    from scipy.special import xlogy

    counts = np.array([0, 1, 2, 3, 1000, 77777])
    assert np.array_equal(splits._nlogn(counts, 77777), xlogy(counts, counts))
    rng = np.random.default_rng(6)
    for _ in range(50):
        d = rng.normal(size=(int(rng.integers(2, 40)), int(rng.integers(2, 30))))
        a = d.T @ d
        k = len(a)
        assert np.array_equal(
            splits._top_eigenvector(a), eigh(a, subset_by_index=[k - 1, k - 1])[1][:, 0]
        )


def _reference_tree(cols, cards, child, preds, prior, ranks, weights=None, min_leaf=5):
    """A tree grown by the plain definition: depth first, every node's counts from its own
    rows, its split by `splits.best_split`."""
    k = int(cards[child])
    if not preds:
        return growth.grow(cols, cards, child, preds, prior, ranks, min_leaf, weights=weights)
    pr = splits.Predictors.of([int(cards[p]) for p in preds], ranks)
    total = int(pr.off[-1])
    keys = growth.global_states(cols, cards, preds).astype(np.int64) * k + cols[child][:, None]
    g = growth._Growth()
    stack = [(g.node(), np.arange(len(cols[child])), prior)]
    while stack:
        node, rows, q = stack.pop()
        w = None if weights is None else weights[rows]
        n = len(rows) if w is None else int(w.sum())
        best = None
        if n >= 2 * min_leaf:
            flat = keys[rows].ravel()
            ww = None if w is None else np.repeat(w.astype(float), len(preds))
            c = np.bincount(flat, weights=ww, minlength=total * k).astype(np.int64)
            c = c.reshape(total, k)
            present = np.flatnonzero(c.sum(axis=1))
            xs = np.flatnonzero(c.sum(axis=0))
            nc = splits.NodeCounts(present, xs, c[present][:, xs])
            best = splits.best_split(nc, pr, k, q, min_leaf)
        if best is None:
            g.make_leaf(node, q)
            continue
        j, mask, lq, rq = best
        go_left = mask[cols[preds[j]][rows]]
        lo, hi = g.make_split(node, preds[j], mask)
        stack += [(hi, rows[~go_left], rq), (lo, rows[go_left], lq)]
    return g.finish(k).bind(cards)


def _random_table(rng, n: int):
    """Columns of random cardinality, each depending on a few earlier ones; some ordered."""
    d = int(rng.integers(3, 7))
    cards = rng.integers(2, 25, d)
    cols: list[np.ndarray] = []
    for j in range(d):
        base = rng.integers(0, cards[j], n)
        if j:
            for p in rng.choice(j, min(j, 2), replace=False):
                base = np.where(
                    rng.random(n) < 0.6, (cols[p] * (1 + j) + base % 2) % cards[j], base
                )
        cols.append(base.astype(np.int64))
    ranks: list[np.ndarray | None] = [
        rng.permutation(int(c)) if rng.random() < 0.5 else None for c in cards
    ]
    return cols, np.array(cards), ranks


@pytest.mark.parametrize("seed", range(6))
def test_level_wise_growth_equals_the_depth_first_definition(seed):
    """Every tree, grown a level at a time with counts derived from the parent's, equals the
    tree grown node by node from each node's rows (weighted rows too)."""
    from datatwin.tabular.counting import distinct_rows

    rng = np.random.default_rng(seed)
    cols, cards, ranks = _random_table(rng, int(rng.integers(300, 3000)))
    weights = None
    if seed % 2:
        cols, weights = distinct_rows([c % 4 if i % 2 else c for i, c in enumerate(cols)])
        cards = np.array([min(int(k), 4) if i % 2 else int(k) for i, k in enumerate(cards)])
        ranks = [None if i % 2 else r for i, r in enumerate(ranks)]
    min_leaf = int(rng.choice([1, 5, 20]))
    splits_seen = 0
    for child in range(len(cols)):
        preds = list(range(child))
        prior = marginal_prior(
            cols[child], int(cards[child]), np.full(int(cards[child]), 0.5), weights
        )
        want = _reference_tree(
            cols, cards, child, preds, prior, [ranks[p] for p in preds], weights, min_leaf
        )
        got = growth.grow(
            cols, cards, child, preds, prior, [ranks[p] for p in preds], min_leaf, weights=weights
        )
        for f in ("feature", "left", "right", "mask_off", "mask", "leaf", "probs"):
            assert np.array_equal(getattr(want, f), getattr(got, f)), f
        splits_seen += int((got.feature >= 0).sum())
    assert splits_seen > 0


def test_a_tree_uses_the_root_prior_without_predictors():
    cols, cards, ranks = _table(n=50)
    prior = marginal_prior(cols[0], 8, np.zeros(8))
    tree = growth.grow(cols, cards, 0, [], prior, [])
    assert tree.n_leaves == 1 and np.allclose(tree.probs[0], prior)


# ---- distinct rows as sufficient statistics ------------------------------------------------
def test_counts_over_distinct_rows_equal_counts_over_all_rows():
    from datatwin.tabular.counting import distinct_rows

    cols, cards, ranks = _table(n=3000, seed=6)
    cols = [c % 3 if i == 2 else c for i, c in enumerate(cols)]  # few distinct rows
    cards = cards.copy()
    cards[2] = 3
    ranks[2] = np.arange(3)
    plain = FamilyCounter(cols, cards)
    uniq, w = distinct_rows(cols)
    assert len(w) < 3000 and int(w.sum()) == 3000
    weighted = FamilyCounter(uniq, cards, w)
    for child, parents in [(3, ()), (3, (0, 1)), (4, (0, 2, 3)), (1, (4,))]:
        a, b = plain.counts(child, parents), weighted.counts(child, parents)
        for f in ("cfg_keys", "cfg_n", "fam_cfg", "fam_x", "fam_n"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), f
    _same(_grow_all(cols, cards, ranks), _grow_weighted(uniq, cards, ranks, w))


def _plain_counts(cols, cards, child, parents, weights=None):
    """A family's counts by their definition: the sorted distinct (configuration, state)
    keys of every row, configurations in mixed radix, first parent most significant."""
    cfg = np.zeros(len(cols[0]), dtype=np.int64)
    for p in parents:
        cfg = cfg * int(cards[p]) + cols[p]
    fam = cfg * int(cards[child]) + cols[child]
    keys, inverse = np.unique(fam, return_inverse=True)
    n = np.bincount(inverse, weights=weights).astype(np.int64)
    return keys // int(cards[child]), keys % int(cards[child]), n


@pytest.mark.parametrize("weighted", [False, True])
def test_family_counts_from_kept_keys_equal_their_definition(weighted):
    """A family counted from the kept keys of a family one parent smaller (in any order the
    search asks for them, dense or sparse key spaces) has the counts of its definition."""
    from datatwin.tabular import counting
    from datatwin.tabular.counting import distinct_rows

    rng = np.random.default_rng(11)
    cards = np.array([7, 30, 5, 40, 3, 25, 60])
    cols = [rng.integers(0, int(c), 6000) for c in cards]
    cols[6] = (cols[1] * 2 + cols[3] + rng.integers(0, 3, 6000)) % 60
    w = None
    if weighted:
        cols, w = distinct_rows([c % 4 if i in (0, 2) else c for i, c in enumerate(cols)])
    counter = FamilyCounter(cols, cards, w)
    extended = sparse = 0
    for _ in range(120):
        child = int(rng.integers(0, len(cards)))
        others = [v for v in range(len(cards)) if v != child]
        base = sorted(rng.choice(others, int(rng.integers(0, 4)), replace=False).tolist())
        for u in rng.permutation([v for v in others if v not in base])[:4]:
            parents = tuple(sorted([*base, int(u)]))
            if (child, parents) in counter._cache:
                continue
            extended += any(
                (child, parents[:i] + parents[i + 1 :]) in counter._bases
                for i in range(len(parents))
            )
            got = counter.counts(child, parents)
            space = counting.config_space(cards, parents) * int(cards[child])
            sparse += space > max(counting._DENSE_LIMIT, 4 * len(cols[0]))
            cfg, x, n = _plain_counts(cols, cards, child, parents, w)
            seen_cfg = got.cfg_keys[got.fam_cfg]
            assert np.array_equal(seen_cfg, cfg) and np.array_equal(got.fam_x, x)
            assert np.array_equal(got.fam_n, n)
            assert np.array_equal(got.cfg_n, np.bincount(got.fam_cfg, weights=got.fam_n))
    assert extended > 40
    assert sparse > 0  # key spaces counted by sorting too


def _grow_weighted(cols, cards, ranks, w):
    counter = FamilyCounter(cols, cards, w)
    pseudo = [np.zeros(int(k)) for k in cards]
    return growth.grow_trees(counter, pseudo, [0, 1, 2, 3, 4], ranks)


def test_chunked_counting_equals_in_memory_counting():
    from datatwin.tabular.counting import distinct_rows, merge_rows

    cols, cards, _ = _table(n=5000, seed=7)
    cols = [c % 4 for c in cols]
    cards = np.full(5, 4)
    whole = distinct_rows(cols)
    parts = [distinct_rows([c[a : a + 1200] for c in cols]) for a in range(0, 5000, 1200)]
    merged = merge_rows(parts)
    assert np.array_equal(whole[1], merged[1])
    for a, b in zip(whole[0], merged[0], strict=True):
        assert np.array_equal(a, b)
    fa = FamilyCounter(cols, cards).counts(4, (0, 1, 3))
    fb = FamilyCounter(merged[0], cards, merged[1]).counts(4, (0, 1, 3))
    assert np.array_equal(fa.fam_n, fb.fam_n) and np.array_equal(fa.cfg_n, fb.cfg_n)


def test_token_columns_keep_first_appearance_order_through_take(tmp_path):
    import pandas as pd

    from datatwin.reader import read_table

    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"x{i % 7},{i % 3}\n" for i in range(500)))
    raw = read_table(path)
    sub = raw.take(np.arange(2, 500, 3))
    for table, rows in ((raw, np.arange(500)), (sub, np.arange(2, 500, 3))):
        for c in table.columns:
            col = table.cells[c]
            want = [f"x{i % 7}" if c == "a" else str(i % 3) for i in rows]
            assert list(col.text()) == want
            assert list(col.uniques) == list(pd.unique(np.array(want, dtype=object)))
            assert col.codes.dtype == np.int8


def test_gamma_tables_give_the_same_bde_scores_to_the_bit():
    from datatwin.tabular.scores import GammaTables, bde_alpha

    cols, cards, _ = _table(n=3000, seed=8)
    counter = FamilyCounter(cols, cards)
    for child, parents in [(3, (0,)), (3, (0, 1)), (4, (3,)), (4, (0, 1, 2)), (2, (0, 1))]:
        prior = marginal_prior(cols[child], int(cards[child]), np.full(int(cards[child]), 0.5))
        fc = counter.counts(child, parents)
        assert bde_alpha(fc, prior) == bde_alpha(fc, prior, tables=GammaTables(prior))


def test_pairwise_mutual_information_over_distinct_rows_equals_over_all_rows():
    from datatwin.tabular.counting import distinct_rows
    from datatwin.tabular.screen import pairwise_mi

    cols, cards, _ = _table(n=2000, seed=9)
    cols = [c % 3 for c in cols]
    cards = np.full(5, 3)
    uniq, w = distinct_rows(cols)
    plain = pairwise_mi(FamilyCounter(cols, cards))
    assert np.allclose(plain, pairwise_mi(FamilyCounter(uniq, cards, w)), rtol=1e-12, atol=1e-15)
    assert plain.max() > 0.01


def test_fit_rows_scored_from_the_encoding_are_the_rows_encoded_again():
    """The training rows' distinct encoding made while fitting is what encoding them again
    for scoring gives (the same state rows, counts and within-state sum)."""
    import pandas as pd

    from datatwin.reader import read_table
    from datatwin.tabular.rows import encode_rows
    from datatwin.tabular.schema import infer_schema
    from datatwin.tabular.structures import _DEDUP_ROWS, FitCache

    rng = np.random.default_rng(3)
    n = _DEDUP_ROWS + 5000
    frame = pd.DataFrame(
        {
            "a": rng.choice(["x", "y", "z"], n),
            "b": rng.integers(0, 50, n),
            "c": np.round(rng.normal(size=n), 2),
        }
    )
    raw = read_table(frame)
    enc = FitCache().encoding(raw, infer_schema(raw, None), 10, 2000)
    assert id(raw) in enc.encoded_rows
    got, want = enc.encoded(raw), encode_rows(raw, enc.codecs, True)
    assert got.counts is not None and want.counts is not None
    assert np.array_equal(got.counts, want.counts) and got.within == want.within
    for a, b in zip(got.columns, want.columns, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("seed", [1, 2])
def test_trees_are_the_same_with_keys_made_per_node(monkeypatch, seed):
    """Past `_KEY_CELLS` a tree's keys are made node by node from the states (no keys per
    tree, no counting over all cells): the same trees, weighted rows too."""
    from datatwin.tabular.counting import distinct_rows

    rng = np.random.default_rng(seed)
    cols, cards, ranks = _random_table(rng, 2500)
    weights = None
    if seed % 2:
        cols, weights = distinct_rows([c % 3 for c in cols])
        cards = np.minimum(cards, 3)
        ranks = [None for _ in cards]
    grown = []
    for cells in (growth._KEY_CELLS, 0):
        monkeypatch.setattr(growth, "_KEY_CELLS", cells)
        counter = FamilyCounter(cols, cards, weights)
        pseudo = [np.full(int(k), 0.5) for k in cards]
        grown.append(growth.grow_trees(counter, pseudo, list(range(len(cols))), ranks))
    _same(*grown)
    assert sum(int((t.feature >= 0).sum()) for t in grown[0].cpts) > 0
