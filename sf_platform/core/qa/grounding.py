"""grounding: text -> box, answered in Qwen3-VL's JSON form with [0, 1000] integer boxes.

Two forms:

- single: "Locate the <reference> ..." -> ``{"bbox_2d": [x1, y1, x2, y2], "label": "<name>"}``,
  only for objects with an unambiguous reference (unique category or a clear attribute, see
  :mod:`references`); the box form of a reference is never used here (it would give the
  answer away).  Fact: ``(object_id, "bbox_1000", "", "[x1,y1,x2,y2]")``.
- multi: "Locate every <category> ..." -> a JSON list of all its instances (left to right),
  only for clean categories (``SceneView.category_clean``: no crowd/group/depiction/fake/
  reflected box of the category in the image, none of its annotations quarantined, no related
  OpenImages class: the list would be incomplete or wrong) with 2..``count_cap`` instances,
  all boxed (a point-only instance has no box to list).
  Fact: ``(category, "all_bbox_1000", "", "[[x1,y1,x2,y2],...]")``; ``objects`` lists every
  instance in answer order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa import balance
from sf_platform.core.qa.ids import combine, hash_string, mix
from sf_platform.core.qa.references import (
    ATTRIBUTES,
    box_text,
    boxes_text,
    display_name,
    json_label,
    names,
    references,
)
from sf_platform.core.qa.relation import SALT_SELECT, SALT_TEMPLATE
from sf_platform.core.qa.rows import Rows, build, task_hash
from sf_platform.core.qa.scene_view import SceneView, expand_ranges, group_starts
from sf_platform.core.qa.templates import concat, const, pick, render

TASK = "grounding"
MULTI = hash_string("grounding:multi")


def _json_items(view: SceneView) -> pa.Array:
    """Per object, its Qwen3-VL answer item ``{"bbox_2d": [...], "label": "<name>"}`` (cached)."""
    cached = view.__dict__.get("_json_items")
    if cached is None:
        labels = pa.array([json_label(display_name(c)) for c in view.cat_names] + ['"object"'])
        cached = concat(
            '{"bbox_2d": ', boxes_text(view), ', "label": ', labels.take(pa.array(view.cat)), "}"
        )
        view.__dict__["_json_items"] = cached
    return cached


def _compact_boxes(view: SceneView) -> pa.Array:
    """Per object, ``[x1,y1,x2,y2]`` as the fact's value writes it (cached)."""
    cached = view.__dict__.get("_compact_boxes")
    if cached is None:
        cached = view.__dict__["_compact_boxes"] = box_text(view.box, ",")
    return cached


def _multi_groups(view: SceneView) -> tuple[np.ndarray, np.ndarray]:
    """(members sorted by group then left to right, group start offsets) of multi candidates."""
    s = view.settings
    ok = view.countable & view.category_clean & view.has_box & view.all_boxed
    cnt = view.n_instances
    idx = np.flatnonzero(ok & (cnt >= 2) & (cnt <= s.count_cap))
    idx = idx[np.lexsort((idx, view.box[idx, 1], view.box[idx, 0], view.cat_group[idx]))]
    return idx, group_starts(view.cat_group[idx])


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    ref = references(view, ATTRIBUTES, TASK, fallback_box=False)
    single = np.flatnonzero(view.nameable & ref.phrase.is_valid().to_numpy(zero_copy_only=False))
    members, starts = _multi_groups(view)
    rep = members[starts[:-1]]  # one representative object per multi group
    what = np.r_[view.obj_hash[single], mix(view.category_hash[rep], MULTI)].astype(np.uint64)
    obj = np.r_[single, rep].astype(np.int64)
    key = combine(view.image_hash[view.img[obj]], task_hash(TASK), what, s.seed)
    keep = balance.select(
        view.img[obj],
        view.cat[obj],
        mix(key, SALT_SELECT),
        s.max_grounding_per_image,
        s.max_category_share,
    )
    n1 = len(single)
    single, groups = single[keep[:n1]], np.flatnonzero(keep[n1:])
    obj, what, key = obj[keep], what[keep], key[keep]
    n1, n2 = len(single), len(groups)
    sizes = np.diff(starts)[groups]
    gm = members[expand_ranges(starts[groups], sizes)]
    m_off = pa.array(np.r_[0, np.cumsum(sizes)], type=pa.int32())
    t1, tm, tr = pa.array(single), pa.array(gm), pa.array(rep[groups])
    tpl = np.r_[
        pick(TASK, mix(key[:n1], SALT_TEMPLATE), "single"),
        pick(TASK, mix(key[n1:], SALT_TEMPLATE), "multi"),
    ]
    multi_answer = concat(
        "[", pc.binary_join(pa.ListArray.from_arrays(m_off, _json_items(view).take(tm)), ", "), "]"
    )
    multi_value = concat(
        "[",
        pc.binary_join(pa.ListArray.from_arrays(m_off, _compact_boxes(view).take(tm)), ","),
        "]",
    )
    rows = Rows(
        img=view.img[obj],
        tpl=tpl,
        question=render(
            TASK, tpl, {"R": pa.concat_arrays([ref.phrase.take(t1), names(view).take(tr)])}
        ),
        answer=pa.concat_arrays([_json_items(view).take(t1), multi_answer]),
        mention_offsets=np.r_[np.arange(n1), n1 + np.r_[0, np.cumsum(sizes)]].astype(np.int64),
        mention_objects=np.r_[single, gm].astype(np.int64),
        key=what,
        subject=pa.concat_arrays([view.object_id.take(t1), view.category.take(tr)]),
        predicate=pa.concat_arrays([const("bbox_1000", n1), const("all_bbox_1000", n2)]),
        obj=const("", n1 + n2),
        value=pa.concat_arrays([_compact_boxes(view).take(t1), multi_value]),
        evidence={
            "margin": np.r_[ref.margin[single], np.full(n2, np.nan)],
            "count": np.r_[np.ones(n1, np.int64), sizes].astype(np.int32),
            "note": pa.concat_arrays(
                [
                    pa.array(list(ATTRIBUTES)).take(pa.array(ref.code[single])),
                    const("all_instances", n2),
                ]
            ),
        },
    )
    return build(view, TASK, rows)
