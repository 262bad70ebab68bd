"""Depth map storage and per-object depth statistics."""

from __future__ import annotations

import numpy as np
import pytest

from sf_platform.core.depth_stats import (
    DEPTH_MAX_SIDE,
    MIN_DEPTH_PIXELS,
    decode_depth_map,
    depth_range,
    encode_depth_map,
    is_reliable,
    map_shape,
    nearest_downsample,
    object_depth_stats,
)
from sf_platform.core.mask_bits import MASK_GRID


def test_map_shape_keeps_aspect_and_caps_long_side():
    assert map_shape(3000, 4000) == (192, 256)
    assert map_shape(4000, 3000) == (256, 192)
    assert map_shape(100, 120) == (100, 120)  # never upsampled
    assert max(map_shape(1, 10_000)) == DEPTH_MAX_SIDE and min(map_shape(1, 10_000)) == 1


def test_encode_decode_roundtrip_float16_precision():
    d = np.random.default_rng(0).uniform(0.5, 80, (37, 53)).astype(np.float32)
    data, h, w = encode_depth_map(d)
    assert (h, w) == (37, 53) and len(data) == 2 * 37 * 53
    back = decode_depth_map(data, h, w)
    assert back.dtype == np.float32
    assert np.allclose(back, d, rtol=1e-3)
    with pytest.raises(ValueError, match="do not match"):
        decode_depth_map(data, 36, 53)


def test_nearest_downsample_never_mixes_values():
    d = np.full((1000, 800), 2.0, np.float32)
    d[:, 400:] = 7.0
    d[::13, ::7] = 0.0  # sensor holes
    small = nearest_downsample(d)
    assert small.shape == (256, 205)
    assert set(np.unique(small)) <= {0.0, 2.0, 7.0}
    # Left half stays 2, right half 7 (where not a hole).
    assert set(np.unique(small[:, :100])) <= {0.0, 2.0} and set(np.unique(small[:, 110:])) <= {0.0, 7.0}


def test_depth_range_ignores_holes_for_metric_only():
    d = np.array([[0.0, 2.0], [np.nan, 5.0]], np.float32)
    assert depth_range(d, "metric") == (2.0, 5.0)
    assert depth_range(d, "disparity") == (0.0, 5.0)
    assert depth_range(np.zeros((2, 2), np.float32), "metric") == (None, None)


def _scene():
    """200 x 100 image at map scale 1: background 10 m, an L-shaped object at 3 m in box (40..80, 20..60)."""
    d = np.full((100, 200), 10.0, np.float32)
    obj = np.zeros((100, 200), bool)
    obj[20:60, 40:50] = True  # vertical bar
    obj[50:60, 40:80] = True  # foot
    d[obj] = 3.0
    return d, obj


def test_stats_over_trusted_mask_are_the_objects_depth():
    from sf_platform.core.mask_bits import grid_from_mask

    d, obj = _scene()
    box = [40.0, 20.0, 80.0, 60.0]
    grid = grid_from_mask(obj, box, MASK_GRID)
    s = object_depth_stats(d, "metric", 200, 100, box=box, mask_grid=grid, mask_frame=box, mask_trusted=True)
    assert s.region == "mask" and s.median == pytest.approx(3.0) and s.p90 == pytest.approx(3.0)
    assert s.reliable
    # The same object without a trusted mask: the box centre is mostly background here, and
    # the wide spread marks the estimate unreliable rather than publishing it.
    c = object_depth_stats(d, "metric", 200, 100, box=box, mask_grid=grid, mask_frame=box, mask_trusted=False)
    assert c.region == "box_center" and c.median == pytest.approx(10.0)


def test_box_center_region_on_constant_box_and_unreliable_spread():
    d = np.full((100, 200), 10.0, np.float32)
    d[30:70, 60:140] = 4.0
    s = object_depth_stats(d, "metric", 200, 100, box=[60, 30, 140, 70])
    assert s.region == "box_center" and s.median == 4.0 and s.reliable and s.n_pixels == 40 * 20
    # A box straddling two depths evenly: spread (p90 - p10) = the whole image range.
    s2 = object_depth_stats(d, "metric", 200, 100, box=[100, 30, 180, 70])
    assert not s2.reliable


def test_points_and_tiny_boxes_are_never_reliable():
    d = np.full((50, 50), 5.0, np.float32)
    d[0, 0] = 1.0
    p = object_depth_stats(d, "metric", 500, 500, box=None, points=[(250.0, 250.0)])
    assert p.region == "points" and p.median == 5.0 and not p.reliable
    t = object_depth_stats(d, "metric", 500, 500, box=[250, 250, 252, 252])
    assert t.region == "nearest" and t.median == 5.0 and not t.reliable and t.n_pixels == 1


def test_no_valid_depth_gives_none():
    d = np.zeros((20, 20), np.float32)
    s = object_depth_stats(d, "metric", 20, 20, box=[2, 2, 18, 18])
    assert s.median is None and s.region == "none" and not s.reliable


def test_is_reliable_rules():
    assert is_reliable(MIN_DEPTH_PIXELS, 1.0, 2.0, 0.0, 10.0)
    assert not is_reliable(MIN_DEPTH_PIXELS - 1, 1.0, 2.0, 0.0, 10.0)
    assert not is_reliable(100, 1.0, 7.0, 0.0, 10.0)
    assert not is_reliable(100, 1.0, 1.0, 1.0, 1.0)  # flat image: nothing can be ordered
    # A far object in front of the wall: small against the image's range, but a factor 1.7
    # between its own near and far pixels (log 0.53): not one depth, in metres.
    assert not is_reliable(100, 8.3, 14.0, 1.4, 14.0, "metric")
    assert is_reliable(100, 8.3, 14.0, 1.4, 14.0, "disparity")  # ratios mean nothing there
    assert is_reliable(100, 8.3, 9.0, 1.4, 14.0, "metric")
