"""Stable 64-bit hashes, coins and QA ids, vectorized over whole shards.

Why not ``hash()`` or ``random``: Python's ``hash`` of a string is salted per process and a
global RNG depends on call order, so either would make a QA table depend on the worker, the
machine or the order partitions ran in.  Everything here is a pure function of the bytes it
is given (UTF-8 strings, uint64 integers), computed with wrapping uint64 arithmetic that is the
same on every platform numpy runs on.

- :func:`hash_strings` is FNV-1a over the UTF-8 bytes of each string followed by a
  SplitMix64 finalizer (FNV alone mixes the last bytes poorly); it walks the bytes of a whole
  Arrow string array column-wise, so a shard of strings costs a few dozen numpy operations.
- :func:`mix` folds a value into a running hash; it is not symmetric, so ``mix(a, b)`` and
  ``mix(b, a)`` differ (mention order is part of a QA pair's identity).
- :func:`qa_ids` renders ids as 20 lowercase hex characters: 8 from the image's hash and 12
  from the full key.  The image prefix makes "sort by qa_id" also cluster each image's pairs,
  which lets Parquet encode the repeated image columns in runs (bytes per pair) and lets the
  exports pack one image's pairs into one conversation; 48 bits per image keep collisions
  away (a clash among an image's few dozen pairs has odds of ~1e-12), and the table builder
  still refuses duplicates.
- :func:`coin` turns a hash into a float in [0, 1) for deterministic sampling.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_FNV_OFFSET = U64(0xCBF29CE484222325)
_FNV_PRIME = U64(0x100000001B3)
_GOLDEN = U64(0x9E3779B97F4A7C15)
_NULL_MARK = U64(0x6E756C6C6E756C6C)  # "nullnull": a null string hashes apart from ""
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

IMAGE_PREFIX_CHARS = 8
BODY_CHARS = 12


def splitmix64(x) -> np.ndarray:
    """SplitMix64 finalizer: a bijective avalanche of uint64 values (elementwise)."""
    z = np.array(x, dtype=U64, copy=True)
    with np.errstate(over="ignore"):
        z += _GOLDEN
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        return z ^ (z >> U64(31))


def mix(h, x) -> np.ndarray:
    """Fold ``x`` into running hash ``h`` (broadcasting; order-sensitive)."""
    with np.errstate(over="ignore"):
        return splitmix64((np.asarray(h, dtype=U64) * _GOLDEN) ^ np.asarray(x, dtype=U64))


def combine(*parts) -> np.ndarray:
    """Hash of a sequence of uint64 values / arrays (broadcast), e.g. (image, task, template)."""
    h = np.asarray(U64(0x5346514100000000), dtype=U64)  # "SFQA"
    for p in parts:
        h = mix(h, p)
    return h


def _string_array(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), type=pa.string())
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        raise TypeError(f"hash_strings needs strings, got {values.type}")
    return values


def hash_strings(values) -> np.ndarray:
    """uint64 hash of every string of an Arrow (or Python) string sequence; nulls hash alike."""
    arr = _string_array(values)
    n = len(arr)
    out = np.empty(n, dtype=U64)
    if n == 0:
        return out
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    filled = pc.fill_null(arr, "") if arr.null_count else arr
    bufs = filled.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=filled.offset + n + 1)[filled.offset :]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1].astype(np.int64)
    lens = np.diff(offsets).astype(np.int64)
    order = np.argsort(-lens, kind="stable")
    s_sorted, l_sorted = starts[order], lens[order]
    h = np.full(n, _FNV_OFFSET, dtype=U64)
    maxlen = int(l_sorted[0])
    # Rows still active at byte k form a prefix of the length-sorted order.
    active = np.searchsorted(-l_sorted, -np.arange(maxlen), side="left")
    with np.errstate(over="ignore"):
        for k in range(maxlen):
            m = int(active[k])
            b = data[s_sorted[:m] + k].astype(U64)
            h[:m] = (h[:m] ^ b) * _FNV_PRIME
        h = splitmix64(h ^ (l_sorted.astype(U64) << U64(40)))
    out[order] = h
    out[~valid] = splitmix64(np.asarray([_NULL_MARK], dtype=U64))[0]
    return out


@lru_cache(maxsize=4096)
def hash_string(value: str) -> np.uint64:
    """Scalar :func:`hash_strings` (same value as the vectorized form; cached: salts, ids)."""
    return hash_strings(pa.array([value], type=pa.string()))[0]


def coin(h) -> np.ndarray:
    """Uniform float64 in [0, 1) from a hash (top 53 bits)."""
    return (np.asarray(h, dtype=U64) >> U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _hex_digits(h: np.ndarray, nchars: int) -> np.ndarray:
    shifts = np.arange(60, 60 - 4 * nchars, -4, dtype=np.int64).astype(U64)
    nib = (h[:, None] >> shifts[None, :]) & U64(0xF)
    return _HEX[nib.astype(np.intp)]


def fixed_width_strings(chars: np.ndarray) -> pa.StringArray:
    """``[n, w]`` uint8 ASCII matrix -> Arrow string array of n strings of width w."""
    n, w = chars.shape
    offsets = np.arange(0, n * w + 1, w, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8).ravel()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def qa_id_order(image_hash: np.ndarray, key_hash: np.ndarray) -> np.ndarray:
    """The permutation that sorts rows by their :func:`qa_ids` strings (without building them).

    Fixed-width lowercase hex sorts like the numbers it encodes, so ordering by (top 32 bits
    of the image hash, top 48 bits of the key hash) is ordering by qa_id.
    """
    prefix = np.asarray(image_hash, dtype=U64) >> U64(64 - 4 * IMAGE_PREFIX_CHARS)
    body = np.asarray(key_hash, dtype=U64) >> U64(64 - 4 * BODY_CHARS)
    return np.lexsort((body, prefix))


def qa_ids(image_hash: np.ndarray, key_hash: np.ndarray) -> pa.StringArray:
    """20-hex-char ids: 8 chars of the image hash then 12 of the pair's full key hash."""
    image_hash = np.asarray(image_hash, dtype=U64)
    key_hash = np.asarray(key_hash, dtype=U64)
    chars = np.concatenate(
        [_hex_digits(image_hash, IMAGE_PREFIX_CHARS), _hex_digits(key_hash, BODY_CHARS)], axis=1
    )
    return fixed_width_strings(chars)
