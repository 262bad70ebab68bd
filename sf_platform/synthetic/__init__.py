"""Synthetic scenes with known geometry: the ground-truth oracle for the whole pipeline.

Each scene is a room seen by a pinhole camera (focal ``0.8 * width`` px, 0.8 m above a flat
floor, horizon at 40% of the height, a far wall at 14 m).  Objects are fronto-parallel planes
standing on the floor at a constant depth ``z``: their pixel size is ``f * metres / z`` and their
foot sits where the floor is at depth ``z``, so the true depth over an object's visible pixels
is exactly ``z``.  They are painted far-to-near, so nearer objects occlude farther ones, and the
depth map holds the ``z`` of the front-most surface at each pixel (floor/wall elsewhere).

What gets written under ``out_dir`` (all deterministic from ``seed``; image ``i`` depends only
on ``(seed, i)``, so scene 7 is the same whether 10 or 100 scenes are generated):

- ``images/<id>.jpg``: the photos.  With ``rotated_every=k`` every k-th photo stores its pixels
  rotated plus an EXIF Orientation tag (6, 8 or 3) so that the *displayed* image is the scene.
- ``annotations.json``: Objects365/COCO detection format, boxes ``[x, y, w, h]`` in the
  *stored* pixel frame (``width``/``height`` are the stored dims), like COCO-style tools measure.
- ``keypoints.json``: COCO person keypoints (17 points, ``[x, y, v] * 17``) for every person,
  same annotation ids and pixel frame as ``annotations.json``.
- ``depth/<stem>.npy``: float32 metres in the *oriented* frame (H x W of the displayed image).
- ``ground_truth.parquet``: one row per annotated object, in the oriented frame
  (:data:`GROUND_TRUTH` schema): what QA answers are tested against.

Persons are drawn figures whose keypoints follow their facing ("toward" the camera, "away",
or in profile facing image-"left"/"right"); left/right keypoints are the person's own.
``generate(..., rotated_every=k)`` and a source's ``rotated_every: k`` rotate every k-th photo.

Modules: ``camera`` (the pinhole camera and room), ``vocabulary`` (categories, keypoint names),
``drawing`` (silhouettes and person figures), ``scene`` (sampling, occlusion, depth),
``exif`` (rotated photos and their frames), ``render`` (the files above) and ``source`` (the
``synthetic`` source of a config: generated once, under a file lock).
"""

from sf_platform.synthetic.exif import to_raw_boxes, to_raw_points
from sf_platform.synthetic.render import GENERATOR_VERSION, GROUND_TRUTH, SyntheticPaths, generate
from sf_platform.synthetic.source import MARKER, ensure_generated
from sf_platform.synthetic.vocabulary import CATEGORY_IDS, COCO_KEYPOINT_NAMES

__all__ = [
    "CATEGORY_IDS",
    "COCO_KEYPOINT_NAMES",
    "GENERATOR_VERSION",
    "GROUND_TRUTH",
    "MARKER",
    "SyntheticPaths",
    "ensure_generated",
    "generate",
    "to_raw_boxes",
    "to_raw_points",
]
