"""Tiny random-weight models, built once per test session and loaded like real weights."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sf_platform.core import schemas


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from sf_platform.models.tiny import ensure_tiny_models

    d = tmp_path_factory.mktemp("tiny_models")
    ensure_tiny_models(d)
    return str(d)


@pytest.fixture(scope="session")
def photos():
    """Real photos of three shapes (scikit-image ships them offline)."""
    import skimage.data

    return {"astronaut": skimage.data.astronaut(), "coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea()}


def images_table(photos: dict, **extra) -> pa.Table:
    rows = [{"source": "t", "shard": "0", "image_id": k, "image_uri": f"mem://{k}", "width": v.shape[1],
             "height": v.shape[0]} | extra.get(k, {}) for k, v in photos.items()]
    return pa.Table.from_pylist(rows, schema=schemas.IMAGES)


class Loader:
    """An image loader that records which images were loaded."""

    def __init__(self, photos: dict):
        self.photos = photos
        self.loaded: list[str] = []

    def __call__(self, row: dict) -> np.ndarray:
        self.loaded.append(row["image_id"])
        return self.photos[row["image_id"]]
