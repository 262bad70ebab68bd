"""Depth maps as stored (downsampled float16) and depth statistics over one object's pixels.

Stored maps: at most ``DEPTH_MAX_SIDE`` px on the long side, float16, C-order bytes.  256 px
keeps an object of 0.1% of the image (the smallest relation endpoint, see
``QASettings.min_object_area_frac``) at ~50 map pixels, enough for a robust median, while a
shard of 1,000 maps stays ~100 MB.  float16 has 11 bits of mantissa: 0.05% relative error, far
below any depth model's error.

``depth_kind``: ``"metric"`` (metres, smaller = closer) or ``"disparity"`` (relative inverse
depth, larger = closer, unknown scale and shift: only orderings and ratios to the image's own
range mean something).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sf_platform.core.mask_bits import grid_on_map

DEPTH_MAX_SIDE = 256
DEPTH_KINDS = ("metric", "disparity")

# Depth statistics over fewer pixels than a 3x3 patch are one or two samples: a single pixel on
# an edge decides the median.  Nine pixels tolerate four outliers.
MIN_DEPTH_PIXELS = 9
# An object whose own p10..p90 depth spread covers more than half of the whole image's depth
# range is not "at one depth": a mask leaking into the background, a ground plane, a long table
# receding from the camera.  Its median is then a poor summary for near/far questions.
MAX_RELATIVE_SPREAD = 0.5
# Metric depth only: the same test on the log scale, where depth errors live (DESIGN.md models
# them as log-normal and near/far asks for a log-depth gap of 0.2).  An object whose own pixels
# span more than two such margins (a factor 1.5) could be both nearer and farther than a
# neighbour at the margin; it also catches a far object whose box is mostly the wall behind it,
# which the image-range test misses because far depths are compressed in an absolute range.
# Disparity has an unknown shift, so ratios mean nothing there; only the range test applies.
MAX_LOG_SPREAD = 0.4
# Fallback region when the mask is poor: the central half of the box on each side (a quarter
# of its area).  Box corners are mostly background for non-rectangular objects; the centre of
# a box is mostly the object for convex and roughly convex shapes.
CENTRAL_FRACTION = 0.5
# Without a trusted mask the object's depth is only trustworthy when its whole box is one
# depth layer: anything else visible in a box is background (farther) or an occluder (nearer),
# and the central part of a table's or a lamp's box can be all wall.  The layer test uses the
# 1st..99th percentiles of the whole box so that an object covering only a few percent of its
# box (a thin pole against a wall) still shows up as a second layer.
BOX_LAYER_PERCENTILES = (1, 99)


def map_shape(height: int, width: int, max_side: int = DEPTH_MAX_SIDE) -> tuple[int, int]:
    """Shape ``(h, w)`` of the stored map for an image of ``height x width`` (aspect kept)."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def nearest_downsample(depth: np.ndarray, max_side: int = DEPTH_MAX_SIDE) -> np.ndarray:
    """Nearest-neighbour downsampling (pixel centres).

    Used for *given* depth: sensor maps have holes (0 / NaN) and sharp object edges; averaging
    would invent depths between foreground and background and smear holes into valid pixels.
    """
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth map must be 2-D, got shape {d.shape}")
    h, w = map_shape(*d.shape, max_side=max_side)
    rows = np.minimum(((np.arange(h) + 0.5) * d.shape[0] / h).astype(np.int64), d.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * d.shape[1] / w).astype(np.int64), d.shape[1] - 1)
    return d[rows[:, None], cols[None, :]]


def valid_depth(values: np.ndarray, depth_kind: str) -> np.ndarray:
    """Bool mask of usable depth values: finite, and > 0 for metric maps (0 = sensor hole)."""
    v = np.asarray(values, dtype=np.float32)
    ok = np.isfinite(v)
    if depth_kind == "metric":
        ok &= v > 0
    return ok


def encode_depth_map(depth: np.ndarray) -> tuple[bytes, int, int]:
    """float map -> (float16 C-order bytes, height, width)."""
    d = np.ascontiguousarray(np.asarray(depth, dtype=np.float16))
    return d.tobytes(), int(d.shape[0]), int(d.shape[1])


def decode_depth_map(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_depth_map` -> float32 ``[height, width]``."""
    if len(data) != 2 * height * width:
        raise ValueError(f"depth map bytes ({len(data)}) do not match shape {height}x{width} float16")
    return np.frombuffer(data, dtype=np.float16).reshape(height, width).astype(np.float32)


def depth_range(depth: np.ndarray, depth_kind: str) -> tuple[float | None, float | None]:
    """Min and max over valid pixels (None, None when there are none)."""
    d = np.asarray(depth, dtype=np.float32)
    v = d[valid_depth(d, depth_kind)]
    if v.size == 0:
        return None, None
    return float(v.min()), float(v.max())


@dataclass(frozen=True)
class DepthStats:
    median: float | None
    p10: float | None
    p90: float | None
    n_pixels: int
    region: str  # "mask" | "box_center" | "points" | "nearest" | "none"
    reliable: bool


def _box_region(box, frac, image_w, image_h, map_h, map_w) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * frac / 2, (y2 - y1) * frac / 2
    xs = (np.arange(map_w) + 0.5) * (image_w / map_w)
    ys = (np.arange(map_h) + 0.5) * (image_h / map_h)
    return ((ys >= cy - hh) & (ys < cy + hh))[:, None] & ((xs >= cx - hw) & (xs < cx + hw))[None, :]


def _map_index(x: float, y: float, image_w, image_h, map_h, map_w) -> tuple[int, int]:
    r = min(max(int(y * map_h / image_h), 0), map_h - 1)
    c = min(max(int(x * map_w / image_w), 0), map_w - 1)
    return r, c


def _points_region(points, image_w, image_h, map_h, map_w) -> np.ndarray:
    """3x3 map patches around each point (a point says where the object is, not its extent)."""
    region = np.zeros((map_h, map_w), dtype=bool)
    for x, y in points:
        r, c = _map_index(x, y, image_w, image_h, map_h, map_w)
        region[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = True
    return region


def is_reliable(n_pixels: int, p10: float, p90: float, image_min: float | None, image_max: float | None,
                depth_kind: str = "disparity") -> bool:
    """Enough pixels, and an own depth spread that is small against the image's depth range
    (and, for metric depth, on the log scale).

    See ``MIN_DEPTH_PIXELS``, ``MAX_RELATIVE_SPREAD`` and ``MAX_LOG_SPREAD`` for why.  An image
    with no depth range (flat map) cannot order anything, so its objects are never reliable.
    """
    if n_pixels < MIN_DEPTH_PIXELS or image_min is None or image_max is None:
        return False
    span = image_max - image_min
    if span <= 0 or (p90 - p10) / span > MAX_RELATIVE_SPREAD:
        return False
    if depth_kind == "metric":
        return p10 > 0 and float(np.log(p90 / p10)) <= MAX_LOG_SPREAD
    return True


def _box_is_one_layer(d, valid, box, image_w, image_h, lo, hi, depth_kind) -> bool:
    """Whole box at one depth (see ``BOX_LAYER_PERCENTILES``): the box fallback is trusted."""
    region = _box_region(box, 1.0, image_w, image_h, *d.shape)
    values = d[region & valid]
    if values.size < MIN_DEPTH_PIXELS:
        return False
    p_lo, p_hi = (float(v) for v in np.percentile(values, BOX_LAYER_PERCENTILES))
    return is_reliable(values.size, p_lo, p_hi, lo, hi, depth_kind)


def object_depth_stats(
    depth: np.ndarray,
    depth_kind: str,
    image_width: int,
    image_height: int,
    *,
    box: list[float] | None,
    mask_grid: np.ndarray | None = None,
    mask_frame: list[float] | None = None,
    mask_trusted: bool = False,
    points: list[tuple[float, float]] | None = None,
    image_range: tuple[float | None, float | None] | None = None,
) -> DepthStats:
    """Median / p10 / p90 of ``depth`` over one object's own pixels.

    Region, in order of preference: the mask (when ``mask_trusted``: the caller compares the
    mask with its box, see ``QASettings.min_mask_box_iou``) projected onto the map; the central
    part of the box; 3x3 patches at the object's points (point-only objects); the single map
    pixel nearest the box centre (tiny boxes).  Only the first two can be reliable: a point
    patch or one pixel says nothing about the object's extent.
    """
    d = np.asarray(depth, dtype=np.float32)
    map_h, map_w = d.shape
    valid = valid_depth(d, depth_kind)
    lo, hi = image_range if image_range is not None else depth_range(d, depth_kind)

    candidates: list[tuple[str, np.ndarray]] = []
    if mask_trusted and mask_grid is not None and mask_frame is not None:
        candidates.append(("mask", grid_on_map(mask_grid, mask_frame, image_width, image_height, map_h, map_w)))
    if box is not None:
        candidates.append(("box_center", _box_region(box, CENTRAL_FRACTION, image_width, image_height, map_h, map_w)))
    elif points:
        candidates.append(("points", _points_region(points, image_width, image_height, map_h, map_w)))

    for name, region in candidates:
        values = d[region & valid]
        if values.size >= MIN_DEPTH_PIXELS or (name == "points" and values.size):
            p10, med, p90 = (float(v) for v in np.percentile(values, [10, 50, 90]))
            reliable = name != "points" and is_reliable(values.size, p10, p90, lo, hi, depth_kind)
            if reliable and name == "box_center":
                reliable = _box_is_one_layer(d, valid, box, image_width, image_height, lo, hi, depth_kind)
            return DepthStats(med, p10, p90, int(values.size), name, reliable)

    if box is not None:
        x1, y1, x2, y2 = (float(v) for v in box)
        r, c = _map_index((x1 + x2) / 2, (y1 + y2) / 2, image_width, image_height, map_h, map_w)
        if valid[r, c]:
            v = float(d[r, c])
            return DepthStats(v, v, v, 1, "nearest", False)
    return DepthStats(None, None, None, 0, "none", False)
