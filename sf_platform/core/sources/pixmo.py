"""PixMo points / count reader (``allenai/pixmo-points``, ``allenai/pixmo-count`` Parquet).

Columns: ``image_url``, ``image_sha256``, ``points`` (list of ``{x, y}`` in pixels), ``count``
(absent in some releases), ``label`` (an object name or a referring expression), plus columns we
ignore (``collection_method``).  There are no boxes: each point becomes one point-only object
(``category`` = label, ``points`` = [that point], ``bbox_px`` null, provenance ``points``); the
detection stage later proposes boxes for them.

PixMo ships URLs, not images, and the same URL appears in several rows (one row per label), so
images are identified by ``image_sha256``: rows of one image merge into one image, in order of
first appearance.  Users download each image once into the source's images root as
``<image_sha256><ext>`` (``ext`` from the URL path, ``.jpg`` when the URL has none), which is
the ``file_name`` written here; the hash doubles as the integrity check curation applies.

``count`` / ``count_label`` of an image come from its first row with a non-null ``count``: an
image carries a single counting annotation in pixmo-count, and in pixmo-points a row's count is
the number of points of that row's label.

``annotations`` may name one Parquet file or a folder of parts (``train-0000x-of-0000y``).
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sf_platform.core.sources.records import (
    ImageOrder,
    SourceInputError,
    SourceRecords,
    Spill,
    list_inputs,
    raw_images,
)
from sf_platform.storage.object_store import open_uri

REQUIRED = ("image_url", "image_sha256", "points", "label")
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
BATCH_ROWS = 65_536


def extension_from_url(url: str | None) -> str:
    """The image extension of a URL's path (lower case), ``.jpg`` when it has no usable one."""
    if not url:
        return ".jpg"
    ext = posixpath.splitext(urlparse(url).path)[1].lower()
    return ext if ext in IMAGE_EXTS else ".jpg"


class _ImageCounts:
    """Per-image first non-null count and its label, indexed by image position."""

    def __init__(self):
        self.count = np.zeros(0, dtype=np.int64)
        self.has = np.zeros(0, dtype=bool)
        self.label: list[str | None] = []

    def grow(self, n: int) -> None:
        if n > len(self.has):
            extra = n - len(self.has)
            self.count = np.r_[self.count, np.zeros(extra, dtype=np.int64)]
            self.has = np.r_[self.has, np.zeros(extra, dtype=bool)]
            self.label.extend([None] * extra)

    def update(self, pos: np.ndarray, count: pa.ChunkedArray, label: pa.ChunkedArray) -> None:
        valid = pc.is_valid(count).to_numpy(zero_copy_only=False) & (pos >= 0)
        rows = np.flatnonzero(valid)
        if not len(rows):
            return
        _, first = np.unique(pos[rows], return_index=True)  # first row of each image
        rows = rows[first]
        rows = rows[~self.has[pos[rows]]]
        if not len(rows):
            return
        counts = count.take(pa.array(rows)).to_numpy(zero_copy_only=False)
        labels = label.take(pa.array(rows)).to_pylist()
        for r, c, lab in zip(rows, counts, labels, strict=True):
            p = pos[r]
            self.count[p], self.has[p], self.label[p] = int(c), True, lab or None


def points_to_objects(
    batch: pa.Table, pos: np.ndarray, order: ImageOrder, seq_start: int
) -> pa.Table:
    """One Parquet batch -> RAW_OBJECTS rows, one point-only object per point."""
    points = batch.column("points").combine_chunks()
    parent = pc.list_parent_indices(points).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(points)
    n = len(flat)
    point_pos = pos[parent] if n else np.zeros(0, np.int64)
    rank = order.ranks(point_pos)
    sha = batch.column("image_sha256").take(pa.array(parent, pa.int64()))
    label = pc.utf8_trim_whitespace(batch.column("label").take(pa.array(parent, pa.int64())))
    xs = pc.fill_null(pc.struct_field(flat, "x").cast(pa.float64()), np.nan).to_numpy(
        zero_copy_only=False
    )
    ys = pc.fill_null(pc.struct_field(flat, "y").cast(pa.float64()), np.nan).to_numpy(
        zero_copy_only=False
    )
    point = pa.StructArray.from_arrays([pa.array(xs), pa.array(ys)], names=["x", "y"])
    offsets = pa.array(np.arange(n + 1, dtype=np.int32))
    return pa.table(
        {
            "object_id": pc.binary_join_element_wise(
                sha, pc.cast(pa.array(rank, pa.int64()), pa.string()), "-"
            ),
            "image_id": sha,
            "category": pc.if_else(pc.equal(label, ""), pa.scalar(None, pa.string()), label),
            "points": pa.ListArray.from_arrays(offsets, point),
            "score": pa.array(np.ones(n, dtype=np.float32)),
            "provenance": pa.repeat(pa.scalar("points", pa.string()), n),
            "image_key": sha,
            "_pos": pa.array(point_pos, pa.int64()),
            "_seq": pa.array(np.arange(seq_start, seq_start + n, dtype=np.int64)),
        }
    )


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_points(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return False
    item = t.value_type
    return pa.types.is_struct(item) and all(
        item.get_field_index(c) >= 0
        and (pa.types.is_floating(item.field(c).type) or pa.types.is_integer(item.field(c).type))
        for c in ("x", "y")
    )


# column -> (test of its Arrow type, what PixMo gives), checked before any row is read so a
# wrong file fails naming the file and the column, not with a raw Arrow cast error.
_TYPES = {
    "image_url": (_is_text, "string"),
    "image_sha256": (_is_text, "string"),
    "label": (_is_text, "string"),
    "points": (_is_points, "list<struct<x: number, y: number>>"),
    "count": (pa.types.is_integer, "integer"),
}


def _check_types(part: str, schema: pa.Schema) -> None:
    for name, (ok, want) in _TYPES.items():
        i = schema.get_field_index(name)
        if i >= 0 and not ok(schema.field(i).type):
            raise SourceInputError(
                f"{part}: column {name!r} has type {schema.field(i).type}; PixMo gives {want}"
            )


def read_pixmo(
    uri: str,
    spill: Spill,
    endpoint_url: str | None = None,
    region: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> SourceRecords:
    """Stream PixMo Parquet file(s) into :class:`SourceRecords` (objects spilled)."""
    order = ImageOrder()
    counts = _ImageCounts()
    urls: list[str | None] = []
    seq = 0
    for part in list_inputs(uri, endpoint_url, region, ".parquet"):
        with open_uri(part, endpoint_url, region) as f:
            pf = pq.ParquetFile(f)
            names = set(pf.schema_arrow.names)
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise ValueError(
                    f"{part}: not a PixMo points/count file, missing columns {missing}"
                )
            _check_types(part, pf.schema_arrow)
            columns = list(REQUIRED) + (["count"] if "count" in names else [])
            for record_batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
                batch = pa.Table.from_batches([record_batch])
                pos, new_rows = order.positions(batch.column("image_sha256"))
                urls.extend(
                    batch.column("image_url").take(pa.array(new_rows, pa.int64())).to_pylist()
                )
                counts.grow(len(order.pos))
                if "count" in names:
                    counts.update(
                        pos, batch.column("count"), pc.utf8_trim_whitespace(batch.column("label"))
                    )
                objects = points_to_objects(batch, pos, order, seq)
                spill.append(objects)
                seq += objects.num_rows
    ids = order.image_ids()
    counts.grow(len(ids))
    return SourceRecords(
        images=raw_images(
            pa.array(ids, pa.string()),
            pa.array(
                [sha + extension_from_url(u) for sha, u in zip(ids, urls, strict=True)], pa.string()
            ),
            count=pa.array(counts.count, pa.int32(), mask=~counts.has),
            count_label=pa.array(counts.label, pa.string()),
        ),
        objects=spill,
    )
