"""left_right: camera-centric horizontal order of two objects.

Asked only when the two boxes are clearly separated horizontally
(:func:`scene_view.clearly_left_of`, the rule perspective and "the leftmost / rightmost"
references share): no overlap, or (when they overlap) both box extents in the same order, an
overlap of at most ``left_right_max_overlap`` of the narrower box and centres more than
``left_right_margin`` of the image width apart.  Centres alone would call a cup held in front
of a person "left of" them whenever it is a little off-centre, and a person sitting on a sofa
"right of" it.

Evidence: ``margin`` is the centre gap from the left object to the right one (positive, in
[0, 1000] units), ``threshold`` the centre-gap floor, ``note`` whether the boxes overlap.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.core.qa.relation import symmetric_relation
from sf_platform.core.qa.scene_view import SceneView


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    i, j = view.image_pairs(view.nameable, s.max_relation_objects_per_image)
    i_left, gap_ij = view.clearly_left_of(i, j)
    j_left, gap_ji = view.clearly_left_of(j, i)
    clear = i_left | j_left
    left = np.where(i_left, i, j)[clear]
    right = np.where(i_left, j, i)[clear]
    gap = np.where(i_left, gap_ij, gap_ji)[clear]  # centre(right) - centre(left) > 0
    overlap = ~(view.box[left, 2] <= view.box[right, 0])
    evidence = {
        "margin": gap,
        "threshold": np.full(len(left), 1000.0 * s.left_right_margin),
        "note": pa.array(np.where(overlap, "centre_gap", "no_overlap")),
    }
    return symmetric_relation(view, "left_right", left, right, "left_of", evidence)
