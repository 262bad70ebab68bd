"""Curate one shard: fetch and vet every image, put every annotation in the oriented frame.

Input is what a source reader yields (``RAW_IMAGES``, ``OBJECTS`` with geometry in the
annotation frame, and the reader's own ``QUARANTINE`` rows); output is the curated ``IMAGES``
and ``OBJECTS`` tables plus one ``QUARANTINE`` table holding the reader's rows and ours.

Nothing is lost silently: every input image is either in ``images`` or has a quarantine row of
kind ``image``; every input object is either in ``objects`` or has a row of kind ``object``.
A bad depth map does not cost its image: the image is kept with ``depth_uri`` null and the
map gets a row of kind ``depth``, as does an image of a source that gives depth maps but has
none for it (``depth_missing``); the source's ``depth_policy`` then decides whether the depth
model estimates it or it has no depth.

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

How each object is put in the oriented frame: :mod:`sf_platform.core.object_geometry`.
Reason codes: :mod:`sf_platform.core.quarantine`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sf_platform.core import schemas
from sf_platform.core.boxes import px_to_1000
from sf_platform.core.depth_io import DepthRejected, check_depth_map, read_depth_map
from sf_platform.core.imaging import DecodedImage, ImageRejected, decode_image
from sf_platform.core.object_geometry import place_object
from sf_platform.core.paths import resolve_inside, root_uri, safe_relative_path
from sf_platform.core.quarantine import Rejected, quarantine_row, quarantine_table
from sf_platform.storage.object_store import join_uri, read_uri


@dataclass(frozen=True)
class CuratedShard:
    images: pa.Table  # schemas.IMAGES
    objects: pa.Table  # schemas.OBJECTS, bbox_px in the oriented frame, bbox_1000 filled
    quarantine: pa.Table  # schemas.QUARANTINE: the reader's rows, then curation's
    missing_images: int = 0  # image rows whose file was not found (quarantined missing_image)


class ImagesUnavailable(RuntimeError):
    """Every image of a shard is missing: the images root moved or is unmounted, not a few bad
    rows.  Curating would quarantine the whole shard and publish nothing, silently; failing
    leaves the shard not done, so the next run retries it."""


@dataclass(frozen=True)
class _Vetted:
    row: dict
    uri: str
    image: DecodedImage | None = None
    reason: str | None = None
    detail: str | None = None
    depth_reason: str | None = None
    depth_detail: str | None = None


@dataclass(frozen=True)
class _S3:
    endpoint_url: str | None
    region: str | None


def _vet_image(row: dict, uri: str, endpoint: str | None, region: str | None,
               depth_unit: str | None = None) -> _Vetted:
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
                read_depth_map(row["depth_uri"], _S3(endpoint, region), depth_unit),
                decoded.height,
                decoded.width,
            )
        except DepthRejected as exc:
            return _Vetted(row, uri, decoded, depth_reason=exc.reason, depth_detail=exc.detail)
    return _Vetted(row, uri, decoded)


def _reject(row: dict, kind: str, exc: Rejected, uri: str | None = None, object_id=None) -> dict:
    """The quarantine row of an image/object/depth row of this shard refused with ``exc``."""
    return quarantine_row(
        source=row.get("source"),
        shard=row.get("shard"),
        kind=kind,
        image_id=row.get("image_id"),
        image_uri=uri,
        object_id=object_id,
        reason=exc.reason,
        detail=exc.detail,
        category=row.get("category") if kind == "object" else None,
    )


def _image_uri(root: str, file_name: str | None) -> str:
    """Full URI of an image row's file; :class:`Rejected` when it names none inside ``root``."""
    if not file_name:
        raise Rejected("missing_image", "the row has no file name")
    return join_uri(root, safe_relative_path(file_name))


def _vet_images(rows: list[dict], root: str, s3, workers: int,
                depth_unit: str | None = None) -> tuple[list[_Vetted], list[dict]]:
    """All image rows vetted, in input order; path and duplicate rejections need no fetch."""
    endpoint = getattr(s3, "endpoint_url", None) if s3 is not None else None
    region = getattr(s3, "region", None) if s3 is not None else None
    seen: set[str] = set()
    files: dict[str, str] = {}  # real path -> image id (local roots)
    early: list[dict] = []
    todo: list[tuple[dict, str]] = []
    for row in rows:
        try:
            if row["image_id"] in seen:
                raise Rejected(
                    "duplicate_image",
                    f"image id {row['image_id']!r} appears more than once in the shard",
                )
            seen.add(row["image_id"])
            uri = _image_uri(root, row.get("file_name"))
            real = resolve_inside(root, safe_relative_path(row["file_name"]))
            if real is not None and files.setdefault(real, row["image_id"]) != row["image_id"]:
                raise Rejected(
                    "duplicate_image",
                    f"file name {row['file_name']!r} is the same file as image "
                    f"{files[real]!r} (a symbolic link): one photo cannot carry two annotations",
                )
            todo.append((row, uri))
        except Rejected as exc:
            early.append(_reject(row, "image", exc))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        vetted = list(pool.map(lambda t: _vet_image(t[0], t[1], endpoint, region, depth_unit), todo))
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
                raise Rejected(
                    "duplicate_object",
                    f"object id {object_id!r} appears more than once in the shard",
                )
            seen.add(object_id)
            if img is None:
                if image_id in rejected:
                    reason = rejected[image_id][0]
                    raise Rejected("image_rejected", f"its image was quarantined ({reason})")
                raise Rejected(
                    "unknown_image", f"image id {image_id!r} is not in this shard's image list"
                )
            ann_w, ann_h = img.row.get("width"), img.row.get("height")
            good.append(place_object(obj, img.image, ann_w, ann_h, annotation_frame))
        except Rejected as exc:
            uri = img.uri if img is not None else rejected.get(image_id, (None, None))[1]
            bad.append(_reject(obj, "object", exc, uri, object_id))
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


def curate_shard(
    raw_images: pa.Table,
    raw_objects: pa.Table,
    raw_quarantine: pa.Table,
    images_root: str,
    s3: Any = None,
    annotation_frame: str = "raw",
    workers: int = 4,
    *,
    gives_depth: bool = False,
    depth_unit: str | None = None,
) -> CuratedShard:
    """Vet every image of one shard and move its objects into the oriented frame.

    ``images_root`` is a local folder, ``file://`` or ``s3://`` URL; ``s3`` an
    :class:`sf_platform.config.S3Config` (endpoint/region) or None.  Images are fetched and
    decoded by ``workers`` threads (the fetch is I/O and Pillow's decoder releases the GIL).
    Storage errors other than "not found" propagate: a flaky bucket must fail the run (and be
    retried), not quarantine good photos; so does a shard whose every image is missing
    (:class:`ImagesUnavailable`).

    ``gives_depth``: the source ships depth maps, so a kept image without one is recorded
    (``depth_missing``); ``depth_unit``: the source's ``depth_unit`` (``core.depth_io``).
    """
    if annotation_frame not in ("raw", "oriented"):
        raise ValueError(f"annotation_frame must be 'raw' or 'oriented', got {annotation_frame!r}")
    root = root_uri(images_root)
    image_rows = schemas.conform(raw_images, schemas.RAW_IMAGES).to_pylist()
    vetted, quarantined = _vet_images(image_rows, root, s3, workers, depth_unit)
    kept = {v.row["image_id"]: v for v in vetted if v.reason is None}
    rejected: dict[str, tuple[str, str | None]] = {}
    for q in quarantined:
        rejected.setdefault(q["image_id"], (q["reason"], None))
    for v in vetted:
        if v.reason is not None:
            quarantined.append(_reject(v.row, "image", Rejected(v.reason, v.detail), v.uri))
            rejected[v.row["image_id"]] = (v.reason, v.uri)
        elif v.depth_reason is not None:
            detail = f"{v.depth_detail} (depth map {v.row.get('depth_uri')}; image kept without it)"
            quarantined.append(_reject(v.row, "depth", Rejected(v.depth_reason, detail), v.uri))
        elif gives_depth and not v.row.get("depth_uri"):
            detail = "the source gives depth maps but has none for this image; image kept without it"
            quarantined.append(_reject(v.row, "depth", Rejected("depth_missing", detail), v.uri))
    missing = sum(v.reason == "missing_image" for v in vetted)
    if vetted and missing == len(vetted):
        raise ImagesUnavailable(
            f"none of the {missing} images of shard {image_rows[0].get('source')}/"
            f"{image_rows[0].get('shard')} exists under {root} (first: {vetted[0].uri}): is the "
            "images folder moved or unmounted?"
        )
    # A duplicated image id whose first row was kept is not "rejected" for its objects.
    for image_id in kept:
        rejected.pop(image_id, None)
    object_rows = schemas.conform(raw_objects, schemas.OBJECTS).to_pylist()
    good, bad = _curate_objects(object_rows, kept, rejected, annotation_frame)
    quarantine = pa.concat_tables(
        [
            schemas.conform(raw_quarantine, schemas.QUARANTINE),
            quarantine_table(quarantined + bad),
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
        missing_images=missing,
    )
