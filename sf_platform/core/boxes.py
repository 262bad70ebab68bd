"""Box conversions between pixels and the [0, 1000] grid used by Qwen3-VL and InternVL.

A stored ``bbox_1000`` is ``round(1000 * x / W)`` clipped to [0, 1000], with ``x1 < x2`` and
``y1 < y2`` enforced by widening a collapsed side by one unit (a 3-pixel object in a 4000-pixel
image still has a box, not a degenerate line).  Pixel boxes are kept beside it so exports to
absolute-pixel formats stay exact.
"""

from __future__ import annotations

import numpy as np

GRID = 1000


def px_to_1000(boxes_px: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Vectorised ``[N, 4]`` pixel boxes -> int16 ``[N, 4]`` boxes in [0, 1000].

    ``width``/``height`` are per-row (or scalars) of the oriented image.
    """
    b = np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4)
    w = np.broadcast_to(np.asarray(width, dtype=np.float64), (b.shape[0],))
    h = np.broadcast_to(np.asarray(height, dtype=np.float64), (b.shape[0],))
    scale = np.stack([w, h, w, h], axis=1)
    out = np.rint(GRID * b / scale)
    out = np.clip(out, 0, GRID)
    x1, y1, x2, y2 = (out[:, i].copy() for i in range(4))
    # Collapsed sides: widen to one unit, staying inside the grid.
    for lo, hi in ((x1, x2), (y1, y2)):
        bad = hi <= lo
        hi[bad] = np.minimum(lo[bad] + 1, GRID)
        lo[bad] = hi[bad] - 1
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.int16)


def one_px_to_1000(box: list[float] | tuple[float, ...], width: int, height: int) -> list[int]:
    """Scalar convenience wrapper of :func:`px_to_1000` for one box."""
    return px_to_1000(np.asarray([box]), width, height)[0].tolist()


def box_1000_to_px(box: list[int], width: int, height: int) -> list[float]:
    """Inverse of :func:`one_px_to_1000` (up to rounding: at most W/2000 px per side)."""
    x1, y1, x2, y2 = box
    return [x1 * width / GRID, y1 * height / GRID, x2 * width / GRID, y2 * height / GRID]


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` (vectorised)."""
    a = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.stack([a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]], axis=1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[N, 4]`` and ``[M, 4]`` xyxy boxes -> ``[N, M]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


# EXIF orientation tags 1..8: how to map a point of the *stored* (raw) pixel array of size
# (W, H) into the displayed (oriented) image.  Tags 5..8 swap width and height.
SWAPS_AXES = {5, 6, 7, 8}


def orient_boxes(boxes: np.ndarray, orientation: int, raw_w: float, raw_h: float) -> np.ndarray:
    """Map ``[N, 4]`` xyxy boxes from the raw pixel frame into the EXIF-oriented frame.

    Mirrors what ``PIL.ImageOps.exif_transpose`` does to the pixels, so a box drawn on the
    raw array lands on the same object in the oriented image.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    W, H = float(raw_w), float(raw_h)
    o = int(orientation or 1)
    if o == 1:
        nx1, ny1, nx2, ny2 = x1, y1, x2, y2
    elif o == 2:  # mirror horizontal
        nx1, ny1, nx2, ny2 = W - x2, y1, W - x1, y2
    elif o == 3:  # rotate 180
        nx1, ny1, nx2, ny2 = W - x2, H - y2, W - x1, H - y1
    elif o == 4:  # mirror vertical
        nx1, ny1, nx2, ny2 = x1, H - y2, x2, H - y1
    elif o == 5:  # transpose
        nx1, ny1, nx2, ny2 = y1, x1, y2, x2
    elif o == 6:  # rotate 90 CW for display: (x, y) -> (H - y, x)
        nx1, ny1, nx2, ny2 = H - y2, x1, H - y1, x2
    elif o == 7:  # transverse
        nx1, ny1, nx2, ny2 = H - y2, W - x2, H - y1, W - x1
    elif o == 8:  # rotate 90 CCW for display: (x, y) -> (y, W - x)
        nx1, ny1, nx2, ny2 = y1, W - x2, y2, W - x1
    else:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation}")
    return np.stack([nx1, ny1, nx2, ny2], axis=1)


def orient_points(xy: np.ndarray, orientation: int, raw_w: float, raw_h: float) -> np.ndarray:
    """Map ``[N, 2]`` points from the raw frame into the oriented frame (see ``orient_boxes``)."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    boxes = np.concatenate([p, p], axis=1)
    out = orient_boxes(boxes, orientation, raw_w, raw_h)
    # For a degenerate box (a point) x1 == x2 after mapping.
    return out[:, :2]
