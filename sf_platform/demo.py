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

from sf_platform.core.sources.synthetic import generate


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
    return {
        "name": "oi",
        "format": "openimages",
        "images": str(out / "images"),
        "annotations": str(out / "boxes.csv"),
        "classes": str(out / "class-descriptions-boxable.csv"),
        "shard_size": shard_size,
    }



def write_demo_config(root: Path, images: int, shard_size: int) -> Path:
    """The demo's config: a synthetic source (given depth and keypoints) and an OpenImages-format
    source (no depth, no keypoints: the tiny depth and pose models run), a local store.

    Masks use the box backend: tiny SAM weights are random, and its masks would make every
    object's depth statistics untrusted, leaving the near/far task empty.
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
        ],
        "models": {"profile": "tiny", "device": "cpu", "masks": {"backend": "box"}},
    }
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
