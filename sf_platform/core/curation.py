"""Curate one shard: fetch and vet every image, put every annotation in the oriented frame.

Input is what a source reader yields (``RAW_IMAGES``, ``OBJECTS`` with geometry in the
annotation frame, and the reader's own ``QUARANTINE`` rows); output is the curated ``IMAGES``
and ``OBJECTS`` tables plus one ``QUARANTINE`` table holding the reader's rows and ours.

Nothing is lost silently: every input image is either in ``images`` or has a quarantine row of
kind ``image``; every input object is either in ``objects`` or has a row of kind ``object``.
A bad depth map does not cost its image: the image is kept with ``depth_uri`` null and the
map gets a row of kind ``depth`` (the depth op then estimates depth like for any photo).

Image reasons: ``path_escape``, ``missing_image``, ``duplicate_image`` and those of
:mod:`sf_platform.core.imaging`.  Object reasons: ``image_rejected`` (its image was
quarantined), ``unknown_image`` (no such image in the shard), ``duplicate_object``,
``nan_box``, ``annotation_size_mismatch``, ``degenerate_box``, ``box_outside_image``,
``point_outside_image``, ``no_geometry``.  Depth reasons: those of
:mod:`sf_platform.core.depth_io`.

What a lost object means for the rest of its image.  A kept image that lost an object to
quarantine (bad geometry, duplicate id, ...) no longer shows every instance of that object's
category: "how many chairs" or "the rightmost chair" over the survivors could be false.  So
every image records ``incomplete_categories``, the categories that lost an object (from our
own rejects and from the reader's object rejects, whose ``category`` says which), and
``all_categories_incomplete`` when an object reject does not record its category (a reader
that leaves ``category`` null: QA then counts and names nothing in that image, the safe
side).  An ``unknown_category`` reject marks nothing: its class is outside the source's
vocabulary (or it has no label at all), so it is no instance of any category we ask about,
and other categories' counts stay right.  (An unknown OpenImages MID could in principle be a
subclass of a known class; the class list is the source's own and covers its box labels, so
we accept that.)

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

import posixpath
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sf_platform.core import schemas
from sf_platform.core.boxes import SWAPS_AXES, orient_boxes, orient_points, px_to_1000
from sf_platform.core.depth_io import DepthRejected, check_depth_map, read_depth_map
from sf_platform.core.imaging import DecodedImage, ImageRejected, decode_image
from sf_platform.storage.object_store import join_uri, read_uri

# A box narrower or shorter than one pixel after clipping outlines no visible object.
MIN_BOX_SIDE_PX = 1.0
# Points (PixMo) within this many pixels outside the border are rounding at the edge: clamped.
POINT_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class CuratedShard:
    images: pa.Table  # schemas.IMAGES
    objects: pa.Table  # schemas.OBJECTS, bbox_px in the oriented frame, bbox_1000 filled
    quarantine: pa.Table  # schemas.QUARANTINE: the reader's rows, then curation's


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class _Vetted:
    row: dict
    uri: str
    image: DecodedImage | None = None
    reason: str | None = None
    detail: str | None = None
    depth_reason: str | None = None
    depth_detail: str | None = None


# --- paths -------------------------------------------------------------------------------
_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relative_path(file_name: str | None) -> str:
    """``file_name`` normalised, or :class:`_Rejected` ``path_escape`` if it leaves its root.

    Absolute paths, URLs, drive letters, NUL bytes and any ``..`` that climbs above the root
    are refused (backslashes count as separators); ``a/../b`` is fine and becomes ``b``.
    This repeats the readers' check on purpose: curation is where bytes are actually fetched.
    """
    if not file_name:
        raise _Rejected("missing_image", "the row has no file name")
    p = file_name.replace("\\", "/")
    if "\x00" in p or p.startswith("/") or "://" in p or _DRIVE.match(p):
        raise _Rejected(
            "path_escape", f"file name {file_name!r} is not a relative path inside the images root"
        )
    norm = posixpath.normpath(p)
    if norm in (".", "..") or norm.startswith("../"):
        raise _Rejected("path_escape", f"file name {file_name!r} leaves the images root")
    return norm


def root_uri(images_root: str) -> str:
    """``s3://`` and ``file://`` roots stay; a local folder becomes ``file:///abs/folder``."""
    if images_root.startswith(("s3://", "file://")):
        return images_root.rstrip("/")
    import os

    return "file://" + os.path.abspath(images_root)


# --- images ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _S3:
    endpoint_url: str | None
    region: str | None


def _vet_image(row: dict, uri: str, endpoint: str | None, region: str | None) -> _Vetted:
    """Fetch + decode one image (and its depth map); runs in a worker thread."""
    try:
        data = read_uri(uri, endpoint, region)
    except (FileNotFoundError, IsADirectoryError):
        return _Vetted(row, uri, reason="missing_image", detail=f"no file at {uri}")
    try:
        decoded = decode_image(data, pixels=False)
    except ImageRejected as exc:
        return _Vetted(row, uri, reason=exc.reason, detail=exc.detail)
    if row.get("depth_uri"):
        try:
            check_depth_map(
                read_depth_map(row["depth_uri"], _S3(endpoint, region)),
                decoded.height,
                decoded.width,
            )
        except DepthRejected as exc:
            return _Vetted(row, uri, decoded, depth_reason=exc.reason, depth_detail=exc.detail)
    return _Vetted(row, uri, decoded)


def _quarantine_row(
    row: dict, kind: str, reason: str, detail: str, uri: str | None = None, object_id=None
) -> dict:
    return {
        "source": row.get("source"),
        "shard": row.get("shard"),
        "kind": kind,
        "image_id": row.get("image_id"),
        "image_uri": uri,
        "object_id": object_id,
        "reason": reason,
        "detail": detail,
        "category": row.get("category") if kind == "object" else None,
    }


def _vet_images(rows: list[dict], root: str, s3, workers: int) -> tuple[list[_Vetted], list[dict]]:
    """All image rows vetted, in input order; path and duplicate rejections need no fetch."""
    endpoint = getattr(s3, "endpoint_url", None) if s3 is not None else None
    region = getattr(s3, "region", None) if s3 is not None else None
    seen: set[str] = set()
    early: list[dict] = []
    todo: list[tuple[dict, str]] = []
    for row in rows:
        try:
            if row["image_id"] in seen:
                raise _Rejected(
                    "duplicate_image",
                    f"image id {row['image_id']!r} appears more than once in the shard",
                )
            seen.add(row["image_id"])
            todo.append((row, join_uri(root, safe_relative_path(row.get("file_name")))))
        except _Rejected as exc:
            early.append(_quarantine_row(row, "image", exc.reason, exc.detail))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        vetted = list(pool.map(lambda t: _vet_image(t[0], t[1], endpoint, region), todo))
    return vetted, early


def incomplete_categories(
    quarantine: pa.Table, person_categories: dict[str, set[str]] | None = None
) -> tuple[dict[str, set[str]], set[str]]:
    """(image id -> categories that lost an object, image ids that lost an object of an
    unrecorded category) from the object rows of a ``QUARANTINE`` table (see the module
    docstring for why and what is exempt).

    A person keypoint annotation that matched no person box (``unmatched_keypoints``) may be a
    person nobody boxed, so the image's person categories (``person_categories``: image id ->
    its category names that mean "person") are incomplete too.
    """
    per: dict[str, set[str]] = {}
    whole: set[str] = set()
    cols = ["kind", "image_id", "reason", "category"]
    for r in schemas.conform(quarantine, schemas.QUARANTINE).select(cols).to_pylist():
        if r["image_id"] is None:
            continue
        if r["kind"] == "keypoints" and r["reason"] == "unmatched_keypoints":
            per.setdefault(r["image_id"], set()).update((person_categories or {}).get(r["image_id"], ()))
            continue
        if r["kind"] != "object":
            continue
        if r["category"]:
            per.setdefault(r["image_id"], set()).add(r["category"])
        elif r["reason"] != "unknown_category":
            whole.add(r["image_id"])
    return per, whole


def _images_table(
    kept: list[_Vetted], incomplete: dict[str, set[str]], unattributed: set[str]
) -> pa.Table:
    rows = []
    for v in kept:
        d = v.image
        rows.append(
            {
                **{
                    k: v.row.get(k)
                    for k in ("source", "shard", "image_id", "file_name", "count", "count_label")
                },
                "image_uri": v.uri,
                "width": d.width,
                "height": d.height,
                "exif_orientation": d.orientation,
                "mode": d.mode,
                "sha256": d.sha256,
                "phash": d.phash,
                "depth_uri": None if v.depth_reason else v.row.get("depth_uri"),
                "incomplete_categories": sorted(incomplete.get(v.row["image_id"], ())),
                "all_categories_incomplete": v.row["image_id"] in unattributed,
            }
        )
    return pa.Table.from_pylist(rows, schema=schemas.IMAGES)


# --- objects -----------------------------------------------------------------------------
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
    """Validate one oriented xyxy box; returns (clipped box, was clipped) or raises _Rejected."""
    if not np.all(np.isfinite(box)):
        raise _Rejected("nan_box", f"box {box.tolist()} has NaN/inf coordinates")
    x1, y1, x2, y2 = box
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise _Rejected("degenerate_box", f"box {box.tolist()} has zero or negative size")
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        raise _Rejected(
            "box_outside_image", f"box {box.tolist()} lies entirely outside the {w}x{h} image"
        )
    clipped = np.clip(box, 0, [w, h, w, h])
    if clipped[2] - clipped[0] < MIN_BOX_SIDE_PX or clipped[3] - clipped[1] < MIN_BOX_SIDE_PX:
        raise _Rejected(
            "degenerate_box",
            f"box {box.tolist()} is under {MIN_BOX_SIDE_PX} px on a side inside the image",
        )
    return clipped, bool(np.any(clipped != box))


def _clip_points(pts: np.ndarray, w: int, h: int) -> np.ndarray:
    if not np.all(np.isfinite(pts)):
        raise _Rejected("nan_box", "a point has NaN/inf coordinates")
    t = POINT_TOLERANCE_PX
    outside = (pts[:, 0] < -t) | (pts[:, 0] > w + t) | (pts[:, 1] < -t) | (pts[:, 1] > h + t)
    if outside.any():
        raise _Rejected(
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


def _curate_object(obj: dict, img: _Vetted, annotation_frame: str) -> dict:
    """One object into the oriented frame with its box checked; raises _Rejected."""
    d = img.image
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
            img.row.get("width"),
            img.row.get("height"),
            annotation_frame,
        )
        if tag is None:
            raise _Rejected(
                "annotation_size_mismatch",
                f"annotated size {img.row.get('width')}x{img.row.get('height')} fits neither the stored "
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
        raise _Rejected("no_geometry", "the object has neither a box nor points")
    if box is not None:
        clipped, was_clipped = _clip_box(box, W, H)
        out["bbox_px"] = clipped.tolist()
        out["is_truncated"] = bool(obj.get("is_truncated")) or was_clipped
    if obj.get("keypoints") is not None:
        out["keypoints"] = _orient_keypoints(obj["keypoints"], tag, d.raw_width, d.raw_height)
    return out


def _curate_objects(
    objects: list[dict],
    kept: dict[str, _Vetted],
    rejected: dict[str, tuple[str, str | None]],
    annotation_frame: str,
) -> tuple[list[dict], list[dict]]:
    good, bad = [], []
    seen: set[str] = set()
    for obj in objects:
        image_id, object_id = obj.get("image_id"), obj.get("object_id")
        img = kept.get(image_id)
        try:
            if object_id in seen:
                raise _Rejected(
                    "duplicate_object",
                    f"object id {object_id!r} appears more than once in the shard",
                )
            seen.add(object_id)
            if img is None:
                if image_id in rejected:
                    reason = rejected[image_id][0]
                    raise _Rejected("image_rejected", f"its image was quarantined ({reason})")
                raise _Rejected(
                    "unknown_image", f"image id {image_id!r} is not in this shard's image list"
                )
            good.append(_curate_object(obj, img, annotation_frame))
        except _Rejected as exc:
            uri = img.uri if img is not None else rejected.get(image_id, (None, None))[1]
            bad.append(_quarantine_row(obj, "object", exc.reason, exc.detail, uri, object_id))
    return good, bad


def _objects_table(rows: list[dict], kept: dict[str, _Vetted]) -> pa.Table:
    """Curated object rows -> ``OBJECTS`` with ``bbox_1000`` computed in one vectorised call."""
    if not rows:
        return schemas.empty(schemas.OBJECTS)
    table = pa.Table.from_pylist(rows, schema=schemas.OBJECTS)
    has_box = np.asarray([r.get("bbox_px") is not None for r in rows])
    boxes = np.asarray(
        [r["bbox_px"] if r.get("bbox_px") is not None else [0.0, 0.0, 1.0, 1.0] for r in rows],
        np.float64,
    )
    w = np.asarray([kept[r["image_id"]].image.width for r in rows])
    h = np.asarray([kept[r["image_id"]].image.height for r in rows])
    grid = px_to_1000(boxes, w, h)
    bbox_1000 = pa.array(
        [g.tolist() if ok else None for g, ok in zip(grid, has_box)], type=schemas.BOX_1000
    )
    return table.set_column(table.schema.get_field_index("bbox_1000"), "bbox_1000", bbox_1000)


# --- the shard ---------------------------------------------------------------------------
def curate_shard(
    raw_images: pa.Table,
    raw_objects: pa.Table,
    raw_quarantine: pa.Table,
    images_root: str,
    s3: Any = None,
    annotation_frame: str = "raw",
    workers: int = 4,
) -> CuratedShard:
    """Vet every image of one shard and move its objects into the oriented frame.

    ``images_root`` is a local folder, ``file://`` or ``s3://`` URL; ``s3`` an
    :class:`sf_platform.config.S3Config` (endpoint/region) or None.  Images are fetched and
    decoded by ``workers`` threads (the fetch is I/O and Pillow's decoder releases the GIL).
    Storage errors other than "not found" propagate: a flaky bucket must fail the run (and be
    retried), not quarantine good photos.
    """
    if annotation_frame not in ("raw", "oriented"):
        raise ValueError(f"annotation_frame must be 'raw' or 'oriented', got {annotation_frame!r}")
    root = root_uri(images_root)
    image_rows = schemas.conform(raw_images, schemas.RAW_IMAGES).to_pylist()
    vetted, quarantined = _vet_images(image_rows, root, s3, workers)
    kept = {v.row["image_id"]: v for v in vetted if v.reason is None}
    rejected: dict[str, tuple[str, str | None]] = {}
    for q in quarantined:
        rejected.setdefault(q["image_id"], (q["reason"], None))
    for v in vetted:
        if v.reason is not None:
            quarantined.append(_quarantine_row(v.row, "image", v.reason, v.detail, v.uri))
            rejected[v.row["image_id"]] = (v.reason, v.uri)
        elif v.depth_reason is not None:
            detail = f"{v.depth_detail} (depth map {v.row.get('depth_uri')}; image kept without it)"
            quarantined.append(_quarantine_row(v.row, "depth", v.depth_reason, detail, v.uri))
    # A duplicated image id whose first row was kept is not "rejected" for its objects.
    for image_id in kept:
        rejected.pop(image_id, None)
    object_rows = schemas.conform(raw_objects, schemas.OBJECTS).to_pylist()
    good, bad = _curate_objects(object_rows, kept, rejected, annotation_frame)
    quarantine = pa.concat_tables(
        [
            schemas.conform(raw_quarantine, schemas.QUARANTINE),
            pa.Table.from_pylist(quarantined + bad, schema=schemas.QUARANTINE),
        ]
    )
    persons: dict[str, set[str]] = {}
    for o in good:
        if (o.get("category") or "").lower() == "person":
            persons.setdefault(o["image_id"], set()).add(o["category"])
    incomplete, unattributed = incomplete_categories(quarantine, persons)
    return CuratedShard(
        images=_images_table([v for v in vetted if v.reason is None], incomplete, unattributed),
        objects=_objects_table(good, kept),
        quarantine=quarantine,
    )
