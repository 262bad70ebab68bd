"""Box-relative mask grids: packing, exact area resampling, projection onto a depth map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core.mask_bits import (
    MASK_GRID,
    box_raster_mask,
    full_box_bits,
    grid_from_mask,
    grid_on_map,
    mask_bbox,
    mask_box_iou,
    pack_grid,
    unpack_grid,
)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_pack_unpack_roundtrip(grid, seed):
    g = np.random.default_rng(seed).random((grid, grid)) > 0.5
    bits = pack_grid(g)
    assert len(bits) == (grid * grid + 7) // 8
    assert np.array_equal(unpack_grid(bits, grid), g)


def test_unpack_rejects_wrong_length():
    with pytest.raises(ValueError, match="need 128 bytes"):
        unpack_grid(b"\x00" * 10, 32)


def test_full_box_bits_all_set():
    assert unpack_grid(full_box_bits()).all()


def test_grid_of_box_raster_is_full_and_left_half_is_left_columns():
    box = [10.0, 20.0, 74.0, 84.0]  # 64 x 64 px, 2 px per cell
    full = box_raster_mask(box, 100, 100)
    assert grid_from_mask(full, box).all()
    half = full.copy()
    half[:, 42:] = False  # keep x in [10, 42): the left half of the box
    g = grid_from_mask(half, box)
    assert g[:, :16].all() and not g[:, 16:].any()


def test_grid_from_mask_fractional_frame_uses_area():
    # Frame edges off the pixel grid: a cell half covered by mask is set (>= 0.5), less is not.
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    g = grid_from_mask(mask, [0.0, 0.0, 10.0, 10.0], grid=4)  # cells 2.5 px wide
    assert g[:, :2].all() and not g[:, 2:].any()  # cell 1 covers [2.5, 5): all mask


def test_grid_from_mask_rejects_degenerate_frame():
    with pytest.raises(ValueError, match="x1 < x2"):
        grid_from_mask(np.ones((4, 4), bool), [2, 2, 2, 3])


def test_mask_box_iou_and_bbox():
    box = [10.0, 10.0, 30.0, 20.0]
    m = box_raster_mask(box, 40, 40)
    assert mask_box_iou(m, box) == pytest.approx(1.0)
    m2 = m.copy()
    m2[:, 20:] = False
    assert mask_box_iou(m2, box) == pytest.approx(0.5)
    assert mask_bbox(m2) == [10.0, 10.0, 20.0, 20.0]
    assert mask_bbox(np.zeros((3, 3), bool)) is None


def test_grid_on_map_matches_box_footprint():
    # 400 x 200 image, map 100 x 50 (4 px per map pixel); box covers map cols 10..29, rows 5..14.
    box = [40.0, 20.0, 120.0, 60.0]
    full = grid_on_map(np.ones((MASK_GRID, MASK_GRID), bool), box, 400, 200, 50, 100)
    expected = np.zeros((50, 100), bool)
    expected[5:15, 10:30] = True
    assert np.array_equal(full, expected)
    left = np.zeros((MASK_GRID, MASK_GRID), bool)
    left[:, :16] = True
    half = grid_on_map(left, box, 400, 200, 50, 100)
    assert half[5:15, 10:20].all() and not half[:, 20:].any()


def _reference_grid(mask, frame, grid):
    """Slow oracle: supersample every cell 64x64 and take the covered share."""
    x1, y1, x2, y2 = frame
    out = np.zeros((grid, grid), bool)
    sub = (np.arange(64) + 0.5) / 64
    for i in range(grid):
        ys = y1 + (y2 - y1) * (i + sub) / grid
        for j in range(grid):
            xs = x1 + (x2 - x1) * (j + sub) / grid
            r = np.clip(ys.astype(int), 0, mask.shape[0] - 1)
            c = np.clip(xs.astype(int), 0, mask.shape[1] - 1)
            inside = ((ys >= 0) & (ys < mask.shape[0]))[:, None] & ((xs >= 0) & (xs < mask.shape[1]))[None, :]
            out[i, j] = (mask[r[:, None], c[None, :]] & inside).mean() >= 0.5
    return out


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_grid_from_mask_matches_supersampling_oracle(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((60, 80), bool)
    for _ in range(3):  # a few blobs
        cy, cx, r = rng.uniform(0, 60), rng.uniform(0, 80), rng.uniform(5, 25)
        yy, xx = np.mgrid[:60, :80]
        mask |= (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 < r * r
    x1, y1 = rng.uniform(-5, 40), rng.uniform(-5, 30)
    frame = [x1, y1, x1 + rng.uniform(8, 50), y1 + rng.uniform(8, 40)]
    ours, ref = grid_from_mask(mask, frame, 8), _reference_grid(mask, frame, 8)
    assert (ours == ref).mean() >= 0.95  # only cells within ~1/64 of the 50% line may differ


def test_mask_box_iou_matches_rasterised_definition():
    rng = np.random.default_rng(1)
    for _ in range(20):
        m = rng.random((50, 70)) > 0.6
        x1, y1 = rng.uniform(-3, 50), rng.uniform(-3, 30)
        box = [x1, y1, x1 + rng.uniform(1, 30), y1 + rng.uniform(1, 30)]
        r = box_raster_mask(box, 50, 70)
        expected = (m & r).sum() / max((m | r).sum(), 1)
        assert mask_box_iou(m, box) == pytest.approx(expected)
