"""left_right: camera-centric horizontal order of two objects.

Asked only when the two boxes are clearly separated horizontally: no overlap, or (when they
overlap) both box extents in the same order and centres more than ``left_right_margin`` of
the image width apart (:func:`scene_view.clearly_left_of`).  Centres alone would call a cup
held in front of a person "left of" them whenever it is a little off-centre.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.core.qa.relation import symmetric_relation
from sf_platform.core.qa.scene_view import SceneView, clearly_left_of


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    margin = 1000.0 * s.left_right_margin
    i, j = view.image_pairs(view.nameable, s.max_relation_objects_per_image)
    bi, bj = view.box[i], view.box[j]
    i_left, gap = clearly_left_of(bi, bj, margin)
    j_left, _ = clearly_left_of(bj, bi, margin)
    clear = i_left | j_left
    left = np.where(i_left, i, j)[clear]
    right = np.where(i_left, j, i)[clear]
    overlap = ~(view.box[left, 2] <= view.box[right, 0])
    evidence = {
        "margin": np.abs(gap[clear]),
        "threshold": np.full(len(left), margin),
        "note": pa.array(np.where(overlap, "centre_gap", "no_overlap")),
    }
    return symmetric_relation(view, "left_right", left, right, "left_of", evidence)
