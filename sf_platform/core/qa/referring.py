"""referring: box -> a referring expression that singles the object out.

The question prints the object's box; the answer names it so that no other object in the
image fits: "the chair" when it is the only chair, otherwise a clear-margin attribute ("the
leftmost chair", "the largest car", "the car closest to the camera", see
:mod:`references`).  Objects of a repeated category with no clear attribute are not asked
about: "the chair" would then be a wrong referring expression.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.core.qa import balance
from sf_platform.core.qa.ids import combine, mix
from sf_platform.core.qa.references import ATTRIBUTES, boxes_text, references
from sf_platform.core.qa.relation import SALT_SELECT, SALT_TEMPLATE
from sf_platform.core.qa.rows import Rows, build, fixed_mentions, task_hash
from sf_platform.core.qa.scene_view import SceneView
from sf_platform.core.qa.templates import concat, const, pick, render

TASK = "referring"


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    ref = references(view, ATTRIBUTES, TASK, fallback_box=False)
    idx = np.flatnonzero(view.nameable & ref.phrase.is_valid().to_numpy(zero_copy_only=False))
    key = combine(view.image_hash[view.img[idx]], task_hash(TASK), view.obj_hash[idx], s.seed)
    keep = balance.select(
        view.img[idx],
        view.cat[idx],
        mix(key, SALT_SELECT),
        s.max_grounding_per_image,
        s.max_category_share,
    )
    idx, key = idx[keep], key[keep]
    n = len(idx)
    t = pa.array(idx)
    tpl = pick(TASK, mix(key, SALT_TEMPLATE), "refer")
    offsets, mentioned = fixed_mentions(idx)
    rows = Rows(
        img=view.img[idx],
        tpl=tpl,
        question=render(TASK, tpl, {"BOX": boxes_text(view).take(t)}),
        answer=concat("The ", ref.phrase.take(t), "."),
        mention_offsets=offsets,
        mention_objects=mentioned,
        key=view.obj_hash[idx],
        subject=view.object_id.take(t),
        predicate="is",
        obj=const("", n),
        value=view.category.take(t),
        evidence={
            "margin": ref.margin[idx],
            "note": pa.array(list(ATTRIBUTES) + ["box"]).take(pa.array(ref.code[idx])),
        },
    )
    return build(view, TASK, rows)
