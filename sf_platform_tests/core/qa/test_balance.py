import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core.qa import balance
from sf_platform.core.qa.generate import generate_tasks
from sf_platform.core.qa.settings import QASettings
from sf_platform_tests.core.qa.scenes import random_scene

prio = st.integers(0, 2**64 - 1)


@settings(deadline=None, max_examples=80)
@given(st.lists(st.tuples(st.integers(0, 6), prio), min_size=1, max_size=300), st.floats(0.1, 1.0))
def test_category_cap_meets_share_and_keeps_the_most(rows, share):
    cat = np.array([r[0] for r in rows])
    pri = np.array([r[1] for r in rows], dtype=np.uint64)
    keep = balance.category_cap(cat, pri, share)
    kept = cat[keep]
    counts = np.bincount(cat)
    counts = counts[counts > 0]
    attainable = len(counts) >= math.ceil(1 / share - 1e-9)
    if not attainable:
        assert keep.all()  # documented: unattainable share -> nothing dropped
        return
    assert np.bincount(kept).max() <= share * len(kept) + 1e-9
    m = balance.category_limit(counts, share)
    if m is not None:  # one more per category would break the share
        assert m + 1 > share * np.minimum(counts, m + 1).sum() or (counts <= m).all()
        # Within a category, the rows kept are the best-priority ones.
        for c in np.unique(cat):
            p_keep, p_drop = pri[(cat == c) & keep], pri[(cat == c) & ~keep]
            if len(p_keep) and len(p_drop):
                assert p_keep.max() <= p_drop.min()


@settings(deadline=None, max_examples=80)
@given(st.lists(st.tuples(st.booleans(), prio), max_size=200))
def test_surplus_leaves_the_share_in_band(rows):
    flag = np.array([r[0] for r in rows], dtype=bool)
    pri = np.array([r[1] for r in rows], dtype=np.uint64)
    band = (0.45, 0.55)
    moved = balance.surplus(flag, pri, band)
    n_t, n_f = int(flag.sum()), int((~flag).sum())
    if moved.any():
        assert n_t != n_f and (flag[moved] == (n_t > n_f)).all()  # only the majority moves
    rest = flag[~moved]
    if min(n_t, n_f) == 0:
        assert len(rest) == 0
    else:
        assert band[0] - 1e-9 <= rest.mean() <= band[1] + 1e-9
        # Minimal: moving one row fewer would leave the band.
        if moved.any():
            back = len(rest) + 1
            assert max(rest.sum() + (n_t > n_f), (~rest).sum() + (n_f > n_t)) / back > band[1]


@settings(deadline=None, max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 4), prio), min_size=1, max_size=200), st.integers(1, 5))
def test_cap_per_group_and_rank_within(rows, cap):
    g = np.array([r[0] for r in rows])
    pri = np.array([r[1] for r in rows], dtype=np.uint64)
    r = balance.rank_within(g, pri)
    for k in np.unique(g):
        assert sorted(r[g == k].tolist()) == list(range((g == k).sum()))
    keep = balance.cap_per_group(g, pri, cap)
    assert (np.bincount(g[keep], minlength=5) == np.minimum(np.bincount(g, minlength=5), cap)).all()


def test_histogram_cap_flattens_to_ratio_of_median():
    bins = np.array([1] * 100 + [2] * 30 + [3] * 10 + [4] * 5 + [5] * 1)
    pri = np.arange(len(bins), dtype=np.uint64)[::-1].copy()
    keep = balance.histogram_cap(bins, pri, 2.0)
    assert np.bincount(bins[keep]).tolist() == [0, 20, 20, 10, 5, 1]  # median bin 10 -> cap 20


@pytest.fixture(scope="module")
def generated():
    return generate_tasks(random_scene(1500, seed=7), QASettings())


@pytest.mark.parametrize("task", ["near_far", "left_right", "perspective"])
def test_generated_relations_are_balanced(generated, task):
    rep = balance.balance_report(generated[task])
    assert rep["rows"] > 300
    assert rep["yes_no"]["within_band"] is True
    if task != "perspective":
        assert rep["first_mentioned_correct"]["within_band"] is True
    for axis in rep["polarity"].values():
        assert axis["within_band"] is True, rep
    assert rep["category"]["within_limit"] is True


def test_generated_category_share_and_counts(generated):
    s = QASettings()
    for task, table in generated.items():
        rep = balance.balance_report(table)
        assert rep["category"]["max_share"] <= s.max_category_share + 1e-9, (task, rep["category"])
    hist = balance.balance_report(generated["counting"])["count_histogram"]
    sizes = np.array(list(hist.values()))
    assert sizes.max() <= s.count_max_bin_ratio * np.median(sizes) + 1
    assert all(1 <= int(k) <= s.count_cap for k in hist)


def test_report_flags_an_unbalanced_table(generated):
    t = generated["near_far"]
    yes_only = t.filter(np.asarray([a != "No." for a in t.column("answer").to_pylist()]))
    rep = balance.balance_report(yes_only)
    assert rep["yes_no"]["share"] == 1.0 and rep["yes_no"]["within_band"] is False
