"""The per-source shard index: a source's annotations, read once, cut into fixed-size shards.

A shard is a fixed-size slice (``src.shard_size`` images, default 1,000) of the source's image
list *in source order*, key ``f"{i // shard_size:05d}"``.  Every entry of the list counts,
rejected ones included, so shard membership depends only on the list: a source that grows by
appending images (and their annotations) keeps every old full shard byte-for-byte identical
(same content hash) and gains new shards, and nothing downstream re-runs for old shards.

``build_index`` streams the inputs once (readers spill objects to a local temporary folder),
buckets objects by shard on disk, and writes::

    <root>/sources/<name>/index/<fingerprint>/images/<file>.parquet      RAW_IMAGES
    <root>/sources/<name>/index/<fingerprint>/objects/<file>.parquet     OBJECTS
    <root>/sources/<name>/index/<fingerprint>/quarantine/<file>.parquet  QUARANTINE
    <root>/sources/<name>/index/summary.json                            written LAST

Each ``<file>`` holds ``shards_per_file`` consecutive shards, one Parquet row group per shard
(whose ``shard`` column statistics name it), so :func:`read_shard` reads one footer and one row
group per table however many shards the source has.  The summary is written last and names the
fingerprint folder: a reader that loads it always sees a complete, consistent index; the
previous version's folder is kept (for readers still on it) and older ones are deleted.

Reader-level quarantine (QUARANTINE rows; everything that needs pixels is curation's job):

============================  =====================================================================
``duplicate_image_id``        a later image entry reusing an id: the first entry is kept and every
                              annotation of that id attaches to it (an annotation names only the
                              id, so it cannot say which entry it meant; the first is the one kept)
``path_escape``               ``file_name`` absolute or climbing out of the images root with ``..``
``missing_image_id`` /        an image entry without id / without file name
``missing_file_name``
``unknown_image``             an annotation whose image id is not in the image list
``image_quarantined``         an annotation of an image rejected above (kept with a reason, not lost)
``unknown_category``          category id / MID not in the class list, or an empty PixMo label
``nan_box`` / ``nan_point``   NaN / inf / missing coordinates, or a bbox that is not 4 numbers
``degenerate_box``            zero or negative width or height
``unmatched_keypoints``       a keypoint annotation with no person box (IoU >= 0.5) or no image
``malformed_keypoints``       a keypoint list that is not 17 ``x, y, v`` triples
============================  =====================================================================

Rows about no image of the list (``unknown_image``, keypoints of unknown images) belong to no
shard; they go to shard ``00000``'s quarantine so every reject surfaces in the pipeline.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import posixpath
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sf_platform.config import RELEASE_ONLY_KEYS, S3Config, SourceConfig
from sf_platform.core import schemas
from sf_platform.core.sources import coco_keypoints
from sf_platform.core.sources.objects365 import read_objects365
from sf_platform.core.sources.openimages import read_openimages
from sf_platform.core.sources.pixmo import read_pixmo
from sf_platform.core.sources.records import RAW_OBJECTS, SourceRecords, Spill, path_escapes
from sf_platform.storage.object_store import ObjectStore, filesystem_for, join_uri

# Bump when the reader output for the same inputs changes (forces a rebuild via the fingerprint).
READER_VERSION = "2"
# Images per index file: ~16k images x ~15 boxes keeps one bucket (sorted in memory while the
# file is written) around a quarter million rows (~40 MB of Arrow data per copy).
IMAGES_PER_FILE = 16_384
ORPHAN_POS = 2**62  # sort key of rows attached to no image (after every real image)
_TABLES = ("images", "objects", "quarantine")
_KIND_RANK = {"image": 0, "object": 1, "keypoints": 2}
_SCHEMAS = {
    "images": schemas.RAW_IMAGES,
    "objects": schemas.OBJECTS,
    "quarantine": schemas.QUARANTINE,
}
_PIXEL_FREE = frozenset({"openimages", "pixmo"})


@dataclass(frozen=True)
class RawShard:
    images: pa.Table  # schemas.RAW_IMAGES
    objects: pa.Table  # schemas.OBJECTS (bbox_px in the annotation's pixel frame, or bbox_norm)
    quarantine: pa.Table  # schemas.QUARANTINE (reader-level rejects)


@dataclass(frozen=True)
class SourceIndexSummary:
    source: str
    format: str
    fingerprint: str
    num_images: int
    num_objects: int
    num_quarantined: int
    shards: dict[str, str] = field(default_factory=dict)  # "00000" -> content hash
    shard_size: int = 1000
    shards_per_file: int = 32
    reader_version: str = READER_VERSION
    previous_fingerprint: str | None = None
    # Where ``file_name`` is relative to: ``src.images``, or for the synthetic source the
    # generator's image folder.  Curation joins this with ``file_name``.
    images_root: str = ""


def shard_key(i: int) -> str:
    return f"{i:05d}"


def _index_prefix(source_name: str) -> str:
    return f"sources/{source_name}/index"


def _shards_per_file(shard_size: int) -> int:
    return max(1, IMAGES_PER_FILE // shard_size)


# --- Fingerprint ------------------------------------------------------------------------------


def _file_stats(uri: str, s3: S3Config) -> list:
    """(path, size, mtime or ETag) of a file, or of every file under a folder."""
    fs, path = filesystem_for(uri, s3.endpoint_url, s3.region)
    infos = fs.find(path, detail=True).values() if fs.isdir(path) else [fs.info(path)]
    out = []
    for info in infos:
        stamp = (
            info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created")
        )
        out.append([info["name"], int(info.get("size") or 0), str(stamp)])
    return sorted(out)


def source_fingerprint(src: SourceConfig, s3: S3Config) -> str:
    """Cheap change detector: the config plus size and mtime (local) / ETag (S3) of the
    annotation, class and keypoint files.  Changes whenever one of those files changes.

    A local depth folder contributes its own mtime (it changes when maps are added or
    removed); an S3 depth prefix is not listed (too costly per sensor tick): re-index by hand
    after adding depth maps there.  The synthetic source is deterministic in its config.
    """
    parts: dict = {"reader_version": READER_VERSION, "config": src.model_dump(mode="json", exclude=set(RELEASE_ONLY_KEYS))}
    if src.format == "synthetic":
        from sf_platform.core.sources import synthetic

        parts["generator"] = str(getattr(synthetic, "GENERATOR_VERSION", ""))
    else:
        for key in ("annotations", "classes", "keypoints", "hierarchy"):
            uri = getattr(src, key)
            if uri:
                parts[key] = _file_stats(uri, s3)
        if src.depth and "://" not in src.depth and os.path.isdir(src.depth):
            parts["depth_mtime"] = os.stat(src.depth).st_mtime_ns
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --- Content hash -----------------------------------------------------------------------------


def _feed(h, arr: pa.Array) -> None:
    """Feed an array's logical content (not its buffer layout) into a hash."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    h.update(str(arr.type).encode())
    h.update(len(arr).to_bytes(8, "little"))
    h.update(np.packbits(pc.is_valid(arr).to_numpy(zero_copy_only=False)).tobytes())
    t = arr.type
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        h.update(
            pc.fill_null(pc.list_value_length(arr), -1).to_numpy(zero_copy_only=False).tobytes()
        )
        _feed(h, pc.list_flatten(arr))
    elif pa.types.is_struct(t):
        for child in arr.flatten():
            _feed(h, child)
    elif pa.types.is_string(t) or pa.types.is_binary(t):
        filled = pc.fill_null(arr, "")
        h.update(pc.binary_length(filled).to_numpy(zero_copy_only=False).astype(np.int64).tobytes())
        h.update("\x00".join(filled.to_pylist()).encode("utf-8", "surrogatepass"))
    elif pa.types.is_boolean(t):
        h.update(np.packbits(pc.fill_null(arr, False).to_numpy(zero_copy_only=False)).tobytes())
    else:
        h.update(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).tobytes())


def table_digest(*tables: pa.Table) -> str:
    """Content hash of tables: identical rows give identical hashes whatever the chunking."""
    h = hashlib.sha256()
    for table in tables:
        h.update(",".join(table.column_names).encode())
        for col in table.columns:
            _feed(h, col)
    return h.hexdigest()[:32]


# --- Inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    format: str  # reader: objects365 | openimages | pixmo
    images: str
    annotations: str
    classes: str | None
    depth: str | None
    keypoints: str | None
    hierarchy: str | None = None


def _resolve_inputs(src: SourceConfig) -> _Inputs:
    if src.format == "synthetic":
        from sf_platform.core.sources import synthetic

        gen = synthetic.ensure_generated(src)
        return _Inputs(
            "objects365",
            str(gen.images_dir),
            str(gen.annotations),
            None,
            str(gen.depth_dir) if getattr(gen, "depth_dir", None) else None,
            str(gen.keypoints) if getattr(gen, "keypoints", None) else None,
        )
    return _Inputs(
        src.format, src.images, src.annotations, src.classes, src.depth, src.keypoints,
        src.hierarchy,
    )


def _read(inputs: _Inputs, s3: S3Config, folder: str) -> SourceRecords:
    spill = Spill(folder, RAW_OBJECTS, "objects")
    ep, region = s3.endpoint_url, s3.region
    if inputs.format == "objects365":
        return read_objects365(inputs.annotations, spill, ep, region)
    if inputs.format == "openimages":
        return read_openimages(
            inputs.annotations, inputs.classes, spill, ep, region, hierarchy_uri=inputs.hierarchy
        )
    if inputs.format == "pixmo":
        return read_pixmo(inputs.annotations, spill, ep, region)
    raise ValueError(f"unknown source format {inputs.format!r}")


def _depth_files(depth: str | None, s3: S3Config) -> set[str] | None:
    """Relative paths of every file under the depth folder (listed once), or None."""
    if not depth:
        return None
    fs, path = filesystem_for(depth, s3.endpoint_url, s3.region)
    if not fs.exists(path):
        raise FileNotFoundError(f"depth folder not found: {depth}")
    base = path.rstrip("/")
    return {posixpath.relpath(p, base) for p in fs.find(base)}


def _depth_uri(depth: str, files: set[str], file_name: str) -> str | None:
    """``<depth>/<stem>.npy`` or ``.png`` (stem with its sub-folders, else the bare stem)."""
    stem = posixpath.splitext(file_name.replace("\\", "/"))[0]
    for candidate in (stem, posixpath.basename(stem)):
        for ext in (".npy", ".png"):
            if candidate + ext in files:
                return join_uri(depth, candidate + ext)
    return None


# --- Image list checks ------------------------------------------------------------------------


class _ImageLookup:
    """Image id -> position of its first entry; integer ids via numpy, others via a dict."""

    def __init__(self, ids: pa.ChunkedArray):
        self.ints = _as_int64(ids)
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
        parsed = _as_int64(keys, strict=False)
        vals, valid = parsed
        out = np.full(len(vals), -1, dtype=np.int64)
        if len(self.keys) and valid.any():
            idx = np.searchsorted(self.keys, vals[valid])
            idx_c = np.minimum(idx, len(self.keys) - 1)
            hit = self.keys[idx_c] == vals[valid]
            out[np.flatnonzero(valid)[hit]] = self.first[idx_c[hit]]
        return out


def _as_int64(ids, strict: bool = True):
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
class _ImageChecks:
    first: np.ndarray  # position of the first entry with the same id (itself when unique)
    reason: list  # per position: None or a reason code
    detail: list


def _check_images(images: pa.Table, lookup: _ImageLookup) -> _ImageChecks:
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
    return _ImageChecks(first=first, reason=reason, detail=detail)


# --- Objects: resolve, validate, bucket ------------------------------------------------------


def _box_reasons(boxes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
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


def _points_nan(points: pa.ChunkedArray) -> np.ndarray:
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


class _Categories:
    def __init__(self, table: pa.Table | None):
        self.table = table

    def resolve(self, batch: pa.Table) -> pa.ChunkedArray:
        category = batch.column("category")
        if self.table is None or self.table.num_rows == 0:
            return category
        idx = pc.index_in(batch.column("category_key"), value_set=self.table.column("key"))
        return pc.coalesce(category, self.table.column("name").take(idx))


def _object_reasons(
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
    nan_px, deg_px = _box_reasons(batch.column("bbox_px"))
    nan_n, deg_n = _box_reasons(batch.column("bbox_norm"))
    nan_pt = _points_nan(batch.column("points"))
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


_BUCKET_SCHEMA = pa.schema(list(RAW_OBJECTS) + [("_reason", pa.string()), ("_detail", pa.string())])


class _Buckets:
    """One spill per index file; rows are routed by the shard of their image."""

    def __init__(self, folder: str, rows_per_file: int):
        self.folder = folder
        self.rows_per_file = rows_per_file
        self.spills: dict[int, Spill] = {}

    def add(self, table: pa.Table, sort_pos: np.ndarray) -> None:
        bucket = np.where(sort_pos >= ORPHAN_POS, 0, sort_pos // self.rows_per_file)
        for b in np.unique(bucket):
            rows = np.flatnonzero(bucket == b)
            part = table if len(rows) == table.num_rows else table.take(pa.array(rows))
            if int(b) not in self.spills:
                self.spills[int(b)] = Spill(self.folder, _BUCKET_SCHEMA, f"bucket{int(b)}")
            self.spills[int(b)].append(part)

    def read(self, b: int) -> pa.Table:
        spill = self.spills.get(b)
        return spill.read_all() if spill is not None else _BUCKET_SCHEMA.empty_table()


# --- Build ------------------------------------------------------------------------------------


@dataclass
class _Context:
    src: SourceConfig
    inputs: _Inputs
    images: pa.Table
    checks: _ImageChecks
    depth_files: set[str] | None

    @property
    def num_images(self) -> int:
        return self.images.num_rows

    def image_uri(self, file_name: str | None) -> str | None:
        if not file_name or path_escapes(file_name):
            return None
        return join_uri(self.inputs.images, file_name)


_Q_EXTRA = pa.schema(
    list(schemas.QUARANTINE) + [("_pos", pa.int64()), ("_rank", pa.int8()), ("_seq", pa.int64())]
)


def _quarantine_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_Q_EXTRA) if rows else _Q_EXTRA.empty_table()


def _sort_pos_shard(pos: np.ndarray, shard_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sort position: the image position, ORPHAN_POS when none; shard index: 0 for orphans)."""
    sort_pos = np.where(pos >= 0, pos, ORPHAN_POS)
    shard = np.where(pos >= 0, pos // shard_size, 0)
    return sort_pos, shard


def build_index(src: SourceConfig, store: ObjectStore, s3: S3Config) -> SourceIndexSummary:
    """Stream the source once and write its shard index atomically (summary JSON last)."""
    fingerprint = source_fingerprint(src, s3)
    inputs = _resolve_inputs(src)
    spf = _shards_per_file(src.shard_size)
    rows_per_file = spf * src.shard_size
    with tempfile.TemporaryDirectory(prefix=f"sf-index-{src.name}-") as tmp:
        records = _read(inputs, s3, tmp)
        images = records.images
        lookup = _ImageLookup(images.column("image_id"))
        checks = _check_images(images, lookup)
        ctx = _Context(src, inputs, images, checks, _depth_files(inputs.depth, s3))
        rejected = np.asarray([r is not None for r in checks.reason], dtype=bool)
        categories = _Categories(records.categories)
        buckets = _Buckets(tmp, rows_per_file)
        for batch in records.objects:
            known = (
                batch.column("_pos").to_numpy(zero_copy_only=False)
                if batch.column("_pos").null_count == 0
                else None
            )
            pos = (
                known.astype(np.int64)
                if known is not None
                else lookup.find(batch.column("image_key"))
            )
            category = categories.resolve(batch)
            reason, detail = _object_reasons(batch, pos, rejected, category)
            sort_pos, _ = _sort_pos_shard(pos, src.shard_size)
            # Objects attach to the first entry of their id (duplicates) by construction of find().
            image_id = pc.coalesce(batch.column("image_id"), batch.column("image_key"))
            table = batch.set_column(batch.schema.get_field_index("category"), "category", category)
            table = table.set_column(table.schema.get_field_index("image_id"), "image_id", image_id)
            table = table.set_column(
                table.schema.get_field_index("_pos"), "_pos", pa.array(sort_pos, pa.int64())
            )
            table = table.append_column("_reason", reason).append_column("_detail", detail)
            buckets.add(table, sort_pos)
        keypoints = _prepare_keypoints(ctx, lookup, s3)
        summary = _write_index(ctx, buckets, keypoints, store, fingerprint, spf)
    return summary


def _prepare_keypoints(ctx: _Context, lookup: _ImageLookup, s3: S3Config) -> pa.Table | None:
    """Keypoint rows with the source image position (-1 when not in the source)."""
    if not ctx.inputs.keypoints:
        return None
    kp = coco_keypoints.read_keypoints(ctx.inputs.keypoints, s3.endpoint_url, s3.region)
    n = kp.num_rows
    pos = np.full(n, -1, dtype=np.int64)
    if n and ctx.num_images:
        by_name = pc.index_in(kp.column("file_name"), value_set=ctx.images.column("file_name"))
        by_name = pc.fill_null(by_name, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        by_id = lookup.find(kp.column("kp_image_id"))
        pos = np.where(by_name >= 0, by_name, by_id)
        # A file name shared by a duplicate entry resolves to the kept (first) entry.
        pos = np.where(pos >= 0, ctx.checks.first[np.maximum(pos, 0)], -1)
    return kp.append_column("_pos", pa.array(pos, pa.int64()))


def _image_quarantine(ctx: _Context, lo: int, hi: int) -> list[dict]:
    rows = []
    ids = ctx.images.column("image_id").slice(lo, hi - lo).to_pylist()
    names = ctx.images.column("file_name").slice(lo, hi - lo).to_pylist()
    for k in range(hi - lo):
        i = lo + k
        if ctx.checks.reason[i] is None:
            continue
        rows.append(
            {
                "source": ctx.src.name,
                "shard": shard_key(i // ctx.src.shard_size),
                "kind": "image",
                "image_id": ids[k],
                "image_uri": ctx.image_uri(names[k]),
                "object_id": None,
                "reason": ctx.checks.reason[i],
                "detail": ctx.checks.detail[i],
                "_pos": i,
                "_rank": _KIND_RANK["image"],
                "_seq": i,
            }
        )
    return rows


def _images_out(ctx: _Context, lo: int, hi: int) -> pa.Table:
    part = ctx.images.slice(lo, hi - lo)
    keep = np.asarray([r is None for r in ctx.checks.reason[lo:hi]], dtype=bool)
    positions = np.arange(lo, hi)[keep]
    part = part.filter(pa.array(keep)) if len(keep) else part
    names = part.column("file_name").to_pylist()
    depth = None
    if ctx.depth_files is not None:
        depth = pa.array(
            [_depth_uri(ctx.inputs.depth, ctx.depth_files, f) for f in names], pa.string()
        )
    cols = {c: part.column(c) for c in part.column_names}
    cols["source"] = pa.repeat(pa.scalar(ctx.src.name, pa.string()), part.num_rows)
    cols["shard"] = pa.array([shard_key(p // ctx.src.shard_size) for p in positions], pa.string())
    if depth is not None:
        cols["depth_uri"] = depth
    return schemas.conform(pa.table(cols), schemas.RAW_IMAGES).append_column(
        "_pos", pa.array(positions, pa.int64())
    )


def _join_keypoints(ctx: _Context, objects: pa.Table, kp: pa.Table) -> tuple[pa.Table, list[dict]]:
    """Attach keypoints to the bucket's person boxes; quarantine rows for the rest."""
    qrows: list[dict] = []
    if kp is None or kp.num_rows == 0:
        return objects, qrows
    kp_pos = kp.column("_pos").to_numpy(zero_copy_only=False)
    malformed = pc.is_null(kp.column("keypoints")).to_numpy(zero_copy_only=False)
    n_obj = objects.num_rows
    is_person = pc.fill_null(
        pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(objects.column("category"))), "person"),
        False,
    )
    match = coco_keypoints.match_keypoints(
        objects.column("_pos").to_numpy(zero_copy_only=False),
        is_person.to_numpy(zero_copy_only=False),
        _boxes_np(objects.column("bbox_px"), n_obj),
        _boxes_np(objects.column("bbox_norm"), n_obj),
        np.where(malformed, -1, kp_pos),
        _boxes_np(kp.column("bbox_px"), kp.num_rows),
        np.stack(
            [
                pc.fill_null(kp.column(c), np.nan).to_numpy(zero_copy_only=False)
                for c in ("img_width", "img_height")
            ],
            axis=1,
        )
        if kp.num_rows
        else np.zeros((0, 2)),
    )
    if (match >= 0).any():
        # Rows without a skeleton take the null slot; the column exists only when one matched.
        matched = np.flatnonzero(match >= 0)
        take = np.full(n_obj, -1, dtype=np.int64)
        take[match[matched]] = matched
        idx = pa.array(take, pa.int64(), mask=take < 0)
        objects = objects.append_column("keypoints", kp.column("keypoints").take(idx))
    kp_ids = kp.column("kp_id").to_pylist()
    kp_img = kp.column("kp_image_id").to_pylist()
    names = kp.column("file_name").to_pylist()
    for k in np.flatnonzero(match < 0):
        p = int(kp_pos[k])
        if malformed[k]:
            reason, detail = "malformed_keypoints", "keypoints are not 17 (x, y, v) triples"
        elif p < 0:
            reason, detail = (
                "unmatched_keypoints",
                (f"keypoint image {kp_img[k]!r} ({names[k]!r}) is not in the source's image list"),
            )
        elif ctx.checks.reason[p] is not None:
            reason, detail = (
                "unmatched_keypoints",
                f"its image was quarantined ({ctx.checks.reason[p]})",
            )
        else:
            reason, detail = (
                "unmatched_keypoints",
                (
                    f"no person box of the image overlaps the keypoint box with IoU >= {coco_keypoints.MIN_IOU}"
                ),
            )
        image_id = ctx.images.column("image_id")[p].as_py() if p >= 0 else kp_img[k]
        file_name = ctx.images.column("file_name")[p].as_py() if p >= 0 else None
        qrows.append(
            {
                "source": ctx.src.name,
                "shard": shard_key(p // ctx.src.shard_size if p >= 0 else 0),
                "kind": "keypoints",
                "image_id": image_id,
                "image_uri": ctx.image_uri(file_name),
                "object_id": kp_ids[k],
                "reason": reason,
                "detail": detail,
                "_pos": p if p >= 0 else ORPHAN_POS,
                "_rank": _KIND_RANK["keypoints"],
                "_seq": k,
            }
        )
    return objects, qrows


def _boxes_np(col, n: int) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = np.full((n, 4), np.nan)
    present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if present.any():
        out[present] = pc.list_flatten(arr).to_numpy(zero_copy_only=False).reshape(-1, 4)
    return out


def _object_quarantine(ctx: _Context, rejects: pa.Table) -> list[dict]:
    rows = []
    for r in rejects.select(
        ["object_id", "image_key", "category", "_pos", "_seq", "_reason", "_detail"]
    ).to_pylist():
        p = r["_pos"]
        known = p < ORPHAN_POS
        file_name = ctx.images.column("file_name")[p].as_py() if known else None
        rows.append(
            {
                "source": ctx.src.name,
                "shard": shard_key(p // ctx.src.shard_size if known else 0),
                "kind": "object",
                "image_id": r["image_key"],
                "image_uri": ctx.image_uri(file_name),
                "object_id": r["object_id"],
                "reason": r["_reason"],
                "detail": r["_detail"],
                "category": r["category"],
                "_pos": p,
                "_rank": _KIND_RANK["object"],
                "_seq": r["_seq"],
            }
        )
    return rows


def _shard_keys(pos: pa.ChunkedArray, size: int) -> pa.Array:
    """Vectorised ``shard_key(pos // size)``."""
    idx = pa.array(pos.to_numpy() // size if len(pos) else [], pa.int64())
    return pc.utf8_lpad(pc.cast(idx, pa.string()), 5, "0")


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    if table.num_rows == 0:
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))


def _write_index(
    ctx: _Context,
    buckets: _Buckets,
    keypoints: pa.Table | None,
    store: ObjectStore,
    fingerprint: str,
    spf: int,
) -> SourceIndexSummary:
    src = ctx.src
    size = src.shard_size
    n_shards = math.ceil(ctx.num_images / size)
    if n_shards == 0 and (buckets.spills or (keypoints is not None and keypoints.num_rows)):
        n_shards = 1  # shard 00000 exists to carry the rejects that belong to no image
    n_files = math.ceil(n_shards / spf)
    prefix = f"{_index_prefix(src.name)}/{fingerprint}"
    shards: dict[str, str] = {}
    totals = {"images": 0, "objects": 0, "quarantine": 0}
    kp_pos = (
        keypoints.column("_pos").to_numpy(zero_copy_only=False) if keypoints is not None else None
    )
    for b in range(n_files):
        lo, hi = b * spf * size, min((b + 1) * spf * size, ctx.num_images)
        rows = _sorted(buckets.read(b), ["_pos", "_seq"])
        good = rows.filter(pc.is_null(rows.column("_reason")))
        kp_part = None
        if keypoints is not None:
            in_file = (kp_pos >= lo) & (kp_pos < hi)
            if b == 0:
                in_file |= kp_pos < 0
            kp_part = keypoints.filter(pa.array(in_file))
        good, kp_q = _join_keypoints(ctx, good, kp_part)
        q_rows = (
            _image_quarantine(ctx, lo, hi)
            + _object_quarantine(ctx, rows.filter(pc.is_valid(rows.column("_reason"))))
            + kp_q
        )
        quarantine = _sorted(_quarantine_table(q_rows), ["_pos", "_rank", "_seq"])
        images = _images_out(ctx, lo, hi)
        objects = good.append_column(
            "source", pa.repeat(pa.scalar(src.name, pa.string()), good.num_rows)
        )
        objects = objects.append_column("shard", _shard_keys(objects.column("_pos"), size))
        tables = {"images": images, "objects": objects, "quarantine": quarantine}
        writers = {name: _RowGroupWriter(_SCHEMAS[name]) for name in _TABLES}
        shard_idx = {}
        for name, t in tables.items():
            p = t.column("_pos").to_numpy(zero_copy_only=False)
            shard_idx[name] = np.where(p >= ORPHAN_POS, 0, p // size)
        for s in range(b * spf, min((b + 1) * spf, n_shards)):
            parts = {}
            for name, t in tables.items():
                sel = np.flatnonzero(shard_idx[name] == s)
                part = t.take(pa.array(sel, pa.int64())) if len(sel) != t.num_rows else t
                parts[name] = schemas.conform(part, _SCHEMAS[name])
                writers[name].write(parts[name])
                totals[name] += parts[name].num_rows
            shards[shard_key(s)] = table_digest(
                parts["images"], parts["objects"], parts["quarantine"]
            )
        for name in _TABLES:
            store.write_bytes(f"{prefix}/{name}/{shard_key(b)}.parquet", writers[name].finish())
    previous = load_index_summary(store, src.name)
    summary = SourceIndexSummary(
        source=src.name,
        format=src.format,
        fingerprint=fingerprint,
        num_images=totals["images"],
        num_objects=totals["objects"],
        num_quarantined=totals["quarantine"],
        shards=shards,
        shard_size=size,
        shards_per_file=spf,
        images_root=ctx.inputs.images,
        previous_fingerprint=previous.fingerprint
        if previous and previous.fingerprint != fingerprint
        else (previous.previous_fingerprint if previous else None),
    )
    store.write_text(
        f"{_index_prefix(src.name)}/summary.json", json.dumps(asdict(summary), indent=1)
    )
    _collect_garbage(store, src.name, {fingerprint, summary.previous_fingerprint})
    return summary


class _RowGroupWriter:
    """A Parquet file in memory with exactly one row group per non-empty shard."""

    def __init__(self, schema: pa.Schema):
        self.buf = io.BytesIO()
        self.writer = pq.ParquetWriter(self.buf, schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table, row_group_size=table.num_rows)

    def finish(self) -> bytes:
        self.writer.close()
        return self.buf.getvalue()


def _collect_garbage(store: ObjectStore, source_name: str, keep: set) -> None:
    prefix = _index_prefix(source_name)
    rels = [k[len(prefix) + 1 :] for k in store.list(prefix)]
    folders = {r.split("/", 1)[0] for r in rels if "/" in r}
    for folder in folders - {f for f in keep if f}:
        store.delete(f"{prefix}/{folder}")


# --- Read -------------------------------------------------------------------------------------


def load_index_summary(store: ObjectStore, source_name: str) -> SourceIndexSummary | None:
    """The current index summary of a source, or None when it was never indexed."""
    key = f"{_index_prefix(source_name)}/summary.json"
    if not store.exists(key):
        return None
    data = json.loads(store.read_text(key))
    known = set(SourceIndexSummary.__dataclass_fields__)
    return SourceIndexSummary(**{k: v for k, v in data.items() if k in known})


def ensure_index(src: SourceConfig, store: ObjectStore, s3: S3Config) -> SourceIndexSummary:
    """The index of ``src``, rebuilt only when its fingerprint changed."""
    current = load_index_summary(store, src.name)
    if current is not None and current.fingerprint == source_fingerprint(src, s3):
        return current
    return build_index(src, store, s3)


def _read_row_groups(store: ObjectStore, key: str, shard: str, schema: pa.Schema) -> pa.Table:
    fs, path = filesystem_for(store.uri(key), store.endpoint_url, store.region)
    with fs.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        col = pf.schema_arrow.get_field_index("shard")
        groups = []
        for i in range(pf.metadata.num_row_groups):
            stats = pf.metadata.row_group(i).column(col).statistics
            if stats is None or not stats.has_min_max or stats.min <= shard <= stats.max:
                groups.append(i)
        if not groups:
            return schema.empty_table()
        table = pf.read_row_groups(groups)
    return schemas.conform(table.filter(pc.equal(table.column("shard"), shard)), schema)


def read_shard(
    store: ObjectStore, source_name: str, shard: str, summary: SourceIndexSummary | None = None
) -> RawShard:
    """One shard's images, objects and reader-level quarantine (reads one row group each).

    Pass ``summary`` (from :func:`load_index_summary`) when reading many shards, to pin them
    all to one index version and skip re-reading the summary.
    """
    summary = summary or load_index_summary(store, source_name)
    if summary is None:
        raise FileNotFoundError(
            f"source {source_name!r} has no index in {store.root}; build it first"
        )
    if shard not in summary.shards:
        raise KeyError(
            f"source {source_name!r} has no shard {shard!r} (it has {len(summary.shards)} shards)"
        )
    b = int(shard) // summary.shards_per_file
    prefix = f"{_index_prefix(source_name)}/{summary.fingerprint}"
    return RawShard(
        images=_read_row_groups(
            store, f"{prefix}/images/{shard_key(b)}.parquet", shard, schemas.RAW_IMAGES
        ),
        objects=_read_row_groups(
            store, f"{prefix}/objects/{shard_key(b)}.parquet", shard, schemas.OBJECTS
        ),
        quarantine=_read_row_groups(
            store, f"{prefix}/quarantine/{shard_key(b)}.parquet", shard, schemas.QUARANTINE
        ),
    )
