"""One annotation into the displayed (EXIF-oriented) frame of its image, its geometry checked.

Which frame the annotations are in (EXIF-rotated photos).  The measured dims decide when they
can: annotated width/height equal to the stored (raw) dims -> the coordinates are in the raw
frame and are mapped through the EXIF orientation; equal to the oriented dims -> already
oriented, kept as is; equal to neither -> ``annotation_size_mismatch`` (pixel coordinates for
another copy of the photo would land in the wrong place).  When they cannot (no annotated
dims, a 180-degree flip or a square photo where both frames have the same dims) the source's
declared ``annotation_frame`` decides.  Normalised boxes (``bbox_norm``, OpenImages) are
always relative to the displayed image: OpenImages boxes were drawn on rotated-for-display
images, so they are scaled by the oriented size and never re-oriented.
"""

from __future__ import annotations

import numpy as np

from sf_platform.core.boxes import SWAPS_AXES, orient_boxes, orient_points
from sf_platform.core.imaging import DecodedImage
from sf_platform.core.quarantine import Rejected

# A box narrower or shorter than one pixel after clipping outlines no visible object.
MIN_BOX_SIDE_PX = 1.0
# Points (PixMo) within this many pixels outside the border are rounding at the edge: clamped.
POINT_TOLERANCE_PX = 1.0
# How far a box may reach beyond the image and still be clipped to it: max(2 px, 1% of that
# side).  Annotation rounding overshoots by under a pixel (COCO floats, x + w, 0..1 coordinates
# times the size); boxes drawn on a resized copy and scaled back carry one source pixel of
# rounding, a few output pixels at most, and 1% of the side covers a copy 100x smaller.  A box
# that overshoots by more was not drawn on this image (another copy or crop, a corrupt or
# absurd value such as a 5000 px box on a 640 px photo): clipping it would publish a box that
# is not the object's, and it would then pose as "the largest" object in relations.  So it is
# quarantined as ``box_outside_image`` instead.
BOX_TOLERANCE_PX = 2.0
BOX_TOLERANCE_FRACTION = 0.01


def box_tolerance(side: int) -> float:
    """Largest overshoot (px) beyond an image side of ``side`` px that is clipped as rounding."""
    return max(BOX_TOLERANCE_PX, BOX_TOLERANCE_FRACTION * side)


def annotation_orientation(
    orientation: int,
    raw_w: int,
    raw_h: int,
    ann_w: int | None,
    ann_h: int | None,
    annotation_frame: str,
) -> int | None:
    """EXIF tag to apply to an image's pixel annotations (1 = already oriented; None = the
    annotated dims fit neither frame).  See the module docstring for the rule."""
    declared = orientation if annotation_frame == "raw" else 1
    if not ann_w or not ann_h:
        return declared
    oriented = (raw_h, raw_w) if orientation in SWAPS_AXES else (raw_w, raw_h)
    fits_raw = (ann_w, ann_h) == (raw_w, raw_h)
    fits_oriented = (ann_w, ann_h) == oriented
    if fits_raw and fits_oriented:
        return declared
    if fits_raw:
        return orientation
    if fits_oriented:
        return 1
    return None


def _clip_box(box: np.ndarray, w: int, h: int) -> tuple[np.ndarray, bool]:
    """Validate one oriented xyxy box; returns (clipped box, was clipped) or raises Rejected."""
    if not np.all(np.isfinite(box)):
        raise Rejected("nan_box", f"box {box.tolist()} has NaN/inf coordinates")
    x1, y1, x2, y2 = box
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise Rejected("degenerate_box", f"box {box.tolist()} has zero or negative size")
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        raise Rejected(
            "box_outside_image", f"box {box.tolist()} lies entirely outside the {w}x{h} image"
        )
    tx, ty = box_tolerance(w), box_tolerance(h)
    if x1 < -tx or y1 < -ty or x2 > w + tx or y2 > h + ty:
        raise Rejected(
            "box_outside_image",
            f"box {box.tolist()} reaches beyond the {w}x{h} image by more than the rounding "
            f"tolerance ({tx:g} x {ty:g} px): not drawn on this image, so not clipped",
        )
    clipped = np.clip(box, 0, [w, h, w, h])
    if clipped[2] - clipped[0] < MIN_BOX_SIDE_PX or clipped[3] - clipped[1] < MIN_BOX_SIDE_PX:
        raise Rejected(
            "degenerate_box",
            f"box {box.tolist()} is under {MIN_BOX_SIDE_PX} px on a side inside the image",
        )
    return clipped, bool(np.any(clipped != box))


def _clip_points(pts: np.ndarray, w: int, h: int) -> np.ndarray:
    if not np.all(np.isfinite(pts)):
        raise Rejected("nan_box", "a point has NaN/inf coordinates")
    t = POINT_TOLERANCE_PX
    outside = (pts[:, 0] < -t) | (pts[:, 0] > w + t) | (pts[:, 1] < -t) | (pts[:, 1] > h + t)
    if outside.any():
        raise Rejected(
            "point_outside_image",
            f"{int(outside.sum())} of {len(pts)} points lie outside the {w}x{h} image",
        )
    return np.clip(pts, 0, [w, h])


def _orient_keypoints(kp: list[float], tag: int, raw_w: int, raw_h: int) -> list[float]:
    """Map labelled keypoints (v > 0) into the oriented frame; unlabelled stay (0, 0, 0)."""
    a = np.asarray(kp, np.float64).reshape(17, 3)
    labelled = a[:, 2] > 0
    if tag != 1 and labelled.any():
        a[labelled, :2] = orient_points(a[labelled, :2], tag, raw_w, raw_h)
    return a.ravel().tolist()


def place_object(
    obj: dict, d: DecodedImage, ann_w: int | None, ann_h: int | None, annotation_frame: str
) -> dict:
    """``obj`` (an ``OBJECTS`` row) in the oriented frame of image ``d`` (annotated as
    ``ann_w`` x ``ann_h``) with its geometry checked; raises :class:`Rejected`."""
    W, H = d.width, d.height
    out = dict(obj)
    px, norm, points = obj.get("bbox_px"), obj.get("bbox_norm"), obj.get("points")
    needs_tag = px is not None or points or obj.get("keypoints") is not None
    tag = 1
    if needs_tag:
        tag = annotation_orientation(
            d.orientation,
            d.raw_width,
            d.raw_height,
            ann_w,
            ann_h,
            annotation_frame,
        )
        if tag is None:
            raise Rejected(
                "annotation_size_mismatch",
                f"annotated size {ann_w}x{ann_h} fits neither the stored "
                f"{d.raw_width}x{d.raw_height} nor the displayed {W}x{H} image",
            )
    if px is not None:
        box = np.asarray([np.nan if v is None else v for v in px], np.float64)
        if np.all(np.isfinite(box)):
            box = orient_boxes(box, tag, d.raw_width, d.raw_height)[0]
    elif norm is not None:
        box = np.asarray([np.nan if v is None else v for v in norm], np.float64) * [W, H, W, H]
    else:
        box = None
    if points:
        pts = np.asarray(
            [
                [np.nan if p.get("x") is None else p["x"], np.nan if p.get("y") is None else p["y"]]
                for p in points
            ],
            np.float64,
        )
        if np.all(np.isfinite(pts)):
            pts = orient_points(pts, tag, d.raw_width, d.raw_height)
        pts = _clip_points(pts, W, H)
        out["points"] = [{"x": float(x), "y": float(y)} for x, y in pts]
    elif box is None:
        raise Rejected("no_geometry", "the object has neither a box nor points")
    if box is not None:
        clipped, was_clipped = _clip_box(box, W, H)
        out["bbox_px"] = clipped.tolist()
        out["is_truncated"] = bool(obj.get("is_truncated")) or was_clipped
    if obj.get("keypoints") is not None:
        out["keypoints"] = _orient_keypoints(obj["keypoints"], tag, d.raw_width, d.raw_height)
    return out


