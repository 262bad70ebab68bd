"""Train / validation split by image: a hash of ``<source>/<image_id>`` decides.

Splitting by image, not by row, keeps every question about one image on one side, so a
model is never validated on a photo it trained on.  The hash is of the image's stable
identity (the source's own id), so an image stays in its split across releases and across
task-mix changes; ``fraction`` is the expected share of images held out.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

TRAIN, VALIDATION = "train", "validation"


def image_hash_unit(sources, image_ids) -> np.ndarray:
    """Each image's position in [0, 1): its blake2b hash as a fraction of 2**64."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(f"{s}/{i}".encode(), digest_size=8).digest(), "little") / 2.0**64
         for s, i in zip(sources, image_ids)),
        dtype=np.float64, count=len(image_ids))


def assign(table: pa.Table, fraction: float) -> np.ndarray:
    """``"train"`` / ``"validation"`` per row (by ``source`` and ``image_id``)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    unit = image_hash_unit(table.column("source").to_pylist(), table.column("image_id").to_pylist())
    return np.where(unit < fraction, VALIDATION, TRAIN)


def split_names(fraction: float) -> tuple[str, ...]:
    return (TRAIN, VALIDATION) if fraction > 0 else (TRAIN,)
