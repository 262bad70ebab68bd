"""conditional_counting: "How many chairs are to the left of the person?" -- counting under a condition.

A conditional count is a counting row (DESIGN.md amendments) whose ``fact.predicate`` names
the condition (:data:`count_templates.CONDITIONS`): ``count_left_of`` / ``count_right_of`` /
``count_closer_than`` / ``count_farther_than`` / ``count_larger_than`` a named reference
object (``fact.object`` = its id), ``count_in_left_half`` / ``count_in_right_half`` of the
image, ``count_facing_camera`` / ``count_facing_away`` (people, from the pose facing).
``fact.subject`` is the counted category, ``fact.value`` and the answer the count, and
``objects`` lists the counted instances, so every row can be re-checked instance by instance.

When a count is asked -- one wrong instance makes the whole answer wrong, so the rules are
those of the pairwise tasks applied to *every* instance:

- the category is one ``counting`` would ask about: clean (no crowd/group/depiction/fake/
  reflected box, not incomplete), every instance boxed, at most ``count_cap`` instances;
- every instance clears the relation's margin, with the very rule the pairwise task uses
  (:meth:`SceneView.clearly_left_of` for left/right and the image halves -- a half is "left
  of the vertical centre line" -- the near_far depth margin for closer/farther, the referring
  size ratio for larger, ``min_facing_confidence`` for facing).  One instance inside the
  uncertainty band and the question is not asked;
- the reference object is the only instance of its clean category (named "the person", never
  by box or attribute) and of another category than the counted one;
- zero is a valid answer, but only this way: the category is present and every instance
  clearly fails the condition ("how many chairs are left of the person?" "0" with three
  chairs clearly on the right).

Balance: at most ``max_pairs_per_image`` rows per image, the category share cap, the count
histogram flattened as in ``counting`` (no value over ``count_max_bin_ratio`` x the median
bin), then no answer value above ``conditional_count_max_value_share`` of the rows (the share
of each value is what the quality suite checks; without the caps "0" and "1" dominate).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.category_names import plural_name
from sf_platform.core.qa import balance
from sf_platform.core.qa.count_templates import CONDITIONS, WITH_REFERENCE
from sf_platform.core.qa.ids import combine, mix
from sf_platform.core.qa.references import references
from sf_platform.core.qa.relation import SALT_SELECT, SALT_TEMPLATE
from sf_platform.core.qa.rows import Rows, build, task_hash
from sf_platform.core.qa.scene_view import (
    FACING_AWAY,
    FACING_TOWARD,
    SceneView,
    clearly_left_of,
    expand_ranges,
    group_starts,
)
from sf_platform.core.qa.templates import pick, render

TASK = "conditional_counting"
CODE = {c: k for k, c in enumerate(CONDITIONS)}
CENTRE_LINE = np.array([[500, 0, 500, 1000]])  # the image's vertical centre, a zero-width box


def _groups(view: SceneView) -> tuple[np.ndarray, np.ndarray]:
    """(members sorted by (image, category) group, group offsets) of countable categories."""
    s = view.settings
    ok = (
        view.countable
        & view.has_box
        & view.category_clean
        & view.all_boxed
        & (view.n_instances <= s.count_cap)
    )
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(view.cat_group[idx], kind="stable")]
    return idx, group_starts(view.cat_group[idx])


def _with_reference(view: SceneView, cond: str, obj: np.ndarray, ref: np.ndarray):
    """Per (instance, reference): (clears the margin, meets the condition, clearance, threshold)."""
    s = view.settings
    if cond in ("count_left_of", "count_right_of"):
        left, gap = view.clearly_left_of(obj, ref)
        right, _ = view.clearly_left_of(ref, obj)
        truth = left if cond == "count_left_of" else right
        return left | right, truth, np.abs(gap), np.full(len(obj), 1000.0 * s.left_right_margin)
    if cond in ("count_closer_than", "count_farther_than"):
        # near_far's endpoint rule: reliable depth, not truncated, not too small for depth stats
        ok = view.depth_ok[obj] & view.depth_ok[ref] & ~view.truncated[obj] & ~view.truncated[ref]
        ok &= view.nameable[obj]
        ok &= view.depth_kind[obj] == view.depth_kind[ref]
        gap = view.near_score[obj] - view.near_score[ref]
        clear = ok & (np.abs(gap) > view.near_margin[ref])
        truth = gap > 0 if cond == "count_closer_than" else gap < 0
        return clear, clear & truth, np.abs(gap), view.near_margin[ref]
    # count_larger_than: apparent size (box area) by the referring size ratio, either way.
    r = s.referring_size_ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = view.area_frac[obj] / view.area_frac[ref]
    clear = (ratio >= r) | (ratio <= 1.0 / r)
    return clear, ratio >= r, np.maximum(ratio, 1.0 / ratio), np.full(len(obj), r)


def _without_reference(view: SceneView, cond: str, obj: np.ndarray):
    """Per instance: (clears the margin, meets the condition, clearance, threshold)."""
    s = view.settings
    if cond in ("count_in_left_half", "count_in_right_half"):
        line = np.repeat(CENTRE_LINE, len(obj), axis=0)
        m = 1000.0 * s.left_right_margin
        left, gap = clearly_left_of(view.box[obj], line, m, s.left_right_max_overlap)
        right, _ = clearly_left_of(line, view.box[obj], m, s.left_right_max_overlap)
        truth = left if cond == "count_in_left_half" else right
        return left | right, truth, np.abs(gap), np.full(len(obj), m)
    conf = view.facing_confidence[obj]
    clear = (view.facing[obj] >= 0) & (conf >= s.min_facing_confidence)
    want = FACING_TOWARD if cond == "count_facing_camera" else FACING_AWAY
    return clear, clear & (view.facing[obj] == want), conf, np.full(len(obj), s.min_facing_confidence)


def _candidates(view: SceneView, ref_phrase: pa.Array):
    """Every askable (group, condition, reference) with its count and counted instances.

    Returns per candidate (group, condition code, reference index or -1, count, smallest
    clearance, its threshold) and the flat (candidate, counted instance) pairs.
    """
    members, offsets = _groups(view)
    sizes = np.diff(offsets)
    n_groups = len(sizes)
    g_img = view.img[members[offsets[:-1]]]
    g_cat = view.cat[members[offsets[:-1]]]
    ref_ok = ref_phrase.is_valid().to_numpy(zero_copy_only=False)
    refs = np.flatnonzero(view.nameable & ref_ok)
    n_ref = np.bincount(view.img[refs], minlength=view.n_images)
    ref_start = np.r_[0, np.cumsum(n_ref)][:-1]
    # (group, reference) pairs in one image, the reference of another category.
    pg = np.repeat(np.arange(n_groups), n_ref[g_img])
    pr = refs[expand_ranges(ref_start[g_img], n_ref[g_img])]
    other = view.cat[pr] != g_cat[pg]
    pg, pr = pg[other], pr[other]
    # Each candidate expanded to its instances.
    parts = []
    for cond in CONDITIONS:
        with_ref = cond in WITH_REFERENCE
        cg, cr = (pg, pr) if with_ref else (np.arange(n_groups), np.full(n_groups, -1))
        owner = np.repeat(np.arange(len(cg)), sizes[cg])
        obj = members[expand_ranges(offsets[:-1][cg], sizes[cg])]
        if with_ref:
            clear, truth, clearance, thr = _with_reference(view, cond, obj, cr[owner])
        else:
            clear, truth, clearance, thr = _without_reference(view, cond, obj)
        fails = np.bincount(owner, weights=~clear, minlength=len(cg))
        count = np.bincount(owner, weights=truth, minlength=len(cg)).astype(np.int64)
        low = np.full(len(cg), np.inf)
        np.minimum.at(low, owner, np.where(np.isfinite(clearance), clearance, np.inf))
        threshold = np.zeros(len(cg))
        threshold[owner] = thr
        parts.append((cg, np.full(len(cg), CODE[cond]), cr, count, low, threshold, fails == 0,
                      owner[truth], obj[truth]))
    offs = np.cumsum([0] + [len(p[0]) for p in parts])
    cat = lambda k: np.concatenate([p[k] for p in parts])
    ok = cat(6)
    counted_cand = np.concatenate([p[7] + o for p, o in zip(parts, offs[:-1])])
    counted_obj = cat(8)
    return (cat(0), cat(1), cat(2), cat(3), cat(4), cat(5), ok), (counted_cand, counted_obj), (members, offsets)


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    phrase = references(view, ("unique",), TASK, fallback_box=False).phrase
    cands, (c_cand, c_obj), (members, offsets) = _candidates(view, phrase)
    group, cond, ref, count, margin, threshold, ok = cands
    first = members[offsets[:-1]][group]
    img = view.img[first]
    cat_hash = view.category_hash[first]
    ref_hash = np.where(ref >= 0, view.obj_hash[np.maximum(ref, 0)], np.uint64(0))
    key = combine(cat_hash, np.asarray(cond, dtype=np.uint64), ref_hash)
    pri = mix(combine(view.image_hash[img], task_hash(TASK), key, s.seed), SALT_SELECT)
    keep = ok.copy()
    keep[keep] = balance.cap_per_group(img[keep], pri[keep], s.max_pairs_per_image)
    keep[keep] = balance.category_cap(cat_hash[keep], pri[keep], s.max_category_share)
    keep[keep] = balance.histogram_cap(count[keep], pri[keep], s.count_max_bin_ratio)
    keep[keep] = balance.category_cap(count[keep], pri[keep], s.conditional_count_max_value_share)
    rows = np.flatnonzero(keep)
    # Counted instances of the kept rows, in object order within each row.
    new_id = np.full(len(keep), -1)
    new_id[rows] = np.arange(len(rows))
    sel = keep[c_cand]
    o = np.lexsort((c_obj[sel], new_id[c_cand[sel]]))
    mentioned = c_obj[sel][o]
    n_counted = np.bincount(new_id[c_cand[sel]], minlength=len(rows))
    cond_r, ref_r = cond[rows], ref[rows]
    category = view.category.take(pa.array(first[rows]))
    uniq = pc.unique(category)
    plurals = pa.array([plural_name(c) for c in uniq.to_pylist()], pa.string())
    ref_phrase = pc.if_else(pa.array(ref_r >= 0), phrase.take(pa.array(np.maximum(ref_r, 0))), "")
    h_tpl = mix(pri[rows], SALT_TEMPLATE)
    tpl = np.empty(len(rows), dtype=np.int64)
    for k, name in enumerate(CONDITIONS):
        m = cond_r == k
        if m.any():
            tpl[m] = pick(TASK, h_tpl[m], "count", axis=name)
    answer = pa.array(count[rows]).cast(pa.string())
    predicates = pa.array(list(CONDITIONS)).take(pa.array(cond_r))
    return build(
        view,
        TASK,
        Rows(
            img=img[rows],
            tpl=tpl,
            question=render(TASK, tpl, {"C": plurals.take(pc.index_in(category, value_set=uniq)),
                                        "R": ref_phrase}),
            answer=answer,
            mention_offsets=np.r_[0, np.cumsum(n_counted)].astype(np.int64),
            mention_objects=mentioned,
            key=key[rows],
            subject=category,
            predicate=predicates,
            obj=pc.if_else(pa.array(ref_r >= 0), view.object_id.take(pa.array(np.maximum(ref_r, 0))), ""),
            value=answer,
            evidence={
                "count": count[rows].astype(np.int32),
                "margin": np.where(np.isfinite(margin[rows]), margin[rows], np.nan),
                "threshold": threshold[rows],
                "note": predicates,
            },
        ),
    )

