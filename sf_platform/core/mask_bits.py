"""Compact object masks: a bitmap resampled into the object's box on a fixed grid, packed bits.

Why a box-relative grid and not a full-resolution RLE: what the scene needs from a mask is
*which of the object's pixels* to take depth statistics over, on a depth map that is itself
downsampled to <= 256 px.  A 32 x 32 grid inside the box resolves the object's shape finer
than the depth map does for any object smaller than ~1/8 of the image, costs 128 bytes per
object whatever the image size, and needs no image size to decode.

Conventions:
- ``frame`` is the pixel box ``[x1, y1, x2, y2]`` the grid covers (the object's box; for a
  point-prompted mask, the mask's own bounding box).
- Cell ``(i, j)`` covers rows ``y1 + i*h/G .. y1 + (i+1)*h/G`` and the matching columns; it is
  set when at least half of its area is mask (area resampling, so thin parts survive as long
  as they fill half a cell).
"""

from __future__ import annotations

import numpy as np

MASK_GRID = 32


def pack_grid(grid_mask: np.ndarray) -> bytes:
    """``[G, G]`` bool -> packed bits (row-major, MSB first)."""
    g = np.asarray(grid_mask, dtype=bool)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"grid mask must be square 2-D, got shape {g.shape}")
    return np.packbits(g.reshape(-1)).tobytes()


def unpack_grid(bits: bytes, grid: int = MASK_GRID) -> np.ndarray:
    """Packed bits -> ``[G, G]`` bool (inverse of :func:`pack_grid`)."""
    need = (grid * grid + 7) // 8
    if len(bits) != need:
        raise ValueError(f"mask bits for a {grid}x{grid} grid need {need} bytes, got {len(bits)}")
    flat = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))[: grid * grid]
    return flat.reshape(grid, grid).astype(bool)


def full_box_bits(grid: int = MASK_GRID) -> bytes:
    """The mask of a box-as-mask object: every cell set."""
    return pack_grid(np.ones((grid, grid), dtype=bool))


def _cell_edges(lo: float, hi: float, grid: int) -> np.ndarray:
    return lo + (hi - lo) * np.arange(grid + 1) / grid


def _area_fraction_1d(edges: np.ndarray, n_pixels: int) -> np.ndarray:
    """``[G, n_pixels]`` share of each pixel column (or row) inside each grid cell.

    Pixel ``k`` spans ``[k, k+1)``; cell ``c`` spans ``[edges[c], edges[c+1])``.
    """
    k = np.arange(n_pixels, dtype=np.float64)
    lo = np.maximum(edges[:-1, None], k[None, :])
    hi = np.minimum(edges[1:, None], k[None, :] + 1.0)
    return np.clip(hi - lo, 0.0, None)


def grid_from_mask(mask: np.ndarray, frame: np.ndarray | list[float], grid: int = MASK_GRID) -> np.ndarray:
    """Resample a full-image bool ``mask`` ``[H, W]`` into ``frame`` on a ``G x G`` grid.

    Exact area resampling (separable overlap weights), so the result does not depend on how
    the frame aligns with pixel boundaries.  Returns ``[G, G]`` bool.
    """
    m = np.asarray(mask, dtype=np.float64)
    h_img, w_img = m.shape
    x1, y1, x2, y2 = (float(v) for v in frame)
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"mask frame must have x1 < x2 and y1 < y2, got {list(frame)}")
    # Only pixels that can overlap the frame matter.
    c0, c1 = max(int(np.floor(x1)), 0), min(int(np.ceil(x2)), w_img)
    r0, r1 = max(int(np.floor(y1)), 0), min(int(np.ceil(y2)), h_img)
    if c1 <= c0 or r1 <= r0:
        return np.zeros((grid, grid), dtype=bool)
    wx = _area_fraction_1d(_cell_edges(x1 - c0, x2 - c0, grid), c1 - c0)  # [G, w]
    wy = _area_fraction_1d(_cell_edges(y1 - r0, y2 - r0, grid), r1 - r0)  # [G, h]
    covered = wy @ m[r0:r1, c0:c1] @ wx.T  # [G, G] mask area per cell
    cell_area = ((x2 - x1) / grid) * ((y2 - y1) / grid)
    return covered >= 0.5 * cell_area


def mask_box_iou(mask: np.ndarray, box: np.ndarray | list[float]) -> float:
    """IoU between a full-image bool mask and a pixel box (the box rasterised by pixel centres).

    The mask-vs-prompt-box agreement is the scene's test of whether a mask can be trusted: a
    SAM mask that leaks into the background or covers a fragment has a low IoU with its box.
    """
    m = np.asarray(mask, dtype=bool)
    box_raster = box_raster_mask(box, m.shape[0], m.shape[1])
    inter = np.count_nonzero(m & box_raster)
    union = np.count_nonzero(m | box_raster)
    return float(inter / union) if union else 0.0


def box_raster_mask(box: np.ndarray | list[float], height: int, width: int) -> np.ndarray:
    """Bool ``[H, W]`` with the pixels whose centres fall inside ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    return ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]


def mask_bbox(mask: np.ndarray) -> list[float] | None:
    """Tight pixel box ``[x1, y1, x2, y2]`` of a bool mask (None when empty)."""
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def grid_on_map(
    grid_mask: np.ndarray,
    frame: np.ndarray | list[float],
    image_width: int,
    image_height: int,
    map_height: int,
    map_width: int,
) -> np.ndarray:
    """Project a box-grid mask onto a (downsampled) map of the whole image -> ``[h, w]`` bool.

    A map pixel belongs to the object when its centre, mapped into image pixels, falls inside
    the frame on a set grid cell.  Nearest-cell lookup: the grid is at least as fine as the
    map inside any box smaller than the map, so nothing is lost by not interpolating.
    """
    g = np.asarray(grid_mask, dtype=bool)
    grid = g.shape[0]
    x1, y1, x2, y2 = (float(v) for v in frame)
    xs = (np.arange(map_width) + 0.5) * (image_width / map_width)
    ys = (np.arange(map_height) + 0.5) * (image_height / map_height)
    fx = (xs - x1) / max(x2 - x1, 1e-9)
    fy = (ys - y1) / max(y2 - y1, 1e-9)
    in_x = (fx >= 0) & (fx < 1)
    in_y = (fy >= 0) & (fy < 1)
    jx = np.clip((fx * grid).astype(np.int64), 0, grid - 1)
    iy = np.clip((fy * grid).astype(np.int64), 0, grid - 1)
    out = g[iy[:, None], jx[None, :]]
    return out & in_y[:, None] & in_x[None, :]
