"""Real-format sample sources for end-to-end tests, made from the synthetic generator's scenes.

The generator writes Objects365-format annotations, depth maps and COCO keypoints; here the same
scenes are also rewritten as an OpenImages V7 boxes CSV + class-descriptions CSV, so the
pipeline can be run end to end on both real formats with known content.
"""

from __future__ import annotations

from pathlib import Path

from sf_platform.demo import make_openimages_source  # noqa: F401  (re-exported for tests)
from sf_platform.synthetic import generate


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


def upload_tree(local: Path, bucket: str, prefix: str, endpoint: str) -> str:
    """Copy a local folder to s3://bucket/prefix on the test endpoint; returns the URL."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    local = Path(local)
    for p in sorted(local.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(local).as_posix()}")
    return f"s3://{bucket}/{prefix}"
