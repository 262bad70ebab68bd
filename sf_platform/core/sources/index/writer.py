"""Write a source's index: per index file, the bucket's objects sorted and joined with their
keypoints, the quarantine rows of the image list, objects and skeletons, and the kept images,
one Parquet row group per shard; then the summary (last) and the clean-up of old builds."""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sf_platform.core import schemas
from sf_platform.core.quarantine import quarantine_table
from sf_platform.core.sources.index.buckets import ORPHAN_POS, Buckets
from sf_platform.core.sources.index.fingerprint import table_digest
from sf_platform.core.sources.index.inputs import BuildContext, depth_uri
from sf_platform.core.sources.index.keypoints import join_keypoints, unmatched_warning
from sf_platform.core.sources.index.summary import (
    TABLES,
    SourceIndexSummary,
    load_index_summary,
    write_index_summary,
)
from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore

SCHEMAS = {
    "images": schemas.RAW_IMAGES,
    "objects": schemas.OBJECTS,
    "quarantine": schemas.QUARANTINE,
}
# Quarantine rows carry their sort keys until they are written (image position, kind, order).
_Q_SORTABLE = pa.schema(
    list(schemas.QUARANTINE) + [("_pos", pa.int64()), ("_rank", pa.int8()), ("_seq", pa.int64())]
)


def _image_quarantine(ctx: BuildContext, lo: int, hi: int) -> list[dict]:
    ids = ctx.images.column("image_id").slice(lo, hi - lo).to_pylist()
    names = ctx.images.column("file_name").slice(lo, hi - lo).to_pylist()
    return [
        ctx.quarantine(
            lo + k,
            lo + k,
            kind="image",
            image_id=ids[k],
            image_uri=ctx.image_uri(names[k]),
            reason=ctx.checks.reason[lo + k],
            detail=ctx.checks.detail[lo + k],
        )
        for k in range(hi - lo)
        if ctx.checks.reason[lo + k] is not None
    ]


def _object_quarantine(ctx: BuildContext, rejects: pa.Table) -> list[dict]:
    cols = ["object_id", "image_key", "category", "_pos", "_seq", "_reason", "_detail"]
    return [
        ctx.quarantine(
            r["_pos"],
            r["_seq"],
            kind="object",
            image_id=r["image_key"],
            image_uri=ctx.image_uri(ctx.file_name(r["_pos"])),
            object_id=r["object_id"],
            reason=r["_reason"],
            detail=r["_detail"],
            category=r["category"],
        )
        for r in rejects.select(cols).to_pylist()
    ]


def _images_out(ctx: BuildContext, lo: int, hi: int) -> pa.Table:
    part = ctx.images.slice(lo, hi - lo)
    keep = np.asarray([r is None for r in ctx.checks.reason[lo:hi]], dtype=bool)
    positions = np.arange(lo, hi)[keep]
    part = part.filter(pa.array(keep)) if len(keep) else part
    names = part.column("file_name").to_pylist()
    cols = {c: part.column(c) for c in part.column_names}
    cols["source"] = pa.repeat(pa.scalar(ctx.src.name, pa.string()), part.num_rows)
    cols["shard"] = pa.array(
        [layout.shard_name(p // ctx.src.shard_size) for p in positions], pa.string()
    )
    if ctx.depth_files is not None:
        cols["depth_uri"] = pa.array(
            [depth_uri(ctx.inputs.depth, ctx.depth_files, f) for f in names], pa.string()
        )
    return schemas.conform(pa.table(cols), schemas.RAW_IMAGES).append_column(
        "_pos", pa.array(positions, pa.int64())
    )


def _shard_names(pos: pa.ChunkedArray, size: int) -> pa.Array:
    """Vectorised ``layout.shard_name(pos // size)``."""
    idx = pa.array(pos.to_numpy() // size if len(pos) else [], pa.int64())
    return pc.utf8_lpad(pc.cast(idx, pa.string()), 5, "0")


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    if table.num_rows == 0:
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))


def write_index(
    ctx: BuildContext,
    buckets: Buckets,
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
    shards: dict[str, str] = {}
    totals = {"images": 0, "objects": 0, "quarantine": 0, "unmatched_keypoints": 0}
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
        good, kp_q = join_keypoints(ctx, good, kp_part)
        totals["unmatched_keypoints"] += len(kp_q)
        q_rows = (
            _image_quarantine(ctx, lo, hi)
            + _object_quarantine(ctx, rows.filter(pc.is_valid(rows.column("_reason"))))
            + kp_q
        )
        quarantine = _sorted(quarantine_table(q_rows, _Q_SORTABLE), ["_pos", "_rank", "_seq"])
        images = _images_out(ctx, lo, hi)
        objects = good.append_column(
            "source", pa.repeat(pa.scalar(src.name, pa.string()), good.num_rows)
        )
        objects = objects.append_column("shard", _shard_names(objects.column("_pos"), size))
        tables = {"images": images, "objects": objects, "quarantine": quarantine}
        writers = {name: _RowGroupWriter(SCHEMAS[name]) for name in TABLES}
        shard_idx = {}
        for name, t in tables.items():
            p = t.column("_pos").to_numpy(zero_copy_only=False)
            shard_idx[name] = np.where(p >= ORPHAN_POS, 0, p // size)
        for s in range(b * spf, min((b + 1) * spf, n_shards)):
            parts = {}
            for name, t in tables.items():
                sel = np.flatnonzero(shard_idx[name] == s)
                part = t.take(pa.array(sel, pa.int64())) if len(sel) != t.num_rows else t
                parts[name] = schemas.conform(part, SCHEMAS[name])
                writers[name].write(parts[name])
                totals[name] += parts[name].num_rows
            shards[layout.shard_name(s)] = table_digest(
                parts["images"], parts["objects"], parts["quarantine"]
            )
        for name in TABLES:
            key = layout.index_file_key(src.name, fingerprint, name, b)
            store.write_bytes(key, writers[name].finish())
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
        warnings=[
            w
            for w in [
                unmatched_warning(
                    0 if keypoints is None else keypoints.num_rows,
                    totals["unmatched_keypoints"],
                    ctx.inputs.keypoints or "",
                )
            ]
            if w
        ],
        previous_fingerprint=previous.fingerprint
        if previous and previous.fingerprint != fingerprint
        else (previous.previous_fingerprint if previous else None),
    )
    write_index_summary(store, summary)
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
    prefix = layout.index_prefix(source_name)
    rels = [k[len(prefix) + 1 :] for k in store.list(prefix)]
    folders = {r.split("/", 1)[0] for r in rels if "/" in r}
    for folder in folders - {f for f in keep if f}:
        store.delete(layout.index_version_prefix(source_name, folder))
