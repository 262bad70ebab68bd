"""Near-duplicate images across sources and shards: a perceptual hash per image, then groups.

The same photo reaches a dataset several times: Objects365 and OpenImages share Flickr photos,
a source holds a resized or re-encoded copy, a crawl repeats itself.  Duplicates repeat
supervision and, once there is a validation split, leak between splits.  ``sha256`` only
catches byte-identical files, so every curated image also gets a perceptual hash.

The hash (``images.phash``): the DCT hash of ``imagehash.phash`` (Zauner 2010) -- grey image
resized to 32x32, 2-D DCT-II, the 8x8 lowest frequencies compared with their median, 64 bits --
in a few lines of numpy (a 32x32 DCT is two matrix products).  It is computed by curation on
the image it already decodes (:func:`core.imaging.decode_image`, at JPEG's 1/8 draft scale,
ample for 32x32), in the EXIF-oriented frame, so no image is read twice and a rotated copy
matches.  Why not the ``imagehash`` package: it computes exactly these bits but pulls in
PyWavelets and works one PIL image at a time, while the rest (distances, grouping) needs
vectorised 64-bit integers anyway.  Stored as int64 (the 64 bits, two's complement).

Grouping (:func:`find_near_duplicates`): two images are near duplicates when their hashes
differ in at most ``near_duplicate_max_hamming`` bits.  Candidates come from multi-index
hashing: split the 64 bits into ``t + 1`` bands; two hashes within distance ``t`` agree exactly
on at least one band (pigeonhole), so exact band matches find every pair without comparing all
N^2; each candidate is then verified by popcount.  Pairs join into groups transitively
(connected components).  One image per group is kept: the largest (width x height, the least
degraded copy), then the smallest ``(source, shard, image_id)``: deterministic, and
independent of the order images are read in.  The others get a ``near_duplicate`` row naming
the kept image; the release drops their QA rows (:func:`drop_near_duplicates`).
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from sf_platform.core import schemas

HASH_SIDE = 32  # the grey image the DCT runs on
LOW = 8  # the LOW x LOW lowest frequencies make the 64 bits
REASON = "near_duplicate"
NEAR_DUPLICATES = pa.schema(
    [
        *schemas.QUARANTINE,  # kind "image", reason "near_duplicate", detail names the kept image
        ("kept_source", pa.string()),
        ("kept_shard", pa.string()),
        ("kept_image_id", pa.string()),
        ("kept_image_uri", pa.string()),
        ("distance", pa.int8()),  # Hamming distance of the hashes (bits of 64)
    ]
)


def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II as a matrix (scipy.fft.dct's default, what imagehash uses)."""
    k, x = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return 2.0 * np.cos(np.pi * k * (2 * x + 1) / (2 * n))


_DCT = _dct_matrix(HASH_SIDE)[:LOW]


def perceptual_hash(im: Image.Image, orient: Image.Transpose | None = None) -> int:
    """64-bit DCT hash of a decoded PIL image as a signed int64; ``orient`` is the transpose
    that puts the stored image upright (its EXIF orientation), applied to the 32x32 thumbnail
    so rotated copies hash alike."""
    grey = im.convert("L") if im.mode in ("L", "RGB") else im.convert("RGB").convert("L")
    small = grey.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS)
    if orient is not None:
        small = small.transpose(orient)
    a = np.asarray(small, dtype=np.float64)
    low = _DCT @ a @ _DCT.T  # the LOW x LOW lowest frequencies of the 2-D DCT
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">i8")[0])


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of int64 hash arrays."""
    x = np.bitwise_xor(np.asarray(a, np.int64), np.asarray(b, np.int64)).view(np.uint64)
    return np.bitwise_count(x).astype(np.int64)


def _band_pairs(h: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j) agreeing exactly on one of ``max_distance + 1`` bands."""
    u = h.view(np.uint64)
    n_bands = max_distance + 1
    edges = np.linspace(0, 64, n_bands + 1).astype(int)
    ii, jj = [], []
    for lo, hi in itertools.pairwise(edges):
        band = (u >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        o = np.argsort(band, kind="stable")
        b = band[o]
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        sizes = np.diff(np.r_[starts, len(b)])
        for s, k in zip(starts[sizes > 1], sizes[sizes > 1]):
            a, c = np.triu_indices(int(k), 1)
            ii.append(o[s + a])
            jj.append(o[s + c])
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = np.concatenate(ii), np.concatenate(jj)
    i, j = np.minimum(i, j), np.maximum(i, j)
    pairs = np.unique(np.stack([i, j], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes given edges (union-find, vectorised)."""
    parent = np.arange(n)
    while True:  # pointer jumping: hook each edge's larger root onto the smaller, then compress
        ri, rj = parent[i], parent[j]
        lo, hi = np.minimum(ri, rj), np.maximum(ri, rj)
        changed = lo != hi
        if not changed.any():
            return parent
        np.minimum.at(parent, hi[changed], lo[changed])
        while True:
            nxt = parent[parent]
            if (nxt == parent).all():
                break
            parent = nxt


def find_near_duplicates(images: pa.Table, max_distance: int) -> pa.Table:
    """The images to drop (``NEAR_DUPLICATES`` rows), each naming the image kept in its group.

    ``images`` holds the curated images of any number of sources and shards (columns
    ``source, shard, image_id, image_uri, width, height, phash``); rows without a hash are
    ignored.  See the module docstring for the rule.
    """
    images = images.filter(pc.is_valid(images.column("phash")))
    n = images.num_rows
    if n < 2:
        return NEAR_DUPLICATES.empty_table()
    h = images.column("phash").to_numpy().astype(np.int64)
    i, j = _band_pairs(h, max_distance)
    close = hamming(h[i], h[j]) <= max_distance
    i, j = i[close], j[close]
    group = _components(n, i, j)
    col = lambda c: np.asarray(images.column(c).to_pylist(), dtype=object)
    src, shard, iid, uri = col("source"), col("shard"), col("image_id"), col("image_uri")
    area = images.column("width").to_numpy().astype(np.int64) * images.column("height").to_numpy()
    # order within each group: largest first, then (source, shard, image_id)
    rank_key = np.lexsort((iid.astype(str), shard.astype(str), src.astype(str), -area, group))
    first = np.r_[True, group[rank_key][1:] != group[rank_key][:-1]]
    kept_of_group = {int(group[k]): int(k) for k in rank_key[first]}
    drop = np.asarray([k for k in rank_key[~first]], dtype=np.int64)
    if not len(drop):
        return NEAR_DUPLICATES.empty_table()
    keep = np.asarray([kept_of_group[int(group[k])] for k in drop], dtype=np.int64)
    dist = hamming(h[drop], h[keep])
    detail = [
        f"near duplicate of {uri[k]} ({src[k]}/{shard[k]} image {iid[k]}, kept): perceptual hashes "
        f"{d} of 64 bits apart (near_duplicate_max_hamming={max_distance})"
        for k, d in zip(keep, dist)
    ]
    return pa.table(
        {
            "source": src[drop].tolist(), "shard": shard[drop].tolist(), "kind": ["image"] * len(drop),
            "image_id": iid[drop].tolist(), "image_uri": uri[drop].tolist(), "object_id": [None] * len(drop),
            "reason": [REASON] * len(drop), "detail": detail, "category": [None] * len(drop),
            "kept_source": src[keep].tolist(), "kept_shard": shard[keep].tolist(),
            "kept_image_id": iid[keep].tolist(), "kept_image_uri": uri[keep].tolist(),
            "distance": dist.astype(np.int8),
        },
        schema=NEAR_DUPLICATES,
    ).sort_by([("source", "ascending"), ("shard", "ascending"), ("image_id", "ascending")])


def drop_near_duplicates(qa: pa.Table, near_duplicates: pa.Table | None) -> pa.Table:
    """``qa`` without the rows of images a near-duplicate row drops (matched on source, image_id)."""
    if near_duplicates is None or not near_duplicates.num_rows or not qa.num_rows:
        return qa
    key = lambda t: pc.binary_join_element_wise(t.column("source"), t.column("image_id"), "\x1f")
    dropped = pc.is_in(key(qa), value_set=key(near_duplicates))
    return qa.filter(pc.invert(pc.fill_null(dropped, False)))


# --- the store ------------------------------------------------------------------------------
ASSET = "near_duplicates"
HASH_COLUMNS = ("source", "shard", "image_id", "image_uri", "width", "height", "phash")


def read_image_hashes(store) -> pa.Table:
    """The hash columns of every curated images table in ``store`` (all sources and shards).

    Tables written before ``images.phash`` existed read as unhashed (null) and are ignored by
    :func:`find_near_duplicates` until their shard is curated again.
    """
    from sf_platform.storage.layout import asset_prefix

    parts = []
    for key in store.list(asset_prefix("images"), ".parquet"):
        t = schemas.conform(store.read_table(key), schemas.IMAGES)
        parts.append(t.select(list(HASH_COLUMNS)))
    if not parts:
        return schemas.IMAGES.empty_table().select(list(HASH_COLUMNS))
    return pa.concat_tables(parts)


def read_near_duplicates(store) -> pa.Table | None:
    """The ``near_duplicates`` asset's table, or None when it was never materialized."""
    from sf_platform.storage.layout import asset_key

    key = asset_key(ASSET)
    return store.read_table(key) if store.exists(key) else None
