"""EXIF-rotated photos: the raw pixel frame a rotated photo stores, and the maps between it and
the displayed (oriented) frame the scenes are composed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sf_platform.core.boxes import orient_boxes, orient_points

# EXIF tags used for rotated images, and the tag that undoes each (oriented -> raw frame).
ROTATION_TAGS = (6, 8, 3)
_INVERSE_TAG = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
# PIL transposes that produce the *raw* pixels from the displayed scene for each tag
# (the inverse of what ImageOps.exif_transpose applies when reading).
_RAW_TRANSPOSE = {
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}


def to_raw_boxes(
    boxes: np.ndarray, orientation: int, oriented_w: int, oriented_h: int
) -> np.ndarray:
    """Inverse of ``boxes.orient_boxes``: oriented-frame xyxy boxes -> the stored pixel frame."""
    return orient_boxes(boxes, _INVERSE_TAG[orientation], oriented_w, oriented_h)


def to_raw_points(xy: np.ndarray, orientation: int, oriented_w: int, oriented_h: int) -> np.ndarray:
    return orient_points(xy, _INVERSE_TAG[orientation], oriented_w, oriented_h)


def orientation_for(i: int, rotated_every: int) -> int:
    if rotated_every <= 0 or (i + 1) % rotated_every:
        return 1
    return ROTATION_TAGS[((i + 1) // rotated_every - 1) % len(ROTATION_TAGS)]


def save_jpeg(img: np.ndarray, orientation: int, path: Path) -> tuple[int, int]:
    """Write the photo; rotated ones store raw pixels + EXIF tag. Returns the stored (w, h)."""
    im = Image.fromarray(img)
    if orientation == 1:
        im.save(path, "JPEG", quality=90)
    else:
        im = im.transpose(_RAW_TRANSPOSE[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return im.size

