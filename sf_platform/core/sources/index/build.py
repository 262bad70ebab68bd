"""Build a source's index: stream its annotations once, check the image list, check and bucket
every object row on local disk, join the keypoints, and write the shard files (summary last)."""

from __future__ import annotations

import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.config import S3Config, SourceConfig
from sf_platform.core.sources.categories import clean_category_names
from sf_platform.core.sources.index.buckets import Buckets, sort_position
from sf_platform.core.sources.index.fingerprint import source_fingerprint
from sf_platform.core.sources.index.inputs import (
    BuildContext,
    depth_files,
    read_records,
    resolve_inputs,
)
from sf_platform.core.sources.index.keypoints import prepare_keypoints
from sf_platform.core.sources.index.rules import (
    Categories,
    ImageLookup,
    check_images,
    object_reasons,
)
from sf_platform.core.sources.index.summary import SourceIndexSummary, shards_per_file
from sf_platform.core.sources.index.writer import write_index
from sf_platform.storage.object_store import ObjectStore


def _checked_batch(
    batch: pa.Table, lookup: ImageLookup, rejected: np.ndarray, categories: Categories
) -> tuple[pa.Table, np.ndarray]:
    """An object batch with its category and image resolved and its reject reason (null when
    fine), and the sort position of each row (its image's position)."""
    pos_col = batch.column("_pos")
    if pos_col.null_count == 0:
        pos = pos_col.to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        pos = lookup.find(batch.column("image_key"))
    raw_category = categories.resolve(batch)
    category = clean_category_names(raw_category)
    reason, detail = object_reasons(batch, pos, rejected, raw_category, category)
    sort_pos = sort_position(pos)
    # Objects attach to the first entry of their id (duplicates) by construction of find().
    image_id = pc.coalesce(batch.column("image_id"), batch.column("image_key"))
    table = batch.set_column(batch.schema.get_field_index("category"), "category", category)
    table = table.set_column(table.schema.get_field_index("image_id"), "image_id", image_id)
    table = table.set_column(
        table.schema.get_field_index("_pos"), "_pos", pa.array(sort_pos, pa.int64())
    )
    return table.append_column("_reason", reason).append_column("_detail", detail), sort_pos


def _clean_count_labels(images: pa.Table) -> pa.Table:
    """PixMo's image-level count labels are category names in counting questions: cleaned
    like every category name; one empty after cleaning is dropped (no given count)."""
    i = images.schema.get_field_index("count_label")
    labels = clean_category_names(images.column(i))
    labels = pc.if_else(pc.equal(labels, ""), pa.scalar(None, pa.string()), labels)
    return images.set_column(i, "count_label", labels)


def build_index(src: SourceConfig, store: ObjectStore, s3: S3Config) -> SourceIndexSummary:
    """Stream the source once and write its shard index atomically (summary JSON last)."""
    fingerprint = source_fingerprint(src, s3)
    inputs = resolve_inputs(src)
    spf = shards_per_file(src.shard_size)
    with tempfile.TemporaryDirectory(prefix=f"sf-index-{src.name}-") as tmp:
        records = read_records(inputs, s3, tmp)
        images = _clean_count_labels(records.images)
        lookup = ImageLookup(images.column("image_id"))
        checks = check_images(images, lookup)
        ctx = BuildContext(src, inputs, images, checks, depth_files(inputs.depth, s3))
        rejected = np.asarray([r is not None for r in checks.reason], dtype=bool)
        categories = Categories(records.categories)
        buckets = Buckets(tmp, spf * src.shard_size)
        for batch in records.objects:
            buckets.add(*_checked_batch(batch, lookup, rejected, categories))
        keypoints = prepare_keypoints(ctx, lookup, s3)
        return write_index(ctx, buckets, keypoints, store, fingerprint, spf)
