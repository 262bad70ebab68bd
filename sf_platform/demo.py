"""The demo's data: a synthetic source, and the same kind of scenes as an OpenImages source.

The generator writes Objects365-format annotations with depth maps and person keypoints; the
OpenImages copy (boxes CSV in XMin,XMax,YMin,YMax order + class-descriptions CSV, images named
``<ImageID>.jpg``) has neither, so the demo also runs the depth and pose models (tiny profile).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import yaml

from sf_platform.synthetic import generate


def make_openimages_source(root: Path, num_images: int = 5, seed: int = 11, shard_size: int = 4) -> dict:
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
    with open(out / "images-with-rotation.csv", "w", newline="") as f:  # per-image licence and author
        w = csv.writer(f)
        w.writerow(["ImageID", "OriginalURL", "License", "Author", "Rotation"])
        for image_id in image_ids.values():
            w.writerow([image_id, f"https://example.invalid/oi/{image_id}.jpg",
                        "https://creativecommons.org/licenses/by/2.0/", f"demo author {image_id[-4:]}", 0])
    return {
        "name": "oi",
        "format": "openimages",
        "images": str(out / "images"),
        "annotations": str(out / "boxes.csv"),
        "classes": str(out / "class-descriptions-boxable.csv"),
        "image_licenses": str(out / "images-with-rotation.csv"),
        "shard_size": shard_size,
    }



def make_pixmo_source(root: Path, num_images: int = 6, seed: int = 13, shard_size: int = 4) -> dict:
    """PixMo-points Parquet (image_url, image_sha256, points in pixels, count, label) + images
    saved as ``<sha256>.jpg``: labels and points, no boxes, so the detector has to find them.

    Each image gets one row: the category with the most countable instances in it, one point at
    the centre of each instance's box (the way PixMo annotators click objects).
    """
    import hashlib
    from collections import Counter

    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = generate(root / "pixmo_synth", num_images=num_images, seed=seed)
    truth = pq.read_table(paths.ground_truth).to_pylist()
    out = root / "pixmo"
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for image_id in sorted({g["image_id"] for g in truth}, key=int):
        objs = [g for g in truth if g["image_id"] == image_id and not g["is_crowd"]]
        if not objs:
            continue
        label = Counter(g["category"] for g in objs).most_common(1)[0][0]
        data = (Path(paths.images_dir) / objs[0]["file_name"]).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        (out / "images" / f"{sha}.jpg").write_bytes(data)
        points = [{"x": (g["bbox_px"][0] + g["bbox_px"][2]) / 2, "y": (g["bbox_px"][1] + g["bbox_px"][3]) / 2}
                  for g in objs if g["category"] == label]
        rows.append({"image_url": f"https://example.invalid/pixmo/{sha}.jpg", "image_sha256": sha,
                     "points": points, "count": len(points), "label": label})
    pq.write_table(pa.Table.from_pylist(rows), out / "pixmo_points.parquet")
    return {"name": "pixmo", "format": "pixmo", "images": str(out / "images"),
            "annotations": str(out / "pixmo_points.parquet"), "shard_size": shard_size}


def write_demo_config(root: Path, images: int, shard_size: int) -> Path:
    """The demo's config and a local store: a synthetic source (given depth and keypoints), an
    OpenImages-format source (no depth, no keypoints: the depth and pose models run) and a
    PixMo-format source (points, no boxes: the detector runs), all with the tiny models.

    Tiny SAM's random masks are untrusted, so object depths fall back to one-layer boxes
    (core/depth_stats.py): near/far questions still come only from trustworthy depths.
    """
    root.mkdir(parents=True, exist_ok=True)
    oi = make_openimages_source(root / "sources", num_images=max(images // 4, 4), seed=11,
                                shard_size=shard_size)
    config = {
        "storage": "file://" + str(root / "store"),
        "sources": [
            {"name": "synthetic", "format": "synthetic", "images": str(root / "sources" / "synthetic"),
             "num_images": images, "shard_size": shard_size, "seed": 7},
            oi,
            make_pixmo_source(root / "sources", num_images=max(images // 8, 4), shard_size=shard_size),
        ],
        "models": {"profile": "tiny", "device": "cpu"},
    }
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
