"""COCO person keypoints (``person_keypoints_*.json``) joined onto a source's person boxes.

Any source may name a COCO keypoints file (``keypoints:`` in its config).  Each keypoint
annotation carries 17 ``[x, y, v]`` triples (COCO order: nose, eyes, ears, shoulders, elbows,
wrists, hips, knees, ankles) and the person's ``bbox`` ``[x, y, w, h]``, in the same pixel frame
as the source's boxes.  It is attached to the source's person box of the same image with the
best IoU, if that IoU is at least :data:`MIN_IOU`; one box takes at most one skeleton (greedy,
best pairs first).  Images are matched by ``file_name`` first (the keypoint file is usually a
separate export of the same images), then by stem (``images/<id>.jpg`` matches ``<id>.jpg``),
then by image id; the index warns when most skeletons match nothing.

Stored form (``OBJECTS.keypoints``): 51 floats ``x, y, score`` per keypoint with
``score = 1.0`` when COCO's visibility flag ``v > 0`` (labelled, visible or occluded) and
``0.0`` when ``v == 0`` (not labelled; x, y are then meaningless zeros).  The pose stage reads
scores the same way for model-predicted keypoints, where the score is a confidence.

Annotations with ``num_keypoints == 0`` carry no keypoint at all (COCO includes crowd regions
and tiny people this way) and are skipped: there is nothing to join.  Annotations that find no
box, or whose image is not in the source, are quarantined (kind ``keypoints``, reason
``unmatched_keypoints``); a keypoint list that is not 17 triples is ``malformed_keypoints``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import schemas
from sf_platform.core.boxes import iou
from sf_platform.core.sources.json_stream import DEFAULT_CHUNK_BYTES
from sf_platform.core.sources.objects365 import parse_coco, xywh_to_box_array
from sf_platform.storage.object_store import open_uri

# Two boxes drawn around the same person by different annotators typically overlap with IoU
# 0.7-0.9; two different people in a crowd rarely exceed 0.5.  0.5 is also COCO's own
# detection-match threshold, so "the same box" means what the COCO metric means.
MIN_IOU = 0.5
NUM_KEYPOINTS = 17

_IMAGE_FIELDS = pa.schema(
    [("id", pa.int64()), ("file_name", pa.string()), ("width", pa.int64()), ("height", pa.int64())]
)
_ANN_FIELDS = pa.schema(
    [
        ("id", pa.int64()),
        ("image_id", pa.int64()),
        ("bbox", pa.list_(pa.float64())),
        ("keypoints", pa.list_(pa.float64())),
        ("num_keypoints", pa.int64()),
    ]
)
_IDS = {"images": frozenset({"id"}), "annotations": frozenset({"id", "image_id"})}

KEYPOINT_ROWS = pa.schema(
    [
        ("kp_id", pa.string()),
        ("kp_image_id", pa.string()),
        ("file_name", pa.string()),
        ("img_width", pa.float64()),
        ("img_height", pa.float64()),
        ("bbox_px", schemas.BOX_PX),
        ("keypoints", schemas.KEYPOINTS),  # null when malformed
    ]
)


def coco_to_keypoints(flat: np.ndarray) -> np.ndarray:
    """``[N, 51]`` COCO ``x, y, v`` -> ``[N, 51]`` float32 ``x, y, score`` (score = v > 0)."""
    k = np.asarray(flat, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 3).copy()
    k[:, :, 2] = (k[:, :, 2] > 0).astype(np.float32)
    return k.reshape(-1, NUM_KEYPOINTS * 3)


def _keypoint_column(col: pa.ChunkedArray) -> pa.Array:
    arr = col.combine_chunks()
    n = len(arr)
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    ok = lengths == NUM_KEYPOINTS * 3
    out = np.zeros((n, NUM_KEYPOINTS * 3), dtype=np.float32)
    if ok.any():
        good = arr.filter(pa.array(ok))
        vals = pc.list_flatten(good).to_numpy(zero_copy_only=False).reshape(-1, NUM_KEYPOINTS * 3)
        out[ok] = coco_to_keypoints(vals)
    values = pa.FixedSizeListArray.from_arrays(
        pa.array(out.ravel(), pa.float32()), NUM_KEYPOINTS * 3
    )
    return pc.if_else(pa.array(ok), values, pa.scalar(None, schemas.KEYPOINTS))


def read_keypoints(
    uri: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> pa.Table:
    """Stream a COCO person-keypoints JSON into KEYPOINT_ROWS (one row per annotation with
    at least one labelled keypoint).  Segmentation polygons/RLE are skipped by the parser."""
    images, anns = [], []
    with open_uri(uri, endpoint_url, region) as f:
        for section, table in parse_coco(
            f,
            sections={"images": _IMAGE_FIELDS, "annotations": _ANN_FIELDS},
            ids=_IDS,
            chunk_bytes=chunk_bytes,
        ):
            if section == "images":
                images.append(table)
            else:
                keep = pc.fill_null(pc.not_equal(table.column("num_keypoints"), 0), True)
                table = table.filter(keep)
                anns.append(
                    pa.table(
                        {
                            "kp_id": table.column("id"),
                            "kp_image_id": table.column("image_id"),
                            "bbox_px": xywh_to_box_array(table.column("bbox")),
                            "keypoints": _keypoint_column(table.column("keypoints")),
                        }
                    )
                )
    ann = pa.concat_tables(anns) if anns else schemas.conform(pa.table({}), KEYPOINT_ROWS)
    img = pa.concat_tables(images) if images else None
    n = ann.num_rows
    if img is not None and n:
        idx = pc.index_in(ann.column("kp_image_id"), value_set=img.column("id"))
        extra = {
            "file_name": img.column("file_name").take(idx),
            "img_width": img.column("width").take(idx).cast(pa.float64()),
            "img_height": img.column("height").take(idx).cast(pa.float64()),
        }
    else:
        extra = {}
    return schemas.conform(
        pa.table({**{c: ann.column(c) for c in ann.column_names}, **extra}) if n else ann,
        KEYPOINT_ROWS,
    )


def _usable(boxes: np.ndarray) -> np.ndarray:
    return (
        np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    )


def match_keypoints(
    obj_pos: np.ndarray,
    obj_is_person: np.ndarray,
    obj_box_px: np.ndarray,
    obj_box_norm: np.ndarray,
    kp_pos: np.ndarray,
    kp_box_px: np.ndarray,
    kp_img_wh: np.ndarray,
) -> np.ndarray:
    """For each keypoint row, the object row it joins (or -1).

    ``obj_*`` describe candidate objects (image position, person?, pixel box, normalized box:
    NaN rows where absent); ``kp_*`` the keypoint annotations (image position, pixel box, the
    keypoint file's image width/height, used to compare with normalized boxes when the source
    has no pixel boxes, as OpenImages).  Greedy on IoU, best pairs first, IoU >= MIN_IOU.
    """
    match = np.full(len(kp_pos), -1, dtype=np.int64)
    if not len(kp_pos) or not len(obj_pos):
        return match
    persons = np.flatnonzero(obj_is_person)
    if not len(persons):
        return match
    by_image: dict[int, list[int]] = {}
    for row in persons:
        by_image.setdefault(int(obj_pos[row]), []).append(row)
    kp_rows_by_image: dict[int, list[int]] = {}
    for k, p in enumerate(kp_pos):
        if p >= 0:
            kp_rows_by_image.setdefault(int(p), []).append(k)
    for p, kps in kp_rows_by_image.items():
        cands = np.asarray(by_image.get(p, []), dtype=np.int64)
        if not len(cands):
            continue
        kps = np.asarray(kps, dtype=np.int64)
        px = obj_box_px[cands]
        use_px = _usable(px)
        ious = np.zeros((len(kps), len(cands)))
        if use_px.any():
            ious[:, use_px] = iou(kp_box_px[kps], px[use_px])
        norm_rows = ~use_px & _usable(obj_box_norm[cands])
        if norm_rows.any():
            wh = kp_img_wh[kps]
            scale = np.concatenate([wh, wh], axis=1)
            kp_norm = kp_box_px[kps] / np.where(scale > 0, scale, np.nan)
            ok = _usable(kp_norm)
            sub = np.zeros((len(kps), int(norm_rows.sum())))
            if ok.any():
                sub[ok] = iou(kp_norm[ok], obj_box_norm[cands][norm_rows])
            ious[:, norm_rows] = sub
        ious[~_usable(kp_box_px[kps])] = 0.0
        taken_k, taken_o = set(), set()
        for flat in np.argsort(-ious, axis=None, kind="stable"):
            i, j = divmod(int(flat), len(cands))
            if ious[i, j] < MIN_IOU:
                break
            if i in taken_k or j in taken_o:
                continue
            taken_k.add(i)
            taken_o.add(j)
            match[kps[i]] = cands[j]
    return match
