"""Read and vet given depth maps (RGB-D and synthetic sources).

Formats (every reader returns float32 metres):
- ``.npy``: H x W (an H x W x 1 array is squeezed), read with ``allow_pickle=False`` so a depth
  file can never execute code.  A float array is metres unless the source says
  ``depth_unit: mm``.  An integer array carries no unit convention at all (millimetres are
  the usual reason to store integers, but nothing in the file says so), so it needs the
  source's ``depth_unit``; without it the map is rejected (``depth_unit_unknown``) rather than
  read as metres (a 9,888 mm wall would become 9,888 m).
- ``.png``: 16-bit unsigned millimetres (the Kinect / NYU / ScanNet / TUM convention) unless
  the source says ``depth_unit: m``.

Missing measurements: a depth of exactly 0 means "no measurement" in every RGB-D convention
(no camera sees a surface at 0 m), so both readers turn 0 into NaN.  Downstream depth
statistics therefore only have to skip NaN.

Reason codes of :class:`DepthRejected`:
- ``depth_missing``: no file where the source's depth folder should hold the image's map.
- ``depth_unit_unknown``: an integer ``.npy`` map from a source without ``depth_unit``.
- ``depth_unreadable``: not a file of the formats above, or not a 2-D real array.
- ``depth_shape_mismatch``: the map must be H x W of the *oriented* image, pixel for pixel;
  resampling a map of another size would silently shift object depths.
- ``depth_non_finite``: any +/-inf (an encoding bug, not a missing reading: one inf poisons
  every mean and range it touches), or more than :data:`MAX_MISSING_FRACTION` of the pixels
  NaN.  RGB-D sensors typically miss 5-20% of pixels (glass, black, far surfaces); past half
  the image most objects have no reliable depth, so the map is not worth keeping.
- ``depth_out_of_range``: a negative depth (impossible for a camera; a sign or offset bug).
"""

from __future__ import annotations

import io

import numpy as np

MAX_MISSING_FRACTION = 0.5
REASONS = ("depth_missing", "depth_unit_unknown", "depth_unreadable", "depth_shape_mismatch",
           "depth_non_finite", "depth_out_of_range")
UNITS_PER_METRE = {"m": 1, "mm": 1000}


def _to_metres(values: np.ndarray, unit: str) -> np.ndarray:
    """float32 metres (a float32 division, as the 16-bit PNG reader always did)."""
    out = values.astype(np.float32, copy=False)
    per_metre = UNITS_PER_METRE[unit]
    return out if per_metre == 1 else out / np.float32(per_metre)


class DepthRejected(ValueError):
    """A depth map that cannot be used; ``reason`` is a code of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _from_npy(data: bytes, name: str, unit: str | None) -> np.ndarray:
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise ValueError(
            f"expected a real-valued array, got dtype {getattr(arr, 'dtype', type(arr))}"
        )
    if arr.dtype.kind in "iu" and unit is None:
        raise DepthRejected(
            "depth_unit_unknown",
            f"{name}: integer depth map ({arr.dtype}) but the source sets no depth_unit; "
            "add depth_unit: mm (or m) to the source config",
        )
    return _to_metres(arr, unit or "m")


def _from_png(data: bytes, unit: str | None) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if not (im.mode.startswith("I;16") or im.mode == "I"):
            raise ValueError(f"depth PNG must be 16-bit millimetres, got mode {im.mode!r}")
        values = np.asarray(im)
    return _to_metres(values, unit or "mm")


def decode_depth(data: bytes, name: str, unit: str | None = None) -> np.ndarray:
    """Depth map bytes -> float32 metres (0 -> NaN); ``name`` picks the format by its suffix,
    ``unit`` (the source's ``depth_unit``) overrides the format's convention."""
    if unit is not None and unit not in UNITS_PER_METRE:
        raise ValueError(f"depth unit must be one of {sorted(UNITS_PER_METRE)}, got {unit!r}")
    lower = name.lower()
    try:
        if lower.endswith(".npy"):
            arr = _from_npy(data, name, unit)
        elif lower.endswith(".png"):
            arr = _from_png(data, unit)
        else:
            raise ValueError("unknown depth format (expected .npy metres or .png millimetres)")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim != 2:
            raise ValueError(f"expected a 2-D map, got shape {arr.shape}")
    except Exception as exc:
        if isinstance(exc, DepthRejected):
            raise
        raise DepthRejected("depth_unreadable", f"{name}: {exc}") from None
    arr = np.array(arr, dtype=np.float32, copy=True)
    arr[arr == 0] = np.nan
    return arr


def read_depth_map(uri: str, s3=None, unit: str | None = None) -> np.ndarray:
    """Float32 metres of the depth map at ``uri`` (local, file:// or s3://); 0 -> NaN.

    A missing file raises :class:`DepthRejected` (``depth_missing``), an unparsable one
    ``depth_unreadable``, an integer ``.npy`` without ``unit`` ``depth_unit_unknown``.
    """
    from sf_platform.storage.object_store import read_uri

    endpoint = getattr(s3, "endpoint_url", None) if s3 is not None else None
    region = getattr(s3, "region", None) if s3 is not None else None
    try:
        data = read_uri(uri, endpoint, region)
    except FileNotFoundError:
        raise DepthRejected("depth_missing", f"no depth file at {uri}") from None
    return decode_depth(data, uri, unit)


def check_depth_map(depth: np.ndarray, height: int, width: int) -> None:
    """Raise :class:`DepthRejected` unless ``depth`` is usable for an oriented H x W image."""
    if not isinstance(depth, np.ndarray) or depth.ndim != 2 or depth.dtype.kind != "f":
        raise DepthRejected(
            "depth_unreadable",
            f"expected a 2-D float array, got {type(depth).__name__} {getattr(depth, 'shape', '')}",
        )
    if depth.shape != (height, width):
        raise DepthRejected(
            "depth_shape_mismatch",
            f"depth map is {depth.shape[0]}x{depth.shape[1]} (HxW) but the oriented image is {height}x{width}",
        )
    n_inf = int(np.isinf(depth).sum())
    if n_inf:
        raise DepthRejected("depth_non_finite", f"{n_inf} pixels are +/-inf")
    missing = float(np.isnan(depth).mean())
    if missing > MAX_MISSING_FRACTION:
        raise DepthRejected(
            "depth_non_finite",
            f"{missing:.0%} of the pixels have no depth (NaN/0), over the {MAX_MISSING_FRACTION:.0%} limit",
        )
    with np.errstate(invalid="ignore"):
        n_neg = int((depth < 0).sum())
    if n_neg:
        raise DepthRejected("depth_out_of_range", f"{n_neg} pixels have negative depth")
