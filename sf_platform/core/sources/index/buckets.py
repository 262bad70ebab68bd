"""Object rows bucketed by index file on local disk, so a source of tens of millions of boxes
is never held in memory: each bucket is read back, sorted and written as one index file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sf_platform.core.sources.records import RAW_OBJECTS, Spill

ORPHAN_POS = 2**62  # sort key of rows attached to no image (after every real image)
BUCKET_SCHEMA = pa.schema(list(RAW_OBJECTS) + [("_reason", pa.string()), ("_detail", pa.string())])


class Buckets:
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
                self.spills[int(b)] = Spill(self.folder, BUCKET_SCHEMA, f"bucket{int(b)}")
            self.spills[int(b)].append(part)

    def read(self, b: int) -> pa.Table:
        spill = self.spills.get(b)
        return spill.read_all() if spill is not None else BUCKET_SCHEMA.empty_table()


def sort_position(pos: np.ndarray) -> np.ndarray:
    """The image position of each row, :data:`ORPHAN_POS` for rows of no known image."""
    return np.where(pos >= 0, pos, ORPHAN_POS)

