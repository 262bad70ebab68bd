"""counting: "How many <category> are there?" with the number as the answer.

- From annotated instances: only for *clean* categories in the image
  (``SceneView.category_clean``: no crowd, group-of, depiction, fake or reflected box of that
  category, no annotation of it lost to quarantine, no related OpenImages class present): a
  group-of box hides an unknown number of instances, a reflection or a painted chair makes
  "how many chairs" ambiguous, and a quarantined chair annotation is a chair not counted.
  The count is of instances: one per box, one per point of a point-only object (PixMo).
- From a given image-level count (PixMo ``image_count`` / ``image_count_label``): used as
  given, and the same category is then not counted from instances again.  A given count of
  zero is not asked: "how many X" about an absent X tests hallucination, not counting, and
  answers stay positive integers (what the quality gate expects).
- Counts above ``count_cap`` are not asked: long-tail counts are where exhaustive annotation
  fails first, and a capped answer ("10+") would be a different task.
- The histogram of answers is flattened (:func:`balance.histogram_cap`): otherwise "1" and
  "2" dominate and a model learns the prior instead of counting.

``objects`` lists the counted instances (what the answer counts), ``evidence.count`` the count.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.category_names import plural_name
from sf_platform.core.qa import balance
from sf_platform.core.qa.ids import combine, hash_strings, mix
from sf_platform.core.qa.relation import SALT_SELECT, SALT_TEMPLATE
from sf_platform.core.qa.rows import Rows, build, task_hash
from sf_platform.core.qa.scene_view import SceneView, expand_ranges, group_starts
from sf_platform.core.qa.templates import const, pick, render

TASK = "counting"


def _members(view: SceneView) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate groups: (members flat, offsets, group image, group is a given count)."""
    s = view.settings
    label = view.image_count_label.take(pa.array(view.img))
    counted_given = pc.equal(view.category, label).to_numpy(zero_copy_only=False)
    counted_given = np.asarray(
        np.where(np.equal(counted_given, None), False, counted_given), dtype=bool
    )
    has_given = (view.image_count >= 0) & view.image_count_label.is_valid().to_numpy(
        zero_copy_only=False
    )
    # Instance counts (clean categories, not the image's given-count label).
    cnt = view.n_instances
    inst = (
        view.countable
        & view.category_clean
        & (cnt <= s.count_cap)
        & ~(counted_given & has_given[view.img])
    )
    idx = np.flatnonzero(inst)
    idx = idx[np.argsort(view.cat_group[idx], kind="stable")]
    starts = group_starts(view.cat_group[idx])
    # Given counts: members are the countable objects carrying the label (may be none).
    g_img = np.flatnonzero(has_given & (view.image_count >= 1) & (view.image_count <= s.count_cap))
    gidx = np.flatnonzero(view.countable & counted_given & np.isin(view.img, g_img))
    g_sizes = np.bincount(np.searchsorted(g_img, view.img[gidx]), minlength=len(g_img))
    members = np.r_[idx, gidx].astype(np.int64)
    offsets = np.r_[starts, len(idx) + np.r_[0, np.cumsum(g_sizes)][1:]].astype(np.int64)
    group_img = np.r_[view.img[idx[starts[:-1]]], g_img].astype(np.int64)
    given = np.r_[np.zeros(len(starts) - 1, bool), np.ones(len(g_img), bool)]
    return members, offsets, group_img, given


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    members, offsets, gimg, given = _members(view)
    n_inst = int((~given).sum())
    sizes = np.diff(offsets)
    inst_cat = view.category.take(pa.array(members[offsets[:-1][:n_inst]]))
    category = pa.concat_arrays([inst_cat, view.image_count_label.take(pa.array(gimg[n_inst:]))])
    inst_count = view.n_instances[members[offsets[:-1][:n_inst]]]
    count = np.r_[inst_count, view.image_count[gimg[n_inst:]]].astype(np.int64)
    cat_hash = hash_strings(category)
    key = combine(view.image_hash[gimg], task_hash(TASK), cat_hash, s.seed)
    pri = mix(key, SALT_SELECT)
    keep = balance.cap_per_group(gimg, pri, s.max_pairs_per_image)
    keep[keep] = balance.histogram_cap(count[keep], pri[keep], s.count_max_bin_ratio)
    keep[keep] = balance.category_cap(cat_hash[keep], pri[keep], s.max_category_share)
    g = np.flatnonzero(keep)
    kept_sizes = sizes[g]
    mentioned = members[expand_ranges(offsets[g], kept_sizes)]
    category = category.take(pa.array(g))
    names = pa.array(
        [
            plural_name(c) if c is not None else None
            for c in pc.unique(category).to_pylist()
        ]
    )
    plural_names = names.take(pc.index_in(category, value_set=pc.unique(category)))
    tpl = pick(TASK, mix(key[g], SALT_TEMPLATE), "count")
    answer = pa.array(count[g]).cast(pa.string())
    return build(
        view,
        TASK,
        Rows(
            img=gimg[g],
            tpl=tpl,
            question=render(TASK, tpl, {"C": plural_names}),
            answer=answer,
            mention_offsets=np.r_[0, np.cumsum(kept_sizes)].astype(np.int64),
            mention_objects=mentioned,
            key=cat_hash[g],
            subject=category,
            predicate="count",
            obj=const("", len(g)),
            value=answer,
            evidence={
                "count": count[g].astype(np.int32),
                "note": pc.if_else(pa.array(given[g]), "given_count", "instances"),
            },
        ),
    )
