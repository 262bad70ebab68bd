"""What every format reader hands to the indexer: an image list and spilled object batches.

A reader streams its annotation files once.  Images (a few hundred bytes each, millions at
most) stay in memory as one Arrow table in source order; objects (tens of millions for
Objects365 or OpenImages) are appended batch by batch to a :class:`Spill` on local disk, so the
indexer can later bucket them by shard without ever holding them all.

Object batches carry the columns of ``schemas.OBJECTS`` (minus source/shard, which the indexer
assigns) plus:

- ``image_key``: the image id the annotation refers to (resolved against the image list by the
  indexer), or the image's position in ``_pos`` when the reader already knows it;
- ``category_key``: the raw category id / MID, resolved through ``SourceRecords.categories``
  when ``category`` is still null (sections may come in any order);
- ``_seq``: the annotation's position in the source, which orders objects within an image and
  keeps every shard's content stable across re-indexing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core import schemas

RAW_IMAGE_COLUMNS = pa.schema(
    [
        ("image_id", pa.string()),
        ("file_name", pa.string()),
        # int64 here so an absurd declared size (10**12) reaches the index's checks as it is
        # written and is quarantined (value_overflow), instead of wrapping to a wrong int32.
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("count", pa.int32()),
        ("count_label", pa.string()),
    ]
)

# Readers never fill bbox_1000 (curation does) or keypoints (joined by the indexer); leaving
# them out of the spill matters: a null fixed-size list still stores its children (51 floats
# per null keypoints row), which would triple the bytes spilled per box.
_OBJECT_FIELDS = [
    f for f in schemas.OBJECTS if f.name not in ("source", "shard", "bbox_1000", "keypoints")
]
RAW_OBJECTS = pa.schema(
    _OBJECT_FIELDS
    + [
        ("image_key", pa.string()),
        ("category_key", pa.string()),
        ("_pos", pa.int64()),
        ("_seq", pa.int64()),
    ]
)


class SourceInputError(ValueError):
    """An annotation, class or keypoint file that cannot be read: the message names the file
    and, where known, the row, column or byte offset, and the reason."""


class Spill:
    """Arrow IPC stream on local disk: append tables of one schema, read them back in order."""

    def __init__(self, folder: str, schema: pa.Schema, name: str = "spill"):
        self.schema = schema
        self.path = os.path.join(folder, f"{name}-{uuid.uuid4().hex[:8]}.arrows")
        self._sink = None
        self._writer = None
        self.num_rows = 0

    def append(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._sink = pa.OSFile(self.path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, self.schema)
        self._writer.write_table(schemas.conform(table, self.schema))
        self.num_rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None

    def __iter__(self) -> Iterator[pa.Table]:
        self.close()
        if not os.path.exists(self.path):
            return
        # Plain reads, not a memory map: mapped pages would count as resident memory.
        with pa.OSFile(self.path, "rb") as source:
            reader = pa.ipc.open_stream(source)
            for batch in reader:
                yield pa.Table.from_batches([batch])

    def read_all(self) -> pa.Table:
        tables = list(self)
        return pa.concat_tables(tables) if tables else self.schema.empty_table()


@dataclass
class SourceRecords:
    """One pass over a source's annotations: images in source order, spilled objects."""

    images: pa.Table  # RAW_IMAGE_COLUMNS, source order, possibly with duplicate ids
    objects: Spill  # RAW_OBJECTS batches
    categories: pa.Table | None = None  # (key string, name string), names already fixed
    # Reader-level rejects that concern no object row (e.g. a PixMo row without a label).
    notes: pa.Table | None = None


class ImageOrder:
    """Images numbered in order of first appearance, for sources whose image list is implied
    by their annotation rows (OpenImages, PixMo), and each item's index within its image.

    Only the distinct ids of a batch go through Python; rows are mapped with Arrow/numpy.
    """

    def __init__(self):
        self.pos: dict[str, int] = {}
        self._seen = np.zeros(1024, dtype=np.int64)

    def positions(self, ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """(position of each row's image (-1 for a null id), batch row that introduced each
        new image, in position order)."""
        uniques = pc.unique(ids)
        first_rows = pc.index_in(uniques, value_set=ids).to_numpy(zero_copy_only=False)
        upos = np.empty(len(uniques), dtype=np.int64)
        new_rows = []
        for i, key in enumerate(uniques.to_pylist()):
            if key is None:  # no image id: the indexer quarantines the row as unknown_image
                upos[i] = -1
                continue
            p = self.pos.get(key)
            if p is None:
                p = self.pos[key] = len(self.pos)
                new_rows.append(first_rows[i])
            upos[i] = p
        local = pc.index_in(ids, value_set=uniques).to_numpy(zero_copy_only=False)
        return upos[local], np.asarray(new_rows, dtype=np.int64)

    def ranks(self, pos: np.ndarray) -> np.ndarray:
        """Index of each item among its image's items so far (stable; -1 positions get 0)."""
        pos = np.asarray(pos, dtype=np.int64)
        if len(self.pos) > len(self._seen):
            grown = np.zeros(max(len(self.pos), 2 * len(self._seen)), dtype=np.int64)
            grown[: len(self._seen)] = self._seen
            self._seen = grown
        order = np.argsort(pos, kind="stable")
        sorted_pos = pos[order]
        starts = (
            np.r_[0, np.flatnonzero(np.diff(sorted_pos)) + 1] if len(pos) else np.zeros(0, np.int64)
        )
        group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - group_start
        known = pos >= 0
        rank[known] += self._seen[pos[known]]
        rank[~known] = 0
        np.add.at(self._seen, pos[known], 1)
        return rank

    def image_ids(self) -> list[str]:
        return list(self.pos)


def raw_images(
    image_id, file_name, width=None, height=None, count=None, count_label=None
) -> pa.Table:
    """Build a RAW_IMAGE_COLUMNS table from arrays (missing columns null)."""
    cols = {"image_id": image_id, "file_name": file_name}
    for name, value in (
        ("width", width),
        ("height", height),
        ("count", count),
        ("count_label", count_label),
    ):
        if value is not None:
            cols[name] = value
    return schemas.conform(pa.table(cols), RAW_IMAGE_COLUMNS)


def list_inputs(uri: str, endpoint_url: str | None, region: str | None, suffix: str) -> list[str]:
    """A file URI as is, or every ``*suffix`` file under a folder URI (sorted): PixMo ships
    several Parquet parts."""
    from sf_platform.storage.object_store import filesystem_for

    fs, path = filesystem_for(uri, endpoint_url, region)
    if fs.isdir(path):
        files = sorted(p for p in fs.find(path) if p.endswith(suffix))
        if not files:
            raise FileNotFoundError(f"no *{suffix} files under {uri}")
        prefix = "s3://" if uri.startswith("s3://") else ""
        return [prefix + p for p in files]
    if not fs.exists(path):
        raise FileNotFoundError(f"annotation file not found: {uri}")
    return [uri]
