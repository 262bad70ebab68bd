"""Render scenes to files: photos (some EXIF-rotated), Objects365-format boxes, COCO person
keypoints, exact depth maps and the ground-truth table (see the package docstring)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sf_platform.synthetic.camera import Camera
from sf_platform.synthetic.exif import orientation_for, save_jpeg, to_raw_boxes, to_raw_points
from sf_platform.synthetic.scene import render
from sf_platform.synthetic.vocabulary import (
    CATEGORIES,
    CATEGORY_IDS,
    COCO_KEYPOINT_NAMES,
    COCO_SKELETON,
)

GENERATOR_VERSION = 1

GROUND_TRUTH = pa.schema(
    [
        ("image_id", pa.string()),
        ("object_id", pa.string()),
        ("category", pa.string()),
        ("bbox_px", pa.list_(pa.float64(), 4)),  # oriented frame, xyxy
        ("true_depth", pa.float64()),  # metres
        ("facing", pa.string()),  # persons only
        ("is_truncated", pa.bool_()),
        ("visible_fraction", pa.float64()),
        ("is_crowd", pa.bool_()),
        ("keypoints", pa.list_(pa.float32(), 51)),  # persons: oriented frame
        ("file_name", pa.string()),
        ("width", pa.int32()),  # oriented
        ("height", pa.int32()),
        ("exif_orientation", pa.int8()),
    ]
)


@dataclass(frozen=True)
class SyntheticPaths:
    images_dir: str
    annotations: str
    depth_dir: str
    keypoints: str
    ground_truth: str


def generate(
    out_dir: str | os.PathLike,
    num_images: int,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
    rotated_every: int = 0,
) -> SyntheticPaths:
    """Render ``num_images`` scenes into ``out_dir`` (see the module docstring for the files)."""
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if width < 64 or height < 64:
        raise ValueError(f"images must be at least 64x64, got {width}x{height}")
    out = Path(out_dir)
    images_dir, depth_dir = out / "images", out / "depth"
    for d in (images_dir, depth_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    cam = Camera(width, height)
    images, anns, kp_anns, gt_rows = [], [], [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, i])
        img, depth, objs, _ = render(cam, rng)
        image_id = i + 1
        stem = f"{image_id:06d}"
        orientation = orientation_for(i, rotated_every)
        raw_w, raw_h = save_jpeg(img, orientation, images_dir / f"{stem}.jpg")
        np.save(depth_dir / f"{stem}.npy", depth.astype(np.float32), allow_pickle=False)
        images.append({"id": image_id, "file_name": f"{stem}.jpg", "width": raw_w, "height": raw_h})
        for k, o in enumerate(objs):
            ann_id = image_id * 100 + k + 1
            raw = to_raw_boxes(np.asarray([o.bbox]), orientation, width, height)[0]
            xywh = [float(raw[0]), float(raw[1]), float(raw[2] - raw[0]), float(raw[3] - raw[1])]
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": CATEGORY_IDS[o.category],
                "bbox": xywh,
                "area": xywh[2] * xywh[3],
                "iscrowd": int(o.is_crowd),
                "isfake": 0,
                "isreflected": 0,
            }
            anns.append(ann)
            kp_flat = None
            if o.keypoints is not None:
                kp = o.keypoints.copy()
                vis = kp[:, 2] > 0
                kp[vis, :2] = to_raw_points(kp[vis, :2], orientation, width, height)
                raw_kp = [round(float(v), 2) for v in kp.ravel()]
                kp_anns.append({**ann, "keypoints": raw_kp, "num_keypoints": int(vis.sum())})
                kp_flat = [float(v) for v in o.keypoints.ravel()]
            gt_rows.append(
                {
                    "image_id": str(image_id),
                    "object_id": str(ann_id),
                    "category": o.category,
                    "bbox_px": list(o.bbox),
                    "true_depth": o.z,
                    "facing": o.facing,
                    "is_truncated": o.is_truncated,
                    "visible_fraction": o.visible_fraction,
                    "is_crowd": o.is_crowd,
                    "keypoints": kp_flat,
                    "file_name": f"{stem}.jpg",
                    "width": width,
                    "height": height,
                    "exif_orientation": orientation,
                }
            )
    categories = [{"id": CATEGORY_IDS[c.name], "name": c.name} for c in CATEGORIES]
    person = {
        "id": CATEGORY_IDS["person"],
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_KEYPOINT_NAMES),
        "skeleton": COCO_SKELETON,
    }
    paths = paths_of(out)
    Path(paths.annotations).write_text(
        json.dumps({"images": images, "annotations": anns, "categories": categories})
    )
    Path(paths.keypoints).write_text(
        json.dumps({"images": images, "annotations": kp_anns, "categories": [person]})
    )
    pq.write_table(pa.Table.from_pylist(gt_rows, schema=GROUND_TRUTH), paths.ground_truth)
    return paths


def paths_of(out: Path) -> SyntheticPaths:
    return SyntheticPaths(
        images_dir=str(out / "images"),
        annotations=str(out / "annotations.json"),
        depth_dir=str(out / "depth"),
        keypoints=str(out / "keypoints.json"),
        ground_truth=str(out / "ground_truth.parquet"),
    )

