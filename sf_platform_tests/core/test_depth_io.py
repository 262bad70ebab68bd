"""Given depth maps: both formats, the 0 -> NaN rule and every rejection reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sf_platform.core.depth_io import (
    MAX_MISSING_FRACTION,
    DepthRejected,
    check_depth_map,
    read_depth_map,
)


def save_npy(path, arr) -> str:
    np.save(path, arr, allow_pickle=False)
    return str(path)


def test_npy_metres(tmp_path):
    arr = np.linspace(0.5, 10, 12 * 16, dtype=np.float32).reshape(12, 16)
    got = read_depth_map(save_npy(tmp_path / "d.npy", arr))
    assert got.dtype == np.float32 and got.shape == (12, 16)
    np.testing.assert_array_equal(got, arr)
    check_depth_map(got, 12, 16)
    # float64 and HxWx1 are accepted and normalised.
    got = read_depth_map(save_npy(tmp_path / "e.npy", arr[:, :, None].astype(np.float64)))
    assert got.shape == (12, 16) and got.dtype == np.float32


def test_png_millimetres_and_zero_is_missing(tmp_path):
    mm = np.full((10, 20), 2500, np.uint16)
    mm[0, :5] = 0
    path = tmp_path / "d.png"
    Image.fromarray(mm).save(path)
    got = read_depth_map("file://" + str(path))
    assert got.dtype == np.float32
    assert got[5, 5] == pytest.approx(2.5)
    assert np.isnan(got[0, :5]).all() and np.isfinite(got[1:]).all()
    check_depth_map(got, 10, 20)


def test_unreadable(tmp_path):
    with pytest.raises(DepthRejected) as e:
        read_depth_map(str(tmp_path / "absent.npy"))
    assert e.value.reason == "depth_missing" and "absent.npy" in e.value.detail
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DepthRejected, match="depth_unreadable"):
        read_depth_map(str(tmp_path / "bad.npy"))
    # An object array needs pickle: refused, never unpickled.
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DepthRejected, match="depth_unreadable"):
        read_depth_map(str(tmp_path / "obj.npy"))
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(DepthRejected, match="16-bit"):
        read_depth_map(str(tmp_path / "rgb.png"))
    with pytest.raises(DepthRejected, match="depth_unreadable"):
        read_depth_map(save_npy(tmp_path / "d3.npy", np.ones((2, 3, 4), np.float32)))
    (tmp_path / "d.exr").write_bytes(b"x")
    with pytest.raises(DepthRejected, match="unknown depth format"):
        read_depth_map(str(tmp_path / "d.exr"))


def test_shape_mismatch():
    with pytest.raises(DepthRejected) as e:
        check_depth_map(np.ones((480, 640), np.float32), 640, 480)  # not transposed for EXIF
    assert e.value.reason == "depth_shape_mismatch"


def test_inf_rejected_any_amount():
    d = np.ones((50, 50), np.float32)
    d[3, 3] = np.inf
    with pytest.raises(DepthRejected) as e:
        check_depth_map(d, 50, 50)
    assert e.value.reason == "depth_non_finite" and "inf" in e.value.detail


def test_nan_fraction_rule():
    d = np.ones((10, 10), np.float32)
    d.ravel()[: int(100 * MAX_MISSING_FRACTION)] = np.nan  # exactly at the limit: kept
    check_depth_map(d, 10, 10)
    d.ravel()[: int(100 * MAX_MISSING_FRACTION) + 1] = np.nan
    with pytest.raises(DepthRejected) as e:
        check_depth_map(d, 10, 10)
    assert e.value.reason == "depth_non_finite"


def test_negative_depth():
    d = np.ones((5, 5), np.float32)
    d[0, 0] = -1.0
    with pytest.raises(DepthRejected) as e:
        check_depth_map(d, 5, 5)
    assert e.value.reason == "depth_out_of_range"


def test_read_from_s3(s3_endpoint, s3_bucket):
    import boto3

    from sf_platform.config import S3Config

    buf = io.BytesIO()
    np.save(buf, np.full((4, 6), 3.0, np.float32), allow_pickle=False)
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=s3_bucket, Key="depth/a.npy", Body=buf.getvalue()
    )
    got = read_depth_map(f"s3://{s3_bucket}/depth/a.npy", S3Config(endpoint_url=s3_endpoint))
    assert got.shape == (4, 6) and float(got[0, 0]) == 3.0


def test_integer_npy_needs_its_unit(tmp_path):
    """An int64 millimetre map is never read as metres: without depth_unit it is rejected
    with a reason naming the file and the fix; with depth_unit: mm it is metres."""
    mm = np.full((6, 8), 9888, np.int64)
    mm[0, 0] = 0  # no measurement
    path = save_npy(tmp_path / "mm.npy", mm)
    with pytest.raises(DepthRejected) as e:
        read_depth_map(path)
    assert e.value.reason == "depth_unit_unknown"
    assert "mm.npy" in e.value.detail and "int64" in e.value.detail and "depth_unit" in e.value.detail
    got = read_depth_map(path, unit="mm")
    assert got.dtype == np.float32 and np.isnan(got[0, 0])
    assert np.nanmedian(got) == pytest.approx(9.888)
    assert np.array_equal(read_depth_map(path, unit="m")[1:], np.full((5, 8), 9888, np.float32))
    # A float map in millimetres, and a 16-bit PNG that says it holds metres.
    floats = save_npy(tmp_path / "f.npy", np.full((6, 8), 2500.0, np.float32))
    assert np.all(read_depth_map(floats, unit="mm") == np.float32(2.5))
    Image.fromarray(np.full((4, 4), 3, np.uint16)).save(tmp_path / "m.png")
    assert np.all(read_depth_map(str(tmp_path / "m.png"), unit="m") == 3.0)
    with pytest.raises(ValueError, match="depth unit"):
        read_depth_map(path, unit="cm")
