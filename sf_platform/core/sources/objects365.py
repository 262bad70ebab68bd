"""Objects365 (COCO-style JSON, ``zhiyuan_objv2_*.json``) reader.

The file is one JSON object with ``images`` [{id, file_name, width, height}], ``annotations``
[{id, image_id, category_id, bbox [x, y, w, h] pixels, iscrowd, isfake, isreflected, area}] and
``categories`` [{id, name}], in any order, plus sections we do not use (info, licenses).  The
train file is several GB, so it is streamed (:mod:`.json_stream`): annotation batches become
Arrow tables in C and are spilled to disk at once, never held whole.  Category names are
corrected (:mod:`.categories`) and resolved by the indexer once every section has been seen.

The same reader serves any COCO-style detection JSON (the synthetic source writes one).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.sources.categories import fix_category_names
from sf_platform.core.sources.json_records import parse_records
from sf_platform.core.sources.json_stream import DEFAULT_CHUNK_BYTES, iter_arrays
from sf_platform.core.sources.records import RAW_OBJECTS, SourceRecords, Spill, raw_images
from sf_platform.storage.object_store import open_uri

IMAGE_FIELDS = pa.schema(
    [("id", pa.int64()), ("file_name", pa.string()), ("width", pa.int64()), ("height", pa.int64())]
)
ANNOTATION_FIELDS = pa.schema(
    [
        ("id", pa.int64()),
        ("image_id", pa.int64()),
        ("category_id", pa.int64()),
        ("bbox", pa.list_(pa.float64())),
        ("iscrowd", pa.int64()),
        ("isfake", pa.int64()),
        ("isreflected", pa.int64()),
    ]
)
CATEGORY_FIELDS = pa.schema([("id", pa.int64()), ("name", pa.string())])
_IDS = {
    "images": frozenset({"id"}),
    "annotations": frozenset({"id", "image_id", "category_id"}),
    "categories": frozenset({"id"}),
}
SECTIONS = {"images": IMAGE_FIELDS, "annotations": ANNOTATION_FIELDS, "categories": CATEGORY_FIELDS}


def parse_coco(
    f: BinaryIO,
    sections: dict[str, pa.Schema] = SECTIONS,
    ids: dict[str, frozenset[str]] = _IDS,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[tuple[str, pa.Table]]:
    """Yield ``(section, table)`` batches of a COCO-style JSON in file order (ids as strings)."""
    parsers = {
        name: partial(parse_records, schema=schema, id_fields=ids.get(name, frozenset()))
        for name, schema in sections.items()
    }
    yield from iter_arrays(f, parsers, chunk_bytes=chunk_bytes)


def xywh_to_box_array(bbox: pa.ChunkedArray | pa.Array) -> pa.FixedSizeListArray:
    """COCO ``[x, y, w, h]`` lists -> ``[x1, y1, x2, y2]`` fixed-size lists.

    A bbox that is missing or not exactly four numbers becomes four NaNs, which the indexer
    quarantines as ``nan_box`` instead of dropping the row.
    """
    arr = bbox.combine_chunks() if isinstance(bbox, pa.ChunkedArray) else bbox
    n = len(arr)
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    ok = lengths == 4
    xywh = np.full((n, 4), np.nan)
    if n:
        good = arr if ok.all() else arr.filter(pa.array(ok))
        flat = pc.list_flatten(good).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        xywh[ok] = flat.reshape(-1, 4)
    xyxy = np.empty_like(xywh)
    xyxy[:, :2] = xywh[:, :2]
    xyxy[:, 2:] = xywh[:, :2] + xywh[:, 2:]
    return pa.FixedSizeListArray.from_arrays(pa.array(xyxy.ravel()), 4)


def _flag(col: pa.ChunkedArray) -> pa.Array:
    return pc.not_equal(col, 0)


def annotations_to_objects(ann: pa.Table, seq_start: int) -> pa.Table:
    """One parsed ``annotations`` batch -> RAW_OBJECTS rows (vectorised, no per-row Python)."""
    n = ann.num_rows
    seq = pa.array(np.arange(seq_start, seq_start + n, dtype=np.int64))
    object_id = ann.column("id")
    if object_id.null_count:
        # No annotation id: a stable one from the annotation's position in the file.
        generated = pc.binary_join_element_wise("ann", pc.cast(seq, pa.string()), "-")
        object_id = pc.coalesce(object_id, generated)
    return pa.table(
        {
            "object_id": object_id,
            "image_id": ann.column("image_id"),
            "bbox_px": xywh_to_box_array(ann.column("bbox")),
            "is_crowd": _flag(ann.column("iscrowd")),
            "is_fake": _flag(ann.column("isfake")),
            "is_reflected": _flag(ann.column("isreflected")),
            "score": pa.array(np.ones(n, dtype=np.float32)),
            "provenance": pa.repeat(pa.scalar("annotation", pa.string()), n),
            "image_key": ann.column("image_id"),
            "category_key": ann.column("category_id"),
            "_seq": seq,
        }
    )


def read_objects365(
    uri: str,
    spill: Spill,
    endpoint_url: str | None = None,
    region: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> SourceRecords:
    """Stream one COCO-style detection JSON into :class:`SourceRecords` (objects spilled)."""
    images: list[pa.Table] = []
    categories: list[pa.Table] = []
    seq = 0
    with open_uri(uri, endpoint_url, region) as f:
        for section, table in parse_coco(f, chunk_bytes=chunk_bytes):
            if section == "images":
                images.append(table)
            elif section == "categories":
                categories.append(table)
            else:
                spill.append(annotations_to_objects(table, seq))
                seq += table.num_rows
    img = (
        pa.concat_tables(images)
        if images
        else IMAGE_FIELDS.empty_table().cast(
            pa.schema([pa.field("id", pa.string())] + list(IMAGE_FIELDS)[1:])
        )
    )
    cat = pa.concat_tables(categories) if categories else None
    return SourceRecords(
        images=raw_images(
            img.column("id"),
            img.column("file_name"),
            width=img.column("width"),
            height=img.column("height"),
        ),
        objects=spill,
        categories=None
        if cat is None
        else pa.table({"key": cat.column("id"), "name": fix_category_names(cat.column("name"))}),
    )


__all__ = [
    "RAW_OBJECTS",
    "annotations_to_objects",
    "parse_coco",
    "read_objects365",
    "xywh_to_box_array",
]
