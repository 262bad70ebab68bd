"""The index's validation rules: the image list (ids, file names) and every object row
(image, category, coordinates).  Each rule gives a reason code of
:data:`sf_platform.core.quarantine.REASONS` and a sentence naming the offending value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.paths import path_escapes


class ImageLookup:
    """Image id -> position of its first entry; integer ids via numpy, others via a dict."""

    def __init__(self, ids: pa.ChunkedArray):
        self.ints = as_int64(ids)
        if self.ints is not None:
            values, ok = self.ints
            valid = np.flatnonzero(ok)
            keys = values[valid]
            self.keys, first = np.unique(keys, return_index=True)
            self.first = valid[first]
        else:
            self.table: dict[str, int] = {}
            for i, key in enumerate(ids.to_pylist()):
                if key is not None:
                    self.table.setdefault(key, i)

    def find(self, keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Positions of ``keys`` (-1 where unknown or null)."""
        if self.ints is None:
            return np.asarray(
                [self.table.get(k, -1) if k is not None else -1 for k in keys.to_pylist()],
                dtype=np.int64,
            )
        parsed = as_int64(keys, strict=False)
        vals, valid = parsed
        out = np.full(len(vals), -1, dtype=np.int64)
        if len(self.keys) and valid.any():
            idx = np.searchsorted(self.keys, vals[valid])
            idx_c = np.minimum(idx, len(self.keys) - 1)
            hit = self.keys[idx_c] == vals[valid]
            out[np.flatnonzero(valid)[hit]] = self.first[idx_c[hit]]
        return out


def as_int64(ids, strict: bool = True):
    """(int64 values, valid mask) when string ids are canonical integers, else None (strict)
    or invalid entries masked out (not strict)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    canonical = pc.fill_null(pc.match_substring_regex(ids, r"^-?(0|[1-9][0-9]{0,17})$"), False)
    ok = canonical.to_numpy(zero_copy_only=False)
    if strict and not ok[pc.is_valid(ids).to_numpy(zero_copy_only=False)].all():
        return None
    cleaned = pc.if_else(canonical, ids, pa.scalar("0", pa.string()))
    return pc.cast(cleaned, pa.int64()).to_numpy(zero_copy_only=False), ok


@dataclass
class ImageChecks:
    first: np.ndarray  # position of the first entry with the same id (itself when unique)
    reason: list  # per position: None or a reason code
    detail: list


def check_images(images: pa.Table, lookup: ImageLookup) -> ImageChecks:
    ids = images.column("image_id")
    names = images.column("file_name").to_pylist()
    id_list = ids.to_pylist()
    n = images.num_rows
    first = lookup.find(ids) if n else np.zeros(0, np.int64)
    reason: list = [None] * n
    detail: list = [None] * n
    for i in range(n):
        if id_list[i] is None:
            reason[i], detail[i] = "missing_image_id", f"image entry {i} has no id"
        elif first[i] != i:
            reason[i] = "duplicate_image_id"
            detail[i] = (
                f"image id {id_list[i]} already used by entry {first[i]} "
                f"({names[first[i]]!r}); the first entry is kept and owns its annotations"
            )
        elif not names[i]:
            reason[i], detail[i] = "missing_file_name", f"image {id_list[i]} has no file_name"
        elif path_escapes(names[i]):
            reason[i] = "path_escape"
            detail[i] = f"file_name {names[i]!r} is absolute or leaves the images root"
    return ImageChecks(first=first, reason=reason, detail=detail)


def box_reasons(boxes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(nan, degenerate) masks of a fixed-size-list box column (null boxes are neither)."""
    arr = boxes.combine_chunks() if isinstance(boxes, pa.ChunkedArray) else boxes
    present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    n = len(arr)
    if not present.any():
        return np.zeros(n, bool), np.zeros(n, bool)
    vals = pc.list_flatten(arr).to_numpy(zero_copy_only=False).reshape(-1, 4)
    b = np.full((n, 4), np.nan)
    b[present] = vals
    nan = present & ~np.isfinite(b).all(axis=1)
    with np.errstate(invalid="ignore"):
        degenerate = present & ~nan & ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]))
    return nan, degenerate


def points_nan(points: pa.ChunkedArray) -> np.ndarray:
    arr = points.combine_chunks()
    n = len(arr)
    if arr.null_count == n:
        return np.zeros(n, bool)
    flat = pc.list_flatten(arr)
    parent = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    xs = pc.fill_null(pc.struct_field(flat, "x"), np.nan).to_numpy(zero_copy_only=False)
    ys = pc.fill_null(pc.struct_field(flat, "y"), np.nan).to_numpy(zero_copy_only=False)
    bad = ~(np.isfinite(xs) & np.isfinite(ys))
    out = np.zeros(n, bool)
    out[parent[bad]] = True
    return out


class Categories:
    def __init__(self, table: pa.Table | None):
        self.table = table

    def resolve(self, batch: pa.Table) -> pa.ChunkedArray:
        category = batch.column("category")
        if self.table is None or self.table.num_rows == 0:
            return category
        idx = pc.index_in(batch.column("category_key"), value_set=self.table.column("key"))
        return pc.coalesce(category, self.table.column("name").take(idx))


def object_reasons(
    batch: pa.Table, pos: np.ndarray, rejected: np.ndarray, category
) -> tuple[pa.Array, pa.Array]:
    """(reason, detail) per row, null when the row is fine: the first rule that fails, in a
    fixed order (image problems before category before coordinates)."""
    n = batch.num_rows
    codes = np.zeros(n, dtype=np.int8)
    unknown_image = pos < 0
    codes[unknown_image] = 1
    img_rej = np.zeros(n, bool)
    img_rej[~unknown_image] = rejected[pos[~unknown_image]]
    codes[(codes == 0) & img_rej] = 2
    no_cat = pc.fill_null(pc.equal(category, ""), True).to_numpy(zero_copy_only=False)
    codes[(codes == 0) & no_cat] = 3
    nan_px, deg_px = box_reasons(batch.column("bbox_px"))
    nan_n, deg_n = box_reasons(batch.column("bbox_norm"))
    nan_pt = points_nan(batch.column("points"))
    codes[(codes == 0) & (nan_px | nan_n)] = 4
    codes[(codes == 0) & nan_pt] = 5
    codes[(codes == 0) & (deg_px | deg_n)] = 6
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    bad = np.flatnonzero(codes)
    if not len(bad):
        return pa.array(reason, pa.string()), pa.array(detail, pa.string())
    sub = batch.take(pa.array(bad))
    keys = sub.column("image_key").to_pylist()
    cats = sub.column("category_key").to_pylist()
    boxes = pc.coalesce(sub.column("bbox_px"), sub.column("bbox_norm")).to_pylist()
    for j, row in enumerate(bad):
        c = codes[row]
        if c == 1:
            reason[row], detail[row] = (
                "unknown_image",
                f"annotation refers to image {keys[j]!r}, which is not in the image list",
            )
        elif c == 2:
            reason[row], detail[row] = (
                "image_quarantined",
                f"its image {keys[j]!r} was quarantined at read time",
            )
        elif c == 3:
            if cats[j] is not None:
                reason[row], detail[row] = (
                    "unknown_category",
                    f"category {cats[j]!r} is not in the class list",
                )
            else:
                reason[row], detail[row] = (
                    "unknown_category",
                    "the object has no category name (empty label)",
                )
        elif c == 4:
            reason[row], detail[row] = ("nan_box", f"box {boxes[j]} is not four finite numbers")
        elif c == 5:
            reason[row], detail[row] = (
                "nan_point",
                "point has a NaN, infinite or missing coordinate",
            )
        else:
            reason[row], detail[row] = (
                "degenerate_box",
                f"box {boxes[j]} has zero or negative width or height",
            )
    return pa.array(reason, pa.string()), pa.array(detail, pa.string())
