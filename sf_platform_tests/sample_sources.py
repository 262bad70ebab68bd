"""Real-format sample sources for end-to-end tests, made from the synthetic generator's scenes.

The generator writes Objects365-format annotations, depth maps and COCO keypoints; here the same
scenes are also rewritten as an OpenImages V7 boxes CSV + class-descriptions CSV, so the
pipeline can be run end to end on both real formats with known content.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from sf_platform.core.sources.synthetic import generate


def make_objects365_source(root: Path, num_images: int = 6, seed: int = 3) -> dict:
    """Objects365 JSON + images + depth folder + keypoints; returns the config 'sources' entry."""
    paths = generate(root / "o365", num_images=num_images, seed=seed)
    return {
        "name": "o365",
        "format": "objects365",
        "images": paths.images_dir,
        "annotations": paths.annotations,
        "depth": paths.depth_dir,
        "keypoints": paths.keypoints,
        "shard_size": 4,
    }


def make_openimages_source(root: Path, num_images: int = 5, seed: int = 11) -> dict:
    """OpenImages boxes CSV (XMin,XMax,YMin,YMax order, normalized) + classes CSV + <ImageID>.jpg."""
    paths = generate(root / "oi_synth", num_images=num_images, seed=seed)
    doc = json.loads(Path(paths.annotations).read_text())
    out = root / "openimages"
    (out / "images").mkdir(parents=True, exist_ok=True)
    mids = {c["id"]: f"/m/0{c['id']:04d}" for c in doc["categories"]}
    with open(out / "class-descriptions-boxable.csv", "w", newline="") as f:
        w = csv.writer(f)
        for c in doc["categories"]:
            w.writerow([mids[c["id"]], c["name"]])
    images = {im["id"]: im for im in doc["images"]}
    image_ids = {}
    for im in doc["images"]:
        image_id = f"{im['id']:016x}"
        image_ids[im["id"]] = image_id
        shutil.copy(Path(paths.images_dir) / im["file_name"], out / "images" / f"{image_id}.jpg")
    with open(out / "boxes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
                    "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"])
        for a in doc["annotations"]:
            im = images[a["image_id"]]
            x, y, bw, bh = a["bbox"]
            W, H = im["width"], im["height"]
            w.writerow([image_ids[a["image_id"]], "xclick", mids[a["category_id"]], 1,
                        x / W, (x + bw) / W, y / H, (y + bh) / H, 0, 0, int(a.get("iscrowd", 0)), 0, 0])
    return {
        "name": "oi",
        "format": "openimages",
        "images": str(out / "images"),
        "annotations": str(out / "boxes.csv"),
        "classes": str(out / "class-descriptions-boxable.csv"),
        "shard_size": 4,
    }


def upload_tree(local: Path, bucket: str, prefix: str, endpoint: str) -> str:
    """Copy a local folder to s3://bucket/prefix on the test endpoint; returns the URL."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    local = Path(local)
    for p in sorted(local.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(local).as_posix()}")
    return f"s3://{bucket}/{prefix}"
