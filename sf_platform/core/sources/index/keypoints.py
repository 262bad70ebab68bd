"""Person keypoints joined to the index: each COCO skeleton finds its image (by file name, else
by id) and then its person box (:func:`coco_keypoints.match_keypoints`); the rest are
quarantined with a reason."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.config import S3Config
from sf_platform.core.paths import path_escapes
from sf_platform.core.sources import coco_keypoints
from sf_platform.core.sources.index.inputs import BuildContext, named_input_errors
from sf_platform.core.sources.index.rules import ImageLookup

# Most skeletons matching nothing means the keypoint file names its images differently from
# the source (``images/<id>.jpg`` vs ``<id>.jpg``, another split): warn, do not just quarantine.
UNMATCHED_WARNING_SHARE = 0.5


def _stems(names) -> pa.Array:
    """File names without folders and extension (``images/0001.jpg`` -> ``0001``)."""
    arr = names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names
    base = pc.replace_substring_regex(arr, r"^.*[/\\]", "")
    return pc.replace_substring_regex(base, r"\.[^.]*$", "")


def _positions(keys, values) -> np.ndarray:
    """Position of each key among ``values`` (-1 when absent or when it occurs twice there:
    an ambiguous stem matches nothing rather than the wrong image)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    counts = pc.value_counts(arr)
    dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    pos = pc.fill_null(pc.index_in(keys, value_set=arr), -1).to_numpy(zero_copy_only=False)
    ambiguous = pc.fill_null(pc.is_in(keys, value_set=dup), False).to_numpy(zero_copy_only=False)
    return np.where(ambiguous, -1, pos).astype(np.int64)


def unmatched_warning(num_skeletons: int, num_unmatched: int, keypoints_uri: str) -> str | None:
    """A warning when most skeletons of a keypoint file matched no person box."""
    if num_skeletons and num_unmatched > UNMATCHED_WARNING_SHARE * num_skeletons:
        return (
            f"{num_unmatched} of {num_skeletons} skeletons in {keypoints_uri} match no person box "
            "of the source: does the keypoint file name its images like the source does (file "
            "name, stem or image id)?"
        )
    return None


def prepare_keypoints(ctx: BuildContext, lookup: ImageLookup, s3: S3Config) -> pa.Table | None:
    """Keypoint rows with the source image position (-1 when not in the source)."""
    if not ctx.inputs.keypoints:
        return None
    with named_input_errors(ctx.inputs.keypoints, "keypoint annotations"):
        kp = coco_keypoints.read_keypoints(ctx.inputs.keypoints, s3.endpoint_url, s3.region)
    n = kp.num_rows
    pos = np.full(n, -1, dtype=np.int64)
    if n and ctx.num_images:
        by_name = _positions(kp.column("file_name"), ctx.images.column("file_name"))
        by_stem = _positions(_stems(kp.column("file_name")), _stems(ctx.images.column("file_name")))
        by_id = lookup.find(kp.column("kp_image_id"))
        pos = np.where(by_name >= 0, by_name, np.where(by_stem >= 0, by_stem, by_id))
        escapes = [bool(f) and path_escapes(f) for f in kp.column("file_name").to_pylist()]
        pos[np.asarray(escapes, dtype=bool)] = -1  # quarantined as path_escape, never matched
        # A file name shared by a duplicate entry resolves to the kept (first) entry.
        pos = np.where(pos >= 0, ctx.checks.first[np.maximum(pos, 0)], -1)
    return kp.append_column("_pos", pa.array(pos, pa.int64()))


def join_keypoints(
    ctx: BuildContext, objects: pa.Table, kp: pa.Table | None
) -> tuple[pa.Table, list[dict]]:
    """Attach keypoints to the bucket's person boxes; quarantine rows for the rest."""
    qrows: list[dict] = []
    if kp is None or kp.num_rows == 0:
        return objects, qrows
    kp_pos = kp.column("_pos").to_numpy(zero_copy_only=False)
    malformed = pc.is_null(kp.column("keypoints")).to_numpy(zero_copy_only=False)
    n_obj = objects.num_rows
    is_person = pc.fill_null(
        pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(objects.column("category"))), "person"),
        False,
    )
    match = coco_keypoints.match_keypoints(
        objects.column("_pos").to_numpy(zero_copy_only=False),
        is_person.to_numpy(zero_copy_only=False),
        boxes_np(objects.column("bbox_px"), n_obj),
        boxes_np(objects.column("bbox_norm"), n_obj),
        np.where(malformed, -1, kp_pos),
        boxes_np(kp.column("bbox_px"), kp.num_rows),
        np.stack(
            [
                pc.fill_null(kp.column(c), np.nan).to_numpy(zero_copy_only=False)
                for c in ("img_width", "img_height")
            ],
            axis=1,
        )
        if kp.num_rows
        else np.zeros((0, 2)),
    )
    if (match >= 0).any():
        # Rows without a skeleton take the null slot; the column exists only when one matched.
        matched = np.flatnonzero(match >= 0)
        take = np.full(n_obj, -1, dtype=np.int64)
        take[match[matched]] = matched
        idx = pa.array(take, pa.int64(), mask=take < 0)
        objects = objects.append_column("keypoints", kp.column("keypoints").take(idx))
    kp_ids = kp.column("kp_id").to_pylist()
    kp_img = kp.column("kp_image_id").to_pylist()
    names = kp.column("file_name").to_pylist()
    for k in np.flatnonzero(match < 0):
        p = int(kp_pos[k])
        if malformed[k]:
            reason, detail = "malformed_keypoints", "keypoints are not 17 (x, y, v) triples"
        elif p < 0 and names[k] and path_escapes(names[k]):
            reason, detail = "path_escape", f"keypoint file name {names[k]!r} leaves the images root"
        elif p < 0:
            reason, detail = (
                "unmatched_keypoints",
                (f"keypoint image {kp_img[k]!r} ({names[k]!r}) is not in the source's image list"),
            )
        elif ctx.checks.reason[p] is not None:
            reason, detail = (
                "unmatched_keypoints",
                f"its image was quarantined ({ctx.checks.reason[p]})",
            )
        else:
            reason, detail = (
                "unmatched_keypoints",
                (
                    f"no person box of the image overlaps the keypoint box with IoU >= {coco_keypoints.MIN_IOU}"
                ),
            )
        image_id = ctx.images.column("image_id")[p].as_py() if p >= 0 else kp_img[k]
        qrows.append(
            ctx.quarantine(
                p,
                int(k),
                kind="keypoints",
                image_id=image_id,
                image_uri=ctx.image_uri(ctx.file_name(p)),
                object_id=kp_ids[k],
                reason=reason,
                detail=detail,
            )
        )
    return objects, qrows


def boxes_np(col, n: int) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = np.full((n, 4), np.nan)
    present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if present.any():
        out[present] = pc.list_flatten(arr).to_numpy(zero_copy_only=False).reshape(-1, 4)
    return out


