"""Quarantine rows: one builder, and the closed list of reason codes it accepts.

Every rejected image, object, keypoint annotation or depth map becomes one row of
``schemas.QUARANTINE`` built by :func:`quarantine_row`, whichever stage rejects it (the source
index, curation, the depth op).  ``reason`` is a short code from :data:`REASONS` (a closed
list: an unknown code is a bug and raises, so every code the pipeline can write is documented
here); ``detail`` is a sentence for people that names the offending value, never the content
of a file.  ``image_uri`` is a full URI (``file:///...`` or ``s3://...``) whenever the row
names a file inside its source's image root, and null when it names none (a missing or
escaping file name, an annotation of an image that is not in the list).
"""

from __future__ import annotations

import pyarrow as pa

from sf_platform.core import schemas

KINDS = ("image", "object", "keypoints", "depth")

# code -> what it means (kind in brackets).  Reader-level codes come from the source index
# (core/sources/index), the others from curation, imaging and the depth readers.
REASONS: dict[str, str] = {
    # --- image list (index) ---
    "missing_image_id": "[image] an image entry without an id",
    "missing_file_name": "[image] an image entry without a file name",
    "duplicate_image_id": "[image] a later entry reusing an image id: the first entry is kept "
    "and owns every annotation of that id (an annotation names only the id)",
    "path_escape": "[image/keypoints] the file name is absolute, a URL, or leaves its root, "
    "through '..' or a symbolic link (resolved before any byte is read)",
    "value_overflow": "[image/object] a size or id too large to be real (width 10**12, id "
    "10**30): stored as is it would wrap or be rounded",
    # --- annotations (index) ---
    "unknown_image": "[object/keypoints] the annotation's image id is not in the image list "
    "(or, in curation, not in the shard)",
    "image_quarantined": "[object] the annotation's image was rejected at read time",
    "unknown_category": "[object] the category id / MID is not in the class list, or the label "
    "is empty",
    "bad_category_name": "[object] the category name is empty once control characters, bidi "
    "overrides, markup and quotes are removed (categories.clean_category_name)",
    "nan_box": "[object] a coordinate is NaN, infinite or missing, or the box is not 4 numbers",
    "nan_point": "[object] a point has a NaN, infinite or missing coordinate",
    "degenerate_box": "[object] zero or negative width or height (or under 1 px inside the image)",
    "unmatched_keypoints": "[keypoints] no person box of its image overlaps the skeleton's box "
    "(IoU >= 0.5), or its image is not in the source",
    "malformed_keypoints": "[keypoints] not 17 (x, y, v) triples",
    # --- image files (curation, core/imaging.py) ---
    "missing_image": "[image] no file at the image's URI",
    "duplicate_image": "[image] the image id appears twice in one shard, or its file is the same "
    "file as another image's (a symbolic link)",
    "empty_file": "[image] the file has zero bytes",
    "not_an_image": "[image] no image format recognises the header",
    "decompression_bomb": "[image] the header declares more pixels than the limit",
    "too_small": "[image] the shorter side is under the minimum",
    "truncated_image": "[image] the compressed data ends before the image does",
    "corrupt_image": "[image] the decoder fails on the data",
    "unsupported_mode": "[image] a pixel mode that cannot be converted to RGB",
    # --- object geometry (curation) ---
    "image_rejected": "[object] its image was quarantined in curation",
    "duplicate_object": "[object] the object id appears twice in one shard",
    "annotation_size_mismatch": "[object] the annotated width/height fit neither the stored nor "
    "the displayed image",
    "box_outside_image": "[object] the box lies outside the image, or reaches beyond it by more "
    "than the rounding tolerance (max(2 px, 1% of the side); object_geometry.box_tolerance)",
    "point_outside_image": "[object] a point lies outside the image by more than 1 px",
    "no_geometry": "[object] neither a box nor points",
    # --- depth maps (core/depth_io.py, models/depth.py) ---
    "depth_unreadable": "[depth] not a .npy/.png depth map, or not a 2-D real array",
    "depth_shape_mismatch": "[depth] the map is not H x W of the oriented image",
    "depth_non_finite": "[depth] +/-inf pixels, or more than half the pixels missing",
    "depth_out_of_range": "[depth] a negative depth",
    "depth_not_2d": "[depth] the given map is not H x W",
    "depth_empty": "[depth] the given map has no finite positive value",
    "depth_missing": "[depth] the source gives depth maps but none for this image: it follows "
    "the source's depth_policy (model: estimated; skip: no depth-dependent questions)",
    "depth_unit_unknown": "[depth] an integer .npy map and no depth_unit for its source (a map "
    "in millimetres read as metres puts objects 1,000x too far)",
}


class Rejected(Exception):
    """A row refused with a reason code of :data:`REASONS` and a sentence."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def quarantine_row(
    *,
    source: str | None,
    shard: str | None,
    kind: str,
    reason: str,
    detail: str,
    image_id: str | None = None,
    image_uri: str | None = None,
    object_id: str | None = None,
    category: str | None = None,
) -> dict:
    """One ``schemas.QUARANTINE`` row; raises ValueError for a kind or reason not listed above."""
    if kind not in KINDS:
        raise ValueError(f"unknown quarantine kind {kind!r} (one of {KINDS})")
    if reason not in REASONS:
        raise ValueError(f"unknown quarantine reason {reason!r}: add it to REASONS with its meaning")
    if image_uri is not None and "://" not in image_uri:
        raise ValueError(f"quarantine image_uri must be a full URI, got {image_uri!r}")
    return {
        "source": source,
        "shard": shard,
        "kind": kind,
        "image_id": image_id,
        "image_uri": image_uri,
        "object_id": object_id,
        "reason": reason,
        "detail": detail,
        "category": category,
    }


def quarantine_table(rows: list[dict], schema: pa.Schema = schemas.QUARANTINE) -> pa.Table:
    """Rows of :func:`quarantine_row` (plus any extra columns ``schema`` names) as a table."""
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
