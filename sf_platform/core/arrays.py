"""Arrow columns as numpy arrays: the one conversion the vectorised scene and QA code share."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def single_chunk(col) -> pa.Array:
    """A ``ChunkedArray`` as one ``Array`` (an ``Array`` as it is)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def numpy_filled(col, fill, dtype) -> np.ndarray:
    """An Arrow column as a numpy ``dtype`` array, nulls replaced by ``fill`` first."""
    col = single_chunk(col)
    if col.null_count:
        col = pc.fill_null(col, fill)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)
