"""near_far: which of two objects is closer to the camera.

Asked only when the depth gap is clear (DESIGN.md, "Why relation answers need margins"): the
strict rule "A is closer iff d_A < d_B" is wrong 9.4% of the time at 10% depth error, while a
log-depth gap over 0.2 cuts that to 2.1% and keeps ~75% of the pairs.  Metric depth compares
``|log dA - log dB|`` with ``near_far_log_margin``; disparity (Depth-Anything, unknown shift and
scale) compares the gap over the image's own disparity range with
``near_far_disparity_margin``.  Both objects must be countable instances with reliable depth
(mask agrees with its box), not truncated (a cut-off object's visible part may not be where
its body is) and above ``min_object_area_frac`` (a few pixels carry no depth statistics).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.core.qa.relation import symmetric_relation
from sf_platform.core.qa.scene_view import SceneView

DEPTH_KINDS = pa.array(["metric", "disparity"])


def generate(view: SceneView) -> pa.Table:
    s = view.settings
    eligible = view.nameable & view.depth_ok & ~view.truncated
    i, j = view.image_pairs(eligible, s.max_relation_objects_per_image)
    gap = view.near_score[i] - view.near_score[j]
    clear = (view.depth_kind[i] == view.depth_kind[j]) & (np.abs(gap) > view.near_margin[i])
    i, j, gap = i[clear], j[clear], gap[clear]
    closer, farther = np.where(gap > 0, i, j), np.where(gap > 0, j, i)
    evidence = {
        "depth_a": view.depth[closer],
        "depth_b": view.depth[farther],
        "margin": np.abs(gap),
        "threshold": view.near_margin[closer],
        "note": DEPTH_KINDS.take(pa.array(view.depth_kind[closer])),
    }
    return symmetric_relation(view, "near_far", closer, farther, "closer_than", evidence)
