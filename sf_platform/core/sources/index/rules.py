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
    id_overflow = int_overflow(ids) if n else np.zeros(0, bool)
    sizes = {
        side: pc.fill_null(images.column(side), 0).to_numpy(zero_copy_only=False)
        for side in ("width", "height")
    }
    too_big = (sizes["width"] > INT32_MAX) | (sizes["height"] > INT32_MAX)
    for i in range(n):
        if id_list[i] is None:
            reason[i], detail[i] = "missing_image_id", f"image entry {i} has no id"
        elif first[i] != i:
            reason[i] = "duplicate_image_id"
            detail[i] = (
                f"image id {id_list[i]} already used by entry {first[i]} "
                f"({names[first[i]]!r}); the first entry is kept and owns its annotations"
            )
        elif id_overflow[i]:
            reason[i] = "value_overflow"
            detail[i] = f"image id {id_list[i]} is an integer beyond int64 (would be rounded)"
        elif too_big[i]:
            reason[i] = "value_overflow"
            detail[i] = (
                f"image {id_list[i]} declares {sizes['width'][i]}x{sizes['height'][i]} px, beyond a "
                "32-bit size (it would wrap to a wrong size)"
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


INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def int_overflow(ids) -> np.ndarray:
    """True where a string id is an integer outside int64: a JSON id like 10**30 (or 1e30)
    cannot be the source's real id, and stored it would be rounded (parsers read it as a
    float), so two annotations could share it."""
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    long = pc.fill_null(pc.match_substring_regex(arr, r"^-?[0-9]{19,}$"), False)
    out = long.to_numpy(zero_copy_only=False).copy()
    for i in np.flatnonzero(out):
        out[i] = abs(int(arr[i].as_py())) > INT64_MAX
    return out


# Object reject codes in the order they are tested (the first that fails is reported).
_OBJECT_RULES = (
    "unknown_image",
    "image_quarantined",
    "unknown_category",
    "bad_category_name",
    "value_overflow",
    "nan_box",
    "nan_point",
    "degenerate_box",
)


def _object_detail(code: str, key, cat_key, raw_cat, object_id, box) -> str:
    if code == "unknown_image":
        return f"annotation refers to image {key!r}, which is not in the image list"
    if code == "image_quarantined":
        return f"its image {key!r} was quarantined at read time"
    if code == "unknown_category":
        if cat_key is not None:
            return f"category {cat_key!r} is not in the class list"
        return "the object has no category name (empty label)"
    if code == "bad_category_name":
        return (
            f"category name {raw_cat!a} is empty once control characters, markup and quotes "
            "are removed"
        )
    if code == "value_overflow":
        return f"annotation id {object_id} is an integer beyond int64 (would be rounded)"
    if code == "nan_box":
        return f"box {box} is not four finite numbers"
    if code == "nan_point":
        return "point has a NaN, infinite or missing coordinate"
    return f"box {box} has zero or negative width or height"


def object_reasons(
    batch: pa.Table, pos: np.ndarray, rejected: np.ndarray, raw_category, category
) -> tuple[pa.Array, pa.Array]:
    """(reason, detail) per row, null when the row is fine: the first rule of
    :data:`_OBJECT_RULES` that fails (image problems before category before coordinates).
    ``raw_category`` is the resolved name as the source wrote it, ``category`` the cleaned one."""
    n = batch.num_rows
    unknown_image = pos < 0
    img_rej = np.zeros(n, bool)
    img_rej[~unknown_image] = rejected[pos[~unknown_image]]
    no_raw = pc.fill_null(pc.equal(raw_category, ""), True).to_numpy(zero_copy_only=False)
    no_clean = pc.fill_null(pc.equal(category, ""), True).to_numpy(zero_copy_only=False)
    nan_px, deg_px = box_reasons(batch.column("bbox_px"))
    nan_n, deg_n = box_reasons(batch.column("bbox_norm"))
    failed = (
        unknown_image,
        img_rej,
        no_raw,
        no_clean,
        int_overflow(batch.column("object_id")),
        nan_px | nan_n,
        points_nan(batch.column("points")),
        deg_px | deg_n,
    )
    codes = np.zeros(n, dtype=np.int8)
    for k, mask in enumerate(failed, start=1):
        codes[(codes == 0) & mask] = k
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    bad = np.flatnonzero(codes)
    if len(bad):
        sub = batch.take(pa.array(bad))
        keys = sub.column("image_key").to_pylist()
        cat_keys = sub.column("category_key").to_pylist()
        raw = pc.take(raw_category, pa.array(bad)).to_pylist()
        ids = sub.column("object_id").to_pylist()
        boxes = pc.coalesce(sub.column("bbox_px"), sub.column("bbox_norm")).to_pylist()
        for j, row in enumerate(bad):
            code = _OBJECT_RULES[codes[row] - 1]
            reason[row] = code
            detail[row] = _object_detail(code, keys[j], cat_keys[j], raw[j], ids[j], boxes[j])
    return pa.array(reason, pa.string()), pa.array(detail, pa.string())
