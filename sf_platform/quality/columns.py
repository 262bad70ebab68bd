"""Arrow columns as the numpy arrays and pandas frames the derived QA columns are built from.

Small, allocation-aware conversions (no copy where Arrow already holds one contiguous buffer):
what :mod:`sf_platform.quality.derived` and :mod:`sf_platform.quality.answers` share.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# --- small helpers --------------------------------------------------------------------------


def _arr(a) -> pa.Array:
    if isinstance(a, pa.ChunkedArray):
        return a.chunk(0) if a.num_chunks == 1 else a.combine_chunks()
    return a


def _fill(a, value):
    """``fill_null`` that does not copy a column without nulls (the usual case)."""
    return a if a.null_count == 0 else pc.fill_null(a, value)


def _as_numpy(a, dtype=np.float64) -> np.ndarray:
    """Arrow numeric/bool -> numpy ``dtype`` (float: NaN for null)."""
    a = _arr(a)
    if pa.types.is_boolean(a.type) or dtype is np.float64:
        a = pc.cast(a, pa.float64())
    return np.asarray(a.to_numpy(zero_copy_only=False), dtype=dtype)


def _take(a, idx: np.ndarray) -> pa.Array:
    """a[idx]; a zero-copy slice when idx is one run of consecutive positions (a task's rows
    in a table partitioned or sorted by task: no copy of a million questions)."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx) and (np.diff(idx) == 1).all():
        return _arr(a.slice(int(idx[0]), len(idx)))
    return _arr(a.take(pa.array(idx, pa.int64())))


def _take_or_null(a, idx: np.ndarray) -> pa.Array:
    """a[idx] with null where idx == -1."""
    a = _arr(a)
    if len(a) == 0:
        return pa.nulls(len(idx), a.type)
    taken = a.take(pa.array(np.where(idx < 0, 0, idx), pa.int64()))
    return pc.if_else(pa.array(idx < 0), pa.scalar(None, a.type), taken)


def _frame(columns: dict):
    """A pandas frame over the numpy columns without copying them (pandas' default copies and
    consolidates every column, a cost that grows with the objects frame)."""
    import pandas as pd

    return pd.DataFrame(columns, copy=False)


def _box_columns(col) -> np.ndarray:
    """[4, N] float array, one contiguous row per coordinate (x1, y1, x2, y2), of a
    list<number> column; NaN for null or not-4-long boxes.

    Column-major because the derived frames want each coordinate as its own column; the
    schemas' boxes are ``fixed_size_list<_, 4>``, read as one flat buffer (no per-row length
    check, no boolean scatter), which matters at a million boxes."""
    a = _arr(col)
    n = len(a)
    if pa.types.is_fixed_size_list(a.type) and a.type.list_size == 4 and n:
        vals = np.asarray(a.values.slice(a.offset * 4, n * 4).to_numpy(zero_copy_only=False)).reshape(n, 4)
        out = np.empty((4, n))
        for i in range(4):
            out[i] = vals[:, i]
        if a.null_count:
            out[:, _as_numpy(a.is_null(), bool)] = np.nan
        return out
    out = np.full((4, n), np.nan)
    if not n:
        return out
    ok = _as_numpy(_fill(pc.list_value_length(a), 0), np.int64) == 4
    if ok.any():
        sub = a.filter(pa.array(ok)) if not ok.all() else a
        out[:, ok] = np.asarray(pc.list_flatten(sub).to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, 4).T
    return out


def _boxes_np(col) -> np.ndarray:
    """[N, 4] float array of a list<number> column (a view of :func:`_box_columns`)."""
    return _box_columns(col).T


def _encode(a) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes (int64, -1 for null) and the dictionary (an Arrow array: turning a
    million distinct ids into Python strings would cost more than encoding them)."""
    enc = _arr(pc.dictionary_encode(a))
    codes = _as_numpy(_fill(enc.indices, -1), np.int64)
    return codes, enc.dictionary


# Bytes that may be (part of) whitespace: ASCII whitespace and separators, and every byte of a
# multi-byte character (U+00A0, U+3000 ... are whitespace too).
_MAYBE_SPACE = np.zeros(257, dtype=bool)  # index 256: no byte (empty or null string)
_MAYBE_SPACE[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20]] = True
_MAYBE_SPACE[0x80:256] = True


def _edge_bytes(a: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(byte length, first byte, last byte) of every string, read off the offsets and data
    buffers (256 for an empty or null string)."""
    n = len(a)
    lens = _as_numpy(_fill(pc.binary_length(a), 0), np.int64)
    first = np.full(n, 256, dtype=np.int64)
    last = first.copy()
    if not n or a.buffers()[2] is None:
        return lens, first, last
    off_type = np.int64 if pa.types.is_large_string(a.type) or pa.types.is_large_binary(a.type) else np.int32
    offsets = np.frombuffer(a.buffers()[1], dtype=off_type)[a.offset:a.offset + n + 1]
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8)
    has = lens > 0
    if has.all():
        return lens, data[offsets[:-1]], data[offsets[1:] - 1]
    idx = np.nonzero(has)[0]
    first[idx], last[idx] = data[offsets[idx]], data[offsets[idx + 1] - 1]
    return lens, first, last


def stripped_bytes(text) -> np.ndarray:
    """UTF-8 length in bytes of each string after stripping whitespace (0 for null).

    Only whether it is 0 matters to the gate (a blank question or answer), so bytes stand in
    for characters, and only strings whose first or last byte may be whitespace are actually
    stripped: the rest (nearly all) read their length off the offsets without touching the text."""
    a = _arr(text)
    if not pa.types.is_string(a.type) and not pa.types.is_large_string(a.type):
        a = pc.cast(a, pa.string())
    lens, first, last = _edge_bytes(a)
    edge = (lens > 0) & (_MAYBE_SPACE[first] | _MAYBE_SPACE[last])
    if edge.any():
        idx = np.nonzero(edge)[0]
        lens[idx] = _as_numpy(pc.binary_length(pc.utf8_trim_whitespace(_take(a, idx))), np.int64)
    return lens.astype(np.float64)


def _per_task_image_counts(tcode: np.ndarray, img: np.ndarray, n_img: int, n_tasks: int):
    """(for every row: rows of its task on its image; per task: distinct images)."""
    if not len(tcode):
        return np.zeros(0), np.zeros(n_tasks, dtype=np.int64)
    key = tcode * max(n_img, 1) + img
    if n_tasks * max(n_img, 1) <= 50_000_000:  # dense counting beats sorting
        counts = np.bincount(key, minlength=n_tasks * max(n_img, 1))
        per_task = np.count_nonzero(counts.reshape(n_tasks, -1), axis=1)
        return counts.astype(np.float64)[key], per_task
    else:
        uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        per_row = cnt[inv]
        per_task = np.bincount(uniq // max(n_img, 1), minlength=n_tasks)
    return per_row.astype(np.float64), per_task
