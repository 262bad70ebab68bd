"""Shared helpers for the source-reader tests: fixture paths, whole-index reads, generators."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from sf_platform.core.sources.index import RawShard, load_index_summary, read_shard

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
O365 = FIXTURES / "objects365" / "zhiyuan_objv2_fixture.json"
KEYPOINTS = FIXTURES / "keypoints" / "person_keypoints_fixture.json"
OI_TRAIN = FIXTURES / "openimages" / "oidv7-train-annotations-bbox.csv"
OI_VAL = FIXTURES / "openimages" / "validation-annotations-bbox.csv"
OI_CLASSES_NO_HEADER = FIXTURES / "openimages" / "class-descriptions-boxable.csv"
OI_CLASSES_HEADER = FIXTURES / "openimages" / "oidv7-class-descriptions.csv"
PIXMO_PARTS = FIXTURES / "pixmo" / "parts"
PIXMO_COUNT = FIXTURES / "pixmo" / "pixmo_count_fixture.parquet"


def read_all(store, name: str) -> RawShard:
    """Every shard of a source's index, concatenated in shard order."""
    summary = load_index_summary(store, name)
    parts = [read_shard(store, name, k, summary=summary) for k in sorted(summary.shards)]
    return RawShard(
        images=pa.concat_tables([p.images for p in parts]),
        objects=pa.concat_tables([p.objects for p in parts]),
        quarantine=pa.concat_tables([p.quarantine for p in parts]),
    )


def reasons(quarantine: pa.Table) -> dict[str, str]:
    """object_id (or image_id for image rows) -> reason."""
    out = {}
    for row in quarantine.to_pylist():
        key = (
            row["object_id"]
            if row["kind"] != "image"
            else f"image:{row['image_id']}:{row['image_uri']}"
        )
        out[key] = row["reason"]
    return out


def coco_detection(num_images: int, boxes_per_image: int, first_image: int = 0) -> dict:
    """A COCO/Objects365-style detection document with deterministic boxes."""
    images, anns = [], []
    for i in range(first_image, first_image + num_images):
        images.append(
            {"id": i + 1, "file_name": f"images/{i + 1:06d}.jpg", "width": 640, "height": 480}
        )
        for k in range(boxes_per_image):
            anns.append(
                {
                    "id": (i + 1) * 100 + k,
                    "image_id": i + 1,
                    "category_id": 1 + (i + k) % 3,
                    "bbox": [10.0 + k, 20.0 + i % 7, 30.0 + k, 40.0],
                    "iscrowd": 0,
                    "isfake": 0,
                    "isreflected": 0,
                    "area": 1200.0,
                }
            )
    return {
        "images": images,
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "Person"},
            {"id": 2, "name": "Dinning Table"},
            {"id": 3, "name": "Chair"},
        ],
    }


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path
