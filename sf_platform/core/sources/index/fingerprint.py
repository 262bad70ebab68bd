"""Change detection for a source: a cheap fingerprint of its inputs, and shard content hashes.

The fingerprint (config + file sizes and stamps) decides whether a source must be re-indexed;
the content hash of a shard's rows decides whether anything downstream of it must re-run, so a
re-index that reproduces a shard byte for byte costs nothing further.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.config import RELEASE_ONLY_KEYS, S3Config, SourceConfig
from sf_platform.core.sources.index.summary import READER_VERSION
from sf_platform.storage.object_store import filesystem_for


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
        from sf_platform.synthetic import GENERATOR_VERSION

        parts["generator"] = str(GENERATOR_VERSION)
    else:
        for key in ("annotations", "classes", "keypoints", "hierarchy"):
            uri = getattr(src, key)
            if uri:
                parts[key] = _file_stats(uri, s3)
        if src.depth and "://" not in src.depth and os.path.isdir(src.depth):
            parts["depth_mtime"] = os.stat(src.depth).st_mtime_ns
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


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

