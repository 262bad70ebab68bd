"""The scene table: one row per object with everything QA generation needs about it.

Joins the curated images, the objects (annotated or detected), their masks, the per-image
depth maps and the person poses, and adds per-object facts:

- mask stats (area, SAM's predicted IoU, mask-vs-box IoU, provenance);
- depth statistics over the object's own pixels (``core.depth_stats``): the mask when it is
  trustworthy, else the central part of the box.  A mask is trusted when it is a real
  segmentation (not the box itself: a box-as-mask contains background in its corners, the
  box centre is the better region) and agrees with its box, ``mask_box_iou >=
  settings.min_mask_box_iou``; a point-prompted mask (no box) when SAM's own predicted IoU
  is >= ``POINT_MASK_MIN_PRED_IOU``;
- the instance facts of ``core.instances`` (countable, instances, per-category counts,
  clean / all-boxed / unique, ranks within the category), computed over the whole table once
  and stored as columns, so QA generation reads them instead of deciding them again;
- ``category_incomplete``: the image may hold instances of the category that are not
  countable objects here, because curation quarantined an annotation of it
  (``images.incomplete_categories`` / ``all_categories_incomplete``), or because an ancestor
  or descendant class shares the image (``category_ancestors``, OpenImages with a hierarchy:
  "Man" and "Person" boxes in one photo may be the same people, so neither "how many people"
  nor "the man" is known).  Such a category is never ``category_unique`` and QA neither
  counts nor names it;
- facing for persons, the image-level count annotation (PixMo).

Without a trusted mask (``masks.backend: box``, or a poor SAM mask) the box centre stands in
for the object.  That is the object itself for silhouettes that fill their box centre (people,
cars, bottles, animals) and the room behind it for hollow ones (tables, chairs, lamps); the
latter usually show a wide depth spread and are flagged ``depth_reliable = False``, but not
always (a table whose box centre is all wall), which is why SAM masks are the default.

Objects whose image is not in ``images`` (their image was quarantined by curation, which
already recorded why) are not in the scene.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

import numpy as np
import pyarrow as pa

from sf_platform.core import schemas
from sf_platform.core.code_version import settings_version
from sf_platform.core.depth_stats import decode_depth_map, object_depth_stats
from sf_platform.core.instances import add_instance_columns
from sf_platform.core.mask_bits import unpack_grid

# SAM's own default quality bar for keeping a mask (pred_iou_thresh of its automatic generator).
POINT_MASK_MIN_PRED_IOU = 0.88
# A box-prompted mask is trusted for depth when it covers at least half of its box's area in
# IoU terms: below that SAM most likely segmented a part or the background (the default of
# ``qa.min_mask_box_iou``).
MIN_MASK_BOX_IOU = 0.5
# The settings the scene reads (``qa:`` in config, ``QASettings``); the scene asset's code
# version includes their values (:func:`scene_code_version`).
SCENE_SETTINGS = ("min_mask_box_iou",)
# Bump when the scene's rules change (here, in core.instances or in core.depth_stats).
SCENE_VERSION = "1"


class SceneSettings(Protocol):
    min_mask_box_iou: float


class _Defaults:
    min_mask_box_iou = MIN_MASK_BOX_IOU


def scene_code_version(settings: SceneSettings) -> str:
    """The scene asset's code version: :data:`SCENE_VERSION` and the settings it reads."""
    used = {k: getattr(settings, k) for k in SCENE_SETTINGS}
    return settings_version(SCENE_VERSION, used | {"point_mask_min_pred_iou": POINT_MASK_MIN_PRED_IOU})


def mask_trusted(mask: dict | None, settings: SceneSettings) -> bool:
    if mask is None or mask.get("mask_frame_px") is None or mask.get("mask_provenance") == "box":
        return False
    if mask.get("mask_box_iou") is not None:
        return mask["mask_box_iou"] >= settings.min_mask_box_iou
    return (mask.get("mask_pred_iou") or 0.0) >= POINT_MASK_MIN_PRED_IOU


def _index(table: pa.Table | None, *keys: str) -> dict:
    if table is None:
        return {}
    return {tuple(r[k] for k in keys): r for r in table.to_pylist()}


def build_scene(
    images: pa.Table,
    objects: pa.Table,
    masks: pa.Table | None,
    depth: pa.Table | None,
    poses: pa.Table | None,
    settings: SceneSettings | None = None,
) -> pa.Table:
    """SCENE table, one row per object of a known image (see the module docstring)."""
    settings = settings or _Defaults()
    image_rows = {r["image_id"]: r for r in images.to_pylist()}
    mask_rows = _index(masks, "image_id", "object_id")
    # Images without a map (depth_status "skipped") get no depth statistics.
    depth_rows = _index(depth.filter(depth.column("depth_map").is_valid()) if depth is not None else None, "image_id")
    pose_rows = _index(poses, "image_id", "object_id")
    maps: dict[str, np.ndarray] = {}

    rows: list[dict] = []
    for obj in objects.to_pylist():
        img = image_rows.get(obj["image_id"])
        if img is None:
            continue
        row = dict(obj) | {k: img.get(k) for k in ("image_uri", "file_name", "width", "height")}
        row["image_count"], row["image_count_label"] = img.get("count"), img.get("count_label")
        key = (obj["image_id"], obj["object_id"])
        mask = mask_rows.get(key)
        if mask is not None:
            row |= {k: mask[k] for k in ("mask_area", "mask_pred_iou", "mask_box_iou", "mask_provenance")}
        pose = pose_rows.get(key)
        if pose is not None:
            row["facing"], row["facing_confidence"] = pose["facing"], pose["facing_confidence"]
            row["pose_provenance"] = pose["pose_provenance"]
        d = depth_rows.get((obj["image_id"],))
        if d is not None:
            row |= _depth_columns(obj, img, d, mask, maps, settings)
        rows.append(row)

    _mark_incomplete_categories(rows, image_rows)
    return add_instance_columns(pa.Table.from_pylist(rows, schema=schemas.SCENE), schemas.SCENE)


def _depth_columns(obj, img, d, mask, maps, settings) -> dict:
    if obj["image_id"] not in maps:
        maps[obj["image_id"]] = decode_depth_map(d["depth_map"], d["map_height"], d["map_width"])
    trusted = mask_trusted(mask, settings)
    points = [(p["x"], p["y"]) for p in obj["points"]] if obj.get("points") else None
    stats = object_depth_stats(
        maps[obj["image_id"]], d["depth_kind"], img["width"], img["height"],
        box=obj.get("bbox_px"),
        mask_grid=unpack_grid(mask["mask_bits"], mask["mask_grid"]) if trusted else None,
        mask_frame=mask["mask_frame_px"] if trusted else None,
        mask_trusted=trusted,
        points=points,
        image_range=(d["depth_min"], d["depth_max"]),
    )
    return {
        "depth_median": stats.median, "depth_p10": stats.p10, "depth_p90": stats.p90,
        "depth_reliable": stats.reliable, "depth_kind": d["depth_kind"], "depth_provenance": d["depth_provenance"],
        "image_depth_min": d["depth_min"], "image_depth_max": d["depth_max"],
    }


def related_categories(members: list[dict]) -> set[str]:
    """Categories of one image's objects that share the image with an ancestor or descendant
    class (``category_ancestors``): both sides of each such pair."""
    present = {r["category"] for r in members if r["category"] is not None}
    out: set[str] = set()
    for r in members:
        relatives = (set(r.get("category_ancestors") or ()) & present) - {r["category"]}
        if relatives:
            out |= relatives | {r["category"]}
    return out


def _mark_incomplete_categories(rows: list[dict], image_rows: dict[str, dict]) -> None:
    """Set ``category_incomplete`` on every row (see the module docstring)."""
    by_image: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_image[r["image_id"]].append(r)
    for image_id, members in by_image.items():
        img = image_rows[image_id]
        everything = bool(img.get("all_categories_incomplete"))
        doubtful = set(img.get("incomplete_categories") or ()) | related_categories(members)
        for r in members:
            r["category_incomplete"] = everything or r["category"] in doubtful
